"""The pytest plugin behind every grader run (loaded by tests/conftest.py).

It replaces a failing grader test's report with the learner-facing message: the assertion's own text,
or the error the learner's code raised and where. Anything else is a bug in the grader and keeps its
full traceback, so that it gets reported rather than hidden. (PYTEST_DONT_REWRITE: no asserts here.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from workshop import paths
from workshop.grading.feedback import describe, learner_frames
from workshop.lambda_runtime import FunctionError

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
    if learner_frames(error):
        return f"Your code raised {describe(error)}"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport | None:
    """A grader test's failure, reported as its learner-facing message (None: pytest's usual report).

    Building the report here, rather than rewriting pytest's, also skips pytest's rendering of the
    traceback, which costs about 0.1 s per failing test.
    """
    if call.excinfo is None or call.excinfo.errisinstance(pytest.skip.Exception) or not grader_lab(item.path):
        return None
    message = learner_message(call.excinfo)
    if message is None:
        return None
    if message.startswith("Timeout"):
        message = (
            f"{item.name} stopped: your code did not finish in time ({message}). In Lambda this is a "
            "timeout. Look for a loop that never ends, a retry without a limit, or a call that waits "
            "on something that never answers (a real network call: the graders have no network)."
        )
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
