"""The tests' launcher (launcher.py) runs `workshop` as a fresh process would, and the command's quick
exit (workshop/process_exit.py) keeps what Python's own exit does that matters."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workshop import manifest, paths, starters

import launcher  # tests/meta is on sys.path (pytest's default prepend import mode)

pytestmark = pytest.mark.skipif(not launcher.can_fork(), reason="the launcher forks (Linux, macOS); elsewhere every run is fresh")


def both(arguments: list[str], **environment: str) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    env = {**os.environ, "NO_COLOR": "1", **environment}
    forked = launcher.run(arguments, cwd=paths.ROOT, env=env, timeout=120)
    fresh = launcher.run(arguments, cwd=paths.ROOT, env=env, timeout=120, fresh=True)
    return forked, fresh


@pytest.mark.parametrize("arguments", [["hint", "1", "1", "--tier", "2"], ["check", "99"], ["solution", "1"], ["nope"]])
def test_a_forked_command_prints_and_exits_as_a_fresh_one(arguments):
    forked, fresh = both(arguments)
    assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert forked.stdout or forked.stderr, "the command printed nothing: the comparison proves nothing"


def test_each_command_reads_its_own_environment(tmp_path):
    starter = tmp_path / "labs"
    lab = manifest.find("lab01")
    starters.write_files(starter / lab.id, starters.files_in(paths.ROOT / "labs" / lab.id))
    env = {**os.environ, "NO_COLOR": "1"}
    solved = launcher.run(["check", "1"], cwd=tmp_path, env={**env, "WORKSHOP_LABS": str(paths.SOLUTIONS)}, timeout=120)
    unsolved = launcher.run(["check", "1"], cwd=tmp_path, env={**env, "WORKSHOP_LABS": str(starter)}, timeout=120)
    assert solved.returncode == 0 and "Lab 1 passes" in solved.stdout, solved.stdout[-1500:] + solved.stderr[-1500:]
    assert unsolved.returncode == 1 and "Lab 1 passes" not in unsolved.stdout, unsolved.stdout[-1500:]


def test_a_command_out_of_time_is_stopped_with_everything_it_started(tmp_path):
    labs = tmp_path / "labs-of-this-test"  # its path marks the processes of this command
    lab = manifest.find("lab01")
    starters.write_files(labs / lab.id, starters.files_in(paths.SOLUTIONS / lab.id))
    env = {**os.environ, "NO_COLOR": "1", "WORKSHOP_LABS": str(labs)}
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        launcher.run(["watch", "1"], cwd=paths.ROOT, env=env, timeout=3)  # watch runs until Ctrl-C
    assert time.monotonic() - started < 40
    time.sleep(0.5)
    left = [pid for pid in _pids() if str(labs) in _environment(pid)]
    assert not left, f"processes of the stopped command still run: {left}"
    after = launcher.run(["hint", "1", "1"], cwd=paths.ROOT, env=env, timeout=120)
    assert after.returncode == 0 and after.stdout, "the launcher serves the next command after a timeout"


def test_variables_that_change_how_python_starts_are_run_fresh():
    assert launcher.changes_startup({**os.environ, "PYTHONPATH": "/elsewhere"})
    assert launcher.changes_startup({**os.environ, "WORKSHOP_START_METHOD": "spawn"})
    assert launcher.changes_startup({k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}) == any(
        k.startswith("PYTHON") for k in os.environ)
    assert not launcher.changes_startup({**os.environ, "WORKSHOP_LABS": "/some/labs", "NO_COLOR": "1"})


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _environment(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    except OSError:
        return ""


# --- the quick exit -------------------------------------------------------------------------------------------

QUICK_EXIT = """
import atexit, sys, threading, time
from workshop.process_exit import exit_now
atexit.register(lambda: print("atexit ran", file=sys.stderr))
def late():
    time.sleep(0.3)
    print("thread done", file=sys.stderr)
threading.Thread(target=late).start()
print("main done")  # stays in stdout's buffer (a pipe is not a terminal) until the exit flushes it
exit_now(3)
"""


# Output to a pipe is buffered, unless PYTHONUNBUFFERED says otherwise (as it does on some machines).
BUFFERED = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}


def test_the_quick_exit_waits_for_threads_runs_atexit_and_flushes():
    run = subprocess.run([sys.executable, "-c", QUICK_EXIT], capture_output=True, text=True, timeout=60, env=BUFFERED)
    assert run.returncode == 3, run.stderr
    assert run.stderr.splitlines() == ["thread done", "atexit ran"], run.stderr
    assert run.stdout == "main done\n"


def test_the_quick_exit_is_quiet_when_the_reader_has_gone():
    """`workshop ... | head -0`: the last lines are still in the buffer when the reader goes."""
    late_print = "import time\nfrom workshop.process_exit import exit_now\ntime.sleep(0.5)\nprint('x' * 100)\nexit_now(0)"
    process = subprocess.Popen([sys.executable, "-c", late_print], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=BUFFERED)
    process.stdout.close()
    errors = process.stderr.read().decode()
    assert process.wait(timeout=60) == 1, "output that could not be written is not a success"
    assert "Traceback" not in errors and "BrokenPipeError" not in errors, errors
