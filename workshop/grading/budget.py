"""How long a check may take, measured on the learner's code and not on the machine.

A check's budget is CPU time: a loop that never ends burns CPU, a busy laptop only delays it. The
setup and call phases of every grader test run under a watcher thread that reads this process's CPU
time (all threads) and the clock, with a wall-clock cap far behind the CPU budget for code that waits
instead of computing. When the cap is reached, Linux's scheduler statistics tell the two kinds of
waiting apart: time spent ready to run but without a CPU (the machine is busy: the check is run once
more and the learner is never blamed) and time the code chose to wait (a sleep, a lock, a call that
never answers: the learner's).

The grader's own preparation (template transforms, moto's imports) happens before the timers start:
the grading engine warms it in its parent process, and plain pytest pays it outside this budget too,
because templates are cached on disk by content.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# A check takes well under a second of CPU; five seconds of it is a loop that never ends.
CPU_SECONDS = float(os.environ.get("WORKSHOP_CHECK_CPU_SECONDS", "5"))
# Code that waits uses no CPU; a check still running after this long is stuck, or starved.
WALL_SECONDS = float(os.environ.get("WORKSHOP_CHECK_WALL_SECONDS", "10"))
# At the cap, a check that spent this share of its time waiting for a CPU was starved, not stuck.
STARVED_SHARE = 0.5
# After the first, how often the watcher stops the check again, while it goes on.
REPEAT_SECONDS = 0.25
# A check still running this long after its first stop catches the stops (a catch-all `except` around a
# loop): `on_unstoppable` is called then, unless the machine starved it. The grading worker reports it and
# ends (a learner waited for the engine's last resort otherwise, 25 s); elsewhere the stops go on.
GIVE_UP_SECONDS = 2.0
on_unstoppable: Callable[[], object] | None = None
# How the watcher stops the check: a real signal (not a flag), so that it interrupts a sleep or a wait,
# sent to the check's own thread only. (A CPU timer's SIGPROF goes to the whole process: on a starved
# machine the kernel could hand it to a thread that ran only later, after the check had ended, and it
# stopped whatever ran then, a fixture's teardown, blamed on the learner as a loop.)
STOP_SIGNAL = signal.SIGUSR2


class BudgetExceeded(BaseException):
    """Raised in the check's thread when its budget runs out.

    A BaseException, so that the learner's `except Exception:` (or a library's retry loop) cannot
    swallow it and go on forever.
    """

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind  # "cpu" or "wall"
        self.usage: Usage | None = None  # measured where it was caught first (a fixture's is raised again)


@dataclass(frozen=True)
class Usage:
    """What a check used: wall time, CPU time, and time spent ready to run but without a CPU."""

    wall: float
    cpu: float
    starved: float | None  # None where the scheduler's statistics cannot be read

    @property
    def machine_was_busy(self) -> bool:
        return self.starved is not None and self.starved >= STARVED_SHARE * self.wall


def _starved_seconds() -> float | None:
    """Time this process's threads have spent waiting on a run queue (Linux /proc/<pid>/task/*/schedstat)."""
    try:
        total = 0
        for task in Path("/proc/self/task").iterdir():
            fields = (task / "schedstat").read_text().split()
            total += int(fields[1])
        return total / 1e9
    except (OSError, IndexError, ValueError):
        return None


class _Meter:
    def __init__(self) -> None:
        self.wall, self.cpu, self.starved = time.monotonic(), time.process_time(), _starved_seconds()

    def usage(self) -> Usage:
        starved = _starved_seconds()
        return Usage(
            time.monotonic() - self.wall,
            time.process_time() - self.cpu,
            None if starved is None or self.starved is None else starved - self.starved,
        )


class _Timers:
    """The CPU budget and the wall-clock cap around one call; nothing of them is left when it returns.

    One watcher thread reads the process's CPU time and the clock, and stops the call with STOP_SIGNAL
    sent to the call's thread. A signal sent as the call ends must neither fail a check that finished
    nor reach a handler put back to the default, which ends the process: the worker would die, and the
    learner be blamed for it. So the handler stops raising before anything is put back, the watcher is
    waited for, and only then is the previous handler restored."""

    def __init__(self, cpu_seconds: float, wall_seconds: float) -> None:
        self.cpu_seconds, self.wall_seconds = cpu_seconds, wall_seconds
        self.usable = threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_kill")
        self._ending = False
        self._kind = "wall"

    def _stop(self, signum, frame) -> None:
        if not self._ending:
            raise BudgetExceeded(self._kind)

    def __enter__(self) -> _Timers:
        if not self.usable:
            return self
        self._ended = threading.Event()
        self._watcher = threading.Thread(target=self._watch, args=(threading.get_ident(),), daemon=True)
        self._previous = signal.getsignal(STOP_SIGNAL) or signal.SIG_DFL  # None: set outside Python
        signal.signal(STOP_SIGNAL, self._stop)
        try:
            self._watcher.start()
        except BaseException:
            self._disarm()
            raise
        return self

    def _watch(self, main: int) -> None:
        """Stop the call when it has used its CPU or its wall time, then again and again until it ends:
        code that catches one BudgetExceeded (a catch-all except inside a loop) meets the next one,
        outside its try sooner or later."""
        cpu_limit = time.process_time() + self.cpu_seconds
        wall_limit = time.monotonic() + self.wall_seconds
        cores = os.cpu_count() or 1
        stopping: _Meter | None = None  # since the first stop
        while True:
            cpu_left, wall_left = cpu_limit - time.process_time(), wall_limit - time.monotonic()
            if cpu_left > 0 and wall_left > 0:
                # The process cannot burn CPU faster than all cores at once: no need to look sooner.
                if self._ended.wait(min(wall_left, max(cpu_left / cores, 0.01))):
                    return
                continue
            self._kind = "cpu" if cpu_left <= 0 else "wall"
            signal.pthread_kill(main, STOP_SIGNAL)
            stopping = stopping or _Meter()
            if self._ended.wait(REPEAT_SECONDS):
                return
            since = stopping.usage()
            if on_unstoppable is not None and since.wall >= GIVE_UP_SECONDS and not since.machine_was_busy:
                on_unstoppable()

    def __exit__(self, *exc_info: object) -> None:
        if not self.usable:
            return
        try:
            self._ending = True
        finally:  # even if a signal raised before the line above ran
            self._disarm()

    def _disarm(self) -> None:
        self._ending = True
        self._ended.set()
        if self._watcher.is_alive():
            self._watcher.join()  # what it sends meanwhile reaches a handler that no longer raises
        signal.signal(STOP_SIGNAL, self._previous)


class Budget:
    """The pytest plugin: times every grader test's call, explains a timeout, re-runs a starved check."""

    def __init__(
        self, applies: Callable[[pytest.Item], bool], cpu_seconds: float = CPU_SECONDS, wall_seconds: float = WALL_SECONDS
    ) -> None:
        self.applies = applies  # which tests run learner code (the graders'; not the project's own)
        self.cpu_seconds, self.wall_seconds = cpu_seconds, wall_seconds
        self.usage: dict[str, Usage] = {}  # of the last call of each test that ran out of budget
        self.retried: set[str] = set()  # tests run a second time because the machine starved the first

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Iterator[None]:
        # Fixtures run the learner's code too (lab 6 imports its module in one).
        return (yield from self._timed(item))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        return (yield from self._timed(item))

    def _timed(self, item: pytest.Item) -> Iterator[None]:
        if not self.applies(item):
            return (yield)
        meter = _Meter()
        try:
            with _Timers(self.cpu_seconds, self.wall_seconds):
                return (yield)
        except BudgetExceeded as error:
            if error.usage is None:
                error.usage = meter.usage()
            self.usage[item.nodeid] = error.usage
            raise

    def starved(self, item: pytest.Item) -> bool:
        usage = self.usage.get(item.nodeid)
        return usage is not None and usage.machine_was_busy

    def message(self, item: pytest.Item, error: BudgetExceeded, retried: bool) -> str:
        """What the learner reads about a check that ran out of its budget."""
        usage = error.usage or self.usage.get(item.nodeid)
        if usage is None:  # raised where no check was timed: nothing measured, so nothing to blame
            return f"{item.name} stopped: it ran out of time, but how it used its time was not measured. Check again."
        if error.kind == "cpu" or usage.cpu >= STARVED_SHARE * usage.wall:
            return (
                f"{item.name} stopped: your code used {usage.cpu:.1f} s of CPU without finishing (a check needs "
                "well under a second). In Lambda this is a timeout. Look for a loop that never ends or a retry "
                "without a limit."
            )
        if usage.machine_was_busy:
            tried = " twice" if retried else ""
            return (
                f"{item.name} could not finish{tried}: this machine was too busy ({usage.starved:.0f} of "
                f"{usage.wall:.0f} s waiting for a free CPU). That is not your code. Close what keeps the "
                "machine busy and check again."
            )
        return (
            f"{item.name} stopped: your code waited {usage.wall:.0f} s while using only {usage.cpu:.1f} s of CPU. "
            "In Lambda this is a timeout. Look for a sleep, a lock, or a call that waits on something that "
            "never answers (a real network call: the graders have no network)."
        )
