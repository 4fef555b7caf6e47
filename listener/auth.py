"""People and access: users, roles, password hashing (argon2) and API tokens.

Use-cases shared by the CLI (``listener users …``), the web app and the JSON
API.  Passwords are stored only as argon2id hashes; API tokens only as their
SHA-256 hash (a token is 32 random bytes, so a fast hash is enough and lets
the lookup be an indexed equality).

Taking access back:

* every session cookie carries the user's ``session_version``; signing out,
  changing the password and disabling the user raise it, so every cookie
  issued before — wherever it was copied to — stops working at once;
* tokens have a name unique among the user's live tokens, an optional expiry,
  and are revoked one by one (:func:`revoke_token`) or all together when the
  password changes or the user is disabled;
* sign-in is throttled: after ``web.login_attempts`` failures for one account
  (or ``web.login_attempts_per_address`` from one address) within
  ``web.login_window``, further attempts are refused with
  :class:`LoginThrottled` — the right password included — until the window
  has passed.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from listener import models as m
from listener.clock import utcnow as _now
from listener.errors import Conflict, ListenerError, NotFound, PermissionDenied
from listener.text import excerpt

if TYPE_CHECKING:
    from listener.app import App
    from listener.config import Settings

log = structlog.get_logger(__name__)

ROLES = ("agent", "lead", "marketing", "admin")
#: roles that may act on cases (marketing is read-only)
WRITE_ROLES = frozenset({"agent", "lead", "admin"})
#: roles that may assign cases to others and approve above the agent tier
LEAD_ROLES = frozenset({"lead", "admin"})
TOKEN_PREFIX = "lst_"
MIN_PASSWORD = 8
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-@]{0,99}$")
TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-@:]{0,99}$")


class InvalidCredentials(ListenerError):
    """Wrong username or password, an inactive user, or an unknown token."""


class LoginThrottled(InvalidCredentials):
    """Too many failed sign-ins for the account or from the address; ``retry_after``
    is the number of seconds until the next attempt is allowed."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Principal:
    """The signed-in person as the web layer sees them."""

    id: int
    username: str
    role: str
    display_name: str | None = None
    session_version: int = 0

    @property
    def can_write(self) -> bool:
        return self.role in WRITE_ROLES

    @property
    def is_lead(self) -> bool:
        return self.role in LEAD_ROLES


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return str(_hasher().hash(password))


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash`` (never raises on a mismatch)."""
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return bool(_hasher().verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ListenerError(f"unknown role {role!r} (one of: {', '.join(ROLES)})")
    return role


def _principal(user: m.User) -> Principal:
    return Principal(
        id=user.id,
        username=user.username,
        role=user.role,
        display_name=user.display_name,
        session_version=user.session_version or 0,
    )


def add_user(
    app: App,
    username: str,
    password: str,
    *,
    role: str = "agent",
    display_name: str | None = None,
    email: str | None = None,
) -> dict[str, Any]:
    """Create a user; Conflict when the name is taken."""
    check_role(role)
    if not USERNAME.match(username):
        raise ListenerError(
            f"invalid username {username!r} (letters, digits, '_', '.', '-', '@'; max 100)"
        )
    if len(password) < MIN_PASSWORD:
        raise ListenerError(f"the password must have at least {MIN_PASSWORD} characters")
    user = m.User(
        username=username,
        role=role,
        display_name=display_name,
        email=email,
        password_hash=hash_password(password),
        created_at=_now(),
    )
    try:
        with app.sessions.begin() as session:
            session.add(user)
            session.flush()
            session.add(
                m.Event(
                    actor="listener", kind="user.created", data={"username": username, "role": role}
                )
            )
    except IntegrityError:
        raise Conflict(f"user {username!r} already exists") from None
    log.info("user.created", username=username, role=role)
    return user_dict(user)


def user_dict(user: m.User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "display_name": user.display_name,
        "active": user.active,
        "created_at": user.created_at.isoformat() if user.created_at else None,
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


def list_users(app: App) -> list[dict[str, Any]]:
    with app.sessions() as session:
        return [user_dict(u) for u in session.scalars(select(m.User).order_by(m.User.username))]


def _user(session: Any, username: str) -> m.User:
    user = session.scalars(select(m.User).where(m.User.username == username)).one_or_none()
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user  # type: ignore[no-any-return]


def _revoke_all(session: Any, user: m.User, reason: str, now: datetime) -> int:
    """Revoke every live token of ``user``; returns how many."""
    tokens = session.scalars(
        select(m.ApiToken).where(m.ApiToken.user_id == user.id, m.ApiToken.revoked_at.is_(None))
    ).all()
    for tok in tokens:
        tok.revoked_at, tok.revoked_reason = now, reason
    return len(tokens)


def set_password(app: App, username: str, password: str, *, actor: str = "listener") -> None:
    """Change a password: every session is signed out and every API token revoked."""
    if len(password) < MIN_PASSWORD:
        raise ListenerError(f"the password must have at least {MIN_PASSWORD} characters")
    now = _now()
    with app.sessions.begin() as session:
        user = _user(session, username)
        user.password_hash = hash_password(password)
        user.session_version = (user.session_version or 0) + 1
        revoked = _revoke_all(session, user, "password changed", now)
        session.add(
            m.Event(
                actor=actor,
                kind="user.password_changed",
                at=now,
                data={"username": username, "tokens_revoked": revoked},
            )
        )
    log.info("user.password_changed", username=username, tokens_revoked=revoked)


def set_active(app: App, username: str, active: bool, *, actor: str = "listener") -> int:
    """Disable a user (signed out everywhere, every token revoked) or enable them again.

    Returns the number of tokens revoked.  Re-enabling restores no token and
    no session: the person signs in again and mints new tokens.
    """
    now = _now()
    revoked = 0
    with app.sessions.begin() as session:
        user = _user(session, username)
        if not active:
            user.session_version = (user.session_version or 0) + 1
            revoked = _revoke_all(session, user, "user disabled", now)
        user.active = active
        session.add(
            m.Event(
                actor=actor,
                kind="user.enabled" if active else "user.disabled",
                at=now,
                data={"username": username, "tokens_revoked": revoked},
            )
        )
    log.info("user.enabled" if active else "user.disabled", username=username)
    return revoked


def sign_out(app: App, user_id: int) -> None:
    """End every session of this user (the server-side session version goes up)."""
    with app.sessions.begin() as session:
        user = session.get(m.User, user_id)
        if user is not None:
            user.session_version = (user.session_version or 0) + 1


def _throttle(session: Any, settings: Settings, username: str, address: str, now: datetime) -> None:
    """LoginThrottled when the account or the address has used up its failures."""
    web = settings.web
    since = now - web.login_window
    f = m.LoginFailure
    checks = (
        (f.username == username, web.login_attempts, "for this account"),
        (f.address == address, web.login_attempts_per_address, "from this address"),
    )
    for where, allowed, what in checks:
        count, oldest = session.execute(
            select(func.count(f.id), func.min(f.at)).where(where, f.at > since)
        ).one()
        if count >= allowed:
            wait = max(1, math.ceil(((oldest or now) + web.login_window - now).total_seconds()))
            log.warning(
                "login.throttled", username=excerpt(username, 100), address=address, reason=what
            )
            raise LoginThrottled(
                f"too many failed sign-ins {what}: try again in {wait} s", retry_after=wait
            )


def _failed(session: Any, settings: Settings, username: str, address: str, now: datetime) -> None:
    """Record a failed sign-in (and forget those older than the window)."""
    session.execute(
        delete(m.LoginFailure).where(m.LoginFailure.at <= now - settings.web.login_window)
    )
    session.add(m.LoginFailure(username=username[:200], address=address[:100], at=now))


def authenticate(app: App, username: str, password: str, *, address: str = "unknown") -> Principal:
    """The user if the password matches; InvalidCredentials otherwise (same message).

    :class:`LoginThrottled` (before the password is even checked) when the
    account or ``address`` has had too many failures within the window.
    """
    now = _now()
    settings = app.settings
    with app.sessions.begin() as session:
        _throttle(session, settings, username[:200], address[:100], now)
        user = session.scalars(select(m.User).where(m.User.username == username)).one_or_none()
        if user is None:
            verify_password(_dummy_hash(), password)  # same work either way
            ok = False
        else:
            ok = user.active and verify_password(user.password_hash, password)
        if user is None or not ok:
            _failed(session, settings, username, address, now)
            failure: InvalidCredentials | None = InvalidCredentials("wrong username or password")
        else:
            failure = None
            if _hasher().check_needs_rehash(user.password_hash):
                user.password_hash = hash_password(password)
            user.last_login_at = now
            session.execute(delete(m.LoginFailure).where(m.LoginFailure.username == username))
            principal = _principal(user)
    if failure is not None:  # raised after the commit, so the failure is counted
        log.info("login.failed", username=excerpt(username, 100), address=excerpt(address, 100))
        raise failure
    return principal


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(hash_password(secrets.token_hex(8)))
    return _DUMMY[0]


def get_principal(app: App, user_id: int, session_version: int | None = None) -> Principal | None:
    """The active user with this id, or None (also when ``session_version`` is given and is
    not the user's current one: the session was signed out)."""
    with app.sessions() as session:
        user = session.get(m.User, user_id)
        if user is None or not user.active:
            return None
        if session_version is not None and session_version != (user.session_version or 0):
            return None
        return _principal(user)


def _token_status(tok: m.ApiToken, now: datetime) -> str:
    if tok.revoked_at is not None:
        return "revoked"
    if tok.expires_at is not None and tok.expires_at <= now:
        return "expired"
    return "active"


def mint_token(
    app: App,
    username: str,
    name: str | None = None,
    *,
    expires_in: timedelta | None = None,
    actor: str | None = None,
) -> str:
    """A new API token for ``username``; the plain token is returned once and never stored.

    ``name`` must be unique among the user's live tokens (Conflict otherwise; an
    expired token's name is taken over: that token is revoked).  Without a
    name the token is called ``cli``, ``cli-2``…  ``expires_in``: none, never.
    """
    if name is not None and not TOKEN_NAME.match(name):
        raise ListenerError(
            f"invalid token name {name!r} (letters, digits, '_', '.', '-', '@', ':'; max 100)"
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = _now()
    expires_at = None
    if expires_in is not None:
        if expires_in.total_seconds() <= 0:
            raise ListenerError("a token's expiry must be in the future")
        expires_at = now + expires_in
    with app.sessions.begin() as session:
        user = _user(session, username)
        live = {
            t.name: t
            for t in session.scalars(
                select(m.ApiToken).where(
                    m.ApiToken.user_id == user.id, m.ApiToken.revoked_at.is_(None)
                )
            )
        }
        if name is None:
            name, n = "cli", 1
            while name in live:
                n += 1
                name = f"cli-{n}"
        elif name in live:
            if _token_status(live[name], now) != "expired":
                raise Conflict(
                    f"{username} already has a token named {name!r}: choose another name "
                    f"or revoke it (listener users revoke-token {username} {name})"
                )
            live[name].revoked_at, live[name].revoked_reason = now, "expired; name reused"
            session.flush()
        session.add(
            m.ApiToken(
                user_id=user.id,
                name=name,
                token_hash=hash_token(token),
                created_at=now,
                expires_at=expires_at,
            )
        )
        session.add(
            m.Event(
                actor=actor or username,
                kind="token.created",
                at=now,
                data={
                    "username": username,
                    "name": name,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
            )
        )
    log.info("token.created", username=username, name=name)
    return token


def list_tokens(app: App, username: str) -> list[dict[str, Any]]:
    """The user's tokens (never their values), newest first, with their status."""
    now = _now()
    with app.sessions() as session:
        user = _user(session, username)
        tokens = session.scalars(
            select(m.ApiToken)
            .where(m.ApiToken.user_id == user.id)
            .order_by(m.ApiToken.created_at.desc(), m.ApiToken.id.desc())
        ).all()

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return [
            {
                "name": t.name,
                "status": _token_status(t, now),
                "created_at": iso(t.created_at),
                "last_used_at": iso(t.last_used_at),
                "expires_at": iso(t.expires_at),
                "revoked_at": iso(t.revoked_at),
                "revoked_reason": t.revoked_reason,
            }
            for t in tokens
        ]


def revoke_token(app: App, username: str, token_name: str, *, actor: str = "listener") -> None:
    """Revoke the user's live token named ``token_name`` (NotFound when there is none)."""
    now = _now()
    with app.sessions.begin() as session:
        user = _user(session, username)
        tok = session.scalars(
            select(m.ApiToken).where(
                m.ApiToken.user_id == user.id,
                m.ApiToken.name == token_name,
                m.ApiToken.revoked_at.is_(None),
            )
        ).one_or_none()
        if tok is None:
            raise NotFound(f"{username} has no live token named {token_name!r}")
        tok.revoked_at, tok.revoked_reason = now, f"revoked by {actor}"
        session.add(
            m.Event(
                actor=actor,
                kind="token.revoked",
                at=now,
                data={"username": username, "name": token_name},
            )
        )
    log.info("token.revoked", username=username, name=token_name)


def principal_for_token(app: App, token: str) -> Principal:
    """The user an API token belongs to; InvalidCredentials when unknown, revoked, expired
    or its user is disabled."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise InvalidCredentials("invalid API token")
    with app.sessions.begin() as session:
        row = session.execute(
            select(m.ApiToken, m.User)
            .join(m.User, m.User.id == m.ApiToken.user_id)
            .where(m.ApiToken.token_hash == hash_token(token))
        ).one_or_none()
        if row is None:
            raise InvalidCredentials("invalid API token")
        tok, user = row
        now = _now()
        if _token_status(tok, now) != "active" or not user.active:
            raise InvalidCredentials("invalid API token")
        if tok.last_used_at is None or (now - tok.last_used_at).total_seconds() > 60:
            tok.last_used_at = now
        return _principal(user)


def require_write(principal: Principal) -> None:
    """PermissionDenied for read-only roles (marketing)."""
    if not principal.can_write:
        raise PermissionDenied(f"the {principal.role} role is read-only")


def require_lead(principal: Principal) -> None:
    if not principal.is_lead:
        raise PermissionDenied("only a lead or an admin may do this")
