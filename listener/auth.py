"""People and access: users, roles, password hashing (argon2) and API tokens.

Use-cases shared by the CLI (``listener users …``), the web app and the JSON
API.  Passwords are stored only as argon2id hashes; API tokens only as their
SHA-256 hash (a token is 32 random bytes, so a fast hash is enough and lets
the lookup be an indexed equality).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from listener import models as m
from listener.clock import utcnow as _now
from listener.errors import Conflict, ListenerError, NotFound, PermissionDenied

if TYPE_CHECKING:
    from listener.app import App

log = structlog.get_logger(__name__)

ROLES = ("agent", "lead", "marketing", "admin")
#: roles that may act on cases (marketing is read-only)
WRITE_ROLES = frozenset({"agent", "lead", "admin"})
#: roles that may assign cases to others and approve above the agent tier
LEAD_ROLES = frozenset({"lead", "admin"})
TOKEN_PREFIX = "lst_"
MIN_PASSWORD = 8
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-@]{0,99}$")


class InvalidCredentials(ListenerError):
    """Wrong username or password, an inactive user, or an unknown token."""


@dataclass(frozen=True)
class Principal:
    """The signed-in person as the web layer sees them."""

    id: int
    username: str
    role: str
    display_name: str | None = None

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
        id=user.id, username=user.username, role=user.role, display_name=user.display_name
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


def set_password(app: App, username: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ListenerError(f"the password must have at least {MIN_PASSWORD} characters")
    with app.sessions.begin() as session:
        user = session.scalars(select(m.User).where(m.User.username == username)).one_or_none()
        if user is None:
            raise NotFound(f"no user {username!r}")
        user.password_hash = hash_password(password)


def authenticate(app: App, username: str, password: str) -> Principal:
    """The user if the password matches; InvalidCredentials otherwise (same message)."""
    with app.sessions.begin() as session:
        user = session.scalars(select(m.User).where(m.User.username == username)).one_or_none()
        if user is None:
            verify_password(_dummy_hash(), password)  # same work either way
            raise InvalidCredentials("wrong username or password")
        if not user.active or not verify_password(user.password_hash, password):
            raise InvalidCredentials("wrong username or password")
        if _hasher().check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        user.last_login_at = _now()
        return _principal(user)


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(hash_password(secrets.token_hex(8)))
    return _DUMMY[0]


def get_principal(app: App, user_id: int) -> Principal | None:
    """The active user with this id, or None."""
    with app.sessions() as session:
        user = session.get(m.User, user_id)
        if user is None or not user.active:
            return None
        return _principal(user)


def mint_token(app: App, username: str, name: str = "cli") -> str:
    """A new API token for ``username``; the plain token is returned once and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with app.sessions.begin() as session:
        user = session.scalars(select(m.User).where(m.User.username == username)).one_or_none()
        if user is None:
            raise NotFound(f"no user {username!r}")
        session.add(
            m.ApiToken(user_id=user.id, name=name, token_hash=hash_token(token), created_at=_now())
        )
        session.add(m.Event(actor=username, kind="token.created", data={"name": name}))
    log.info("token.created", username=username, name=name)
    return token


def principal_for_token(app: App, token: str) -> Principal:
    """The user an API token belongs to; InvalidCredentials when unknown or revoked."""
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
        if tok.revoked_at is not None or not user.active:
            raise InvalidCredentials("invalid API token")
        now = _now()
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
