"""The pytest plugin behind every grader run (loaded by tests/conftest.py).

It replaces a failing grader test's report with the learner-facing message: the assertion's own text,
or the error the learner's code raised and where. Anything else is a bug in the grader and keeps its
full traceback, so that it gets reported rather than hidden. It also times every check (budget.py),
runs a check again once when the machine starved it, and fails a check after which the learner's code
left a thread or a process running. (PYTEST_DONT_REWRITE: no asserts here.)
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from _pytest.runner import runtestprotocol

from workshop import paths
from workshop.grading import leftovers
from workshop.grading.budget import Budget, BudgetExceeded
from workshop.grading.feedback import describe, learner_frames
from workshop.lambda_runtime import FunctionError

BUDGET = "workshop-budget"

GRADER_FILE = re.compile(r"^test_(?P<lab>lab\d+_\w+)\.py$")
TASK_TEST = re.compile(r"^test_task(?P<task>\d+)_")


def grader_lab(path: Path) -> str | None:
    """The lab id a grader module grades (tests/test_<lab id>.py), or None for other files."""
    match = GRADER_FILE.match(path.name)
    return match["lab"] if match and path.parent == paths.TESTS else None


def task_number(test_name: str) -> int | None:
    match = TASK_TEST.match(test_name)
    return int(match["task"]) if match else None


def learner_message(excinfo: pytest.ExceptionInfo) -> str | None:
    error = excinfo.value
    if isinstance(error, (AssertionError, FunctionError, pytest.fail.Exception)):
        return str(error).strip()
    if isinstance(error, SystemExit):
        return (
            f"Your code called sys.exit({error.code!r}) (raised SystemExit).\n{describe(error)}\n"
            "A Lambda function returns a response or raises an error; exiting ends the execution "
            "environment (Runtime.ExitError)."
        )
    if learner_frames(error):
        return f"Your code raised {describe(error)}"
    return None


def pytest_addoption(parser: pytest.Parser) -> None:
    # Set by the grading engine for its workers: they run the graders' tests themselves.
    parser.addoption("--grading-worker", action="store_true", help=argparse.SUPPRESS)


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(BUDGET):
        config.pluginmanager.register(Budget(applies=lambda item: grader_lab(item.path) is not None), BUDGET)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """Plain pytest grades as `workshop check` does: each lab's tests run in the grading engine's
    workers (its own process, which the learner's code cannot end, hang or change unseen); the
    project's other tests run here, as usual. Under pytest-xdist (make test shares its files out over
    the cores) each xdist worker runs the tests it is handed, graders too, as a grading worker does."""
    config = session.config
    graders = [item for item in session.items if grader_lab(item.path)]
    in_xdist_worker = hasattr(config, "workerinput")
    if not graders or config.getoption("grading_worker") or config.option.collectonly or in_xdist_worker:
        return None
    from workshop.grading import engine

    by_lab: dict[str, list[pytest.Item]] = {}
    for item in graders:
        by_lab.setdefault(grader_lab(item.path), []).append(item)  # type: ignore[arg-type]
    labs = [engine.lab_of_grader(item.path) for item in (items[0] for items in by_lab.values())]
    only = {lab.id: tuple(engine.nodeid(item.path, item.name) for item in by_lab[lab.id]) for lab in labs}
    runs = engine.Engine(config.getoption("target")).grade(labs, only)
    for run in runs:
        for item in by_lab[run.lab.id]:
            _log(item, run.outcome_of(engine.nodeid(item.path, item.name)))
    others = [item for item in session.items if not grader_lab(item.path)]
    for index, item in enumerate(others):
        following = others[index + 1] if index + 1 < len(others) else None
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=following)
        if session.shouldfail or session.shouldstop:
            raise session.Failed(session.shouldfail) if session.shouldfail else session.Interrupted(session.shouldstop)
    return True


def _log(item: pytest.Item, outcome) -> None:
    """Report, in this process, a grader test that ran in a worker (for the terminal and for -r)."""
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    if outcome.skipped:
        longrepr: object = (str(item.path), item.location[1] or 0, outcome.message.removeprefix("skipped: "))
    else:
        longrepr = None if outcome.passed else outcome.message
    report = pytest.TestReport(
        nodeid=item.nodeid,
        location=item.location,
        keywords=dict.fromkeys(item.keywords, 1),
        outcome="skipped" if outcome.skipped else ("passed" if outcome.passed else "failed"),
        longrepr=longrepr,
        when="call",
        user_properties=item.user_properties,
    )
    item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """Run a grader test as pytest would, again once if the machine starved it, then look for leftovers."""
    budget = item.config.pluginmanager.get_plugin(BUDGET)
    if budget is None or not grader_lab(item.path):
        return None
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    before = leftovers.running()
    reports = runtestprotocol(item, nextitem=nextitem, log=False)
    if budget.starved(item):
        budget.retried.add(item.nodeid)
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
    left = leftovers.left_running(before)
    if left:
        reports = [_failed_by_leftovers(report, item, left) for report in reports]
    for report in reports:
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _failed_by_leftovers(report: pytest.TestReport, item: pytest.Item, left: str) -> pytest.TestReport:
    if report.when != "call" or not report.passed:
        return report
    report.outcome = "failed"
    report.longrepr = (
        f"After {item.name}, your code left {left} running. In Lambda the execution environment is frozen "
        "as soon as the handler returns, so that work may never finish (or finishes during another "
        "request): finish it (join the thread, wait for the process) before returning."
    )
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport | None:
    """A grader test's failure, reported as its learner-facing message (None: pytest's usual report).

    Building the report here, rather than rewriting pytest's, also skips pytest's rendering of the
    traceback, which costs about 0.1 s per failing test.
    """
    if call.excinfo is None or call.excinfo.errisinstance(pytest.skip.Exception) or not grader_lab(item.path):
        return None
    budget = item.config.pluginmanager.get_plugin(BUDGET)
    if budget is not None and call.excinfo.errisinstance(BudgetExceeded):
        message = budget.message(item, call.excinfo.value, retried=item.nodeid in budget.retried)
    else:
        message = learner_message(call.excinfo)
    if message is None:
        return None
    return pytest.TestReport(
        nodeid=item.nodeid,
        location=item.location,
        keywords=dict.fromkeys(item.keywords, 1),
        outcome="failed",
        longrepr=message,
        when=call.when,
        # Captured logs would repeat the same error as a long traceback through library code.
        sections=[],
        duration=call.duration,
        start=call.start,
        stop=call.stop,
        user_properties=item.user_properties,
    )
