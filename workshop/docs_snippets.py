"""Render what labs/labs.toml holds into Markdown files that the docs include.

The lab pages show each task's hints and the home page maps the labs; both come from labs/labs.toml, the
one source of truth, so the site, `workshop hint` and the checks never disagree. An MkDocs hook used to
render them while the site was built, but Zensical (Material for MkDocs' successor) reads mkdocs.yml
and runs no MkDocs hooks or plugins. So they are plain files under docs/snippets/generated/, committed,
and pages include them with pymdownx.snippets, which both builders understand:

    --8<-- "docs/snippets/generated/hints/lab01_api_gateway.md:task1"    (one task's hints, on a lab page)
    --8<-- "docs/snippets/generated/labs-table.md"                       (the course map, on docs/index.md)

After editing labs.toml:  .venv/bin/python -m workshop.docs_snippets --write
tests/meta/test_docs_snippets.py fails while the files are stale, and so does `--check`.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from workshop import manifest, paths

GENERATED = paths.DOCS / "snippets" / "generated"
TIERS = ("a nudge", "a pointer", "the exact API")
WRITE = ".venv/bin/python -m workshop.docs_snippets --write"
HEADER = f"<!-- Generated from labs/labs.toml by `{WRITE}`. Do not edit. -->\n\n"


def hints_file(lab: manifest.Lab) -> Path:
    return GENERATED / "hints" / f"{lab.id}.md"


def hints_include(lab: manifest.Lab, number: int) -> str:
    """The line a lab page writes under `### Task N` to show that task's hints."""
    if not 1 <= number <= len(lab.tasks):
        raise ValueError(f"docs/{lab.page}: {lab.id} has tasks 1 to {len(lab.tasks)}, not task {number}")
    return f'--8<-- "{paths.relative(hints_file(lab))}:task{number}"'


def hint_blocks(lab: manifest.Lab, task: manifest.Task) -> str:
    """One collapsed block per hint, from a nudge to the exact API, so a learner opens only what they need."""
    if not task.hints:
        raise ValueError(f"labs/labs.toml: {lab.id}, task {task.number} has no hints; give it {len(TIERS)}")
    blocks = []
    for tier, hint in enumerate(task.hints, start=1):
        title = f"Hint {tier}: {TIERS[tier - 1]}" if tier <= len(TIERS) else f"Hint {tier}"
        blocks.append(f'??? tip "{title}"\n{textwrap.indent(hint, "    ")}\n')
    # The hints written for one check's failure: the one `make check` shows when that check fails.
    for name, hint in task.checks:
        check = name.removeprefix(f"test_task{task.number}_").replace("_", " ")
        blocks.append(f'??? tip "If the check “{check}” fails"\n{textwrap.indent(hint, "    ")}\n')
    return "\n".join(blocks)


def hints_page(lab: manifest.Lab) -> str:
    """Every task's hints, each in a named section (`taskN`) that a page includes on its own."""
    sections = [
        f"<!-- --8<-- [start:task{task.number}] -->\n{hint_blocks(lab, task)}<!-- --8<-- [end:task{task.number}] -->\n"
        for task in lab.tasks
    ]
    return HEADER + "\n".join(sections)


def labs_table(labs: tuple[manifest.Lab, ...]) -> str:
    """The course map, one row per lab, with links relative to docs/index.md."""
    rows = [
        f"| [{lab.number} · {lab.title}]({lab.page}) | {lab.pattern} | {lab.practice} | {lab.minutes} min |"
        for lab in labs
    ]
    return HEADER + "\n".join(["| Lab | Pattern | Best practice | Time |", "| --- | --- | --- | --- |", *rows]) + "\n"


def render(labs: tuple[manifest.Lab, ...]) -> dict[Path, str]:
    """Every generated file and its text."""
    files = {hints_file(lab): hints_page(lab) for lab in labs}
    files[GENERATED / "labs-table.md"] = labs_table(labs)
    return files


def problems(files: dict[Path, str]) -> list[str]:
    """What differs between `files` and what is on disk under docs/snippets/generated/."""
    found = []
    for path, text in files.items():
        if not path.is_file():
            found.append(f"missing: {paths.relative(path)}")
        elif path.read_text(encoding="utf-8") != text:
            found.append(f"stale: {paths.relative(path)}")
    extra = sorted(path for path in GENERATED.rglob("*") if path.is_file() and path not in files)
    found += [f"extra (nothing generates it): {paths.relative(path)}" for path in extra]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workshop.docs_snippets", description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="write the files under docs/snippets/generated/")
    action.add_argument("--check", action="store_true", help="exit 1 if a file is stale, missing or extra")
    arguments = parser.parse_args(argv)
    files = render(manifest.labs())
    if arguments.check:
        found = problems(files)
        for problem in found:
            print(problem)
        if found:
            print(f"Regenerate with: {WRITE}")
        return 1 if found else 0
    for path in (path for path in GENERATED.rglob("*") if path.is_file() and path not in files):
        path.unlink()
    changed = [path for path, text in files.items() if not path.is_file() or path.read_text(encoding="utf-8") != text]
    for path in changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path], encoding="utf-8")
        print(f"wrote {paths.relative(path)}")
    if not changed:
        print(f"{paths.relative(GENERATED)}/ is up to date with labs/labs.toml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
