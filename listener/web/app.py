"""The FastAPI application: middleware, error handling, health, and the routers.

``create_app(app)`` builds it around one :class:`~listener.app.App`; the
pages live in :mod:`listener.web.pages`, the JSON API in :mod:`listener.web.api`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.exc import DataError
from starlette.middleware.sessions import SessionMiddleware

from listener.errors import (
    Conflict,
    ListenerError,
    NotFound,
    PermissionDenied,
    PolicyViolation,
)
from listener.web.actions import Unavailable
from listener.web.security import (
    SESSION_COOKIE,
    CsrfError,
    NotAuthenticated,
    SecurityHeadersMiddleware,
    csrf_guard,
    session_secret,
)

if TYPE_CHECKING:
    from listener.app import App

log = structlog.get_logger(__name__)

HERE = Path(__file__).parent
STATUS_FOR: list[tuple[type[Exception], int]] = [
    (NotAuthenticated, 401),
    (CsrfError, 403),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (PolicyViolation, 422),
    (Unavailable, 503),
    (ListenerError, 400),
]


def status_for(exc: Exception) -> int:
    for cls, code in STATUS_FOR:
        if isinstance(exc, cls):
            return code
    return 500


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or (
        "application/json" in request.headers.get("accept", "")
        and "text/html" not in request.headers.get("accept", "")
    )


def create_app(app: App, *, session_max_age: int = 12 * 3600) -> FastAPI:
    """The web app (pages + /api/v1 + /healthz + /metrics) around ``app``."""
    from listener.web import alerts, api, dashboard, pages

    web = FastAPI(
        title="Listener",
        version="1",
        description="Service recovery queue, case actions and brand dashboard.",
        dependencies=[Depends(csrf_guard)],
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    web.state.listener = app
    web.state.cache = {}
    web.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(app.settings),
        session_cookie=SESSION_COOKIE,
        max_age=session_max_age,
        same_site="lax",
        https_only=False,
    )
    web.add_middleware(SecurityHeadersMiddleware)

    @web.middleware("http")
    async def log_requests(request: Request, call_next: Any) -> Any:
        structlog.contextvars.clear_contextvars()
        start = time.perf_counter()
        response = await call_next(request)
        elapsed = (time.perf_counter() - start) * 1000
        log.debug(
            "web.request",
            method=request.method,
            path=request.url.path,
            status=response.status_code,
            ms=round(elapsed, 1),
        )
        return response

    web.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    pages.ENV.globals["alert_banner"] = alerts.banner
    pages.ENV.globals["svg"] = dashboard.charts.svg
    web.include_router(dashboard.router)
    web.include_router(pages.router)
    web.include_router(alerts.router)
    web.include_router(api.router)
    web.include_router(alerts.api, dependencies=[Depends(api.api_user)])
    web.include_router(dashboard.api, dependencies=[Depends(api.api_user)])

    @web.exception_handler(ListenerError)
    async def listener_error(request: Request, exc: ListenerError) -> Any:
        code = status_for(exc)
        if _wants_json(request):
            headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
            return JSONResponse(
                {"detail": str(exc), "error": type(exc).__name__}, status_code=code, headers=headers
            )
        if isinstance(exc, NotAuthenticated):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        if request.method == "POST" and code < 500 and not isinstance(exc, CsrfError):
            pages.flash(request, "error", str(exc))
            back = request.headers.get("referer") or "/queue"
            return RedirectResponse(pages.safe_next(back, request), status_code=303)
        return pages.error_page(request, code, str(exc))

    @web.exception_handler(DataError)
    async def data_error(request: Request, exc: DataError) -> Any:
        # the database refused a value (out of range, NUL byte): the request was bad
        return JSONResponse({"detail": "a value is out of range or malformed"}, status_code=422)

    @web.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Any:
        if _wants_json(request) or request.method != "POST":
            from fastapi.encoders import jsonable_encoder

            return JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)
        pages.flash(request, "error", "the form was incomplete or malformed")
        back = request.headers.get("referer") or "/queue"
        return RedirectResponse(pages.safe_next(back, request), status_code=303)

    @web.get("/healthz", include_in_schema=False)
    def healthz() -> Any:
        import importlib

        try:
            health = importlib.import_module("listener.health")
        except ImportError:
            health = None
        if health is not None:
            status: dict[str, Any] = health.health_status(app)
            ok = status.get("ok", status.get("status") in ("ok", "healthy", None))
            return JSONResponse(status, status_code=200 if ok else 503)
        try:
            with app.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # the point is to report any DB failure
            return JSONResponse(
                {"status": "unhealthy", "database": str(exc)[:200]}, status_code=503
            )
        return {"status": "ok", "database": "ok"}

    @web.get("/metrics", include_in_schema=False)
    def metrics() -> Any:
        try:
            from listener import metrics as lm
        except ImportError:
            return PlainTextResponse("# listener.metrics is not installed\n")
        from prometheus_client import CONTENT_TYPE_LATEST

        lm.watch_app(app)
        return PlainTextResponse(lm.render(), media_type=CONTENT_TYPE_LATEST)

    @web.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Any:
        return HTMLResponse("", status_code=204)

    return web
