"""The untouched starters, shipped with the package, and the learner's backups: `workshop reset`.

Each lab's starter is kept as workshop/starters/<lab id>.zip (not taken from git: a learner may have
no git history, or a commit of their own on top). A reset first copies the learner's version into
.workshop/backups/, which the workshop never deletes, so `workshop reset --undo` can bring it back.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from datetime import datetime
from pathlib import Path

from workshop import paths
from workshop.manifest import Lab

IGNORED_PARTS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
BEFORE_UNDO = "-before-undo"
ZIP_TIME = (2026, 1, 1, 0, 0, 0)  # fixed, so that the same starter always packs to the same bytes


class StarterError(RuntimeError):
    """A starter archive or backup is missing or unreadable; the message says what to do."""


def files_in(folder: Path) -> dict[str, bytes]:
    """Every file below `folder`, by its path relative to it (caches left out)."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not IGNORED_PARTS & set(path.relative_to(folder).parts)
    }


def archive(lab: Lab) -> Path:
    return paths.STARTERS / f"{lab.id}.zip"


def pack(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name in sorted(files):
            entry = zipfile.ZipInfo(name, ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(entry, files[name])
    return buffer.getvalue()


def pristine(lab: Lab) -> dict[str, bytes]:
    """The lab's starter as shipped."""
    try:
        with zipfile.ZipFile(archive(lab)) as bundle:
            return {name: bundle.read(name) for name in bundle.namelist()}
    except (OSError, zipfile.BadZipFile) as error:
        raise StarterError(
            f"the starter of {lab.id} ({paths.relative(archive(lab))}) cannot be read: {error}. "
            "Restore that file from the workshop's repository."
        ) from None


def changed_files(lab: Lab, folder: Path | None = None) -> list[str]:
    """Files of `folder` (the learner's lab) that differ from the starter, added or removed ones too."""
    current, original = files_in(folder or lab.folder("labs")), pristine(lab)
    return sorted(name for name in current.keys() | original.keys() if current.get(name) != original.get(name))


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Make `folder` hold exactly `files` (the caller has backed up what was there)."""
    if folder.exists():
        shutil.rmtree(folder)
    for name, content in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def backup(lab: Lab, suffix: str = "") -> Path:
    """Copy the learner's lab into .workshop/backups/<lab>/<time><suffix>/ and return that folder."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    target = paths.BACKUPS / lab.id / f"{stamp}{suffix}"
    write_files(target, files_in(lab.folder("labs")))
    return target


def backups(lab: Lab) -> list[Path]:
    """The learner's backups of `lab`, oldest first (the ones `undo` itself took left out)."""
    folder = paths.BACKUPS / lab.id
    found = sorted(folder.iterdir()) if folder.is_dir() else []
    return [path for path in found if path.is_dir() and not path.name.endswith(BEFORE_UNDO)]


def reset(lab: Lab) -> Path:
    """Back up the learner's lab, then restore the starter. Returns the backup."""
    original = pristine(lab)  # read first: a damaged archive must not cost the learner their files
    saved = backup(lab)
    write_files(lab.folder("labs"), original)
    return saved


def undo(lab: Lab) -> Path:
    """Bring back the learner's version saved by the last reset (the current one is backed up too)."""
    saved = backups(lab)
    if not saved:
        raise StarterError(f"there is no backup of {lab.id} to bring back (in {paths.relative(paths.BACKUPS / lab.id)})")
    backup(lab, BEFORE_UNDO)
    write_files(lab.folder("labs"), files_in(saved[-1]))
    return saved[-1]


def refresh_archives(labs: list[Lab]) -> list[Path]:
    """Maintainers: pack labs/<lab> into workshop/starters/<lab>.zip after changing a starter."""
    paths.STARTERS.mkdir(exist_ok=True)
    written = []
    for lab in labs:
        archive(lab).write_bytes(pack(files_in(lab.folder("labs"))))
        written.append(archive(lab))
    return written
