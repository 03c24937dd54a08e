"""Are the graders the ones the workshop shipped? A changed grader must never go unnoticed.

The grader files are tests/conftest.py, every tests/test_*.py (one per lab) and every .py file of this
package. Their SHA-256 hashes are recorded in workshop/graders.sha256 (sha256sum's format, sorted), which
the maintainers rewrite with `workshop verify --refresh-starters` after changing a grader. `check`,
`status` and `doctor` compare the files with it and say how to restore what changed.

This is not a security boundary (a learner can edit the record too); it catches the accidental edit, the
stray search-and-replace, the deleted conftest, so that a lab never shows "done" on a grader that is not
the workshop's.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from workshop import paths
from workshop.manifest import Lab

RECORD = "workshop/graders.sha256"
CONFTEST = "tests/conftest.py"
GRADING_PACKAGE = "workshop/grading"
RECORD_LINE = re.compile(r"^(?P<digest>[0-9a-f]{64})  (?P<path>\S.*)$")
DOWNLOAD_AGAIN = "(or download the workshop again)"


class Kind(StrEnum):
    CHANGED = "changed"
    DELETED = "deleted"
    NEW = "new"  # a grader file the record does not list


@dataclass(frozen=True)
class Change:
    path: str  # relative to the checkout, with forward slashes, as a learner types it
    kind: Kind

    @property
    def shared(self) -> bool:
        """Whether every lab's verdict depends on this file (the record itself counts: it vouches for all)."""
        return self.path in (CONFTEST, RECORD) or self.path.startswith(f"{GRADING_PACKAGE}/")

    def describe(self) -> str:
        if self.kind is Kind.CHANGED:
            return f"{self.path} was changed since the workshop was installed"
        if self.kind is Kind.DELETED:
            return f"{self.path} is missing: it was deleted since the workshop was installed"
        return f"{self.path} was added since the workshop was installed"


def grader_files(root: Path = paths.ROOT) -> list[str]:
    """The grader files present under `root`, relative to it, sorted."""
    found = [root / CONFTEST, *(root / "tests").glob("test_*.py"), *(root / GRADING_PACKAGE).rglob("*.py")]
    return sorted(path.relative_to(root).as_posix() for path in found if path.is_file())


def digest(path: Path) -> str:
    # A Windows checkout with git's autocrlf turns every LF into CRLF: the same grader in other bytes,
    # which must not read as a change. Line endings never alter what Python runs, so hash them as LF.
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def current_hashes(root: Path = paths.ROOT) -> dict[str, str]:
    return {name: digest(root / name) for name in grader_files(root)}


def record(root: Path = paths.ROOT) -> Path:
    """Maintainers: write the hashes of the grader files as they are now (`workshop verify --refresh-starters`)."""
    target = root / RECORD
    lines = [f"{hash_}  {name}\n" for name, hash_ in sorted(current_hashes(root).items())]
    target.write_text("".join(lines), encoding="utf-8", newline="\n")
    return target


def recorded_hashes(root: Path = paths.ROOT) -> dict[str, str] | None:
    """The hashes as shipped, or None when the record is unreadable or malformed."""
    try:
        text = (root / RECORD).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    matches = [RECORD_LINE.match(line) for line in text.splitlines() if line.strip()]
    if not matches or not all(matches):
        return None
    return {match["path"]: match["digest"] for match in matches if match}


def changes(root: Path = paths.ROOT) -> list[Change]:
    """The grader files under `root` that differ from the record, sorted by path.

    Without a readable record nothing can be vouched for: the one change is then the record itself.
    """
    recorded = recorded_hashes(root)
    if recorded is None:
        kind = Kind.CHANGED if (root / RECORD).is_file() else Kind.DELETED
        return [Change(RECORD, kind)]
    current = current_hashes(root)
    found = []
    for name in sorted(recorded.keys() | current.keys()):
        if name not in current:
            found.append(Change(name, Kind.DELETED))
        elif name not in recorded:
            found.append(Change(name, Kind.NEW))
        elif current[name] != recorded[name]:
            found.append(Change(name, Kind.CHANGED))
    return found


def how_to_restore(found: list[Change]) -> str:
    """The fix for `found`, as the doctor prints it: git restores shipped files; added ones are deleted."""
    restore = [change.path for change in found if change.kind is not Kind.NEW]
    added = [change.path for change in found if change.kind is Kind.NEW]
    steps = []
    if restore:
        steps.append(f"restore {'it' if len(restore) == 1 else 'them'}: `git checkout -- {' '.join(restore)}`")
    if added:
        steps.append(f"delete {', '.join(added)}")
    return f"{'; '.join(steps)} {DOWNLOAD_AGAIN}"


def affecting(lab: Lab, found: list[Change]) -> list[Change]:
    """The changes `lab`'s verdict depends on: its own grader, and the files every grader uses."""
    own = lab.grader.relative_to(paths.ROOT).as_posix()
    return [change for change in found if change.shared or change.path == own]


def problem_for(lab: Lab, root: Path = paths.ROOT) -> str | None:
    """What to tell the learner instead of `lab`'s verdict when a grader it depends on changed, or None.

    The engine marks the lab's result as an error with this text: a changed grader may pass anything.
    """
    found = affecting(lab, changes(root))
    if not found:
        return None
    what = "; ".join(change.describe() for change in found)
    fix = how_to_restore(found)
    return f"{what}, so this lab's verdict cannot be trusted. {fix[:1].upper()}{fix[1:]}."
