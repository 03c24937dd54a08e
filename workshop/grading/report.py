"""What `workshop check` prints: a progress view of every lab, then what to do next; or the same as JSON.

The JSON follows the spirit of exercism's test-runner results (a status per test, with its message),
grouped by lab and task; docs/grading.md documents it.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap

from workshop import paths
from workshop.grading.runner import LabResult, TaskResult
from workshop.manifest import Lab

JSON_VERSION = 1
# Where `make docs` serves the site: messages link to the page a learner reads, not its Markdown source.
SITE = "http://127.0.0.1:8000"
# What to try a finished lab's functions with, by what invokes them (the Events' Type in its template).
TRY_IT = {
    "Api": "serve its API with `workshop start-api {n}` and call it with curl",
    "S3": "upload a file with `workshop upload {n} FILE`",
    "SQS": "send it messages with `workshop send {n}`",
    "SNS": "publish to its topic with `workshop publish {n}`",
    "Schedule": "move its clock with `workshop tick {n} 2026-11-27T14:00:00Z`",
}
BAR_WIDTH = 20
MESSAGE_LINES = 24


class Style:
    """ANSI colours on a terminal that wants them (NO_COLOR and FORCE_COLOR are honoured)."""

    def __init__(self, enabled: bool | None = None) -> None:
        if enabled is None:
            enabled = "FORCE_COLOR" in os.environ or (sys.stdout.isatty() and "NO_COLOR" not in os.environ)
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def good(self, text: str) -> str:
        return self._wrap("32", text)

    def bad(self, text: str) -> str:
        return self._wrap("31", text)

    def next(self, text: str) -> str:
        return self._wrap("1;33", text)


def bar(done: int, total: int) -> str:
    filled = round(BAR_WIDTH * done / total) if total else 0
    return "█" * filled + "░" * (BAR_WIDTH - filled)


def current_lab(results: list[LabResult]) -> LabResult | None:
    """The first lab, in course order, that is not done."""
    return next((result for result in results if not result.done), None)


def progress_table(labs: list[Lab], results: list[LabResult], style: Style) -> list[str]:
    """One row per lab of the course; a lab this run did not grade says so instead of guessing."""
    graded = {result.lab.id: result for result in results}
    current = current_lab(results)
    width = max(len(lab.pattern) for lab in labs)
    lines = [style.bold(f"    {'Lab':<{width + 3}}  Tasks  Progress")]
    for lab in labs:
        result, total = graded.get(lab.id), len(lab.tasks)
        if result is None:
            row = f"{lab.number:>2} {lab.pattern:<{width}}   -/{total:<2}  {' ' * BAR_WIDTH}  {style.dim('not checked')}"
            lines.append(f"    {row}")
            continue
        marker = "▶" if result is current else " "
        state = {"done": style.good, "error": style.bad}.get(result.state, style.dim)(result.state)
        row = f"{lab.number:>2} {lab.pattern:<{width}}  {result.passed_count:>2}/{total:<2}  {bar(result.passed_count, total)}  {state}"
        lines.append(f"  {marker} {style.next(row) if result is current else row}")
    return lines


def indent(text: str, prefix: str = "      ", limit: int = MESSAGE_LINES) -> list[str]:
    width = max(60, shutil.get_terminal_size((100, 24)).columns - 1)
    lines = [
        wrapped
        for line in text.splitlines() or [""]
        for wrapped in textwrap.wrap(
            line,
            width=width - len(prefix),
            subsequent_indent=" " * (len(line) - len(line.lstrip()) + 2),
            break_on_hyphens=False,
        )
        or [""]
    ]
    shown = [prefix + line for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"{prefix}... ({len(lines) - limit} more lines: run `pytest tests/test_<lab>.py` for all of it)")
    return shown


def task_lines(task: TaskResult, style: Style, detailed: bool) -> list[str]:
    mark = style.good("✔") if task.passed else style.bad("✘")
    passed = sum(t.passed for t in task.tests)
    lines = [f"  {mark} Task {task.task.number}  {task.task.title}  {style.dim(f'({passed}/{len(task.tests)} checks)')}"]
    failure = task.first_failure
    if detailed and failure is not None:
        lines += indent(failure.message)
    return lines


def lab_details(result: LabResult, style: Style, verbose: bool) -> list[str]:
    lab = result.lab
    lines = [
        style.bold(f"Lab {lab.number} · {lab.title}: {lab.pattern}, {lab.practice.lower()}"),
        style.dim(f"  code: {paths.relative(lab.folder('labs'))}/   page: {page_url(lab)}   grader: {paths.relative(lab.grader)}"),
        "",
    ]
    if result.error:
        return lines + [style.bad("  The grader could not run:")] + indent(result.error, limit=40)
    first_failing = result.next_task
    for task in result.tasks:
        lines += task_lines(task, style, detailed=verbose or task is first_failing)
    return lines


def next_steps(result: LabResult, style: Style, watching: bool = False) -> list[str]:
    task = result.next_task
    if task is None:
        return []
    lines = [
        "",
        style.bold("Next: ") + f"make task {task.task.number} pass. Look for TODO(task {task.task.number}) in "
        f"{paths.relative(result.lab.folder('labs'))}/, and read {page_url(result.lab, task.task.number)} "
        "(`make docs` serves the site).",
    ]
    # The hint written for the check that failed answers its question; the task's first tier otherwise.
    hint, more = task.check_hint, f"workshop hint {result.lab.number} {task.task.number}"
    if hint is None and task.task.hints:
        hint, more = task.task.hints[0], f"{more} --tier 2"
    if hint:
        wrapped = textwrap.wrap(hint, width=96)
        lines += [style.bold("Hint: ") + wrapped[0], *("      " + line for line in wrapped[1:])]
        lines.append(style.dim(f"      More: {more}"))
    if not watching:
        lines.append(style.dim("Save your file and run `make check` again (or `workshop watch` to re-check on every save)."))
    return lines


def page_url(lab: Lab, task: int | None = None) -> str:
    """The address of a lab's page, or of one task's section, on the site `make docs` serves."""
    return f"{SITE}/{lab.page.removesuffix('.md')}/" + (f"#task-{task}" if task else "")


def after_passing(result: LabResult, labs: list[Lab], style: Style) -> list[str]:
    """What a learner does once a lab passes: compare, try it, go on."""
    from workshop import templates

    lab = result.lab
    lines = ["", style.bold("Next: ") + f"compare your code with the reference: `workshop solution {lab.number}`."]
    try:
        types = set().union(*templates.event_types(templates.loaded(lab.folder("labs") / "template.yaml")).values())
    except Exception:  # noqa: BLE001 (a suggestion only: a template that does not load suggests nothing)
        types = set()
    # A lab without functions of its own (lab 6 tunes the others') is tried in the labs it tunes.
    ways = [TRY_IT[kind].format(n=lab.number) for kind in TRY_IT if kind in types and lab.functions]
    notebook = lab.folder("labs") / "explore.ipynb"
    if notebook.is_file():
        ways.append(f"open {paths.relative(notebook)} in Jupyter")
    if ways:
        lines.append(f"      Try it: {'; '.join(ways)}.")
    following = next((other for other in labs if other.number == lab.number + 1), None)
    if following is not None:
        lines.append(f"      Then lab {following.number}, {following.title}: `workshop check {following.number}`.")
    return lines


def render(
    labs: list[Lab],
    results: list[LabResult],
    target: str,
    verbose: bool = False,
    style: Style | None = None,
    focus: Lab | None = None,
) -> str:
    """The progress table of `labs`, then the details of `focus` (default: the first graded lab that is not
    done). With `focus` (watch), the lab being watched is the one shown, whatever the others' state."""
    style = style or Style()
    lines = [style.bold(f"Lambda Patterns Workshop · grading {target}/"), ""]
    lines += progress_table(labs, results, style)
    lines.append("")
    if focus is not None:
        shown = next(result for result in results if result.lab.id == focus.id)
        if shown.done:
            lines.append(style.good(f"Lab {focus.number} passes."))
            return "\n".join(lines + after_passing(shown, labs, style))
        lines += lab_details(shown, style, verbose)
        return "\n".join(lines + next_steps(shown, style, watching=True))
    current = current_lab(results)
    if current is None:
        if len(results) == len(labs):
            lines.append(style.good("Every lab passes. Well done! Deploy your work with the steps in docs/deploy.md."))
        else:
            done = ", ".join(str(result.lab.number) for result in results)
            lines.append(style.good(f"Lab {done} passes."))
            if len(results) == 1 and target == "labs":
                lines += after_passing(results[0], labs, style)
        return "\n".join(lines)
    lines += lab_details(current, style, verbose)
    lines += next_steps(current, style)
    return "\n".join(lines)


def as_json(results: list[LabResult], target: str) -> dict:
    def status(passed: bool) -> str:
        return "pass" if passed else "fail"

    return {
        "version": JSON_VERSION,
        "target": target,
        # Of the labs graded in this run only: a summary never claims more than it checked.
        "status": "error" if any(r.error for r in results) else status(all(r.done for r in results)),
        "labs": [
            {
                "id": r.lab.id,
                "number": r.lab.number,
                "title": r.lab.title,
                "status": "error" if r.error else status(r.done),
                "message": r.error or None,
                "tasks_passed": r.passed_count,
                "tasks_total": len(r.tasks),
                "tasks": [
                    {
                        "task_id": t.task.number,
                        "title": t.task.title,
                        "status": status(t.passed),
                        "tests": [
                            {
                                "name": test.name,
                                "status": status(test.passed),
                                "message": test.message or None,
                                "hint": None if test.passed else t.task.hint_for(test.name),
                            }
                            for test in t.tests
                        ],
                    }
                    for t in r.tasks
                ],
            }
            for r in results
        ],
    }
