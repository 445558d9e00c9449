"""`/docs`: Swagger UI served from this process, so it works offline.

FastAPI's default `/docs` page loads Swagger UI's script and stylesheet from a CDN and stays
blank without the network. The `fastapi-offline` package (MIT) ships the Swagger UI bundle,
its CSS and a favicon; the files are read from its package directory (located with
`importlib.util.find_spec`, never imported) and served under `/docs-assets/`. Without that
package `/docs` says how to install it and links the raw schema, still with no external URL.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

ASSETS = {"swagger-ui-bundle.js": "application/javascript", "swagger-ui.css": "text/css",
          "favicon.png": "image/png"}
PREFIX = "/docs-assets"


def assets_dir() -> Path | None:
    """fastapi-offline's static/ directory, when the package is installed and holds every file."""
    spec = importlib.util.find_spec("fastapi_offline")
    for location in (spec.submodule_search_locations or []) if spec else []:
        static = Path(location) / "static"
        if all((static / name).is_file() for name in ASSETS):
            return static
    return None


def add_docs_routes(app: FastAPI) -> None:
    """GET /docs (Swagger UI), /docs/oauth2-redirect and /docs-assets/{file}."""
    static = assets_dir()

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if static is None:
            return HTMLResponse(MISSING, status_code=200)
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title=f"{app.title} - Swagger UI",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js", swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon.png",
            # the default validator badge would call validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None})

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(PREFIX + "/{name}", include_in_schema=False)
    async def asset(name: str):
        if static is None or name not in ASSETS:  # a fixed list: no path from the client reaches the disk
            return HTMLResponse("not found", status_code=404)
        return FileResponse(static / name, media_type=ASSETS[name],
                            headers={"Cache-Control": "public, max-age=86400"})


MISSING = """<!doctype html><html><head><title>tunesmith serve - API</title></head><body>
<h1>tunesmith serve</h1><p>The interactive page needs the Swagger UI files of the
<code>fastapi-offline</code> package: <code>pip install fastapi-offline</code>, then restart.</p>
<p>The schema itself: <a href="/openapi.json">/openapi.json</a>.</p></body></html>"""
