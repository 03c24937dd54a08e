"""The built site, opened page by page in a real browser (Debian's headless Chromium, driven by Playwright).

Fails on a page that logs a console error, asks for anything not served from 127.0.0.1, links to a page or
anchor that does not exist, shows an empty code block or a diagram that did not load; checks that search
finds each lab offline; saves a screenshot of the home page as site/screenshots/home.png.

Every lab page is also looked at as a learner does, on a laptop (1280 px wide) and on a phone (390 px),
with every collapsed block opened, and a screenshot of its first two screens saved under
site/screenshots/<lab>-<width>.png. On each:
- the first task's heading starts within the first two screens;
- no code block is wider than its column, and a block whose lines are longer than it is wide scrolls on
  purpose: the element that holds the lines has `overflow-x: auto` or `scroll` and a reader can reach it
  with the keyboard (`tabindex`), as Material's code blocks do. JSON blocks wrap instead (docs/assets/extra.css);
- every tab label of a tab set shows whole: the labels fit their row, nothing is cut off or scrolled away;
- axe-core (bundled by the PyPI package axe-playwright-python) finds no `serious` or `critical` violation
  (colour contrast on the laptop's view: colours do not change with the width).

`make test` installs Chromium where it can (root with apt-get, as in CI). Elsewhere, without Chromium,
this module is skipped with a notice in pytest's summary (make test runs pytest with -rs), never silently.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import pytest

from workshop import manifest, paths

LABS = manifest.labs()
# A laptop and a phone: (name, width, height) in CSS pixels.
SCREENS = {"laptop": (1280, 800), "phone": (390, 844)}
# The first task's heading must start within this many screens of the top of the page.
SCREENS_BEFORE_TASK_1 = 2
# axe-core's impacts that fail the test; "moderate" and "minor" are reported by axe but allowed.
BLOCKING_IMPACTS = {"serious", "critical"}
# axe-core's options per screen. Colour contrast is nine tenths of axe's time on a lab page (3 to 5 s on 2
# cores) and the colours do not change with the width: it is checked on the laptop's view only.
AXE_OPTIONS = {
    "laptop": {"resultTypes": ["violations"]},
    "phone": {"resultTypes": ["violations"], "rules": {"color-contrast": {"enabled": False}}},
}

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
axe = pytest.importorskip(
    "axe_playwright_python.sync_playwright",
    reason="NOTICE: the site's accessibility check did not run: axe-playwright-python is missing; `make test` installs it.",
)
# A build and a visit of every page, then of every lab page twice with axe, take well over the graders' 6 s.
pytestmark = pytest.mark.timeout(600)


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


def _lab_url(origin: str, lab: manifest.Lab) -> str:
    return f"{origin}/{Path(lab.page).with_suffix('').as_posix()}/"


class Tab:
    """One browser tab that opens page after page, as a reader clicking through the site does, each
    page's findings in a PageReport of its own. (A new tab for each page cost a third more CPU, and each
    lab page was loaded once to visit it and again to look at it on a laptop.)"""

    def __init__(self, browser, origin: str) -> None:
        self.origin = origin
        self.report = PageReport("")
        self.page = browser.new_page()
        self.page.route("**/*", self._route)
        self.page.on("console", lambda message: message.type == "error" and self.report.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.report.errors.append(str(error)))
        self.page.on("response", lambda response: response.status >= 400 and self.report.failed_responses.append(
            f"{response.status} {response.url}"))

    def _route(self, intercepted) -> None:
        if intercepted.request.url.startswith(self.origin + "/"):
            intercepted.continue_()
        else:  # nothing leaves the machine, and every attempt is a finding
            self.report.foreign_requests.append(intercepted.request.url)
            intercepted.abort()

    def open(self, url: str, screen: str) -> PageReport:
        """Load `url` on this screen and wait until its network is quiet; its report fills as it runs."""
        width, height = SCREENS[screen]
        self.report = PageReport(url)
        self.page.set_viewport_size({"width": width, "height": height})
        self.page.goto(url, wait_until="load")
        self.page.wait_for_load_state("networkidle")
        return self.report

    def collect(self) -> PageReport:
        """The links, ids, empty code blocks and broken images of the page open now, into its report."""
        found = self.page.evaluate(
            """() => ({
                // Material's code-annotation markers link to ids its script keeps in tooltips: not navigation.
                links: [...document.querySelectorAll('a[href]:not(.md-annotation__index)')].map(a => a.href),
                ids: [...document.querySelectorAll('[id]')].map(e => e.id),
                emptyCode: [...document.querySelectorAll('pre code')].filter(c => !c.textContent.trim()).length,
                brokenImages: [...document.querySelectorAll('img')]
                    .filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
            })"""
        )
        report = self.report
        report.links, report.ids = found["links"], set(found["ids"])
        report.empty_code_blocks, report.broken_images = found["emptyCode"], found["brokenImages"]
        return report

    def screenshot(self, path: Path, height: int | None = None) -> None:
        """The screen as it opens, or its first `height` pixels of page."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if height is None:
            self.page.screenshot(path=str(path), full_page=False)
        else:
            width = self.page.viewport_size["width"]
            self.page.screenshot(path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": width, "height": height})


@pytest.fixture(scope="module")
def tab(browser, origin) -> Iterator[Tab]:
    opened = Tab(browser, origin)
    yield opened
    opened.page.close()


@pytest.fixture(scope="module")
def reports(tab, origin, site, lab_views) -> dict[str, PageReport]:
    """What each page did in the browser: a lab page's from its look on a laptop (lab_views), every
    other page's from a visit on the same screen."""
    found = {view.report.url: view.report for view in lab_views.values() if view.screen == "laptop"}
    for url in _page_urls(origin, site):
        if url not in found:
            tab.open(url, "laptop")
            if url == f"{origin}/":
                tab.screenshot(site / SCREENSHOTS / "home.png")
            found[url] = tab.collect()
    return found


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


def test_a_screenshot_of_the_home_page_is_saved(reports, site):
    shot = site / SCREENSHOTS / "home.png"
    assert shot.is_file() and shot.stat().st_size > 10_000, f"{paths.relative(shot)} is missing or blank"


# Material's search worker on a query lunr cannot parse: a warning naming it, then the error it meets.
INVALID_QUERY = re.compile(r"^Invalid query: (?P<query>.*) – see ")
FAILED_SEARCH = "Cannot read properties of undefined (reading '_index')"


def without_half_typed_queries(failures: list[str], title: str) -> list[str]:
    """The failures, less those of a query the reader had not finished typing.

    Typed key by key, a title passes through prefixes such as "Order fan-", which lunr refuses (a trailing
    "-" excludes a term not typed yet): the worker warns, fails that search, and answers the next key. A
    busy machine makes that happen, or not. The title itself must search cleanly."""
    left, forgiven = [], 0
    for failure in failures:
        match = INVALID_QUERY.match(failure)
        if match and title.startswith(match["query"]) and match["query"] != title:
            forgiven += 1
        elif forgiven and FAILED_SEARCH in failure:
            forgiven -= 1
        else:
            left.append(failure)
    return left


def test_a_half_typed_query_is_forgiven_but_not_the_title_itself():
    error = f"TypeError: {FAILED_SEARCH}\n    at t.Index.query"
    half = "Invalid query: Order fan- – see https://bit.ly/2s3ChXG"
    assert without_half_typed_queries([half, error], "Order fan-out") == []
    whole = "Invalid query: Order fan-out – see https://bit.ly/2s3ChXG"
    assert without_half_typed_queries([whole, error], "Order fan-out") == [whole, error]
    assert without_half_typed_queries([error], "Order fan-out") == [error]


@dataclass
class SearchBox:
    """The home page's search box, its index loaded once for every lab's search (a reader searches again
    without reloading the page); the search worker's warnings and errors since the last query."""

    tab: Tab
    failures: list[str]


@pytest.fixture(scope="module")
def search(browser, origin) -> Iterator[SearchBox]:
    box = SearchBox(Tab(browser, origin), [])
    page = box.tab.page
    # The search worker reports a query it could not run as a console warning, then shows "No matching documents".
    page.on("console", lambda message: message.type in ("warning", "error") and box.failures.append(message.text))
    box.tab.open(f"{origin}/", "laptop")
    # Material says "Initializing search" until its worker has loaded the index: typing earlier is lost.
    page.wait_for_function(
        "() => !document.querySelector('.md-search-result__meta').textContent.includes('Initializing')",
        timeout=10_000,
    )
    yield box
    page.close()


@pytest.mark.parametrize("lab", manifest.labs(), ids=lambda lab: lab.id)
def test_search_finds_each_lab_offline(search, origin, lab):
    page = search.tab.page
    page.keyboard.press("/")  # Material's shortcut: focus the search box, as a reader would
    page.keyboard.press("ControlOrMeta+A")  # the last lab's query, if any, is typed over
    page.keyboard.press("Backspace")
    page.wait_for_function("() => document.querySelectorAll('.md-search-result__item').length === 0", timeout=10_000)
    search.failures.clear()
    page.keyboard.type(lab.title, delay=20)
    page.wait_for_function(
        "() => document.querySelectorAll('.md-search-result__item').length > 0"
        " || document.querySelector('.md-search-result__meta').textContent.includes('No matching')",
        timeout=10_000,
    )
    page.wait_for_timeout(300)  # the index answers as the reader types: let it catch up with the last key
    typed = page.evaluate("() => document.querySelector('.md-search__input').value")
    results = page.evaluate("() => [...document.querySelectorAll('.md-search-result__item > a')].map(a => a.href)")
    top = [url.split("?")[0] for url in results[:3]]
    assert typed == lab.title, f"the search box holds {typed!r} after typing {lab.title!r}"
    assert not without_half_typed_queries(search.failures, lab.title), f"searching {lab.title!r} failed in the browser: {search.failures[:2]}"
    assert _lab_url(origin, lab) in top, f"searching {lab.title!r} did not list {lab.page} among the first results: {top}"


# --- every lab page, as a learner sees it on a laptop and on a phone --------------------------------------

LAYOUT = """() => {
    // The column is the content area between the sidebars (on a phone, the screen: Material lets code
    // blocks reach its edges there, on purpose).
    const article = document.querySelector('article.md-content__inner');
    const column = document.querySelector('.md-content').getBoundingClientRect();
    const task = document.getElementById('task-1');
    const describe = e => (e.closest('details') ? e.closest('details').querySelector('summary').textContent.trim()
                           : (e.closest('[id]') || {}).id || e.tagName).slice(0, 80);
    const visible = e => e.getClientRects().length > 0;
    const tooWide = [], unscrollable = [], clippedTabs = [];
    for (const pre of [...article.querySelectorAll('pre')].filter(visible)) {
        const box = pre.getBoundingClientRect();
        if (box.left < column.left - 1 || box.right > column.right + 1) {
            tooWide.push(`${describe(pre)}: ${Math.round(box.width)} px in a column of ${Math.round(column.width)} px`);
        }
        for (const holder of [pre, ...pre.querySelectorAll('code')]) {
            if (holder.scrollWidth <= holder.clientWidth + 1) continue;
            const overflow = getComputedStyle(holder).overflowX;
            const scrolls = (overflow === 'auto' || overflow === 'scroll') && holder.tabIndex >= 0;
            if (!scrolls) unscrollable.push(`${describe(pre)}: ${holder.scrollWidth} px of lines in ${holder.clientWidth} px, `
                                            + `overflow-x ${overflow}, tabindex ${holder.getAttribute('tabindex')}`);
        }
    }
    for (const labels of [...article.querySelectorAll('.tabbed-labels')].filter(visible)) {
        const row = labels.getBoundingClientRect();
        const cut = [...labels.querySelectorAll('label')].filter(label => {
            const box = label.getBoundingClientRect();
            return box.left < row.left - 1 || box.right > row.right + 1;
        });
        if (cut.length || labels.scrollWidth > labels.clientWidth + 1) {
            clippedTabs.push(`${describe(labels)}: ${[...labels.querySelectorAll('label')].map(l => l.textContent.trim()).join(' | ')}`
                             + ` need ${labels.scrollWidth} px, have ${labels.clientWidth} px`);
        }
    }
    return {task1Top: task ? task.getBoundingClientRect().top + window.scrollY : null,
            tooWide, unscrollable, clippedTabs};
}"""


@dataclass
class LabView:
    """One lab page at one screen size."""

    page: str
    screen: str
    height: int
    task1_top: float | None
    too_wide: list[str]
    unscrollable: list[str]
    clipped_tabs: list[str]
    blocking: list[str]  # axe-core's serious and critical violations, one line each
    screenshot: Path
    report: PageReport  # what the page did in the browser meanwhile


def _look(tab: Tab, lab: manifest.Lab, screen: str, site: Path) -> LabView:
    height = SCREENS[screen][1]
    report = tab.open(_lab_url(tab.origin, lab), screen)
    screenshot = site / SCREENSHOTS / f"{lab.id}-{screen}.png"
    tab.screenshot(screenshot, height * SCREENS_BEFORE_TASK_1)  # the first two screens, as they open
    top = tab.page.evaluate("() => { const t = document.getElementById('task-1'); "
                            "return t ? t.getBoundingClientRect().top + window.scrollY : null; }")
    # A learner opens what they need: every collapsed block is checked open.
    tab.page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
    found = tab.page.evaluate(LAYOUT)
    tab.collect()
    results = axe.Axe().run(tab.page, options=AXE_OPTIONS[screen]).response
    blocking = [
        f"{violation['id']} ({violation['impact']}): {violation['help']}; at {node['target']}"
        for violation in results["violations"] if violation["impact"] in BLOCKING_IMPACTS
        for node in violation["nodes"][:5]
    ]
    return LabView(lab.page, screen, height, top, found["tooWide"], found["unscrollable"], found["clippedTabs"],
                   blocking, screenshot, report)


@pytest.fixture(scope="module")
def lab_views(tab, site) -> dict[tuple[str, str], LabView]:
    return {(lab.id, screen): _look(tab, lab, screen, site) for lab in LABS for screen in SCREENS}


VIEWS = [pytest.param(lab.id, screen, id=f"{lab.id}-{screen}") for lab in LABS for screen in SCREENS]


@pytest.mark.parametrize(("lab_id", "screen"), VIEWS)
def test_the_first_task_starts_within_two_screens(lab_views, lab_id, screen):
    view = lab_views[lab_id, screen]
    assert view.task1_top is not None, f"docs/{view.page}: no element with id task-1 on the page"
    limit = SCREENS_BEFORE_TASK_1 * view.height
    assert view.task1_top <= limit, (
        f"docs/{view.page} on a {screen} ({SCREENS[screen][0]} px wide): Task 1 starts {view.task1_top:.0f} px down, "
        f"below the first {SCREENS_BEFORE_TASK_1} screens ({limit} px). Shorten the opening: what the lab builds, the "
        f"diagram, the tasks and how to check; see {paths.relative(view.screenshot)}"
    )


@pytest.mark.parametrize(("lab_id", "screen"), VIEWS)
def test_code_blocks_fit_their_column_or_scroll_on_purpose(lab_views, lab_id, screen):
    view = lab_views[lab_id, screen]
    assert not view.too_wide, f"docs/{view.page} on a {screen}: code blocks wider than their column:\n  " + "\n  ".join(view.too_wide)
    assert not view.unscrollable, (
        f"docs/{view.page} on a {screen}: code blocks whose lines run off the edge without a way to scroll to them "
        f"(overflow-x auto and a tabindex), or make them wrap:\n  " + "\n  ".join(view.unscrollable)
    )


@pytest.mark.parametrize(("lab_id", "screen"), VIEWS)
def test_tab_labels_show_whole(lab_views, lab_id, screen):
    view = lab_views[lab_id, screen]
    assert not view.clipped_tabs, (
        f"docs/{view.page} on a {screen}: tab labels cut off (shorten them, or use fewer tabs):\n  "
        + "\n  ".join(view.clipped_tabs)
    )


@pytest.mark.parametrize(("lab_id", "screen"), VIEWS)
def test_axe_finds_no_serious_or_critical_violation(lab_views, lab_id, screen):
    view = lab_views[lab_id, screen]
    assert not view.blocking, (
        f"docs/{view.page} on a {screen}: axe-core's serious or critical findings (rule, what it asks, where):\n  "
        + "\n  ".join(view.blocking)
    )


def test_each_lab_page_has_a_screenshot_at_each_width(lab_views):
    missing = [paths.relative(view.screenshot) for view in lab_views.values()
               if not view.screenshot.is_file() or view.screenshot.stat().st_size < 10_000]
    assert not missing, f"screenshots missing or blank: {missing}"
