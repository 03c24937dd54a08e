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
        style.dim(f"  code: {paths.relative(lab.folder('labs'))}/   page: docs/{lab.page}   grader: {paths.relative(lab.grader)}"),
        "",
    ]
    if result.error:
        return lines + [style.bad("  The grader could not run:")] + indent(result.error, limit=40)
    first_failing = result.next_task
    for task in result.tasks:
        lines += task_lines(task, style, detailed=verbose or task is first_failing)
    return lines


def next_steps(result: LabResult, style: Style) -> list[str]:
    task = result.next_task
    if task is None:
        return []
    lines = [
        "",
        style.bold("Next: ") + f"make task {task.task.number} pass. Look for TODO(task {task.task.number}) in "
        f"{paths.relative(result.lab.folder('labs'))}/, and read \"Task {task.task.number}\" on the lab's page (make docs).",
    ]
    if task.task.hints:
        wrapped = textwrap.wrap(task.task.hints[0], width=96)
        lines += [style.bold("Hint: ") + wrapped[0], *("      " + line for line in wrapped[1:])]
        lines.append(style.dim(f"      More: workshop hint {result.lab.number} {task.task.number} --tier 2"))
    lines.append(style.dim("Save your file and run `make check` again (or `workshop watch` to re-check on every save)."))
    return lines


def render(
    labs: list[Lab], results: list[LabResult], target: str, verbose: bool = False, style: Style | None = None
) -> str:
    """The progress table of `labs`, then the details of the first graded lab that is not done."""
    style = style or Style()
    lines = [style.bold(f"Lambda Patterns Workshop · grading {target}/"), ""]
    lines += progress_table(labs, results, style)
    lines.append("")
    focus = current_lab(results)
    if focus is None:
        if len(results) == len(labs):
            lines.append(style.good("Every lab passes. Well done! Deploy your work with the steps in docs/deploy.md."))
        else:
            done = ", ".join(str(result.lab.number) for result in results)
            lines.append(style.good(f"Lab {done} passes."))
        return "\n".join(lines)
    lines += lab_details(focus, style, verbose)
    lines += next_steps(focus, style)
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
                            {"name": test.name, "status": status(test.passed), "message": test.message or None}
                            for test in t.tests
                        ],
                    }
                    for t in r.tasks
                ],
            }
            for r in results
        ],
    }
