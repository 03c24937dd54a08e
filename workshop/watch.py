"""`workshop watch`: grade a lab again every time one of its files is saved.

It polls modification times rather than relying on file-system events, which do not reach some WSL,
network and container set-ups. The grading engine stays warm in this process between saves (its
imports and the lab's template transform are done once), and each save is graded in a fresh worker.
"""

from __future__ import annotations

import sys
import time
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
    """Grade now, then after every change; Ctrl-C stops. `max_rounds` bounds it (for tests)."""
    folder, rounds = lab.folder("labs"), 0
    seen: dict[str, float] | None = None
    while max_rounds is None or rounds < max_rounds:
        current = snapshot(folder)
        if current != seen:
            seen = current
            rounds += 1
            print("\033[2J\033[H" if sys.stdout.isatty() else "", end="")
            print(render(lab))
            print(f"\nWatching {folder.name}/ for changes (Ctrl-C to stop)...", flush=True)
        time.sleep(POLL_SECONDS)
    return 0


def render(lab: Lab) -> str:
    """The lab graded now, as `workshop check LAB` shows it."""
    from workshop.grading import report, runner

    return report.render(list(manifest.labs()), runner.grade([lab], "labs", long_lived=True), "labs")
