"""Run the graders of some labs in this process and collect one result per test, grouped by task."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field

import pytest

from workshop import manifest, paths
from workshop.grading.plugin import grader_lab, task_number
from workshop.manifest import Lab, Task


@dataclass
class TestResult:
    name: str
    passed: bool
    message: str = ""


@dataclass
class TaskResult:
    task: Task
    tests: list[TestResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.tests) and all(test.passed for test in self.tests)

    @property
    def first_failure(self) -> TestResult | None:
        return next((test for test in self.tests if not test.passed), None)


@dataclass
class LabResult:
    lab: Lab
    tasks: list[TaskResult]
    error: str = ""  # the grader itself could not run (a bug of ours, or a missing file)

    @property
    def passed_count(self) -> int:
        return sum(task.passed for task in self.tasks)

    @property
    def done(self) -> bool:
        return not self.error and self.passed_count == len(self.tasks)

    @property
    def state(self) -> str:
        if self.error:
            return "error"
        if self.done:
            return "done"
        return "in progress" if self.passed_count else "to do"

    @property
    def next_task(self) -> TaskResult | None:
        return next((task for task in self.tasks if not task.passed), None)


class _Collector:
    """A pytest plugin object that records each grader test's outcome and learner-facing message."""

    def __init__(self) -> None:
        self.tests: dict[str, dict[int, list[TestResult]]] = {}
        self.errors: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        lab = grader_lab(paths.ROOT / report.location[0])  # locations are relative to the rootdir
        task = task_number(report.location[2])
        if lab is None or task is None or (report.when != "call" and report.passed):
            return  # set-up and teardown count only when they fail
        name = report.location[2]
        results = self.tests.setdefault(lab, {}).setdefault(task, [])
        results[:] = [r for r in results if r.name != name]  # a teardown failure replaces the call's pass
        message = "skipped: " + str(report.longrepr[2]) if report.skipped else report.longreprtext
        results.append(TestResult(name, report.passed, message.strip()))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        lab = grader_lab(paths.ROOT / report.nodeid.split("::")[0])
        if report.failed and lab:
            self.errors[lab] = report.longreprtext


def grade(labs: list[Lab], target: str) -> list[LabResult]:
    """Grade `labs` against `target` (labs or solutions), in manifest order."""
    collector = _Collector()
    missing = {lab.id: f"the grader {paths.relative(lab.grader)} does not exist" for lab in labs if not lab.grader.is_file()}
    graders = [str(lab.grader) for lab in labs if lab.id not in missing]
    if graders:
        args = [*graders, f"--target={target}", "--rootdir", str(paths.ROOT), "-q"]
        # Speed for the learner's loop: the graders need no assertion rewriting (their messages are
        # written out), and the unraisable-exception plugin's closing garbage collection costs 0.4 s.
        args += ["--assert=plain", "-p", "no:unraisableexception"]
        # The graders' own output (captured logs, warnings) is not for the learner; results come back through the collector.
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            pytest.main(args, plugins=[collector])
    results = []
    for lab in labs:
        by_task = collector.tests.get(lab.id, {})
        tasks = [TaskResult(task, by_task.get(task.number, [])) for task in lab.tasks]
        error = missing.get(lab.id) or collector.errors.get(lab.id, "")
        if not error and not any(task.tests for task in tasks):
            error = f"{paths.relative(lab.grader)} ran no test"
        results.append(LabResult(lab, tasks, error))
    return results


def grade_all(target: str) -> list[LabResult]:
    return grade(list(manifest.labs()), target)
