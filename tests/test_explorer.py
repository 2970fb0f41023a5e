"""The Explorer at ``/``: served with its assets and nothing from elsewhere, and, in a real
browser (Debian's chromium driven by Playwright), it shows a pair from the public API."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
from conftest import SEED, load_into, make_client
from fastapi.testclient import TestClient

from app import explorer, migrate
from app.db import engine_for
from app.main import create_app
from app.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "explorer.png"
PAGES = ["/", "/explorer"]
ASSETS = [f"{explorer.ASSETS_URL}/{name}" for name in explorer.ASSETS]
# The one absolute URL the page's code may name: SVG's XML namespace, an identifier that is
# never fetched.
SVG_NS = "http://www.w3.org/2000/svg"
ABSOLUTE_URL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s"'<>)]*""")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TIMEOUT_MS = 5_000

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"the browser test needs Debian's chromium at {CHROMIUM} "
    "(`make test` installs it with apt when it can: see the Makefile's `browser` target)",
)


@pytest.fixture(scope="module")
def explorer_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A seeded SQLite database of this module's own (read only)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('explorer') / 'explorer.db'}"
    migrate.upgrade(url)
    load_into(url, SEED)
    yield url
    engine_for.cache_clear()


@pytest.fixture(scope="module")
def client(explorer_url: str) -> Iterator[TestClient]:
    with make_client(explorer_url) as test_client:
        yield test_client


# ---- The page and its assets, without a browser ------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_the_page_is_html_with_a_strict_policy(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert '<form id="pair"' in response.text
    assert "/explorer/assets/explorer.js" in response.text
    assert "<script>" not in response.text  # no inline script: the policy would block it


@pytest.mark.parametrize(
    ("name", "media_type"),
    [("explorer.js", "text/javascript"), ("explorer.css", "text/css")],
)
def test_assets_are_served_with_their_type(client: TestClient, name: str, media_type: str) -> None:
    response = client.get(f"{explorer.ASSETS_URL}/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.headers["etag"]
    assert len(response.content) > 1_000


def test_only_the_listed_assets_are_served(client: TestClient) -> None:
    for name in ("index.html", "..%2Fexplorer.py", "nope.js"):
        response = client.get(f"{explorer.ASSETS_URL}/{name}")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")


def test_nothing_names_a_url_outside_the_app(client: TestClient) -> None:
    for path in [*PAGES, *ASSETS]:
        text = client.get(path).text
        outside = set(ABSOLUTE_URL.findall(text)) - {SVG_NS}
        assert not outside, f"{path} names {outside}"
    page = client.get("/").text
    for url in re.findall(r"""(?:src|href)="([^"]*)\"""", page):
        assert url.startswith(("/", "#", "data:")), url


def test_every_url_of_the_page_carries_the_mount_prefix(explorer_url: str) -> None:
    app = create_app(Settings(database_url=explorer_url, rate_limit_enabled=False))
    with TestClient(app, root_path="/dyad") as prefixed:
        page = prefixed.get("/").text
    assert 'data-root="/dyad"' in page
    assert 'href="/dyad/explorer/assets/explorer.css"' in page
    assert 'src="/dyad/explorer/assets/explorer.js"' in page


# ---- In a browser -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_url(explorer_url: str) -> Iterator[str]:
    """The app served by uvicorn in a thread, on a free loopback port."""
    app = create_app(Settings(database_url=explorer_url, rate_limit_enabled=False))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="none", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


class Visit:
    """A browser tab that records every request it makes and every error it logs."""

    def __init__(self, browser: Any, width: int, height: int) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )

    def check(self) -> None:
        """Nothing went to another host, and the page logged no error (CSP violations
        included)."""
        assert self.requests
        outside = [
            url
            for url in self.requests
            if urlsplit(url).scheme != "data" and urlsplit(url).hostname not in LOOPBACK
        ]
        assert not outside, f"the page asked other hosts: {outside}"
        assert not self.errors, self.errors

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def desktop(browser: Any) -> Iterator[Visit]:
    visit = Visit(browser, 1200, 900)
    yield visit
    visit.close()


@needs_chromium
def test_the_pair_view(desktop: Visit, live_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = desktop.page
    page.goto(f"{live_url}/?a=KZ&b=AZ")
    expect(page.locator("h2")).to_have_text("Kazakhstan and Azerbaijan")
    expect(page.locator("#pick-a")).to_have_value("Kazakhstan (KZ)")

    timeline = page.locator("#timeline ol.timeline")
    visit = timeline.locator('li[data-type="visit"][data-date="2022-08-24"]')
    expect(visit).to_contain_text("Official visit of Kazakhstan to Azerbaijan (Baku)")
    expect(visit.locator("time")).to_have_text("2022-08-24")
    treaty = timeline.locator('li[data-type="treaty"][data-date="2005"]')
    expect(treaty).to_contain_text("Treaty on Strategic Partnership and Allied Relations")
    dates = timeline.locator("> li").evaluate_all("items => items.map(i => i.dataset.date)")
    assert dates == sorted(dates, key=lambda d: d[:4]) and "1992" in dates

    bar = page.locator('#trade svg.chart .bar[data-year="2021"]')
    expect(bar).to_have_count(1)
    assert bar.locator("rect").bounding_box()["height"] > 100
    expect(page.locator("#trade svg.chart")).to_contain_text("Value (USD)")
    expect(page.locator("#trade svg.chart")).to_contain_text("Year")
    expect(page.locator("#organizations")).to_contain_text("TURKSOY")
    expect(page.locator("#routes")).to_contain_text("≈ 6,000,000 t/year")

    # Hover: the quote of the source shows beside the fact.
    quote = "Kazakh President Kassym-Jomart Tokayev arrived in Baku on an official visit"
    tip = visit.locator(".tip").first
    expect(tip).to_be_hidden()
    visit.locator(".cite > a").first.hover()
    expect(tip).to_be_visible()
    expect(tip).to_contain_text(quote)
    expect(tip).to_contain_text("Azernews")

    # Keyboard: focus shows the quote too, Tab moves to the next one, Escape hides it.
    marks = treaty.locator(".cite > a")
    page.mouse.move(0, 0)
    marks.nth(0).focus()
    expect(treaty.locator(".tip").nth(0)).to_contain_text("signed in 2005 in Baku")
    expect(treaty.locator(".tip").nth(0)).to_be_visible()
    page.keyboard.press("Tab")
    expect(marks.nth(1)).to_be_focused()
    expect(treaty.locator(".tip").nth(1)).to_be_visible()
    expect(treaty.locator(".tip").nth(0)).to_be_hidden()
    page.keyboard.press("Escape")
    expect(treaty.locator(".tip").nth(1)).to_be_hidden()
    # ... and the mark links to its source.
    marks.nth(1).press("Enter")
    expect(page.locator("#src-azernews-2022-08-24-tokayev-baku")).to_be_in_viewport()

    page.goto(f"{live_url}/?a=KZ&b=AZ")  # afresh, for a screenshot with no focus ring
    page.locator("#trade .cite > a").first.hover()
    expect(page.locator("#trade .tip").first).to_be_visible()
    shot = tmp_path / "explorer.png"
    page.screenshot(path=str(shot), full_page=True)
    desktop.check()
    SCREENSHOT.parent.mkdir(exist_ok=True)
    shutil.copyfile(shot, SCREENSHOT)  # only once everything above has passed


@needs_chromium
def test_pickers_and_the_url(desktop: Visit, live_url: str) -> None:
    from playwright.sync_api import expect

    page = desktop.page
    page.goto(f"{live_url}/?a=kaz&b=031")  # any ISO form; the URL is rewritten to alpha-2
    expect(page.locator("h2")).to_have_text("Kazakhstan and Azerbaijan")
    assert page.url == f"{live_url}/?a=KZ&b=AZ"

    picker = page.locator("#pick-b")
    picker.fill("")
    picker.press_sequentially("fra")
    options = page.locator("#pick-b-list [role=option]")
    expect(options.first).to_contain_text("France")
    expect(picker).to_have_attribute("aria-expanded", "true")
    picker.press("Enter")
    expect(page.locator("#result")).to_contain_text("No sourced facts tie Kazakhstan and France")
    assert page.url == f"{live_url}/?a=KZ&b=FR"

    page.locator("#pick-a").fill("")
    page.locator("#pick-a").press_sequentially("250")  # a numeric code
    expect(page.locator("#pick-a-list [role=option]").first).to_contain_text("France")
    page.locator("#pick-a").press("Escape")
    expect(page.locator("#pick-a-list")).to_be_hidden()

    page.go_back()  # the previous pair comes back
    expect(page.locator("h2")).to_have_text("Kazakhstan and Azerbaijan")
    expect(page.locator("#pick-b")).to_have_value("Azerbaijan (AZ)")
    desktop.check()


@needs_chromium
def test_a_narrow_screen_scrolls_only_down(browser: Any, live_url: str) -> None:
    from playwright.sync_api import expect

    phone = Visit(browser, 360, 800)
    try:
        page = phone.page
        page.goto(f"{live_url}/?a=KZ&b=AZ")
        expect(page.locator('#trade .bar[data-year="2021"]')).to_have_count(1)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        chart = page.locator("#trade svg.chart").bounding_box()
        assert chart["x"] >= 0 and chart["x"] + chart["width"] <= 360
        page.locator("#trade .cite > a").first.hover()
        expect(page.locator("#trade .tip").first).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        phone.check()
    finally:
        phone.close()
