"""A function's memory, measured and held to its MemorySize: one model for the graders and the local runtime.

Lambda's limit counts the whole sandbox: the function and the Python runtime that runs it. Here the
function shares a process with the workshop's own Python, moto, pytest..., so we count what the
function adds, and the runtime's share as a constant:

    used = RUNTIME_BASELINE_MB + what its init left resident + the peak its invocation added on top

(an init is held to the limit by its own peak). Over MemorySize, the function is out of memory, as it
is when Python raises MemoryError in it.

- Linux: from /proc/self/status, VmRSS (resident now) and VmHWM (the peak), the peak reset before each
  phase by writing "5" to /proc/self/clear_refs. Modules the process had already imported (boto3,
  often Powertools) are not counted again, so the figure leans low, never high.
- Elsewhere (macOS): ru_maxrss only, the process's peak since it started, which cannot be reset. A
  phase is seen only by how far it raises that peak: a large allocation is still caught, but an
  overrun that stays under what the process (moto, earlier tests) once held is not, and what an init
  leaves resident is taken as its peak. The address-space guard below is Linux only.
- Memory that warm invocations keep beyond their init's (a cache that grows) is not counted: moto's
  in-memory AWS lives in the same process and would be counted with it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import resource
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workshop.lambda_runtime import FunctionError, Handler

# Lambda's Python runtime holds 30 to 40 MB before the function's code is imported (its REPORT line
# shows about that for a function that does nothing). Our process holds far more than that, none of it
# the function's, so the runtime's share is this constant, at the top of that range.
RUNTIME_BASELINE_MB = 40

# The safety net's slack above MemorySize, in address space (not resident memory): glibc reserves 64 MB
# of address space for each thread's arena and 8 MB for each thread's stack, and libraries map files,
# none of it resident. Measured: no init or invocation of the reference solutions' graders grows it by
# more than 16 MB. 4 GB is far more than a function's threads reserve, and still stops a runaway
# allocation (20 or 50 GB fail at once) before it swaps the laptop to a halt.
GUARD_SLACK_MB = 4096

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
RESET_PEAK = "5"  # clear_refs: reset the peak resident size (VmHWM) to the resident size now


def read_status_kib(field_name: str) -> int:
    """One figure of /proc/self/status (VmRSS, VmHWM, VmSize...), in KiB; OSError where there is none."""
    return read_statuses_kib(field_name)[0]


def read_statuses_kib(*field_names: str) -> tuple[int, ...]:
    """Figures of /proc/self/status, in KiB, in one read (every phase of a function reads several)."""
    found = {}
    for line in STATUS.read_bytes().split(b"\n"):
        name, _, value = line.partition(b":")
        found[name] = value
    try:
        return tuple(int(found[name.encode()].split()[0]) for name in field_names)
    except (KeyError, IndexError, ValueError):
        raise OSError(f"no {', '.join(field_names)} in {STATUS}") from None


def reset_peak_rss() -> int | None:
    """Reset the process's peak resident size (Linux): the resident size now, in KiB; None elsewhere."""
    try:
        CLEAR_REFS.write_text(RESET_PEAK)
        return read_status_kib("VmRSS")
    except OSError:
        return None


def process_peak_rss_kib() -> int:
    """The process's peak resident size since it started, from getrusage (every platform)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux


@dataclass(frozen=True)
class Phase:
    """What one phase of a function (its init, or one invocation) added to the process, in KiB."""

    peak_kib: int  # the highest it reached
    kept_kib: int  # what was still resident when it ended


class PhaseMeter:
    """Measures a phase from the moment it is created: `result()` once the phase is over."""

    def __init__(self) -> None:
        self._baseline_kib = reset_peak_rss()
        # getrusage only where /proc cannot say (it is a slow call: 1% of a grading, made for every phase)
        self._process_peak_kib = process_peak_rss_kib() if self._baseline_kib is None else 0

    def result(self) -> Phase:
        if self._baseline_kib is not None:
            try:
                peak, now = read_statuses_kib("VmHWM", "VmRSS")
            except OSError:  # /proc read at the start, not now: nothing measured, so nothing to blame
                return Phase(peak_kib=0, kept_kib=0)
            kept = max(0, now - self._baseline_kib)
            return Phase(peak_kib=max(peak - self._baseline_kib, kept), kept_kib=kept)
        rise = max(0, process_peak_rss_kib() - self._process_peak_kib)
        return Phase(peak_kib=rise, kept_kib=rise)


def used_mb(*added_kib: int) -> int:
    """What Lambda would count, in MB: the runtime's share and what the function added."""
    return RUNTIME_BASELINE_MB + math.ceil(sum(added_kib) / 1024)


@contextlib.contextmanager
def address_space_guard(headroom_mb: int) -> Iterator[None]:
    """A safety net, not the limit: allocations beyond `headroom_mb` more address space raise MemoryError.

    RLIMIT_AS is the one limit Linux enforces at allocation time (a huge allocation fails at once
    instead of filling RAM and swap). It covers the whole process, so it is set only while the
    function runs and put back after, and never loosens a limit already set. Not where there is no
    /proc (macOS, whose kernel does not enforce it reliably), nor where the kernel refuses it.
    """
    saved = resource.getrlimit(resource.RLIMIT_AS)
    soft, hard = saved
    try:
        limit = read_status_kib("VmSize") * 1024 + headroom_mb * 1024 * 1024
        for bound in (soft, hard):
            if bound != resource.RLIM_INFINITY:
                limit = min(limit, bound)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        installed = True
    except (OSError, ValueError):  # no /proc, or a limit the kernel refuses: the function runs without the net
        installed = False
    try:
        yield
    finally:
        if installed:
            resource.setrlimit(resource.RLIMIT_AS, saved)


def guarded(memory_size_mb: int) -> contextlib.AbstractContextManager[None]:
    """The safety net for a function of this MemorySize while its code runs."""
    return address_space_guard(memory_size_mb + GUARD_SLACK_MB)


class OutOfMemory(FunctionError):
    """The function went over its MemorySize: Lambda would have stopped it (Runtime.OutOfMemory)."""

    def __init__(self, function: str, memory_size_mb: int, used: int | None, template: str, *, at_import: bool = False) -> None:
        when = " at import" if at_import else ""
        if used is None:
            what = f"{function} ran out of memory{when} (Python raised MemoryError) under its MemorySize of {memory_size_mb:,} MB"
        else:
            what = f"{function} used about {used:,} MB{when}, more than its MemorySize of {memory_size_mb:,} MB"
        super().__init__(
            f"Runtime.OutOfMemory: {what} ({template}). Lambda stops a function that goes over its memory, "
            f"and counts its Python runtime too (about {RUNTIME_BASELINE_MB} MB). Hold less at once: stream "
            "or page through large data instead of reading it whole, and let go of what you no longer need; "
            "or raise MemorySize, if the work really needs it (every invocation pays for it)."
        )
        self.used_mb = used


@dataclass
class FunctionMemory:
    """One function's MemorySize, and what its init left resident, which each warm invocation still holds."""

    function: str  # as the learner knows it: its folder (items_api)
    memory_size_mb: int
    template: str  # where MemorySize is set, for the message
    held_kib: int = 0

    def after_init(self, phase: Phase) -> int:
        """The memory used by the init (its peak), in MB; remembers what it left resident."""
        self.held_kib = phase.kept_kib
        return used_mb(phase.peak_kib)

    def after_invocation(self, phase: Phase) -> int:
        """The memory used by a warm invocation, in MB: what the init holds and the invocation's peak."""
        return used_mb(self.held_kib, phase.peak_kib)

    def out_of_memory(self, used: int | None, *, at_import: bool = False) -> OutOfMemory:
        return OutOfMemory(self.function, self.memory_size_mb, used, self.template, at_import=at_import)

    @contextlib.contextmanager
    def enforced(self, *, at_import: bool) -> Iterator[None]:
        """Run the function's init or one invocation: OutOfMemory when it goes over MemorySize.

        Over the limit, OutOfMemory replaces whatever the function raised after: in Lambda it would
        not have got that far.
        """
        meter = PhaseMeter()
        try:
            with guarded(self.memory_size_mb):
                yield
        except MemoryError as error:
            raise self.out_of_memory(None, at_import=at_import) from error
        except Exception as error:
            used = self._used(meter.result(), at_import)
            if used > self.memory_size_mb:
                raise self.out_of_memory(used, at_import=at_import) from error
            raise
        used = self._used(meter.result(), at_import)
        if used > self.memory_size_mb:
            raise self.out_of_memory(used, at_import=at_import)

    def _used(self, phase: Phase, at_import: bool) -> int:
        return self.after_init(phase) if at_import else self.after_invocation(phase)

    def cold_start(self, load: Callable[[], Handler]) -> Handler:
        """`load()` (the import of the function: its init), then its handler held to MemorySize.

        The handler returned is the function's own, wrapped: the same arguments, the same result, and
        OutOfMemory when an invocation goes over.
        """
        with self.enforced(at_import=True):
            handler = load()

        @functools.wraps(handler)
        def within_memory_size(*arguments: Any, **keywords: Any) -> Any:
            with self.enforced(at_import=False):
                return handler(*arguments, **keywords)

        return within_memory_size
