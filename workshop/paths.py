"""Where things live in a checkout of the workshop."""

from __future__ import annotations

from pathlib import Path

# The package is installed in editable mode from the checkout, so the checkout is its parent.
ROOT = Path(__file__).resolve().parent.parent
LABS = ROOT / "labs"
SOLUTIONS = ROOT / "solutions"
TESTS = ROOT / "tests"
DOCS = ROOT / "docs"
MANIFEST = LABS / "labs.toml"
# Derived data only (never the learner's work): safe to delete at any time.
CACHE = ROOT / ".workshop" / "cache"

TARGETS = {"labs": LABS, "solutions": SOLUTIONS}


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
