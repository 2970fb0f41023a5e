"""/docs and /redoc work offline: every asset they name is served by the app itself."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from app import docs

PAGES = [docs.DOCS_URL, docs.REDOC_URL]
HOSTS_OF_CDNS = ("jsdelivr", "unpkg", "cdnjs", "googleapis", "gstatic", "tiangolo", "cdn.")
# What each kind of asset must answer with: a content type and a size below which it is
# surely not the real file (an error page, an empty file, a Git LFS pointer).
EXPECTED = {
    ".js": ("javascript", 100_000),
    ".css": ("text/css", 10_000),
    ".png": ("image/png", 100),
    ".json": ("application/json", 500),
    "": ("text/html", 500),
}
QUOTED = re.compile(r"""(['"])(.*?)\1""")


class References(HTMLParser):
    """Every URL a page names: src=, href= and spec-url= values, and quoted paths or URLs
    in its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href", "spec-url") and v is not None]
        self.in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script:
            quoted = (m.group(2) for m in QUOTED.finditer(data))
            self.urls += [s for s in quoted if s.startswith("/") or "://" in s]


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    parser.close()
    return parser.urls


def assert_served(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200, url
    content_type, least = EXPECTED[Path(urlsplit(url).path).suffix]
    assert content_type in response.headers["content-type"], url
    assert len(response.content) >= least, url


@pytest.mark.parametrize("page", PAGES)
def test_page_is_html(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Dyad" in response.text


@pytest.mark.parametrize("page", PAGES)
def test_page_names_no_outside_host(client: TestClient, page: str) -> None:
    html = client.get(page).text
    urls = references(html)
    assert urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, url
        assert url.startswith("/") and not url.startswith("//"), url
    # Belt and braces over the raw text: no absolute URL anywhere, no CDN by name.
    assert not re.search(r"(?i)\b[a-z][a-z0-9+.-]*://|['\"(=]\s*//", html)
    assert not [cdn for cdn in HOSTS_OF_CDNS if cdn in html.lower()]


@pytest.mark.parametrize("page", PAGES)
def test_page_assets_are_served(client: TestClient, page: str) -> None:
    urls = references(client.get(page).text)
    assert "/openapi.json" in urls
    for url in urls:
        assert_served(client, url)


def test_pages_load_the_vendored_libraries(client: TestClient) -> None:
    swagger, redoc = (references(client.get(page).text) for page in PAGES)
    assert {docs.SWAGGER_JS, docs.SWAGGER_CSS, docs.FAVICON} <= set(swagger)
    assert {docs.REDOC_JS, docs.FAVICON} <= set(redoc)
    assert "SwaggerUIBundle" in client.get(docs.SWAGGER_JS).text
    assert "redoc" in client.get(docs.REDOC_JS).text


def test_swagger_ui_calls_no_online_validator(client: TestClient) -> None:
    assert '"validatorUrl": null' in client.get(docs.DOCS_URL).text


def test_oauth2_redirect(client: TestClient) -> None:
    assert docs.OAUTH2_REDIRECT_URL in references(client.get(docs.DOCS_URL).text)
    response = client.get(docs.OAUTH2_REDIRECT_URL)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swaggerUIRedirectOauth2" in response.text
    assert not re.search(r"(?i)https?://", response.text)


def test_docs_are_not_in_the_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    documentation = (*PAGES, docs.OAUTH2_REDIRECT_URL, docs.STATIC_URL)
    assert not [p for p in paths if p.startswith(documentation)]


def test_behind_a_prefix_every_url_carries_it(client: TestClient) -> None:
    prefixed = TestClient(client.app, root_path="/dyad")
    for page in PAGES:
        urls = references(prefixed.get(page).text)
        assert urls
        assert all(url.startswith("/dyad/") for url in urls), urls
        for url in urls:
            assert_served(prefixed, url)


@pytest.mark.parametrize(
    "path", ["/static/nope.js", "/static/../main.py", "/static/%2e%2e/main.py", "/static/"]
)
def test_static_serves_only_its_files(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_vendored_assets_keep_their_licences() -> None:
    for folder in (docs.STATIC_DIR / "swagger-ui", docs.STATIC_DIR / "redoc"):
        assert (folder / "LICENSE").is_file(), folder
        for script in folder.glob("*.js"):
            assert script.with_name(f"{script.name}.LICENSE.txt").is_file(), script
