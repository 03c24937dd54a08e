"""Where things live in a checkout of the workshop."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The package is installed in editable mode from the checkout, so the checkout is its parent.
ROOT = Path(__file__).resolve().parent.parent
# The learner's tree. WORKSHOP_LABS points it elsewhere: the project's tests grade broken copies so.
LABS = Path(os.environ.get("WORKSHOP_LABS", ROOT / "labs")).resolve()
SOLUTIONS = ROOT / "solutions"
TESTS = ROOT / "tests"
DOCS = ROOT / "docs"
# The course manifest. WORKSHOP_MANIFEST points it elsewhere: the project's tests try broken ones so.
MANIFEST = Path(os.environ.get("WORKSHOP_MANIFEST", ROOT / "labs" / "labs.toml")).resolve()
# The untouched starters, shipped with the package, for `workshop reset`.
STARTERS = Path(__file__).resolve().parent / "starters"
WORKSHOP_STATE = ROOT / ".workshop"
# Derived data only (never the learner's work): safe to delete at any time.
CACHE = WORKSHOP_STATE / "cache"
# Copies of the learner's work taken before a reset, beside their labs: never deleted by the workshop.
BACKUPS = LABS.parent / ".workshop" / "backups"

TARGETS = {"labs": LABS, "solutions": SOLUTIONS}


def workshop_command() -> list[str]:
    """The `workshop` command as a learner runs it: the console script installed beside this Python
    (what `make check` runs), or `python -m workshop` where there is none. The benchmarks and the
    tests run this one: `python -m workshop` from the checkout grades measurably slower (0.3-0.7 s a
    lab on this project's 2-core machine), which a learner never sees."""
    script = Path(sys.executable).with_name("workshop")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "workshop"]


def target_root(name: str) -> Path:
    """The tree a grader reads: `labs` (the learner's code) or `solutions` (the reference)."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown target {name!r}: choose one of {', '.join(TARGETS)}") from None


def relative(path: Path) -> str:
    """A path as a learner would type it from the checkout."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` so that a reader (another grading process) sees the old file or the new
    one, never half of one: a temporary file beside it, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
