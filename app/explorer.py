"""The Explorer: a page at ``/`` that shows any pair's dossier, built on the public API only.

The page is a small HTML shell rendered here (only the mount prefix is filled in) plus one
script and one stylesheet from ``app/static/explorer``; the script reads ``/v1/...`` like any
other client. Nothing is loaded from another host, so the page sends a strict
Content-Security-Policy.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.docs import root_path
from app.problems import NotFound

ASSETS_DIR = Path(__file__).resolve().parent / "static" / "explorer"
ASSETS_URL = "/explorer/assets"
# The only files served from ASSETS_DIR, with their media types: no path ever reaches the disk.
ASSETS = {
    "explorer.js": "text/javascript; charset=utf-8",
    "explorer.css": "text/css; charset=utf-8",
}
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
}
# Read once: the files ship with the package and do not change while it runs.
TEMPLATE = (ASSETS_DIR / "index.html").read_text(encoding="utf-8")
CONTENTS = {name: (ASSETS_DIR / name).read_bytes() for name in ASSETS}

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
@router.get("/explorer", response_class=HTMLResponse)
def get_explorer(request: Request) -> HTMLResponse:
    page = TEMPLATE.replace("{{root}}", html.escape(root_path(request), quote=True))
    return HTMLResponse(page, headers=PAGE_HEADERS)


@router.get(ASSETS_URL + "/{name}")
def get_explorer_asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound(f"No explorer asset {name!r}. The assets are: {', '.join(sorted(ASSETS))}.")
    return Response(CONTENTS[name], media_type=media_type)
