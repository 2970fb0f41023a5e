"""Interactive API documentation (Swagger UI, ReDoc), served with its assets and no network.

FastAPI's own pages load their scripts, styles and favicon from public CDNs; these load
them from ``/static``, the files vendored in ``app/static`` (see its README), so the docs
work on a machine with no internet access and name no outside host.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_URL = "/static"
SWAGGER_JS = f"{STATIC_URL}/swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS = f"{STATIC_URL}/swagger-ui/swagger-ui.css"
REDOC_JS = f"{STATIC_URL}/redoc/redoc.standalone.js"
FAVICON = f"{STATIC_URL}/swagger-ui/favicon-32x32.png"

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"

router = APIRouter(include_in_schema=False)


def root_path(request: Request) -> str:
    """The prefix a proxy mounts the app under: every URL a page names must carry it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get(DOCS_URL, response_class=HTMLResponse)
def get_swagger_ui(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root = root_path(request)
    return get_swagger_ui_html(
        openapi_url=root + str(app.openapi_url),
        title=f"{app.title} - Swagger UI",
        swagger_js_url=root + SWAGGER_JS,
        swagger_css_url=root + SWAGGER_CSS,
        swagger_favicon_url=root + FAVICON,
        oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
        init_oauth=app.swagger_ui_init_oauth,
        # Swagger UI's default validator is a public web service; never call out to it.
        swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
    )


@router.get(OAUTH2_REDIRECT_URL, response_class=HTMLResponse)
def get_swagger_ui_oauth2_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(REDOC_URL, response_class=HTMLResponse)
def get_redoc(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root = root_path(request)
    return get_redoc_html(
        openapi_url=root + str(app.openapi_url),
        title=f"{app.title} - ReDoc",
        redoc_js_url=root + REDOC_JS,
        redoc_favicon_url=root + FAVICON,
        with_google_fonts=False,
    )


def install_docs(app: FastAPI) -> None:
    """Serve /docs, /docs/oauth2-redirect and /redoc, and the assets they load at /static."""
    if app.openapi_url is None:  # no schema, nothing to document
        return
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)
