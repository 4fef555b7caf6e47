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

from listener.errors import ListenerError, StaleDraft
from listener.redact import mask_text
from listener.web.errors import STATUS_FOR, status_for
from listener.web.security import (
    SESSION_COOKIE,
    CsrfError,
    NotAuthenticated,
    SecurityHeadersMiddleware,
    csrf_guard,
    current_user,
    session_secret,
)

__all__ = ["STATUS_FOR", "create_app", "status_for"]

if TYPE_CHECKING:
    from listener.app import App

log = structlog.get_logger(__name__)

HERE = Path(__file__).parent


def _wants_json(request: Request) -> bool:
    if request.url.path.endswith("/presence"):  # the case page's ping: never a form
        return True
    return request.url.path.startswith("/api/") or (
        "application/json" in request.headers.get("accept", "")
        and "text/html" not in request.headers.get("accept", "")
    )


def create_app(app: App, *, session_max_age: int = 12 * 3600) -> FastAPI:
    """The web app (pages + /api/v1 + /healthz + /metrics) around ``app``."""
    from listener.web import alerts, api, dashboard, docs, pages

    web = FastAPI(
        title="Listener",
        version="1",
        description="Service recovery queue, case actions and brand dashboard.",
        dependencies=[Depends(csrf_guard)],
        docs_url=None,  # served below from packaged assets: the CSP allows no CDN
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
        https_only=app.settings.web.secure_cookies,
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
    docs.mount(web)
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
        message = mask_text(str(exc))
        if _wants_json(request):
            headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
            body: dict[str, Any] = {"detail": message, "error": type(exc).__name__}
            if isinstance(exc, StaleDraft):
                body["current"] = exc.current()
            return JSONResponse(body, status_code=code, headers=headers)
        if isinstance(exc, NotAuthenticated):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        if request.method == "POST" and code < 500 and not isinstance(exc, CsrfError):
            pages.flash(request, "error", message)
            back = request.headers.get("referer") or "/queue"
            return RedirectResponse(pages.safe_next(back, request), status_code=303)
        return pages.error_page(request, code, message)

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

    def restricted(request: Request) -> JSONResponse | None:
        """401 unless ``web.public_health`` or the request is signed in (session or token)."""
        if app.settings.web.public_health:
            return None
        try:
            current_user(request)
        except NotAuthenticated:
            return JSONResponse(
                {"detail": "sign in or send an API token (web.public_health is off)"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return None

    @web.get("/healthz", include_in_schema=False)
    def healthz(request: Request) -> Any:
        import importlib

        refused = restricted(request)
        if refused is not None:
            return refused

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
                {"status": "unhealthy", "database": mask_text(str(exc))[:200]}, status_code=503
            )
        return {"status": "ok", "database": "ok"}

    @web.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Any:
        refused = restricted(request)
        if refused is not None:
            return refused
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
