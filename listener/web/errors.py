"""Listener's errors as HTTP status codes (the pages and the API answer the same)."""

from __future__ import annotations

from listener.errors import Conflict, ListenerError, NotFound, PermissionDenied, PolicyViolation
from listener.web.security import CsrfError, NotAuthenticated

STATUS_FOR: list[tuple[type[Exception], int]] = [
    (NotAuthenticated, 401),
    (CsrfError, 403),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (PolicyViolation, 422),
    (ListenerError, 400),
]


def status_for(exc: Exception) -> int:
    for cls, code in STATUS_FOR:
        if isinstance(exc, cls):
            return code
    return 500
