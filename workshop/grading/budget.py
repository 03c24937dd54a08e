"""How long a check may take, measured on the learner's code and not on the machine.

A check's budget is CPU time: a loop that never ends burns CPU, a busy laptop only delays it. The
call phase of every grader test runs under a CPU timer (ITIMER_PROF counts this process's CPU time,
all threads), with a wall-clock cap far behind it for code that waits instead of computing. When the
cap is reached, Linux's scheduler statistics tell the two kinds of waiting apart: time spent ready to
run but without a CPU (the machine is busy: the check is run once more and the learner is never
blamed) and time the code chose to wait (a sleep, a lock, a call that never answers: the learner's).

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
# After the first, how often the timers fire again until the check gives up.
REPEAT_SECONDS = 0.25
# The wall-clock cap's signal: a real signal (not a flag), so that it interrupts a sleep or a wait.
WALL_SIGNAL = signal.SIGUSR2


class BudgetExceeded(BaseException):
    """Raised in the check's thread when its budget runs out.

    A BaseException, so that the learner's `except Exception:` (or a library's retry loop) cannot
    swallow it and go on forever.
    """

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind  # "cpu" or "wall"


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
    """The CPU timer and the wall-clock cap around one call; both are gone when it returns.

    A signal sent as the call ends must neither fail a check that finished nor reach a handler put
    back to the default, which ends the process: the worker would die, and the learner be blamed for
    it. So the handlers stop raising before anything is put back, the cap's thread is waited for, and
    only then are the previous handlers restored."""

    def __init__(self, cpu_seconds: float, wall_seconds: float) -> None:
        self.cpu_seconds, self.wall_seconds = cpu_seconds, wall_seconds
        self.usable = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
        self._ending = False

    def _raise(self, kind: str):
        def handler(signum, frame) -> None:
            if not self._ending:
                raise BudgetExceeded(kind)

        return handler

    def __enter__(self) -> _Timers:
        if not self.usable:
            return self
        self._ended = threading.Event()
        self._cap = threading.Thread(target=self._wall_cap, args=(threading.get_ident(),), daemon=True)
        self._previous = (signal.signal(signal.SIGPROF, self._raise("cpu")), signal.signal(WALL_SIGNAL, self._raise("wall")))
        try:
            # Both timers fire again and again until the call ends: code that catches one BudgetExceeded
            # (a catch-all except inside a loop) meets the next one, outside its try sooner or later.
            signal.setitimer(signal.ITIMER_PROF, self.cpu_seconds, REPEAT_SECONDS)
            self._cap.start()
        except BaseException:  # a budget so small that it ran out already: nothing may stay armed
            self._disarm()
            raise
        return self

    def _wall_cap(self, main: int) -> None:
        wait = self.wall_seconds
        while not self._ended.wait(wait):
            signal.pthread_kill(main, WALL_SIGNAL)
            wait = REPEAT_SECONDS

    def __exit__(self, *exc_info: object) -> None:
        if not self.usable:
            return
        try:
            self._ending = True
        finally:  # even if a signal raised before the line above ran
            self._disarm()

    def _disarm(self) -> None:
        self._ending = True
        signal.setitimer(signal.ITIMER_PROF, 0)
        self._ended.set()
        if self._cap.is_alive():
            self._cap.join()  # what it sends meanwhile reaches a handler that no longer raises
        signal.signal(signal.SIGPROF, self._previous[0])
        signal.signal(WALL_SIGNAL, self._previous[1])


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
        except BudgetExceeded:
            self.usage[item.nodeid] = meter.usage()
            raise

    def starved(self, item: pytest.Item) -> bool:
        usage = self.usage.get(item.nodeid)
        return usage is not None and usage.machine_was_busy

    def message(self, item: pytest.Item, error: BudgetExceeded, retried: bool) -> str:
        """What the learner reads about a check that ran out of its budget."""
        usage = self.usage.get(item.nodeid) or Usage(self.wall_seconds, self.cpu_seconds, None)
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
