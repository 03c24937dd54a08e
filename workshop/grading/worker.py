"""The grading worker: one process per lab, where the learner's code runs and nothing is decided.

It runs the lab's grader with pytest and sends what happens over a pipe to the engine, as it happens:
the tests it collected, each test as it starts, each result as it ends. The engine, in the parent
process, decides the verdicts: a worker that stops sending (whatever the learner's code did to it) is
itself a verdict. The worker ends with os._exit, so no thread the learner left can keep it alive.
"""

from __future__ import annotations

import faulthandler
import os
import resource
import signal
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection

import pytest

from workshop import paths
from workshop.grading import budget, collector, plugin, warmup
from workshop.grading.plugin import grader_lab, task_number

# The most a check may write, to its output or to files, before the worker is stopped: far more than a
# grader needs, far less than fills a laptop's disk.
OUTPUT_LIMIT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Job:
    """What one worker grades: some of one lab's tests (all of them, or those a crashed worker left)."""

    lab: str
    grader: str
    target: str
    output: str  # the file the worker's stdout and stderr go to (the engine watches its size)
    nodeids: tuple[str, ...] = ()  # empty: every test of the grader


class Reporter:
    """The pytest plugin object that streams the run to the engine."""

    def __init__(self, channel: Connection, go: Connection | None = None) -> None:
        self.channel = channel
        self.go = go

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.go is not None:
            wait_for_go(self.go)
        tests = [(item.nodeid, task_number(item.name)) for item in session.items if grader_lab(item.path)]
        self.channel.send(("collected", tests))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed and grader_lab(paths.ROOT / report.nodeid.split("::")[0]):
            self.channel.send(("collect_error", report.longreprtext))

    def pytest_runtest_logstart(self, nodeid: str, location: tuple) -> None:
        self.channel.send(("start", nodeid))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" and report.passed:
            return  # set-up and teardown count only when they fail
        message = "skipped: " + str(report.longrepr[2]) if report.skipped else report.longreprtext
        self.channel.send(("result", report.nodeid, report.location[2], report.outcome, message.strip()))


def wait_for_go(go: Connection) -> None:
    """A worker forked ahead (watch) waits here, its grader loaded and none of the learner's code run,
    until the engine says go. It ends, unseen, when the engine stops it or is gone: a parent that died
    leaves the pipe open in its other workers, so it also looks for being orphaned."""
    parent = os.getppid()
    while not go.poll(1.0):
        if os.getppid() != parent:
            os._exit(0)
    try:
        go.recv()
    except (EOFError, OSError):
        os._exit(0)


def _give_up(channel: Connection) -> None:
    """A check catches every stop (budget.py): say so and end, from the budget's watcher thread. The
    check's own thread is in the learner's loop, never in the middle of a send of its own."""
    channel.send(("unstoppable",))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _redirect_output(output: str) -> None:
    """Everything the worker prints, at any level (print, logging, C code), goes to `output`."""
    file = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    for stream in (1, 2):
        os.dup2(file, stream)
    os.close(file)
    # Past the limit the kernel stops the process (Python ignores SIGXFSZ, which would turn a flood of
    # output into an OSError in the learner's code instead), and the engine says why.
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    limit = resource.RLIMIT_FSIZE
    soft, hard = resource.getrlimit(limit)
    if hard == resource.RLIM_INFINITY or hard > OUTPUT_LIMIT_BYTES:
        resource.setrlimit(limit, (OUTPUT_LIMIT_BYTES, hard))


def run(job: Job, channel: Connection, go: Connection | None = None) -> None:
    """The worker's whole life: grade, report, and end (never returns). With `go`, it waits for go
    once its tests are collected (a worker forked ahead)."""
    collector.set_for_grading()
    budget.on_unstoppable = lambda: _give_up(channel)
    before = warmup.snapshot()
    try:
        _redirect_output(job.output)
        # The node ids and the grader's own paths are the checkout's: a learner may run `workshop check`
        # from any folder (their lab's, most often), and it must grade the same as from the checkout.
        os.chdir(paths.ROOT)
        faulthandler.enable()  # a crash leaves its Python traceback in the output, for the engine to read
        arguments = list(job.nodeids) or [job.grader]
        arguments += [f"--target={job.target}", "--rootdir", str(paths.ROOT), "-q", "-p", "no:cacheprovider", "--grading-worker"]
        # Speed: the graders need no assertion rewriting (their messages are written out), and the
        # unraisable-exception plugin's closing garbage collection costs 0.4 s. No plugin installed in the
        # environment is loaded either: none is needed (budget.py times the checks), hypothesis's alone
        # costs 0.3 s a run, and one such as pytest-randomly would change how the graders run.
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        arguments += ["--assert=plain", "-p", "no:unraisableexception"]
        # The grading plugin is handed over already registered: named by tests/conftest.py's pytest_plugins,
        # pytest would first look for it among every installed distribution's entry points (a few ms a run).
        pytest.main(arguments, plugins=[Reporter(channel, go), plugin])
        channel.send(("loaded", warmup.loaded_since(before)))
        channel.send(("done",))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
