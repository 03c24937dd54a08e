"""The site builds strictly, shows real files instead of pasted code, and fetches nothing from the internet."""

from __future__ import annotations

import re
import functools
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest

from workshop import docs_snippets, manifest, paths

PAGES = sorted(paths.DOCS.rglob("*.md"))
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>\w*)[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)
CODE_LANGUAGES = {"python", "py", "yaml", "yml", "json", "toml"}
SNIPPET = re.compile(r'^\s*--8<-- "(?P<path>[^"]+)"\s*$')
EXTERNAL = re.compile(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"')


def test_the_site_builds_strictly_with_every_page(site):
    for page in PAGES:
        if page.is_relative_to(paths.DOCS / "snippets"):
            continue
        built = site / page.relative_to(paths.DOCS).with_suffix("") / "index.html"
        if page.name == "index.md":
            built = site / page.relative_to(paths.DOCS).parent / "index.html"
        assert built.is_file(), f"{paths.relative(page)} was not built"


def test_the_site_fetches_nothing_from_the_internet(site):
    fetched = {url for html in site.rglob("*.html") for url in EXTERNAL.findall(html.read_text(encoding="utf-8"))}
    assert not fetched, f"the site loads scripts or styles from the internet: {sorted(fetched)}"


def test_the_home_page_maps_every_lab(site):
    home = unescape(re.sub(r"<[^>]+>", "", (site / "index.html").read_text(encoding="utf-8")))
    for lab in manifest.labs():
        assert f"{lab.number} · {lab.title}" in home and lab.practice in home, f"the home page does not map {lab.id}"


def test_lab_pages_include_the_real_files_and_show_the_hints(site):
    html = (site / "labs" / "lab01_api_gateway" / "index.html").read_text(encoding="utf-8")
    page = unescape(re.sub(r"<[^>]+>", "", html))  # the text a reader sees, without highlighting spans
    assert "items_table().scan()" in page, "the starter code is not included"
    assert "scan_all(table)" in page, "the solution is not included"
    assert "Hint 3: the exact API" in page, "the hints are not rendered"
    assert "Grading lab 1" in page, "the measured figures are not included"
    lab3 = unescape(re.sub(r"<[^>]+>", "", (site / "labs" / "lab03_sqs_processing" / "index.html").read_text(encoding="utf-8")))
    assert "put_item one by one vs batch writer" in lab3, "lab 3's page does not show the measured write ratio"


def test_each_task_has_the_anchor_make_check_links_to(site):
    """`make check` prints http://127.0.0.1:8000/labs/<lab>/#task-N (report.page_url): it must land there."""
    from workshop.grading import report

    for lab in manifest.labs():
        for task in lab.tasks:
            url = report.page_url(lab, task.number)
            page, anchor = url.removeprefix(report.SITE + "/").split("#")
            html = (site / page / "index.html").read_text(encoding="utf-8")
            assert f'id="{anchor}"' in html, f"{url}: no element with id {anchor!r} on the built page"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: paths.relative(p))
def test_code_blocks_include_real_files_instead_of_pasting_code(page):
    for block in FENCE.finditer(page.read_text(encoding="utf-8")):
        if block["lang"] not in CODE_LANGUAGES:
            continue  # console sessions and the like
        lines = [line for line in block["body"].splitlines() if line.strip()]
        pasted = [line for line in lines if not SNIPPET.match(line)]
        assert lines and not pasted, (
            f"{paths.relative(page)}: a {block['lang']} block pastes code; include the real file instead "
            f'(--8<-- "path/to/file"):\n' + "\n".join(pasted[:5])
        )
        for line in lines:
            included = paths.ROOT / SNIPPET.match(line)["path"]
            assert included.is_file(), f"{paths.relative(page)} includes {included}, which does not exist"


# --- what the code blocks show is exercised by a test ----------------------------------------------

TESTS_TEXT = "\n".join(p.read_text(encoding="utf-8") for p in paths.TESTS.rglob("*.py"))
MANIFEST_TEXT = paths.MANIFEST.read_text(encoding="utf-8")
# A console block written on a page holds commands only: what a command prints comes from a file
# under docs/snippets/ that a test regenerates or compares. These are the programs the pages run.
COMMANDS = {"make", "aws", "sam", "curl", "printf", "sleep", "git", "cd", "sudo", "source", "python3", "diff",
            "export", "output()", "$"}


def _included(page: Path) -> Iterator[tuple[str, str]]:
    """(language, repo path) of every file a page's fenced blocks include."""
    for block in FENCE.finditer(page.read_text(encoding="utf-8")):
        for line in block["body"].splitlines():
            if match := SNIPPET.match(line):
                yield block["lang"], match["path"].split(":")[0]


@functools.cache
def _snippets_checked() -> frozenset[str]:
    """The files of docs/snippets/ that a test regenerates, compares or runs, as those tests declare them."""
    import test_cli  # tests/meta is on sys.path (pytest's default prepend import mode)
    import test_invoke
    import test_local_docs

    generated = {paths.relative(path) for path in docs_snippets.render(manifest.labs())}
    return frozenset(set(test_cli.SHOWN) | set(test_invoke.SHOWN) | test_local_docs.CHECKED | generated)


def _exercised(path: str) -> bool:
    """Does a test run or load this file? Graders import every function and read every template; an
    event or a lab file must be named by a test, a snippet must be one a test regenerates or compares."""
    for lab in manifest.labs():
        for tree in ("labs", "solutions"):
            if path.startswith(f"{tree}/{lab.id}/"):
                inner = path.removeprefix(f"{tree}/{lab.id}/")
                if inner == "template.yaml" or inner in {f"{function}/app.py" for function in lab.functions}:
                    return True
                name = Path(inner).stem if inner.startswith("events/") else inner
                return name in TESTS_TEXT or inner in MANIFEST_TEXT
    if path.startswith("docs/snippets/"):
        return path in _snippets_checked()
    return path in TESTS_TEXT


@pytest.mark.parametrize("page", PAGES, ids=lambda p: paths.relative(p))
def test_every_file_a_page_shows_is_run_or_loaded_by_a_test(page):
    unexercised = sorted({path for _, path in _included(page) if not _exercised(path)})
    assert not unexercised, (
        f"{paths.relative(page)} shows files that no test runs, loads or compares, so they can go stale: "
        f"{unexercised}. Generate them in a test (see tests/meta/test_local_docs.py) or include a tested file."
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: paths.relative(p))
def test_console_blocks_show_commands_and_take_their_output_from_real_runs(page):
    for block in FENCE.finditer(page.read_text(encoding="utf-8")):
        if block["lang"] != "console":
            continue
        continued = False
        for line in block["body"].splitlines():
            text = line.strip()
            if not text or SNIPPET.match(line) or text.startswith("#") or continued:
                continued = text.endswith("\\")
                continue
            program = text.split()[0]
            assert program in COMMANDS or program.startswith(".venv/bin/"), (
                f"{paths.relative(page)}: {text!r} in a console block is not a command. Show a command's output "
                "from a file a test regenerates (```text --8<-- \"docs/snippets/...\"```); if it is a command, "
                "add its program to COMMANDS in this test."
            )
            continued = text.endswith("\\")


# --- diagrams: hand-written SVG, committed, rendered by the browser itself -------------------------
# We chose committed SVG over a diagram renderer: the SVG text is its own source (reviewable in a
# diff), the browser draws it with nothing to load, and the browser test checks that every one decodes.

DIAGRAMS = sorted((paths.DOCS / "assets").glob("*.svg"))
SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("lab", manifest.labs(), ids=lambda lab: lab.id)
def test_every_lab_page_opens_with_its_pattern_diagram(lab):
    page = (paths.DOCS / lab.page).read_text(encoding="utf-8")
    pattern = page.split("## The pattern", 1)[-1].split("\n## ", 1)[0]
    images = re.findall(r"!\[([^\]]+)\]\(([^)]+\.svg)\)", pattern)
    assert images, f"docs/{lab.page}: `## The pattern` shows no diagram (![description](../assets/<lab>-pattern.svg))"
    for _, source in images:
        assert (paths.DOCS / Path(lab.page).parent / source).resolve() in DIAGRAMS, f"docs/{lab.page}: {source} is not in docs/assets/"


@pytest.mark.parametrize("diagram", DIAGRAMS, ids=lambda p: p.name)
def test_diagrams_are_self_contained_accessible_svg(diagram):
    import xml.etree.ElementTree as ElementTree

    text = diagram.read_text(encoding="utf-8")
    root = ElementTree.fromstring(text)  # well-formed, or the browser shows a broken image
    assert root.tag == f"{SVG}svg" and root.get("viewBox"), f"{diagram.name}: not an <svg> with a viewBox"
    assert (root.findtext(f"{SVG}title") or "").strip() and (root.findtext(f"{SVG}desc") or "").strip(), (
        f"{diagram.name}: a screen reader needs its <title> and <desc>"
    )
    loads = [e.tag for e in root.iter() if e.tag in (f"{SVG}script", f"{SVG}image", f"{SVG}foreignObject")]
    external = re.findall(r"(?:href|src)\s*=\s*\"(?!#)[^\"]+\"|@import|url\((?!#)", text)
    assert not loads and not external, f"{diagram.name} loads something from elsewhere: {loads + external}"
