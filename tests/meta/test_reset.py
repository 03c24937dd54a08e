"""`workshop reset` and `workshop reset --undo`, run for real on temporary copies of labs/: nothing is lost.

Each test copies the starters into a temporary folder that WORKSHOP_LABS points the command at (as
test_cli.py does), so the repository's labs/ and .workshop/ are never touched. Backups then live in
<tmp>/.workshop/backups/<lab id>/.
"""

from __future__ import annotations

import ctypes
import os
import pty
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from workshop import manifest, paths, starters

import launcher  # tests/meta is on sys.path, as for test_cli
from test_cli import labs  # noqa: F401 (the fixture: a copy of the untouched starters; tests/meta is on sys.path)

LAB1 = manifest.find("lab01")
APP = Path("items_api") / "app.py"


def _without_root_privileges() -> None:
    """In the child only: let root obey file modes (drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def workshop(labs: Path, *arguments: str, obey_modes: bool = False) -> subprocess.CompletedProcess:
    """Run the real CLI with stdin not a terminal; `obey_modes`: unreadable files stay unreadable, even as root."""
    env = {**os.environ, "WORKSHOP_LABS": str(labs), "NO_COLOR": "1"}
    if obey_modes and os.geteuid() == 0:  # a process of its own that drops root's privileges first
        return subprocess.run([*paths.workshop_command(), *arguments], cwd=paths.ROOT, env=env, capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL, preexec_fn=_without_root_privileges)
    return launcher.run(list(arguments), cwd=paths.ROOT, env=env, timeout=120)


def backups_of(labs: Path, lab: manifest.Lab = LAB1) -> list[Path]:
    folder = labs.parent / ".workshop" / "backups" / lab.id
    return sorted(folder.iterdir()) if folder.is_dir() else []


def snapshot(folder: Path) -> dict[str, tuple]:
    """Everything a learner could notice: each file's bytes and mode, each folder (empty ones too), each link."""
    found: dict[str, tuple] = {".": ("folder", stat.S_IMODE(folder.lstat().st_mode))}
    for path in sorted(folder.rglob("*")):
        name, info = path.relative_to(folder).as_posix(), path.lstat()
        if path.is_symlink():
            found[name] = ("link", os.readlink(path))
        elif path.is_dir():
            found[name] = ("folder", stat.S_IMODE(info.st_mode))
        else:
            found[name] = ("file", stat.S_IMODE(info.st_mode), path.read_bytes())
    return found


def refused(run: subprocess.CompletedProcess) -> str:
    """A clear refusal: exit 2, one `workshop:` message, no traceback. Returns the message."""
    assert run.returncode == 2, f"exit {run.returncode}, expected 2\n{run.stdout}\n{run.stderr}"
    assert run.stderr.startswith("workshop: ") and "Traceback" not in run.stderr, run.stderr
    return run.stderr


def edit(labs: Path, text: str) -> Path:
    app = labs / LAB1.id / APP
    app.write_text(app.read_text() + f"\n# {text}\n")
    return app


# --- reset, then undo: the folder comes back exactly ---------------------------------------------------


def test_undo_brings_back_the_folder_exactly_as_it_was_before_the_reset(labs):
    lab = labs / LAB1.id
    edit(labs, "my work in progress")
    (lab / ".ipynb_checkpoints").mkdir()
    (lab / ".ipynb_checkpoints" / "explore-checkpoint.ipynb").write_text('{"cells": []}')
    (lab / "scratch" / "empty").mkdir(parents=True)
    script = lab / "items_api" / "try.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    (lab / "items_api" / "frozen.txt").write_text("read-only on purpose")
    (lab / "items_api" / "frozen.txt").chmod(0o444)
    (lab / "latest").symlink_to(APP)
    (lab / "notes").mkdir()
    (lab / "notes" / "plan.md").write_text("kept in a read-only folder")
    (lab / "notes").chmod(0o555)
    before = snapshot(lab)

    reset = workshop(labs, "reset", "1", "--yes", obey_modes=True)
    assert reset.returncode == 0, reset.stderr
    assert starters.files_in(lab) == starters.pristine(LAB1) and not (lab / "scratch").exists()

    undo = workshop(labs, "reset", "--undo", "1", obey_modes=True)
    assert undo.returncode == 0, undo.stderr
    after = snapshot(lab)
    assert after == before, f"changed by reset + undo: {sorted(set(before.items()) ^ set(after.items()))}"
    assert (lab / "latest").is_symlink() and os.access(script, os.X_OK)
    leftovers = [path.name for path in [*labs.iterdir(), *backups_of(labs)] if path.name.startswith(".")]
    assert leftovers == [], f"scratch folders left behind: {leftovers}"


# --- undo asks before it replaces new edits, and says where they went ----------------------------------


def test_undo_after_new_edits_asks_first_and_names_the_copy_it_keeps(labs):
    app = edit(labs, "first try")
    assert workshop(labs, "reset", "1", "--yes").returncode == 0
    edit(labs, "second try")

    message = refused(workshop(labs, "reset", "--undo", "1"))
    assert "--yes" in message and "items_api/app.py" in message, message
    assert "second try" in app.read_text() and "first try" not in app.read_text(), "refused, so nothing changed"
    assert len(backups_of(labs)) == 1, "refused, so no copy taken"

    undo = workshop(labs, "reset", "--undo", "1", "--yes")
    assert undo.returncode == 0, undo.stderr
    assert "first try" in app.read_text() and "second try" not in app.read_text()
    kept = [path for path in backups_of(labs) if path.name.endswith("-before-undo")]
    assert len(kept) == 1 and "second try" in (kept[0] / APP).read_text()
    assert str(kept[0].relative_to(labs.parent)) in undo.stdout, f"the kept copy is not named:\n{undo.stdout}"


def answering(labs: Path, answer: str, *arguments: str) -> subprocess.CompletedProcess:
    """Run the CLI with a terminal as stdin, typing `answer` (empty: end of input, Ctrl-D)."""
    typist, terminal = pty.openpty()
    try:
        os.write(typist, (answer + "\n").encode() if answer else b"\x04")
        env = {**os.environ, "WORKSHOP_LABS": str(labs), "NO_COLOR": "1"}
        return launcher.run(list(arguments), cwd=paths.ROOT, env=env, timeout=120, stdin=terminal)
    finally:
        os.close(typist)
        os.close(terminal)


@pytest.mark.parametrize("answer", ["n", ""])
def test_undo_in_a_terminal_asks_and_a_no_changes_nothing(labs, answer):
    edit(labs, "first try")
    assert workshop(labs, "reset", "1", "--yes").returncode == 0
    app = edit(labs, "second try")
    run = answering(labs, answer, "reset", "--undo", "1")
    assert run.returncode == 1 and "[y/N]" in run.stdout and "Nothing changed" in run.stdout, run.stdout + run.stderr
    assert "Traceback" not in run.stderr and "second try" in app.read_text() and len(backups_of(labs)) == 1


def test_undo_in_a_terminal_goes_ahead_on_yes(labs):
    edit(labs, "first try")
    assert workshop(labs, "reset", "1", "--yes").returncode == 0
    app = edit(labs, "second try")
    run = answering(labs, "y", "reset", "--undo", "1")
    assert run.returncode == 0 and "[y/N]" in run.stdout and "-before-undo" in run.stdout, run.stdout + run.stderr
    assert "first try" in app.read_text() and "second try" not in app.read_text()


def test_reset_without_a_terminal_and_without_yes_refuses_like_undo(labs):
    app = edit(labs, "my work in progress")
    message = refused(workshop(labs, "reset", "1"))
    assert "--yes" in message and "items_api/app.py" in message
    assert "my work in progress" in app.read_text() and backups_of(labs) == []


def test_undo_twice_changes_nothing_the_second_time(labs):
    app = edit(labs, "my work in progress")
    assert workshop(labs, "reset", "1", "--yes").returncode == 0
    assert workshop(labs, "reset", "--undo", "1").returncode == 0
    copies = backups_of(labs)
    again = workshop(labs, "reset", "--undo", "1")
    assert again.returncode == 0 and "nothing to undo" in again.stdout, again.stdout + again.stderr
    assert backups_of(labs) == copies and "my work in progress" in app.read_text()


# --- a deleted lab -------------------------------------------------------------------------------------


def test_reset_of_a_deleted_lab_restores_the_starter_and_claims_no_backup(labs):
    shutil.rmtree(labs / LAB1.id)
    run = workshop(labs, "reset", "1")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "nothing to back up" in run.stdout and ".workshop" not in run.stdout and "--undo" not in run.stdout
    assert starters.files_in(labs / LAB1.id) == starters.pristine(LAB1)
    assert not (labs.parent / ".workshop").exists()


# --- bad input: a clear message, exit 2, nothing lost --------------------------------------------------


def test_undo_without_any_backup_refuses(labs):
    app = edit(labs, "my work in progress")
    message = refused(workshop(labs, "reset", "--undo", "1", "--yes"))
    assert "no backup" in message and "my work in progress" in app.read_text()
    assert not (labs.parent / ".workshop").exists()


@pytest.mark.parametrize("unreadable", ["the backup", "the folder of backups"])
def test_undo_from_an_unreadable_backup_refuses_and_changes_nothing(labs, unreadable):
    edit(labs, "first try")
    assert workshop(labs, "reset", "1", "--yes").returncode == 0
    app = edit(labs, "second try")
    [saved] = backups_of(labs)
    locked = saved if unreadable == "the backup" else saved.parent
    before = snapshot(labs / LAB1.id)
    locked.chmod(0)
    try:
        message = refused(workshop(labs, "reset", "--undo", "1", "--yes", obey_modes=True))
    finally:
        locked.chmod(0o755)
    assert "Permission denied" in message and "Nothing was changed" in message, message
    assert snapshot(labs / LAB1.id) == before and "second try" in app.read_text()
    assert backups_of(labs) == [saved] and "first try" in (saved / APP).read_text()


def test_reset_of_a_lab_with_an_unreadable_file_refuses_and_changes_nothing(labs):
    secret = labs / LAB1.id / "items_api" / "notes.txt"
    secret.write_text("mine")
    secret.chmod(0)
    before = snapshot(labs / LAB1.id)
    message = refused(workshop(labs, "reset", "1", "--yes", obey_modes=True))
    assert "notes.txt" in message and "Permission denied" in message, message
    assert snapshot(labs / LAB1.id) == before and backups_of(labs) == []


@pytest.mark.parametrize("command", [["reset", "1", "--yes"], ["reset", "--undo", "1", "--yes"]])
def test_a_lab_folder_that_is_a_file_is_left_alone(labs, command):
    edit(labs, "my work in progress")
    assert workshop(labs, "reset", "1", "--yes").returncode == 0
    shutil.rmtree(labs / LAB1.id)
    (labs / LAB1.id).write_text("not a folder")
    copies = snapshot(labs.parent / ".workshop")
    message = refused(workshop(labs, *command))
    assert "not a folder" in message, message
    assert (labs / LAB1.id).read_text() == "not a folder" and snapshot(labs.parent / ".workshop") == copies
