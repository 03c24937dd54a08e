"""The site builds the same under Zensical, Material for MkDocs' successor, from the same mkdocs.yml.

Material for MkDocs reaches its end of life in 2027; Zensical reads mkdocs.yml, implements the search
plugin and the pymdownx extensions natively, and runs no MkDocs hooks or other plugins (which is why
the hints and the labs table are generated files: tests/meta/test_docs_snippets.py). This builds the
site with Zensical, strictly, and compares it page by page with the MkDocs build.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workshop import paths

# Building twice and comparing takes seconds.
pytestmark = pytest.mark.timeout(300)

ZENSICAL = Path(sys.executable).with_name("zensical")
# What a page is made of, counted in both builds: code blocks, collapsed blocks (hints, solutions),
# tooltips, images, and the headings' anchors.
PARTS = {"code blocks": r"<pre\b", "collapsed blocks": r"<details\b", "tooltips": r"<abbr\b", "images": r"<img\b"}
HEADING = re.compile(r'<h[23][^>]*\bid="([^"]+)"')

if not ZENSICAL.is_file():
    pytest.skip(f"NOTICE: Zensical is not installed ({ZENSICAL}); `make test` installs it.", allow_module_level=True)


@pytest.fixture(scope="module")
def zensical_site(tmp_path_factory) -> Path:
    """The site built by Zensical in a copy of what the pages include (it writes a .cache/ where it runs)."""
    project = tmp_path_factory.mktemp("zensical")
    ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints")
    for folder in ("docs", "labs", "solutions"):
        shutil.copytree(paths.ROOT / folder, project / folder, ignore=ignore)
    shutil.copy(paths.ROOT / "mkdocs.yml", project / "mkdocs.yml")
    build = subprocess.run([str(ZENSICAL), "build", "--strict"], cwd=project, capture_output=True, text=True, timeout=240)
    assert build.returncode == 0, f"zensical build --strict failed:\n{build.stdout[-3000:]}{build.stderr[-3000:]}"
    return project / "site"


def pages(site: Path) -> set[str]:
    return {page.relative_to(site).as_posix() for page in site.rglob("index.html")}


def test_zensical_builds_every_page_mkdocs_builds(site, zensical_site):
    missing = pages(site) - pages(zensical_site)
    assert not missing, f"Zensical does not build {sorted(missing)}"


@pytest.mark.parametrize("part", PARTS)
def test_every_page_has_the_same_parts_under_zensical(site, zensical_site, part):
    differing = {}
    for page in sorted(pages(site)):
        counts = [len(re.findall(PARTS[part], (built / page).read_text(encoding="utf-8"))) for built in (site, zensical_site)]
        if counts[0] != counts[1]:
            differing[page] = f"MkDocs {counts[0]}, Zensical {counts[1]}"
    assert not differing, f"{part} differ between the MkDocs and Zensical builds: {differing}"


def test_every_page_has_the_same_headings_under_zensical(site, zensical_site):
    differing = {}
    for page in sorted(pages(site)):
        mkdocs, zensical = (HEADING.findall((built / page).read_text(encoding="utf-8")) for built in (site, zensical_site))
        if mkdocs != zensical:
            differing[page] = sorted(set(mkdocs) ^ set(zensical))[:5]
    assert not differing, f"headings (and so anchors) differ between the builds: {differing}"
