"""The built site, opened page by page in a real browser (Debian's headless Chromium, driven by Playwright).

Fails on a page that logs a console error, asks for anything not served from 127.0.0.1, links to a page or
anchor that does not exist, shows an empty code block or a diagram that did not load; checks that search
finds each lab offline; saves screenshots of the home page and of lab 1's page under site/screenshots/.

`make test` installs Chromium where it can (root with apt-get, as in CI). Elsewhere, without Chromium,
this module is skipped with a notice in pytest's summary (make test runs pytest with -rs), never silently.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import pytest

from workshop import manifest, paths

CHROMIUM = os.environ.get("WORKSHOP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# The screenshots stay in the build folder (the `site` fixture's), beside the pages.
SCREENSHOTS = "screenshots"
# Without these, Chromium phones home at start-up (updates, sync, field trials).
QUIET = ["--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
         "--no-first-run", "--disable-gpu"]

if not Path(CHROMIUM).is_file():
    pytest.skip(
        f"NOTICE: the site's browser test did not run: no Chromium at {CHROMIUM}. Install Debian's chromium "
        "(`sudo apt install chromium`) or set WORKSHOP_CHROMIUM to a Chromium binary.",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="NOTICE: the site's browser test did not run: Playwright is missing; `make test` installs it.",
)
# A build and a visit of every page take well over the graders' 6 s.
pytestmark = pytest.mark.timeout(300)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


@dataclass
class PageReport:
    """What one page did in the browser."""

    url: str
    errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    failed_responses: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    empty_code_blocks: int = 0
    broken_images: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def origin(site: Path) -> Iterator[str]:
    """The strictly built site (test_docs' fixture), served on 127.0.0.1."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser(origin):
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=QUIET)
        yield chromium
        chromium.close()


def _page_urls(origin: str, site: Path) -> list[str]:
    pages = sorted(site.rglob("index.html"))
    assert len(pages) > 5, f"the build in {site} has only {len(pages)} pages"
    return [f"{origin}/{page.parent.relative_to(site).as_posix()}/".replace(f"{origin}/./", f"{origin}/") for page in pages]


def _visit(browser, origin: str, url: str, screenshot: Path | None = None) -> PageReport:
    report = PageReport(url)
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    def route(intercepted) -> None:
        if intercepted.request.url.startswith(origin + "/"):
            intercepted.continue_()
        else:  # nothing leaves the machine, and every attempt is a finding
            report.foreign_requests.append(intercepted.request.url)
            intercepted.abort()

    page.route("**/*", route)
    page.on("console", lambda message: message.type == "error" and report.errors.append(message.text))
    page.on("pageerror", lambda error: report.errors.append(str(error)))
    page.on("response", lambda response: response.status >= 400 and report.failed_responses.append(
        f"{response.status} {response.url}"))
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    found = page.evaluate(
        """() => ({
            // Material's code-annotation markers link to ids its script keeps in tooltips: not navigation.
            links: [...document.querySelectorAll('a[href]:not(.md-annotation__index)')].map(a => a.href),
            ids: [...document.querySelectorAll('[id]')].map(e => e.id),
            emptyCode: [...document.querySelectorAll('pre code')].filter(c => !c.textContent.trim()).length,
            brokenImages: [...document.querySelectorAll('img')]
                .filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
        })"""
    )
    report.links, report.ids = found["links"], set(found["ids"])
    report.empty_code_blocks, report.broken_images = found["emptyCode"], found["brokenImages"]
    if screenshot:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=False)
    page.close()
    return report


@pytest.fixture(scope="module")
def reports(browser, origin, site) -> dict[str, PageReport]:
    lab1 = manifest.labs()[0]
    shots = {
        f"{origin}/": site / SCREENSHOTS / "home.png",
        f"{origin}/{Path(lab1.page).with_suffix('').as_posix()}/": site / SCREENSHOTS / f"{lab1.id}.png",
    }
    return {url: _visit(browser, origin, url, shots.get(url)) for url in _page_urls(origin, site)}


# What no page may do, each one test: the PageReport field that collects it, and what it means.
FINDINGS = {
    "errors": "logged errors in the browser console",
    "foreign_requests": "asked for resources beyond 127.0.0.1 (the site must work offline)",
    "failed_responses": "loaded files that are missing",
    "empty_code_blocks": "render empty code blocks (an include that came out empty?)",
    "broken_images": "show diagrams or images that did not load or decode",
}


@pytest.mark.parametrize("finding", FINDINGS)
def test_no_page_has(reports, finding):
    found = {url: getattr(report, finding) for url, report in reports.items() if getattr(report, finding)}
    assert not found, f"pages {FINDINGS[finding]}: {found}"


def test_every_internal_link_and_anchor_resolves(reports, origin, site):
    broken = []
    for url, report in reports.items():
        for link in report.links:
            if not link.startswith(origin + "/"):
                continue  # external links are not followed: the test runs offline
            target, anchor = urldefrag(link)
            if target in reports:
                if anchor and anchor not in reports[target].ids:
                    broken.append(f"{url} -> {link} (no element with id {anchor!r})")
            elif not (site / urlsplit(target).path.lstrip("/")).exists():
                broken.append(f"{url} -> {link} (no such page or file)")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def test_every_lab_page_was_visited(reports):
    visited = {url.split("/labs/", 1)[1].strip("/") for url in reports if "/labs/" in url}
    missing = {lab.id for lab in manifest.labs()} - visited
    assert not missing, f"the browser did not visit the pages of {sorted(missing)}"


def test_screenshots_of_the_home_page_and_a_lab_page_are_saved(reports, site):
    for name in ("home.png", f"{manifest.labs()[0].id}.png"):
        shot = site / SCREENSHOTS / name
        assert shot.is_file() and shot.stat().st_size > 10_000, f"{paths.relative(shot)} is missing or blank"


@pytest.mark.parametrize("lab", manifest.labs(), ids=lambda lab: lab.id)
def test_search_finds_each_lab_offline(browser, origin, lab):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(origin + "/") else r.abort())
    # The search worker reports a query it could not run as a console warning, then shows "No matching documents".
    failures: list[str] = []
    page.on("console", lambda message: message.type in ("warning", "error") and failures.append(message.text))
    page.goto(f"{origin}/", wait_until="networkidle")
    # Material says "Initializing search" until its worker has loaded the index: typing earlier is lost.
    page.wait_for_function(
        "() => !document.querySelector('.md-search-result__meta').textContent.includes('Initializing')",
        timeout=10_000,
    )
    page.keyboard.press("/")  # Material's shortcut: focus the search box, as a reader would
    page.keyboard.type(lab.title, delay=20)
    wanted = f"{origin}/{Path(lab.page).with_suffix('').as_posix()}/"
    page.wait_for_function(
        "() => document.querySelectorAll('.md-search-result__item').length > 0"
        " || document.querySelector('.md-search-result__meta').textContent.includes('No matching')",
        timeout=10_000,
    )
    page.wait_for_timeout(300)  # the index answers as the reader types: let it catch up with the last key
    results = page.evaluate("() => [...document.querySelectorAll('.md-search-result__item > a')].map(a => a.href)")
    page.close()
    top = [url.split("?")[0] for url in results[:3]]
    assert not failures, f"searching {lab.title!r} failed in the browser: {failures[:2]}"
    assert wanted in top, f"searching {lab.title!r} did not list {lab.page} among the first results: {top}"
