"""What the learner's code left running after a check: threads and child processes.

Lambda freezes the execution environment once the handler returns, so a thread or a process that is
still at work then may never finish. Checked after every grader test: a new non-daemon thread or a
child process still alive (after a short grace period) fails the test, and a child process is killed.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

GRACE_SECONDS = 0.5


def _children() -> set[int]:
    """This process's live child processes, from /proc (Linux; elsewhere none are seen). Kernels built
    without /proc/<pid>/task/<tid>/children are read the long way: every process's parent (~1 ms)."""
    try:
        return {pid for task in Path("/proc/self/task").iterdir() for pid in map(int, (task / "children").read_text().split()) if _alive(pid)}
    except FileNotFoundError:
        pass
    except OSError:
        return set()
    me = os.getpid()
    try:
        pids = [int(entry.name) for entry in os.scandir("/proc") if entry.name.isdigit()]
    except OSError:
        return set()  # no /proc (macOS)
    return {pid for pid in pids if _state_and_parent(pid)[1] == me and _alive(pid)}


def _state_and_parent(pid: int) -> tuple[str, int | None]:
    """A process's state letter and parent pid, from /proc/<pid>/stat ("", None when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (OSError, IndexError, ValueError):
        return "", None


def _alive(pid: int) -> bool:
    state = _state_and_parent(pid)[0]
    return state not in ("", "Z", "X")  # a zombie has ended; only its exit status is left to collect


def running() -> tuple[set[threading.Thread], set[int]]:
    return set(threading.enumerate()), _children()


def left_running(before: tuple[set[threading.Thread], set[int]]) -> str:
    """What was started since `before` and is still running after a grace period, in words ('' for nothing)."""
    threads, children = before
    deadline = time.monotonic() + GRACE_SECONDS
    new_threads = [t for t in threading.enumerate() if t not in threads and not t.daemon]
    for thread in new_threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    new_children = _children() - children
    while new_children and time.monotonic() < deadline:
        time.sleep(0.05)
        new_children = {pid for pid in new_children if _alive(pid)}
    words = [f"a thread ({t.name})" for t in new_threads if t.is_alive()]
    for pid in sorted(new_children):
        words.append(f"a process (pid {pid})")
        try:
            os.kill(pid, signal.SIGKILL)  # nothing of the learner's may outlive its check
        except OSError:
            pass
    return ", ".join(words)
