"""Every lab page has the same sections in the same order, and agrees with labs/labs.toml.

A learner who has done lab 1 knows where to look on every other page. The page's `### Task N` headings
must be the manifest's tasks; test_integrity.py checks that the starter's `TODO(task N)` numbers are the
manifest's tasks too, so together a TODO always points at a task on the page.
"""

from __future__ import annotations

import re

import pytest

from workshop import docs_snippets, manifest, paths

LABS = manifest.labs()
# The `##` sections of a lab page, in order. "The best practice: " is followed by the lab's practice.
# A learner first sees what they build (the diagram), the tasks and how to check; the concepts come after
# the tasks, for when a task needs them (tests/meta/test_page_layout.py measures the opening).
SECTIONS = (
    "The pattern",
    "Your starting point",
    "Tasks",
    "How it works",
    "The best practice: ",
    "Run the grader",
    "Explore in the notebook",
    "The solution",
    "Run it locally",
    "Deploy this lab, and delete it",
    "Going further",
)
FENCE = re.compile(r"^\s*(```|~~~)")
INCLUDE = re.compile(r'^\s*--8<-- "(?P<path>[^"]+)"\s*$', re.M)


def split(text: str, level: str) -> list[tuple[str, str]]:
    """(heading, text until the next heading of this level) for every `level` ('##', '###') heading, ignoring
    lines in fenced code blocks (a `## ` there is not a heading)."""
    parts: list[tuple[str, list[str]]] = []
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        if not fenced and line.startswith(level + " "):
            parts.append((line[len(level) + 1 :].strip(), []))
        elif parts:
            parts[-1][1].append(line)
    return [(heading, "\n".join(body)) for heading, body in parts]


def canonical(heading: str) -> str:
    """The canonical section a `##` heading is ("The best practice: " whatever the practice), or itself."""
    prefix = next(section for section in SECTIONS if section.endswith(": "))
    return prefix if heading.startswith(prefix) and heading != prefix else heading


def read(lab: manifest.Lab) -> dict[str, str]:
    """The page's `##` sections, by canonical name."""
    page = (paths.DOCS / lab.page).read_text(encoding="utf-8")
    return {canonical(heading): body for heading, body in split(page, "##")}


def includes(text: str, prefix: str) -> list[str]:
    return [match["path"] for match in INCLUDE.finditer(text) if match["path"].startswith(prefix)]


def uses_powertools(lab: manifest.Lab) -> bool:
    """The reference imports Powertools, or its template adds Powertools' layer."""
    files = (path for path in lab.folder("solutions").rglob("*") if path.suffix in (".py", ".yaml"))
    texts = (path.read_text(encoding="utf-8") for path in files)
    return any("aws_lambda_powertools" in text or "AWSLambdaPowertools" in text for text in texts)


@pytest.fixture(params=LABS, ids=[lab.id for lab in LABS])
def lab(request) -> manifest.Lab:
    return request.param


def test_the_page_has_every_section_in_order(lab):
    found = [heading for heading, _ in split((paths.DOCS / lab.page).read_text(encoding="utf-8"), "##")]
    assert [canonical(heading) for heading in found] == list(SECTIONS), (
        f"docs/{lab.page}: its ## sections are\n  {found}\nEvery lab page has exactly these, in this order:\n"
        f"  {list(SECTIONS)}\n(\"The best practice: \" is followed by the practice.) Rename, add or move sections; "
        f"anything else goes in a ### under one of them."
    )


def test_the_pattern_shows_its_diagram(lab):
    diagram = re.search(r"!\[[^\]]+\]\(\.\./assets/[^)]+\)", read(lab).get("The pattern", ""))
    assert diagram is not None, (
        f"docs/{lab.page}: '## The pattern' must show the pattern's diagram: "
        f"![what it shows](../assets/<lab>-pattern.svg)"
    )


def test_the_tasks_are_the_manifest_tasks_each_followed_by_its_hints(lab):
    tasks = split(read(lab).get("Tasks", ""), "###")
    found = [heading for heading, _ in tasks]
    # Each with its own anchor, the address `make check` prints (http://127.0.0.1:8000/labs/<lab>/#task-N).
    expected = [f"Task {task.number}: {task.title} {{ #task-{task.number} }}" for task in lab.tasks]
    assert found == expected, (
        f"docs/{lab.page}: the ### headings under '## Tasks' are\n  {found}\nlabs/labs.toml has\n  {expected}\n"
        f"Write one '### Task N: <title> {{ #task-N }}' per task of labs/labs.toml, in its order, with its exact title."
    )
    for task, (heading, body) in zip(lab.tasks, tasks, strict=True):
        last = next((line for line in reversed(body.splitlines()) if line.strip()), "")
        include = docs_snippets.hints_include(lab, task.number)
        assert last == include, (
            f"docs/{lab.page}: '### {heading}' must end with its hints, on a line of its own:\n  {include}\n"
            f"Its last line is:\n  {last}"
        )


def collapsed(text: str, kind: str) -> str:
    """The bodies (indented lines) of the `??? kind` blocks in `text`."""
    bodies, inside = [], False
    for line in text.splitlines():
        if line.startswith(f"??? {kind} "):
            inside = True
        elif inside and (not line.strip() or line.startswith("    ")):
            bodies.append(line)
        else:
            inside = False
    return "\n".join(bodies)


def test_the_page_includes_the_real_starter_and_solution(lab):
    sections = read(lab)
    starter = includes(sections.get("Your starting point", ""), f"labs/{lab.id}/")
    functions = [f"labs/{lab.id}/{function}/app.py" for function in lab.functions]
    missing = [path for path in functions if path not in starter]
    assert starter and not missing, (
        f"docs/{lab.page}: '## Your starting point' must include the real starter files "
        f'(--8<-- "labs/{lab.id}/..."); it does not include {missing or "any"}'
    )
    solution = includes(collapsed(sections.get("The solution", ""), "success"), f"solutions/{lab.id}/")
    counterparts = [path.replace("labs/", "solutions/", 1) for path in starter]
    missing = [path for path in counterparts if path not in solution]
    assert not missing, (
        f"docs/{lab.page}: '## The solution' must include, each in a collapsed '??? success' block, the solution "
        f"of every starter file that '## Your starting point' shows; it does not include {missing}"
    )


def test_run_the_grader_shows_a_real_run_on_the_starter(lab):
    snippet = f"docs/snippets/check/{lab.id}.txt"
    block = f'```text\n--8<-- "{snippet}"\n```'
    shown = block in read(lab).get("Run the grader", "")
    assert shown, (
        f"docs/{lab.page}: '## Run the grader' must show the real output of `workshop check {lab.number}` "
        f"on the untouched starter:\n{block}"
    )
    # test_cli.py checks that the output is current; this only checks that it is this lab's.
    ours = f"Lab {lab.number} · {lab.title}" in (paths.ROOT / snippet).read_text(encoding="utf-8")
    assert ours, (
        f"{snippet} is not the output of `workshop check {lab.number}`: regenerate it on untouched labs/ with "
        f"`NO_COLOR=1 COLUMNS=100 .venv/bin/workshop check {lab.number} > {snippet}`"
    )


def test_going_further_links_to_the_aws_and_powertools_docs(lab):
    further = read(lab).get("Going further", "")
    aws = "](https://docs.aws.amazon.com/" in further
    assert aws, (
        f"docs/{lab.page}: '## Going further' needs at least one link to the AWS documentation (docs.aws.amazon.com)"
    )
    powertools = "](https://docs.powertools.aws.dev/" in further
    if uses_powertools(lab):
        assert powertools, (
            f"docs/{lab.page}: solutions/{lab.id} uses Powertools, so '## Going further' needs at least one link "
            f"to its documentation (docs.powertools.aws.dev)"
        )


def test_the_page_opens_with_its_tasks_linked_and_its_starter_collapsed(lab):
    opening = read(lab).get("Your starting point", "")
    tasks = f'--8<-- "{paths.relative(docs_snippets.GENERATED / "tasks" / f"{lab.id}.md")}"'
    assert tasks in opening.splitlines(), (
        f"docs/{lab.page}: '## Your starting point' must list the tasks, each linked to its section, with the "
        f"list generated from labs/labs.toml, on a line of its own:\n  {tasks}"
    )
    shown_open = [path for path in includes(opening, f"labs/{lab.id}/")
                  if path not in includes(collapsed(opening, "example"), f"labs/{lab.id}/")]
    assert not shown_open, (
        f"docs/{lab.page}: '## Your starting point' shows {shown_open} open; a learner reads the tasks first, so "
        f"the starter files go in a collapsed '??? example' block"
    )


def test_the_page_shows_its_own_figures_not_the_whole_table(lab):
    page = (paths.DOCS / lab.page).read_text(encoding="utf-8")
    assert '--8<-- "docs/snippets/bench.md"' not in page, (
        f"docs/{lab.page} includes the whole benchmark table; include this lab's rows, "
        f'docs/snippets/generated/figures/{lab.id}.md (docs/performance.md shows them all)'
    )
