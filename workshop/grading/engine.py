"""The grading engine: a warm parent that forks one worker per lab, and decides every verdict itself.

The parent imports what every grader needs once (pytest, boto3 and botocore, moto, Powertools, the
graders' own modules) and transforms the templates before any timer starts. Then, for each lab, it
forks a worker (worker.py) that runs the lab's grader and streams each test's start and result back.
The learner's code only ever runs in a worker, so nothing it does to its process (a decimal context,
a patched module, os._exit, a crash, a flood of output) reaches another lab or the verdicts.

`watch` keeps the next grading's workers forked ahead (`ready_next`): each has loaded the grader and
waits for a save, before any of the learner's code runs, so a save only has to say go.

A worker that ends without saying "done" is a verdict: the test it was running fails with what
happened, in the learner's words, and a fresh worker grades the tests it had not reached yet (so
every test gets a verdict of its own, as when the learner's code raises).
Where forking is not safe (macOS, whose system libraries may not survive a fork) each worker is a
fresh Python process instead: slower, as isolated. (Windows runs the workshop in WSL, which is Linux.)
"""

from __future__ import annotations

import gc
import importlib
import multiprocessing
import os
import re
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing import connection
from pathlib import Path

from workshop import paths, templates
from workshop.grading import budget, collector, integrity, warmup, worker
from workshop.grading.feedback import in_learner_tree
from workshop.manifest import Lab

POLL_SECONDS = 0.05
# A lab's tests are shared among workers when each gets at least this many (a worker costs a fork).
TESTS_PER_WORKER = 4
# ... and, when they were timed, each share took at least this long last time: a worker costs about 0.05 s
# to start, more than all of lab 6's tests take together.
SECONDS_PER_WORKER = 0.15
# A test's own timers (budget.py) end it, or its worker when it catches every stop, long before this;
# past it, the learner's code has kept them from running (a C library that never returns and holds the
# interpreter) and the worker is killed.
STUCK_SECONDS = 2 * budget.WALL_SECONDS + 5
# Collecting a grader, before its first test starts.
COLLECT_SECONDS = 120
# Why a check was ended that did not stop when its time was up.
CATCHES_THE_STOP = (
    "the grader stopped it. Look for `except BaseException:` or a bare `except:` around a loop: it catches "
    "the grader's timeout too"
)
LEARNER_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<function>\S+)')

# What a signal that ended a worker means: what the learner's code did, and why that happens.
SIGNAL_MEANINGS = {
    signal.SIGSEGV: (
        "crashed the process with a segmentation fault (SIGSEGV)",
        "memory was read or written where it must not be, as ctypes or a broken C extension can do",
    ),
    signal.SIGABRT: ("made the process abort (SIGABRT)", "a C library found itself in a state it cannot go on from"),
    signal.SIGKILL: ("got the process killed (SIGKILL)", "most often the machine ran out of memory"),
    signal.SIGBUS: ("crashed the process with a bus error (SIGBUS)", "memory was accessed in a way it cannot be"),
    signal.SIGFPE: ("crashed the process with a floating-point exception (SIGFPE)", "a C library divided by zero"),
}
if hasattr(signal, "SIGXFSZ"):
    SIGNAL_MEANINGS[signal.SIGXFSZ] = (
        f"wrote more than {worker.OUTPUT_LIMIT_BYTES // (1024 * 1024)} MB (printed output, or a file)",
        "the grader stopped it. Print or write less, and look for a loop that never ends",
    )


def start_method() -> str:
    """fork where it is safe (Linux); a fresh interpreter per worker elsewhere, or when asked for."""
    asked = os.environ.get("WORKSHOP_START_METHOD")
    if asked:
        return asked
    return "fork" if sys.platform.startswith("linux") else "spawn"


@dataclass
class TestOutcome:
    nodeid: str
    name: str
    task: int | None
    passed: bool
    message: str = ""
    skipped: bool = False


@dataclass
class LabRun:
    """What the workers of one lab reported, in the order the grader runs its tests."""

    lab: Lab
    expected: dict[str, int | None] = field(default_factory=dict)  # nodeid -> task number
    outcomes: dict[str, TestOutcome] = field(default_factory=dict)
    error: str = ""  # the grader itself could not run
    seconds: dict[str, float] = field(default_factory=dict)  # how long each test took, from the parent's side
    grader_digest: str = ""  # of the grader and conftest.py: what the remembered tests belong to

    def record(self, nodeid: str, name: str, outcome: str, message: str) -> None:
        previous = self.outcomes.get(nodeid)
        if previous is not None and not previous.passed:
            return  # a later report of the same test (its teardown) never turns a failure into a pass
        task = self.expected.get(nodeid)
        self.outcomes[nodeid] = TestOutcome(nodeid, name, task, outcome == "passed", message, outcome == "skipped")

    def outcome_of(self, nodeid: str) -> TestOutcome:
        """A test's outcome; a test no worker reported failed with the reason (the grader could not run)."""
        found = self.outcomes.get(nodeid)
        if found is not None:
            return found
        return TestOutcome(nodeid, _name(nodeid), self.expected.get(nodeid), False, self.error or "not run")

    def fail(self, nodeid: str, message: str) -> None:
        self.outcomes[nodeid] = TestOutcome(nodeid, _name(nodeid), self.expected.get(nodeid), False, message)

    def unreached(self) -> list[str]:
        return [nodeid for nodeid in self.expected if nodeid not in self.outcomes]


def _name(nodeid: str) -> str:
    return nodeid.rpartition("::")[2]


@dataclass
class WorkerEnd:
    """How a worker ended when it did not finish its job: what happened, during which test, and why."""

    what: str  # what the learner's code did, to complete "Your code ..."
    during: str | None  # the nodeid of the test it was running, None while it loaded the grader
    why: str = ""  # what that means, and what to do
    where: str = ""  # the learner's own lines, when a crash left a traceback


class Engine:
    """Grades labs against one target tree (labs or solutions), each in its own worker."""

    def __init__(self, target: str, long_lived: bool = False) -> None:
        self.target = target
        self.long_lived = long_lived
        self.method = start_method()
        self.context = multiprocessing.get_context(self.method)
        self._warmed: set[str] = set()
        self._ready: list[Worker] = []  # forked ahead for the next grading (watch)

    # --- the parent's preparation, before any timer starts ----------------------------------------

    def warm(self, labs: list[Lab], first_calls: bool = False) -> None:
        """Import what every grader imports, and transform the labs' templates, once, in this process.

        `first_calls`: make a first call to each service too, which spares every worker forked after it
        its own. It pays when many follow (watch; several labs: check --all's medians of 5 went from
        5.31 s to 4.52 s, and from 5.68 s to 5.46 s on a busier machine), not for one lab's two (check 2:
        1.44 s either way; check 7: 1.63 s without, 1.69 s with)."""
        with collector.fewer_collections():
            self._warm(labs, first_calls)

    def _warm(self, labs: list[Lab], first_calls: bool) -> None:
        from workshop import sandbox

        sandbox.enter()
        for lab in labs:
            template = lab.folder(self.target) / "template.yaml"
            try:
                templates.loaded(template)
                templates.transformed(template)
            except Exception:  # noqa: BLE001 (a broken template: the grader's template task reports it, in the learner's words)
                pass
            if self.method == "fork" and lab.id not in self._warmed and lab.grader.is_file():
                self._import_grader(lab.grader)
                warmup.load_ahead(lab.id, first_calls=first_calls)
                self._warmed.add(lab.id)

    @staticmethod
    def _import_grader(grader: Path) -> None:
        """Import pytest's own plugins, tests/conftest.py and the grader as pytest will, so the workers
        inherit them loaded (pytest imports its plugins afresh for every run: 0.25 s)."""
        from _pytest.config import default_plugins
        from _pytest.pathlib import import_path

        for name in default_plugins:
            importlib.import_module(f"_pytest.{name}")

        for module in (grader.parent / "conftest.py", grader):
            try:
                import_path(module, mode="prepend", root=paths.ROOT, consider_namespace_packages=False)
            except Exception:  # noqa: BLE001 (a broken grader is reported by the worker, which imports it again)
                return

    # --- grading ----------------------------------------------------------------------------------

    def grade(self, labs: list[Lab], only: dict[str, tuple[str, ...]] | None = None) -> list[LabRun]:
        """Grade `labs`, keeping `parallel()` workers busy: a lab's tests are shared among several
        workers when it has enough of them, and the next lab starts as soon as a core is free (the
        longest first). The runs come back in the order of `labs`.

        `only` picks some tests of a lab by node id (plain pytest's selection); default: all of them.
        """
        with collector.fewer_collections():
            return self._grade(labs, only or {})

    def _grade(self, labs: list[Lab], only: dict[str, tuple[str, ...]]) -> list[LabRun]:
        first_calls = self.long_lived or len(labs) > 1
        runs = [LabRun(lab) for lab in labs]
        waiting = _longest_first([run for run in runs if not self._cannot_grade(run)])
        jobs: list[tuple[LabRun, tuple[str, ...]]] = []
        active: list[Worker] = []
        prepared: set[str] = set()
        while waiting or jobs or active:
            while (jobs or waiting) and len(active) < parallel():
                if not jobs:
                    next_run = waiting.pop(0)
                    # While other labs wait for a core, sharing this one's tests out would only add workers.
                    jobs = self._jobs(next_run, only, first_calls, alone=len(waiting) >= parallel())
                run, nodeids = jobs.pop(0)
                active.append(self._claim_ready(run, nodeids) or self._start(run, nodeids))
            if active and waiting and waiting[0].lab.id not in prepared:
                # The next lab's preparation while these workers run: done once a core is free, it
                # would keep that core waiting (check --all: about 0.1 s a lab).
                prepared.add(waiting[0].lab.id)
                self.warm([waiting[0].lab], first_calls)
            ready = set(connection.wait([w.receiver for w in active], timeout=POLL_SECONDS))
            for current in list(active):
                end = current.follow(current.receiver in ready)
                if end is _RUNNING:
                    continue
                active.remove(current)
                current.close()
                left = self._after(current, end)
                if left:
                    jobs.insert(0, (current.run, left))
        for run in runs:
            if run.seconds:
                warmup.remember_seconds(run.lab.id, run.grader_digest, run.seconds)
        return runs

    def _jobs(self, run: LabRun, only: dict[str, tuple[str, ...]], first_calls: bool,
              alone: bool = False) -> list[tuple[LabRun, tuple[str, ...]]]:
        """A lab's tests, dealt out to as many workers as it has tests for (one, when `alone`), by how
        long each took last time. The list is the one the grader's last whole run collected, kept for
        that grader's text only: without it (a first run, a changed grader) one worker runs the whole
        grader, and tells."""
        self.warm([run.lab], first_calls)
        run.grader_digest = _grader_digest(run.lab)
        tests = warmup.tests_of(run.lab.id, run.grader_digest)
        chosen = [nodeid for nodeid in only.get(run.lab.id, ()) if nodeid in tests] or list(tests)
        if not chosen:
            return [(run, only.get(run.lab.id, ()))]
        run.expected.update((nodeid, tests[nodeid]) for nodeid in chosen)  # the report's order, whoever finishes first
        ahead = self._shares_ready(run.lab, chosen)
        if ahead:
            return [(run, share) for share in ahead]
        seconds = warmup.seconds_of(run.lab.id, run.grader_digest)
        shares = 1 if alone else max(1, min(parallel(), len(chosen) // TESTS_PER_WORKER))
        if all(nodeid in seconds for nodeid in chosen):
            shares = max(1, min(shares, int(sum(seconds[nodeid] for nodeid in chosen) / SECONDS_PER_WORKER)))
        return [(run, share) for share in _deal(chosen, shares, seconds)]

    def _shares_ready(self, lab: Lab, chosen: list[str]) -> list[tuple[str, ...]]:
        """The shares of the workers forked ahead for this lab, if together they are exactly the tests
        chosen now. Dealing again could share the tests out differently (another `workshop` command
        may have timed the tests since, in the same cache), and the workers forked ahead would be wasted."""
        if not self._ready:
            return []
        key = self._ready_key(lab)
        ahead = [ready.nodeids for ready in self._ready if ready.run.lab.id == lab.id and ready.ready_key == key]
        return ahead if sorted(nodeid for share in ahead for nodeid in share) == sorted(chosen) else []

    def ready_next(self, lab: Lab) -> None:
        """Fork the workers of the lab's next whole grading now, each waiting with the grader loaded
        (watch, between saves): the next `grade([lab])` sends them go instead of forking and loading
        then. Workers of an earlier round that were never used are stopped first."""
        self._stop_ready(lambda ready: True)
        run = LabRun(lab)
        if self._cannot_grade(run):
            return
        key = self._ready_key(lab)
        for _, nodeids in self._jobs(run, {}, first_calls=True):
            if nodeids:  # a first run shares nothing out: there is no list of its tests yet
                self._ready.append(self._start(run, nodeids, key=key))

    def _claim_ready(self, run: LabRun, nodeids: tuple[str, ...]) -> Worker | None:
        """A worker forked ahead for exactly these tests of this lab, told to go; None if there is none.

        One that loaded another grader or template than the lab has now, or that has ended, is stopped."""
        if not self._ready:
            return None  # every grading but watch's: nothing to hash
        key = self._ready_key(run.lab)
        self._stop_ready(lambda ready: ready.run.lab.id == run.lab.id and (ready.ready_key != key or not ready.process.is_alive()))
        for ready in self._ready:
            if ready.run.lab.id == run.lab.id and ready.nodeids == nodeids:
                self._ready.remove(ready)
                try:
                    ready.go.send(True)
                except OSError:  # it ended since: fork another
                    ready.close()
                    return None
                ready.run, ready.heard = run, time.monotonic()
                return ready
        return None

    def _stop_ready(self, which) -> None:
        for ready in [ready for ready in self._ready if which(ready)]:
            self._ready.remove(ready)
            ready.close()

    def _ready_key(self, lab: Lab) -> str:
        """What a worker forked ahead has loaded of the lab: its grader, conftest.py and template."""
        template = lab.folder(self.target) / "template.yaml"
        return _grader_digest(lab) + (integrity.digest(template) if template.is_file() else "")

    def known_tests(self, lab: Lab) -> list[str]:
        """The node ids of the lab's tests, as its grader's last whole run collected them ([] before any)."""
        return list(warmup.tests_of(lab.id, _grader_digest(lab)))

    def _cannot_grade(self, run: LabRun) -> bool:
        problem = integrity.problem_for(run.lab)
        if not problem and not run.lab.grader.is_file():
            problem = f"the grader {paths.relative(run.lab.grader)} does not exist"
        run.error = problem or ""
        return bool(problem)

    def _start(self, run: LabRun, nodeids: tuple[str, ...], key: str = "") -> Worker:
        """Fork a worker for these tests of the lab; with `key`, one that waits for go once it has
        loaded the grader (ready_next), and the key of what it loaded."""
        handle, output = tempfile.mkstemp(prefix=f"workshop-{run.lab.id}-", suffix=".log")
        os.close(handle)
        receiver, sender = self.context.Pipe(duplex=False)
        go_receiver, go = self.context.Pipe(duplex=False) if key else (None, None)
        job = worker.Job(run.lab.id, str(run.lab.grader), self.target, output, nodeids)
        process = self.context.Process(target=worker.run, args=(job, sender, go_receiver), daemon=True)
        if self.method == "fork":
            # What the parent holds now is never collected in a worker: its pages stay shared with the
            # parent instead of being copied when the worker's garbage collector walks them.
            gc.freeze()
        process.start()
        sender.close()
        if go_receiver is not None:
            go_receiver.close()
        return Worker(process, receiver, run, output, nodeids, go=go, ready_key=key)

    @staticmethod
    def _after(ended: Worker, end: WorkerEnd | None) -> tuple[str, ...]:
        """After a worker: record how it ended; the tests a new worker should grade (none: its share is done)."""
        run = ended.run
        if end is None or run.error:
            return ()
        message = _explain(end)
        if end.during is None and not run.expected:
            run.error = message
            return ()
        share = ended.nodeids or tuple(run.expected)
        left = [nodeid for nodeid in share if nodeid not in run.outcomes]
        # The test it was running; between tests, the next one (or, after its last, the last one).
        culprit = end.during or (left[0] if left else share[-1])
        run.fail(culprit, message)
        # Every worker that ends early fails one test more, so this ends: at the latest, one worker a test.
        return tuple(nodeid for nodeid in left if nodeid != culprit)


_RUNNING = WorkerEnd("", None)  # Worker.follow's answer while the worker goes on


def _deal(tests: list[str], shares: int, seconds: dict[str, float]) -> list[tuple[str, ...]]:
    """Deal `tests` out to `shares` workers so that they finish together: the longest first, each to
    the worker with the least to do (by how long each took last time), each share in the grader's order."""
    position = {nodeid: index for index, nodeid in enumerate(tests)}
    loads, dealt = [0.0] * shares, [[] for _ in range(shares)]
    for nodeid in sorted(tests, key=lambda test: -seconds.get(test, 0.0)):
        lightest = loads.index(min(loads))
        dealt[lightest].append(nodeid)
        loads[lightest] += seconds.get(nodeid, 0.0) or 0.01  # unknown: as if quick, so shares stay even in number
    return [tuple(sorted(share, key=position.__getitem__)) for share in dealt if share]


def _longest_first(runs: list[LabRun]) -> list[LabRun]:
    """The labs whose tests took longest last time first, so that the last to finish are short and no
    core waits long for the other at the end (check --all). Labs never timed keep their order, last.
    Only the order they are graded in changes: the results keep the labs' order."""
    return sorted(runs, key=lambda run: -sum(warmup.seconds_of(run.lab.id, _grader_digest(run.lab)).values()))


def _grader_digest(lab: Lab) -> str:
    return "".join(integrity.digest(path) for path in (lab.grader, lab.grader.parent / "conftest.py"))


def nodeid(path: Path, name: str) -> str:
    """A grader test's node id as the workers know it (relative to the checkout)."""
    return f"{path.resolve().relative_to(paths.ROOT).as_posix()}::{name}"


def lab_of_grader(path: Path) -> Lab:
    """The lab a grader module (tests/test_<lab id>.py) grades."""
    from workshop import manifest

    return manifest.find(path.stem.removeprefix("test_"))


def parallel() -> int:
    """How many workers run at once: one per core, at most four (each holds a few hundred MB)."""
    asked = os.environ.get("WORKSHOP_WORKERS", "")
    return int(asked) if asked.isdigit() and int(asked) > 0 else max(1, min(4, os.cpu_count() or 1))


@dataclass
class Worker:
    """One worker process, followed by the parent: its messages, its output's size, its silence."""

    process: multiprocessing.process.BaseProcess
    receiver: connection.Connection
    run: LabRun
    output: str
    nodeids: tuple[str, ...]  # its share of the lab's tests (empty: all of them)
    go: connection.Connection | None = None  # forked ahead: the pipe that tells it to start
    ready_key: str = ""  # forked ahead: what it loaded (Engine._ready_key)
    current: str | None = None  # the test it is running
    timing: tuple[str, float] | None = None  # the test it is running, and since when
    heard: float = field(default_factory=time.monotonic)
    unstoppable: bool = False  # it said its check caught every stop, and ends

    def follow(self, readable: bool) -> WorkerEnd | None:
        """Read what the worker sent. _RUNNING while it goes on; None when it finished; else how it ended."""
        if readable:
            try:
                while self.receiver.poll():
                    if self._take(self.receiver.recv()):
                        return None
            except (EOFError, OSError):
                self.process.join(5)  # it has ended, and everything it sent has been read
                if self.unstoppable:
                    return WorkerEnd(
                        "did not let the check end (it went on past its time limit, catching each stop the "
                        f"grader sent for {budget.GIVE_UP_SECONDS:.0f} s)",
                        self.current,
                        CATCHES_THE_STOP,
                    )
                return _ended(self.process.exitcode, self.output, self.current)
            self.heard = time.monotonic()
        if _size(self.output) > worker.OUTPUT_LIMIT_BYTES:
            self.process.kill()
            return WorkerEnd(
                f"printed more than {worker.OUTPUT_LIMIT_BYTES // (1024 * 1024)} MB of output",
                self.current,
                "the grader stopped it. Print less, and look for a loop that never ends",
            )
        limit = STUCK_SECONDS if self.current or self.run.expected else COLLECT_SECONDS
        if time.monotonic() - self.heard > limit:
            self.process.kill()
            return WorkerEnd(
                f"did not let the check end (it was still running {limit:.0f} s later, past its time limit)",
                self.current,
                CATCHES_THE_STOP,
            )
        return _RUNNING

    def _take(self, message: tuple) -> bool:
        """Record one message; True when it says the worker finished its job."""
        run, kind = self.run, message[0]
        if kind == "collected":
            run.expected.update((nodeid, task) for nodeid, task in message[1] if nodeid not in run.expected)
            if not self.nodeids:  # the whole grader: its list of tests, to share them out next time
                warmup.remember_tests(run.lab.id, run.grader_digest, dict(message[1]))
        elif kind == "collect_error":
            run.error = message[1]
        elif kind == "start":
            self._timed(message[1])
        elif kind == "result":
            _, nodeid, name, passed, text = message
            run.record(nodeid, name, passed, text)
            self.current = None if nodeid == self.current else self.current
        elif kind == "loaded":
            self._timed(None)
            warmup.remember(run.lab.id, message[1])
        elif kind == "unstoppable":  # the worker gave up on its check and ends (budget.GIVE_UP_SECONDS)
            self.unstoppable = True
        return kind == "done"

    def _timed(self, starting: str | None) -> None:
        """A test starts (or the worker's share ends): the one before it took until now."""
        now = time.monotonic()
        if self.timing is not None:
            self.run.seconds[self.timing[0]] = now - self.timing[1]
        self.current = starting
        self.timing = (starting, now) if starting else None

    def close(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.receiver.close()
        if self.go is not None:
            self.go.close()
        Path(self.output).unlink(missing_ok=True)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _ended(code: int | None, output: str, during: str | None) -> WorkerEnd:
    """How a worker that never said "done" ended, from its exit code."""
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        what, why = SIGNAL_MEANINGS.get(-code, (f"stopped the process with the signal {name}", ""))
        return WorkerEnd(what, during, why, _learner_frames(output))
    exit_call = f"os._exit({code})" if code is not None else "os._exit()"
    return WorkerEnd(
        f"ended the process with {exit_call}",
        during,
        "in Lambda, a function that exits instead of returning fails with Runtime.ExitError. Return a "
        "response, or raise an error",
    )


def _learner_frames(output: str) -> str:
    """The learner's own lines in a crash's traceback (faulthandler writes it to the worker's output)."""
    try:
        with open(output, "rb") as file:
            file.seek(max(0, _size(output) - 16_384))
            tail = file.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = []
    for match in LEARNER_FRAME.finditer(tail):
        if in_learner_tree(match["file"]):
            lines.append(f"  {paths.relative(Path(match['file']))}, line {match['line']}, in {match['function']}()")
    return "\n".join(dict.fromkeys(lines))


def _explain(end: WorkerEnd) -> str:
    """'Your code <did what> while <test> ran: <why>.', then the learner's lines."""
    during = f"while {_name(end.during)} ran" if end.during else "while the grader was loading"
    sentence = f"Your code {end.what} {during}" + (f": {end.why}." if end.why else ".")
    return sentence + (f"\n{end.where}" if end.where else "")
