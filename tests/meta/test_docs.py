"""The site builds strictly, shows real files instead of pasted code, and fetches nothing from the internet."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

from workshop import paths

PAGES = sorted(paths.DOCS.rglob("*.md"))
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>\w*)[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)
CODE_LANGUAGES = {"python", "py", "yaml", "yml", "json", "toml"}
SNIPPET = re.compile(r'^\s*--8<-- "(?P<path>[^"]+)"\s*$')
EXTERNAL = re.compile(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"')


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=paths.ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stderr[-4000:]}"
    warnings = [line for line in build.stderr.splitlines() if "WARNING" in line]
    assert not warnings, "mkdocs warned:\n" + "\n".join(warnings)
    return out


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
    from workshop import manifest

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
