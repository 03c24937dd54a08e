"""`workshop watch`: grade a lab again every time one of its files is saved.

It polls modification times rather than relying on file-system events, which do not reach some WSL,
network and container set-ups. The grading engine stays warm in this process between saves (its
imports and the lab's template transform are done once), and each save is graded in fresh workers,
forked ahead while the learner types: they wait with the grader loaded, and a save only says go.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from workshop import manifest
from workshop.manifest import Lab
from workshop.starters import IGNORED_PARTS

POLL_SECONDS = 0.2


def snapshot(folder: Path) -> dict[str, float]:
    return {
        str(path): path.stat().st_mtime
        for path in folder.rglob("*")
        if path.is_file() and not IGNORED_PARTS & set(path.parts)
    }


def watch(lab: Lab, max_rounds: int | None = None) -> int:
    """Grade now, then after every change; Ctrl-C stops. `max_rounds` bounds it (for tests).

    The other labs are graded once, after the first showing, so that the progress table says which are
    done (their code does not change while this one is watched)."""
    folder, rounds = lab.folder("labs"), 0
    seen: dict[str, float] | None = None
    results: dict[str, object] = {}
    with _ctrl_c_remembered() as stopping:
        while max_rounds is None or rounds < max_rounds:
            if stopping.is_set():  # a Ctrl-C whose KeyboardInterrupt something swallowed
                raise KeyboardInterrupt
            current = snapshot(folder)
            if current != seen:
                seen = current
                rounds += 1
                results.update(grade([lab]))
                show(lab, results, folder)
                ready_next(lab)
            elif len(results) < len(manifest.labs()):
                results.update(grade([other for other in manifest.labs() if other.id not in results]))
                show(lab, results, folder)
            time.sleep(POLL_SECONDS)
    return 0


@contextmanager
def _ctrl_c_remembered() -> Iterator[threading.Event]:
    """Ctrl-C raises KeyboardInterrupt as always, and is also remembered. Python drops an exception
    raised while it runs an object's finalizer (`Exception ignored in ...`), so a Ctrl-C that lands in
    one, or in a library's catch-all, was lost and watch went on: seen once in the test suite on a
    busy machine. The loop stops on the remembered one."""
    stopping = threading.Event()
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield stopping  # signals reach the main thread only; an ignored Ctrl-C stays ignored
        return

    def interrupted(signum: int, frame: object) -> None:
        stopping.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield stopping
    finally:
        signal.signal(signal.SIGINT, previous)


def grade(labs: list[Lab]) -> dict[str, object]:
    """Grade `labs` with this process's warm engine, by lab id."""
    from workshop.grading import runner

    return {result.lab.id: result for result in runner.grade(labs, "labs", long_lived=True)}


def ready_next(lab: Lab) -> None:
    """Fork the workers that will grade the next save, now, while the learner reads and types."""
    from workshop.grading import runner

    runner.ready_next(lab, "labs")


def show(lab: Lab, results: dict[str, object], folder: Path) -> None:
    print("\033[2J\033[H" if sys.stdout.isatty() else "", end="")
    print(render(lab, results))
    print(f"\nWatching {folder.name}/ for changes (Ctrl-C to stop)...", flush=True)


def render(lab: Lab, results: dict[str, object] | None = None) -> str:
    """The progress table (the labs graded so far), then `lab` as `workshop check LAB` shows it."""
    from workshop.grading import report

    labs = list(manifest.labs())
    results = results if results is not None else grade([lab])
    graded = [results[other.id] for other in labs if other.id in results]
    return report.render(labs, graded, "labs", focus=lab)
