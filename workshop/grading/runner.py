"""Grade some labs (engine.py runs each in its own worker) and group the results by task."""

from __future__ import annotations

from dataclasses import dataclass, field

from workshop import paths
from workshop.grading.engine import Engine, LabRun
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

    @property
    def check_hint(self) -> str | None:
        """The hint written for the first failing check, when it has one of its own."""
        failure = self.first_failure
        return self.task.hint_for(failure.name) if failure else None


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


_engines: dict[str, Engine] = {}


def engine(target: str, long_lived: bool = False) -> Engine:
    """The grading engine of this process for `target`: one per process, so `watch` stays warm."""
    if target not in _engines:
        _engines[target] = Engine(target, long_lived)
    return _engines[target]


def grade(labs: list[Lab], target: str, long_lived: bool = False) -> list[LabResult]:
    """Grade `labs` against `target` (labs or solutions), in manifest order, each in its own worker.

    `long_lived`: this process grades again and again (watch), so preparing more ahead pays.
    """
    return [_lab_result(run) for run in engine(target, long_lived).grade(labs)]


def ready_next(lab: Lab, target: str) -> None:
    """Between saves (watch): fork the lab's next grading's workers ahead, waiting with its grader loaded."""
    engine(target, long_lived=True).ready_next(lab)


def grade_checks(checks: list[tuple[Lab, str]], target: str, long_lived: bool = False) -> list[LabResult]:
    """Grade only each lab's tests whose names start with its prefix ("": all of them; every test, the
    first time a grader runs, before its tests are known): a quicker verdict on one check. The labs are
    graded together, sharing the cores, and come back in the order given."""
    graded = engine(target, long_lived)
    only = {}
    for lab, prefix in checks:
        chosen = tuple(nodeid for nodeid in graded.known_tests(lab) if nodeid.rpartition("::")[2].startswith(prefix))
        if prefix and chosen:
            only[lab.id] = chosen
    return [_lab_result(run) for run in graded.grade([lab for lab, _ in checks], only)]


def _lab_result(run: LabRun) -> LabResult:
    by_task: dict[int, list[TestResult]] = {}
    # In the grader's order, whichever worker reported first.
    for outcome in sorted(run.outcomes.values(), key=_position(run)):
        if outcome.task is not None:
            by_task.setdefault(outcome.task, []).append(TestResult(outcome.name, outcome.passed, outcome.message))
    tasks = [TaskResult(task, by_task.get(task.number, [])) for task in run.lab.tasks]
    error = run.error
    if not error and not any(task.tests for task in tasks):
        error = f"{paths.relative(run.lab.grader)} ran no test"
    return LabResult(run.lab, tasks, error)


def _position(run: LabRun):
    order = {nodeid: index for index, nodeid in enumerate(run.expected)}
    return lambda outcome: order.get(outcome.nodeid, len(order))
