"""Render what labs/labs.toml holds into Markdown files that the docs include.

The lab pages show each task's hints and the home page maps the labs; both come from labs/labs.toml, the
one source of truth, so the site, `workshop hint` and the checks never disagree. An MkDocs hook used to
render them while the site was built, but Zensical (Material for MkDocs' successor) reads mkdocs.yml
and runs no MkDocs hooks or plugins. So they are plain files under docs/snippets/generated/, committed,
and pages include them with pymdownx.snippets, which both builders understand:

    --8<-- "docs/snippets/generated/hints/lab01_api_gateway.md:task1"    (one task's hints, on a lab page)
    --8<-- "docs/snippets/generated/labs-table.md"                       (the course map, on docs/index.md)
    --8<-- "docs/snippets/generated/tasks/lab01_api_gateway.md"          (a lab's tasks, linked, atop its page)

Two more kinds are derived from other files the same way, so that a page never copies them by hand:
- figures/<lab>.md: the rows of docs/snippets/bench.md (written by `make bench`) that concern one lab, and
  figures/functions.md, every function's cold and warm start; docs/performance.md shows the whole table;
- events/<lab>/<event>.json: the `body` (SQS) or `Message` (SNS) of each record of an event of labs/, which
  is a string holding JSON, parsed, to show beside the real event.

After editing labs.toml:  .venv/bin/python -m workshop.docs_snippets --write
tests/meta/test_docs_snippets.py fails while the files are stale, and so does `--check`.
"""

from __future__ import annotations

import argparse
import json
import re
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


def task_list(lab: manifest.Lab) -> str:
    """The lab's tasks as a numbered list, each linked to its section (`#task-N`) on the lab's page."""
    return HEADER + "".join(f"{task.number}. [{task.title}](#task-{task.number})\n" for task in lab.tasks)


# --- figures: docs/snippets/bench.md, cut per lab -------------------------------------------------------
BENCH = paths.DOCS / "snippets" / "bench.md"
FIGURES_HEADER = f"<!-- Cut from docs/snippets/bench.md (make bench) by `{WRITE}`. Do not edit. -->\n\n"
# A function's cold and warm start rows: "Lab 1 items_api cold start, clients at import".
START_ROW = re.compile(r"^Lab \d+ \w+ (cold start|warm invocation)\b")


def bench_table(text: str) -> tuple[list[str], list[str], list[str]]:
    """(the lines before the table, its header and rule, its rows) of bench.md."""
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("| "))
    return lines[:start], lines[start : start + 2], [line for line in lines[start + 2 :] if line.startswith("| ")]


def row_concerns(figure: str, lab: manifest.Lab) -> bool:
    """Whether a figure is about this lab: it names the lab ("Grading lab 3", "Lab 3:") or one of its functions."""
    named = re.search(rf"\b[Ll]ab {lab.number}\b", figure) is not None
    return named or any(re.search(rf"\b{re.escape(function)}\b", figure) for function in lab.functions)


def figures(labs: tuple[manifest.Lab, ...]) -> dict[Path, str]:
    """One file per lab that has figures, and one of every function's cold and warm start."""
    if not BENCH.is_file():
        return {}
    before, header, rows = bench_table(BENCH.read_text(encoding="utf-8"))

    def page(selected: list[str]) -> str:
        return FIGURES_HEADER + "\n".join([*before, *header, *selected]) + "\n"

    figure = {row: row.split(" | ", 1)[0].removeprefix("| ") for row in rows}
    files = {}
    for lab in labs:
        if selected := [row for row in rows if row_concerns(figure[row], lab)]:
            files[GENERATED / "figures" / f"{lab.id}.md"] = page(selected)
    if starts := [row for row in rows if START_ROW.match(figure[row])]:
        files[GENERATED / "figures" / "functions.md"] = page(starts)
    return files


# --- events: the JSON a record carries as a string, parsed ------------------------------------------------
def parsed_records(event: object) -> list[dict] | None:
    """Each record's `body` (SQS) or `Sns.Message` (SNS) parsed, with the record's id, or None when the
    event carries no such string. A string that is not JSON (a poison message) stays the string it is."""
    records = event.get("Records") if isinstance(event, dict) else None
    shown = []
    for record in records if isinstance(records, list) else []:
        if isinstance(record.get("body"), str):
            identity, key, text = ("messageId", record.get("messageId")), "body", record["body"]
        elif isinstance(record.get("Sns"), dict) and isinstance(record["Sns"].get("Message"), str):
            identity, key, text = ("MessageId", record["Sns"].get("MessageId")), "Message", record["Sns"]["Message"]
        else:
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        shown.append({identity[0]: identity[1], key: value})
    return shown or None


def parsed_events(labs: tuple[manifest.Lab, ...]) -> dict[Path, str]:
    files = {}
    for lab in labs:
        for source in sorted((paths.ROOT / "labs" / lab.id / "events").glob("*.json")):  # what pages include
            if records := parsed_records(json.loads(source.read_text(encoding="utf-8"))):
                files[GENERATED / "events" / lab.id / source.name] = json.dumps(records, indent=2) + "\n"
    return files


def render(labs: tuple[manifest.Lab, ...]) -> dict[Path, str]:
    """Every generated file and its text."""
    files = {hints_file(lab): hints_page(lab) for lab in labs}
    files |= {GENERATED / "tasks" / f"{lab.id}.md": task_list(lab) for lab in labs}
    files[GENERATED / "labs-table.md"] = labs_table(labs)
    return files | figures(labs) | parsed_events(labs)


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
