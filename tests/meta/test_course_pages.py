"""The course-wide pages agree with labs/labs.toml: the total time they state, the labs table, the site map."""

from __future__ import annotations

import re

import pytest

from workshop import manifest, paths

HOME = paths.DOCS / "index.md"
INSTRUCTOR = paths.DOCS / "instructor.md"
LABS_TABLE = '--8<-- "docs/snippets/generated/labs-table.md"'


def total_time() -> str:
    minutes = sum(lab.minutes for lab in manifest.labs())
    return f"{minutes // 60} h {minutes % 60:02d} min"


@pytest.mark.parametrize("page", [HOME, INSTRUCTOR], ids=lambda p: paths.relative(p))
def test_the_total_time_of_the_labs_is_the_sum_of_their_minutes(page):
    text = page.read_text(encoding="utf-8")
    stated = re.findall(r"\b\d+ h \d\d min\b", text)
    assert stated, f"{paths.relative(page)} no longer states the labs' total time (as `5 h 25 min`)"
    assert set(stated) == {total_time()}, (
        f"{paths.relative(page)} says the labs take {', '.join(sorted(set(stated)))}; labs/labs.toml adds up to "
        f"{total_time()}: update the page"
    )


def test_the_instructor_guide_times_the_labs_from_the_manifest():
    assert LABS_TABLE in INSTRUCTOR.read_text(encoding="utf-8"), (
        f"{paths.relative(INSTRUCTOR)} should include the generated labs table ({LABS_TABLE}), not copy its minutes"
    )


def test_the_home_page_maps_every_page_of_the_nav():
    nav = (paths.ROOT / "mkdocs.yml").read_text(encoding="utf-8").split("\nnav:\n", 1)[1].split("\n\n", 1)[0]
    pages = [page for page in re.findall(r"(\S+\.md)\s*$", nav, re.M) if page != "index.md"]
    home = HOME.read_text(encoding="utf-8")
    unmapped = [page for page in pages if f"({page})" not in home and f"({page}#" not in home]
    labs = [page for page in unmapped if page.startswith("labs/")]
    assert not [page for page in unmapped if page not in labs], (
        f"{paths.relative(HOME)}'s map of the site does not link {[p for p in unmapped if p not in labs]}"
    )
