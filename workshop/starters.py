"""The untouched starters, shipped with the package, and the learner's backups: `workshop reset`.

Each lab's starter is kept as workshop/starters/<lab id>.zip (not taken from git: a learner may have
no git history, or a commit of their own on top). A reset first copies the learner's version into
.workshop/backups/, which the workshop never deletes, so `workshop reset --undo` can bring it back.
Backups are exact (bytes, modes, empty and hidden folders, links) and complete or absent; the new
version of a lab is built beside it and swapped in, so a failure at any step loses nothing.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import sys
import tempfile
import zipfile
from collections.abc import Callable
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
    folder = folder or lab.folder("labs")
    try:
        current, original = files_in(folder), pristine(lab)
    except OSError as error:
        raise StarterError(f"cannot read {paths.relative(folder)} ({error}). Nothing was changed.") from None
    return sorted(name for name in current.keys() | original.keys() if current.get(name) != original.get(name))


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Make `folder` hold exactly `files` (the caller has backed up what was there)."""
    if folder.exists():
        shutil.rmtree(folder)
    for name, content in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def lab_folder(lab: Lab) -> Path:
    """labs/<lab>, which must be a folder or missing (a learner may have deleted it)."""
    folder = lab.folder("labs")
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        kind = "a symbolic link" if folder.is_symlink() else "a file"
        raise StarterError(
            f"{paths.relative(folder)} is {kind}, not a folder: nothing was changed. "
            "Move it out of the way (your work may be in it), then run the command again."
        )
    return folder


def _reason(error: OSError) -> str:
    """The first cause of an error, as `path: why` (shutil.copytree gathers its errors in a list)."""
    if isinstance(error, shutil.Error) and error.args and isinstance(error.args[0], list) and error.args[0]:
        source, _, why = error.args[0][0]
        return f"{source}: {why}"
    return str(error)


def _remove(path: Path) -> None:
    """Delete a folder of ours, read-only subfolders too (copies keep the learner's modes)."""

    def allow_and_retry(function: Callable[[str], object], name: str, _: object) -> None:
        os.chmod(os.path.dirname(name), 0o700)
        function(name)

    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        handler = "onexc" if sys.version_info >= (3, 12) else "onerror"
        shutil.rmtree(path, **{handler: allow_and_retry})


def _copy(source: Path, target: Path) -> None:
    """Copy a folder exactly: bytes, modes (the executable bit too), empty and hidden folders, links as links."""
    shutil.copytree(source, target, symlinks=True)


def _keep(lab: Lab, folder: Path, suffix: str = "") -> Path:
    """Copy the learner's lab into .workshop/backups/<lab>/<time><suffix>/, complete or not at all."""
    target = paths.BACKUPS / lab.id / f"{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}{suffix}"
    partial = target.with_name(f".{target.name}.partial")  # hidden: never a backup until complete
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy(folder, partial)
        partial.rename(target)
    except OSError as error:
        _remove(partial)
        raise StarterError(
            f"could not copy labs/{lab.id} to a backup in {paths.relative(target.parent)} ({_reason(error)}). "
            "Nothing was changed."
        ) from None
    return target


def _replace(lab: Lab, folder: Path, fill: Callable[[Path], None], saved: Path | None) -> None:
    """Make `folder` what `fill(new_folder)` writes: built beside it first, then swapped in.

    The new version is complete before the learner's folder is touched; if the swap fails, the folder
    is put back as it was.
    """
    kept = f" Your version is also in {paths.relative(saved)}." if saved else ""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{lab.id}.workshop-", dir=folder.parent))
    except OSError as error:
        raise StarterError(f"could not write beside labs/{lab.id} ({error}). Nothing was changed.{kept}") from None
    new, old = work / "new", work / "old"
    try:
        try:
            fill(new)
        except OSError as error:
            reason = _reason(error)
            raise StarterError(f"could not prepare labs/{lab.id} ({reason}). Nothing was changed.{kept}") from None
        try:
            if folder.exists():
                os.rename(folder, old)
            os.rename(new, folder)
        except OSError as error:
            if old.exists() and not folder.exists():
                os.rename(old, folder)
            raise StarterError(f"could not replace labs/{lab.id} ({error}). Nothing was changed.{kept}") from None
    finally:
        try:
            _remove(work)
        except OSError:
            pass  # our own hidden scratch folder: what it may hold is also in a backup taken before


def backups(lab: Lab) -> list[Path]:
    """The learner's backups of `lab`, oldest first (the ones `undo` itself took left out)."""
    folder = paths.BACKUPS / lab.id
    try:
        found = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError as error:
        raise StarterError(f"cannot read your backups of {lab.id} ({error}). Nothing was changed.") from None
    hidden_or_undone = [path for path in found if path.name.startswith(".") or path.name.endswith(BEFORE_UNDO)]
    return [path for path in found if path.is_dir() and path not in hidden_or_undone]


def latest_backup(lab: Lab) -> Path:
    """The backup `undo` brings back: the one the last reset took."""
    saved = backups(lab)
    if not saved:
        raise StarterError(
            f"there is no backup of {lab.id} to bring back (in {paths.relative(paths.BACKUPS / lab.id)}): "
            "`workshop reset` takes one before it puts the starter back. Nothing was changed."
        )
    return saved[-1]


def tree(folder: Path) -> dict[str, tuple]:
    """Everything in a folder a learner could notice: bytes and modes, folders (empty ones too), links."""

    def fail(error: OSError) -> None:
        raise error

    found: dict[str, tuple] = {}
    for root, folders, files in os.walk(folder, onerror=fail):
        for path in (Path(root, name) for name in folders + files):
            info, name = path.lstat(), path.relative_to(folder).as_posix()
            if stat.S_ISLNK(info.st_mode):
                found[name] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[name] = ("folder", stat.S_IMODE(info.st_mode))
            else:
                found[name] = ("file", stat.S_IMODE(info.st_mode), path.read_bytes())
    return found


def same_tree(one: Path, other: Path) -> bool:
    """Whether two folders hold exactly the same (False when either cannot be read)."""
    try:
        return tree(one) == tree(other)
    except OSError:
        return False


def reset(lab: Lab) -> Path | None:
    """Back up the learner's lab, then restore the starter. Returns the backup (None: the lab was missing)."""
    original = pristine(lab)  # read first: a damaged archive must not cost the learner their files
    folder = lab_folder(lab)
    saved = _keep(lab, folder) if folder.exists() else None
    _replace(lab, folder, lambda new: write_files(new, original), saved)
    return saved


def undo(lab: Lab, source: Path) -> Path | None:
    """Bring back `source`, a backup, exactly; the current version is kept first. Returns where (None: no lab)."""
    folder = lab_folder(lab)
    saved: list[Path] = []

    def fill(new: Path) -> None:
        try:
            _copy(source, new)  # the whole backup, before anything of the learner's is touched
        except OSError as error:
            raise StarterError(
                f"cannot read your backup {paths.relative(source)} ({_reason(error)}). Nothing was changed."
            ) from None
        if folder.exists():
            saved.append(_keep(lab, folder, BEFORE_UNDO))

    _replace(lab, folder, fill, None)
    return saved[0] if saved else None


def refresh_archives(labs: list[Lab]) -> list[Path]:
    """Maintainers: pack labs/<lab> into workshop/starters/<lab>.zip after changing a starter."""
    paths.STARTERS.mkdir(exist_ok=True)
    written = []
    for lab in labs:
        archive(lab).write_bytes(pack(files_in(lab.folder("labs"))))
        written.append(archive(lab))
    return written
