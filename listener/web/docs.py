"""``/api/docs``: Swagger UI for the JSON API, served offline under the app's CSP.

FastAPI's own docs page loads Swagger UI from a CDN and starts it with an
inline script; the Content-Security-Policy (``script-src 'self'``) blocks
both, so the page was blank.  Here the Swagger UI assets come from the
``fastapi-offline`` package (a pinned Swagger UI build, no network), the page
is a plain template, and the start-up code is ``/static/api-docs.js``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

if TYPE_CHECKING:
    from fastapi import FastAPI

DOCS_PATH = "/api/docs"
ASSETS_PATH = "/api/docs/assets"

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Listener API · Swagger UI</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" href="{assets}/favicon.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script>
</body>
</html>
"""


def assets_dir() -> Path:
    """Swagger UI's files, as the ``fastapi-offline`` package ships them."""
    return Path(str(files("fastapi_offline") / "static"))


def mount(web: FastAPI) -> None:
    """Serve the docs page and its assets on ``web``."""
    web.mount(ASSETS_PATH, StaticFiles(directory=assets_dir()), name="api-docs-assets")
    html = PAGE.format(assets=ASSETS_PATH, openapi=web.openapi_url or "/api/v1/openapi.json")

    @web.get(DOCS_PATH, include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(html)
