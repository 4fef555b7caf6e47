"""Web security plumbing: the session secret, security headers, CSRF, who is signed in.

* Sessions are Starlette's signed cookies (itsdangerous), HttpOnly, SameSite=Lax,
  Secure when ``web.secure_cookies`` is on.  A cookie holds the user id and the
  user's *session version*; signing out, a password change or disabling the
  user raises the version, so a copied cookie stops working at once.
* Every unsafe request (POST, PUT, PATCH, DELETE) made with the session cookie
  must carry the session's CSRF token, as the ``csrf_token`` form field or the
  ``X-CSRF-Token`` header.  Requests authenticated with an API bearer token are
  exempt (no ambient credentials are involved).
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from listener.auth import (
    InvalidCredentials,
    Principal,
    get_principal,
    principal_for_token,
    sign_out,
)
from listener.errors import ListenerError, PermissionDenied

if TYPE_CHECKING:
    from listener.app import App
    from listener.config import Settings

log = structlog.get_logger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SESSION_COOKIE = "listener_session"


class NotAuthenticated(ListenerError):
    """No signed-in user (pages redirect to /login; the API answers 401)."""


class CsrfError(ListenerError):
    """The CSRF token is missing or wrong."""


def secret_key_path(settings: Settings) -> Path:
    """Where a generated session key is kept: ``var/secret_key`` beside a SQLite file,
    else under the config's folder."""
    return settings.data_dir() / "secret_key"


def session_secret(settings: Settings) -> str:
    """``web.secret_key`` if configured, else a random key generated once and persisted
    (mode 600) so sessions survive restarts."""
    key = settings.web.secret_key
    if key is not None and key.get_secret_value():
        return key.get_secret_value()
    path = secret_key_path(settings)
    try:
        existing = path.read_text(encoding="utf-8").strip()
        if existing:
            return existing
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    new = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(new + "\n")
    log.warning(
        "web.secret_key.generated",
        path=str(path),
        hint="set web.secret_key (${LISTENER_SECRET_KEY}) to manage it yourself",
    )
    return new


class SecurityHeadersMiddleware:
    """Adds the CSP and friends to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.extend((k, v) for k, v in SECURITY_HEADERS if k not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use)."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


def bearer_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def csrf_guard(request: Request) -> None:
    """FastAPI dependency on every route: unsafe cookie-authenticated requests need the token."""
    if request.method not in UNSAFE_METHODS or bearer_token(request) is not None:
        return
    expected = request.session.get("csrf")
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(str(expected), sent):
        raise CsrfError("the form has expired or was not sent from this site; reload and retry")


def _app(request: Request) -> App:
    return request.app.state.listener  # type: ignore[no-any-return]


def current_user(request: Request) -> Principal:
    """The signed-in person (session cookie) or the API token's owner."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    token = bearer_token(request)
    app = _app(request)
    if token is not None:
        try:
            principal = principal_for_token(app, token)
        except InvalidCredentials as exc:
            raise NotAuthenticated(str(exc)) from None
    else:
        uid, version = request.session.get("uid"), request.session.get("sv")
        principal_or_none = (
            get_principal(app, uid, version)
            if isinstance(uid, int) and isinstance(version, int)
            else None
        )
        if principal_or_none is None:
            raise NotAuthenticated("please sign in")
        principal = principal_or_none
    request.state.principal = principal
    structlog.contextvars.bind_contextvars(user=principal.username)
    return principal


def writer(request: Request) -> Principal:
    """The signed-in person, who must not be read-only."""
    p = current_user(request)
    if not p.can_write:
        raise PermissionDenied(f"the {p.role} role is read-only")
    return p


def lead(request: Request) -> Principal:
    p = current_user(request)
    if not p.is_lead:
        raise PermissionDenied("only a lead or an admin may do this")
    return p


def client_address(request: Request) -> str:
    """The peer address login throttling counts by (the proxy's, behind a proxy)."""
    return request.client.host if request.client is not None else "unknown"


def start_session(request: Request, principal: Principal) -> None:
    """A fresh session for ``principal`` (no fixation), bound to their session version."""
    request.session.clear()
    request.session["uid"] = principal.id
    request.session["sv"] = principal.session_version
    csrf_token(request)


def end_session(request: Request) -> None:
    """Sign out: every session of this user ends (a copied cookie included), then this
    browser's cookie is cleared."""
    uid, version = request.session.get("uid"), request.session.get("sv")
    if isinstance(uid, int) and isinstance(version, int):
        app = _app(request)
        if get_principal(app, uid, version) is not None:  # a stale cookie signs out nobody
            sign_out(app, uid)
    request.session.clear()
