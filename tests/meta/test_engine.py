"""The grading engine, tried as a careless and as a hostile learner would: the real CLI, on temporary
copies of the labs (and of the checkout, where graders are edited), checking the verdict and the words.

Each case breaks lab 1's reference solution in one way; the other labs are references too, so that a
lab that "cannot fail" shows when one lab changed another's verdict.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from multiprocessing import Pipe
from pathlib import Path
from types import SimpleNamespace

import pytest

from workshop import manifest, paths, starters
from workshop.grading import collector
from workshop.grading import engine as grading_engine
from workshop.grading import budget
from workshop.grading.budget import Budget, BudgetExceeded, Usage

from test_cli import APP1, LAB1, graded, solve, workshop  # tests/meta is on sys.path

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def solved(tmp_path: Path) -> Path:
    """A labs/ folder holding every lab's reference solution."""
    folder = tmp_path / "labs"
    for lab in manifest.labs():
        solve(folder, lab)
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path.name} no longer holds {old!r}"
    path.write_text(text.replace(old, new, 1))


def in_list_items(labs: Path, code: str) -> None:
    """Put `code` at the top of lab 1's GET /items route."""
    edit(labs / APP1, "def list_items():\n", f"def list_items():\n    {code}\n")


def at_import(labs: Path, code: str) -> None:
    """Put `code` right after lab 1's module docstring (starter and solution alike)."""
    edit(labs / APP1, '"""\n', f'"""\nimport os\n{code}\n')


def statuses(lab: dict) -> dict[int, str]:
    return {task["task_id"]: task["status"] for task in lab["tasks"]}


def failures(lab: dict) -> dict[str, str]:
    return {test["name"]: test["message"] or "" for task in lab["tasks"] for test in task["tests"] if test["status"] != "pass"}


# --- the learner's code ends the process --------------------------------------------------------


def test_os_exit_in_a_handler_fails_the_checks_that_called_it_and_says_so(solved):
    in_list_items(solved, "os._exit(0)")
    run = workshop(solved, "check", "1", "--json")
    assert run.returncode == 1, "a silent exit must never pass"
    lab = graded(solved, "1")[LAB1.id]
    assert statuses(lab) == {1: "fail", 2: "pass", 3: "pass", 4: "fail", 5: "pass"}, statuses(lab)
    found = failures(lab)
    name = "test_task1_lists_the_items_of_the_table_named_by_TABLE_NAME"
    assert found[name].startswith(f"Your code ended the process with os._exit(0) while {name} ran"), found[name]
    assert "Runtime.ExitError" in found[name]


def test_os_exit_at_import_fails_what_imports_the_function_and_not_the_template(solved):
    at_import(solved, "os._exit(0)")
    lab = graded(solved, "1")[LAB1.id]
    assert statuses(lab)[5] == "pass", "the template task never imports app.py"
    assert all(status == "fail" for task, status in statuses(lab).items() if task != 5)
    reasons = list(failures(lab).values())
    assert "os._exit(0) while test_task1_" in reasons[0]
    assert all("os._exit(0)" in reason for reason in reasons), reasons


def pytest_run(labs: Path, *arguments: str, **environment: str) -> subprocess.CompletedProcess:
    """Plain pytest on lab 1's grader, grading `labs`."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_lab01_api_gateway.py", "-q", "-p", "no:cacheprovider", *arguments],
        cwd=paths.ROOT,
        env={**os.environ, "WORKSHOP_LABS": str(labs), "NO_COLOR": "1", **environment},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_plain_pytest_reports_an_exit_too(solved):
    in_list_items(solved, "os._exit(0)")
    run = pytest_run(solved)
    assert run.returncode == 1, run.stdout[-2000:]
    assert "ended the process with os._exit(0) while test_task1_" in run.stdout
    # The three checks that call GET /items fail; every other check of the grader passes.
    from workshop import verification

    total = len(verification.grader_tests(LAB1))
    assert f"3 failed, {total - 3} passed" in run.stdout, run.stdout[-600:]


def test_invoke_reports_an_exit_as_lambda_does(solved):
    in_list_items(solved, "os._exit(0)")
    run = workshop(solved, "invoke", "1", "items_api", "--event", "api_list_items")
    assert run.returncode == 1
    assert '"errorType": "Runtime.ExitError"' in run.stdout and "exit status 0" in run.stdout


def test_sys_exit_is_reported_as_an_exit(solved):
    in_list_items(solved, "raise SystemExit(3)")
    lab = graded(solved, "1")[LAB1.id]
    reason = failures(lab)["test_task1_lists_the_items_of_the_table_named_by_TABLE_NAME"]
    assert "sys.exit(3)" in reason and "Runtime.ExitError" in reason and "app.py, line" in reason, reason


def test_a_segfault_fails_its_check_and_points_at_the_line(solved):
    in_list_items(solved, "import ctypes; ctypes.string_at(0)")
    lab = graded(solved, "1")[LAB1.id]
    assert statuses(lab)[2] == "pass"
    reason = failures(lab)["test_task1_lists_the_items_of_the_table_named_by_TABLE_NAME"]
    assert "segmentation fault (SIGSEGV) while test_task1_" in reason, reason
    assert "items_api/app.py, line" in reason and "in list_items()" in reason, reason


# --- one lab cannot change another's verdict ------------------------------------------------------


def test_a_global_setting_in_one_lab_changes_no_other_lab(solved):
    at_import(solved, "import decimal\ndecimal.getcontext().prec = 2")
    results = graded(solved, "--all")
    others = {lab: result["status"] for lab, result in results.items() if lab != LAB1.id}
    assert others == dict.fromkeys(others, "pass"), others


def test_patching_the_grader_from_lab_code_changes_no_verdict(tmp_path):
    labs = tmp_path / "labs"
    for lab in manifest.labs():
        starters.write_files(labs / lab.id, starters.files_in(paths.ROOT / "labs" / lab.id))
    at_import(
        labs,
        "import workshop.grading.engine as _engine\n"
        "_engine.LabRun.record = lambda self, nodeid, name, outcome, message: None\n"
        "_engine.LabRun.unreached = lambda self: []",
    )
    results = graded(labs, "--all")
    assert {lab: result["status"] for lab, result in results.items()} == dict.fromkeys(results, "fail")


# --- work left running, floods, hangs -----------------------------------------------------------


def test_a_thread_left_running_fails_the_check_and_never_hangs_the_grader(solved):
    at_import(solved, "import threading, time\nthreading.Thread(target=time.sleep, args=(3600,), name='sender').start()")
    started = time.monotonic()
    lab = graded(solved, "1")[LAB1.id]
    assert time.monotonic() - started < 120
    reasons = list(failures(lab).values())
    assert reasons and all("left a thread (sender) running" in reason for reason in reasons), reasons[:1]
    assert statuses(lab)[5] == "pass"


def test_a_process_left_running_fails_the_check_and_is_stopped(solved):
    at_import(solved, "import subprocess\nsubprocess.Popen(['sleep', '600'])")
    lab = graded(solved, "1")[LAB1.id]
    reasons = list(failures(lab).values())
    assert reasons and all("left a process (pid" in reason for reason in reasons), reasons[:1]
    pids = {int(reason.split("(pid ")[1].split(")")[0]) for reason in reasons}
    alive = [pid for pid in pids if Path(f"/proc/{pid}").exists() and "sleep" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert not alive, f"the grader left {alive} running"


def test_a_flood_of_output_stops_the_check_that_printed_it(solved):
    in_list_items(solved, "\n    while True:\n        os.write(1, b'x' * 65536)")
    lab = graded(solved, "1")[LAB1.id]
    reason = failures(lab)["test_task1_lists_the_items_of_the_table_named_by_TABLE_NAME"]
    assert "wrote more than 64 MB" in reason and "while test_task1_" in reason, reason
    assert statuses(lab)[3] == "pass"


def test_a_loop_that_catches_the_timeout_is_still_stopped(solved):
    in_list_items(solved, "\n    while True:\n        try:\n            while True:\n                pass\n        except BaseException:\n            pass")
    # Plain pytest, to pick one check that loops and one that follows it.
    run = pytest_run(solved, "-k", "task1_lists_the_items or task2_returns", WORKSHOP_CHECK_CPU_SECONDS="1", WORKSHOP_CHECK_WALL_SECONDS="1")
    assert "1 failed, 1 passed" in run.stdout, run.stdout[-1000:]
    # The budget's timers fire again every 0.25 s: mostly the loop catches each one and the engine stops
    # the worker, but one may land on the outer `while True:`, outside the try, and end the check itself.
    killed = "Your code did not let the check end" in run.stdout and "except BaseException:" in run.stdout
    escaped = "stopped: your code used" in run.stdout and "a loop that never ends" in run.stdout
    assert killed or escaped, run.stdout[-1500:]


def test_code_that_waits_is_told_apart_from_a_loop(solved):
    in_list_items(solved, "import time; time.sleep(600)")
    lab = graded(solved, "1", WORKSHOP_CHECK_WALL_SECONDS="2")[LAB1.id]
    reason = failures(lab)["test_task1_lists_the_items_of_the_table_named_by_TABLE_NAME"]
    assert "your code waited 2 s while using only" in reason and "a sleep" in reason, reason


# --- a busy machine -----------------------------------------------------------------------------

HOG = "import time\nend = time.monotonic() + 300\nwhile time.monotonic() < end:\n    pass\n"


def hogs(count: int, cpu: int | None = None) -> list[subprocess.Popen]:
    """CPU-bound processes (each ends by itself within 5 minutes), pinned to `cpu` if given."""
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    return [subprocess.Popen([sys.executable, "-c", HOG], preexec_fn=pin) for _ in range(count)]


def test_every_reference_solution_passes_on_a_machine_kept_busy():
    busy = hogs(os.cpu_count() or 2)
    try:
        run = workshop(paths.SOLUTIONS, "check", "--all", "--json", "--target", "solutions")
    finally:
        for process in busy:
            process.kill()
    assert run.returncode == 0, run.stdout[-3000:]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or not Path("/proc/self/schedstat").exists(), reason="Linux only")
def test_a_starved_check_is_run_again_and_never_blamed_on_the_learner(solved):
    # Five busy processes share one CPU with the grader's workers, and a check may take only 0.1 s of wall
    # time: it waits for the CPU several times as long as it computes, so a check that computes for more
    # than about 15 ms is starved, and again when it is run again. (At 0.3 s, a grader made faster let
    # every check finish its second run: a fresh clone's make test saw no check starved twice.)
    busy = hogs(5, cpu=0)
    try:
        run = subprocess.run(
            [*paths.workshop_command(), "check", "1", "--json"],
            cwd=paths.ROOT,
            env={**os.environ, "WORKSHOP_LABS": str(solved), "WORKSHOP_CHECK_WALL_SECONDS": "0.1"},
            capture_output=True,
            text=True,
            timeout=180,
            preexec_fn=lambda: os.sched_setaffinity(0, {0}),
        )
    finally:
        for process in busy:
            process.kill()


    lab = json.loads(run.stdout)["labs"][0]
    starved = [reason for reason in failures(lab).values() if "this machine was too busy" in reason]
    assert starved, list(failures(lab).values())[:2]
    assert all("could not finish twice" in reason and "That is not your code" in reason for reason in starved)
    blamed = [reason for reason in failures(lab).values() if reason not in starved]
    assert not blamed, f"a starved check was blamed on the learner: {blamed[:2]}"


RACES = """
import time
from workshop.grading import budget

budget.REPEAT_SECONDS = 0.0002
stopped = 0
for _ in range(3000):
    try:
        with budget._Timers(10, 0.0003):  # the wall-clock cap fires about when each call ends
            started = time.perf_counter()
            while time.perf_counter() - started < 0.0003:
                pass
    except budget.BudgetExceeded:
        stopped += 1
print("alive", stopped)
"""


def test_a_timer_that_fires_as_a_check_ends_never_kills_the_worker():
    """The wall-clock cap's signal, sent just as a check ends, once reached the default handler put
    back after it and ended the worker (the learner was then told their code stopped the process)."""
    run = subprocess.run([sys.executable, "-c", RACES], cwd=paths.ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.startswith("alive"), (run.returncode, run.stdout[-500:], run.stderr[-1500:])


def test_a_busy_machine_and_a_stuck_check_are_told_apart():
    assert Usage(wall=10, cpu=0.2, starved=8).machine_was_busy
    assert not Usage(wall=10, cpu=0.2, starved=0.5).machine_was_busy, "a sleep is the learner's"
    assert not Usage(wall=10, cpu=0.2, starved=None).machine_was_busy, "unknown: never assume busy"


def test_a_stop_raised_again_is_explained_by_what_was_measured_where_it_happened():
    """A fixture's BudgetExceeded is raised again by pytest in each later test that uses the fixture: its
    message must come from the measure taken where it happened (here, a starved machine)."""
    plugin = Budget(lambda item: True)
    item = SimpleNamespace(name="test_task2_reads_the_file", nodeid="tests/test_lab02.py::test_task2_reads_the_file")
    error = BudgetExceeded("wall")
    error.usage = Usage(wall=10, cpu=0.2, starved=9)  # measured in the test that set the fixture up
    timed = plugin._timed(item)
    next(timed)
    with pytest.raises(BudgetExceeded):
        timed.throw(error)
    assert plugin.starved(item)
    assert "this machine was too busy" in plugin.message(item, error, retried=True)


def test_a_stop_that_was_never_measured_blames_no_one():
    item = SimpleNamespace(name="test_task1_lists", nodeid="tests/test_lab01.py::test_task1_lists")
    message = Budget(lambda item: True).message(item, BudgetExceeded("cpu"), retried=False)
    assert "your code" not in message and "was not measured" in message, message


def test_a_check_is_stopped_by_a_signal_to_its_own_thread_and_no_process_timer():
    """A process-wide CPU timer's signal can reach a thread that runs only later, on a starved machine,
    and stop whatever runs then: the budget signals the check's thread, from a watcher thread."""
    before = signal.getsignal(budget.STOP_SIGNAL)
    with pytest.raises(BudgetExceeded) as stopped, budget._Timers(0.05, 10):
        assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)
        while True:
            pass
    assert stopped.value.kind == "cpu"
    assert signal.getsignal(budget.STOP_SIGNAL) == before, "the handler before the check was not put back"


def _catch_every_stop(gave_up) -> None:
    """A learner's loop that catches the grader's stop, every time, until `gave_up()`."""
    while not gave_up():
        try:
            while not gave_up():
                pass
        except BudgetExceeded:
            pass


def test_a_check_that_catches_every_stop_is_given_up_on_and_one_that_stops_is_not(monkeypatch):
    calls = []
    monkeypatch.setattr(budget, "GIVE_UP_SECONDS", 0.3)
    monkeypatch.setattr(budget, "on_unstoppable", lambda: calls.append(time.monotonic()))
    started = time.monotonic()
    with budget._Timers(0.05, 10):
        _catch_every_stop(lambda: bool(calls))
    assert calls and calls[0] - started >= 0.3, "given up on before the stops had gone on for GIVE_UP_SECONDS"

    calls.clear()
    with pytest.raises(BudgetExceeded), budget._Timers(0.05, 10):
        while True:
            pass
    time.sleep(0.5)
    assert not calls, "a check that stopped at its first stop was given up on"


def _worker_whose_check_catches_every_stop(channel, nodeid: str) -> None:
    from workshop.grading import worker

    budget.GIVE_UP_SECONDS = 0.3
    budget.on_unstoppable = lambda: worker._give_up(channel)
    channel.send(("start", nodeid))
    with budget._Timers(0.05, 10):
        _catch_every_stop(lambda: False)


def test_a_worker_that_gives_up_on_its_check_fails_that_check_for_catching_the_stops(tmp_path):
    """The give-up path end to end, without the 25 s the engine's last resort (STUCK_SECONDS) would wait:
    the worker's watcher reports and ends the process; the engine names the check and what to look for."""
    context = multiprocessing.get_context("fork")
    nodeid = "tests/test_lab01_api_gateway.py::test_task1_lists_the_items_of_the_table_named_by_TABLE_NAME"
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_worker_whose_check_catches_every_stop, args=(sender, nodeid), daemon=True)
    process.start()
    sender.close()
    run = grading_engine.LabRun(LAB1, expected={nodeid: 1})
    follower = grading_engine.Worker(process, receiver, run, str(tmp_path / "output.log"), (nodeid,))
    try:
        end = grading_engine._RUNNING
        deadline = time.monotonic() + 60
        while end is grading_engine._RUNNING and time.monotonic() < deadline:
            end = follower.follow(bool(grading_engine.connection.wait([receiver], timeout=0.05)))
    finally:
        follower.close()
    assert end is not grading_engine._RUNNING, "the worker never gave up on a check that caught every stop"
    assert end.during == nodeid
    message = grading_engine._explain(end)
    assert "did not let the check end" in message and "catching each stop" in message, message
    assert "except BaseException:" in message, message


# --- the fallback where fork is not available ------------------------------------------------------


def test_a_fresh_process_per_lab_grades_the_same(solved):
    in_list_items(solved, "os._exit(0)")
    forked = graded(solved, "1")[LAB1.id]
    spawned = graded(solved, "1", WORKSHOP_START_METHOD="spawn")[LAB1.id]
    assert statuses(spawned) == statuses(forked) and failures(spawned) == failures(forked)


# --- graders changed or deleted ------------------------------------------------------------------


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of what grading reads from the checkout (the package, the graders, the labs)."""
    copy = tmp_path / "checkout"
    ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints")
    for folder in ("workshop", "labs", "solutions"):
        shutil.copytree(paths.ROOT / folder, copy / folder, ignore=ignore)
    (copy / "tests").mkdir()
    for grader in [paths.TESTS / "conftest.py", *paths.TESTS.glob("test_*.py")]:
        shutil.copy2(grader, copy / "tests" / grader.name)
    shutil.copy2(paths.ROOT / "pyproject.toml", copy / "pyproject.toml")
    if paths.CACHE.is_dir():  # transforms already made (derived data, safe to share): a faster start
        shutil.copytree(paths.CACHE, copy / ".workshop" / "cache")
    return copy


def run_in(checkout: Path, *arguments: str) -> subprocess.CompletedProcess:
    """The CLI of the copied checkout (`python -m workshop` imports the package of its working folder)."""
    environment = {key: value for key, value in os.environ.items() if key != "WORKSHOP_LABS"}
    return subprocess.run(
        [sys.executable, "-m", "workshop", *arguments],
        cwd=checkout,
        # Wide enough that no sentence is wrapped: the width of the terminal pytest runs in (or of none,
        # under pytest-xdist) must not decide whether a phrase is found.
        env={**environment, "NO_COLOR": "1", "COLUMNS": "400"},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_an_edited_grader_is_reported_and_never_passes(checkout):
    grader = checkout / "tests" / "test_lab01_api_gateway.py"
    grader.write_text("".join(f"def test_task{n}_passes():\n    pass\n\n" for n in range(1, 6)))
    check = run_in(checkout, "check", "1")
    assert check.returncode == 1, check.stdout
    assert "tests/test_lab01_api_gateway.py was changed" in check.stdout
    assert "git checkout -- tests/test_lab01_api_gateway.py" in check.stdout
    status = run_in(checkout, "status")
    assert " 1 API Gateway" in status.stdout and "error" in status.stdout.split(" 2 S3")[0], status.stdout
    doctor = run_in(checkout, "doctor")
    assert doctor.returncode == 1 and "tests/test_lab01_api_gateway.py" in doctor.stdout, doctor.stdout


def test_a_deleted_conftest_is_reported_on_every_lab_and_by_the_doctor(checkout):
    (checkout / "tests" / "conftest.py").unlink()
    check = run_in(checkout, "check", "--all", "--json")
    assert check.returncode == 1


    labs = json.loads(check.stdout)["labs"]
    assert all(lab["status"] == "error" and "tests/conftest.py is missing" in lab["message"] for lab in labs), labs[0]["message"]
    doctor = run_in(checkout, "doctor")
    assert doctor.returncode == 1 and "tests/conftest.py" in doctor.stdout and "Ready" not in doctor.stdout


# --- watch's workers forked ahead ------------------------------------------------------------------

# Grades lab 1 with one long-lived engine as watch does: a grading, workers forked ahead, a save, the
# next grading; then a save of the template, which the workers forked ahead had not loaded.
WATCH_ROUNDS = r"""
import json, sys
from pathlib import Path
from workshop import manifest
from workshop.grading import engine as grading

lab, app = manifest.find("lab01"), Path(sys.argv[1])
engine = grading.Engine("labs", long_lived=True)
forked = []
start = engine._start
def counted(run, nodeids, key=""):
    worker = start(run, nodeids, key)
    forked.append((worker.process.pid, bool(key)))
    return worker
engine._start = counted

def failing(run):
    return sorted(nodeid.rpartition("::")[2] for nodeid in run.expected if not run.outcome_of(nodeid).passed)

def messages(run):
    return [run.outcome_of(nodeid).message for nodeid in run.expected if not run.outcome_of(nodeid).passed]

rounds = [{"failing": failing(engine.grade([lab])[0])}]  # a first whole run: its tests are known from now on
for save in ("code", "template"):
    engine.ready_next(lab)
    ready = [worker.process for worker in engine._ready]
    forked.clear()
    if save == "code":
        # Another workshop command times the lab's tests meanwhile, in the same cache: dealt again,
        # the tests would be shared out differently from the workers forked ahead.
        digest = grading._grader_digest(lab)
        tests = list(grading.warmup.tests_of(lab.id, digest))
        grading.warmup.remember_seconds(lab.id, digest, {nodeid: 100.0 if nodeid == tests[-1] else 0.001 for nodeid in tests})
        app.write_text(app.read_text().replace("def list_items():\n", "def list_items():\n    raise RuntimeError('saved after the fork')\n", 1))
    else:
        template = app.parent.parent / "template.yaml"
        template.write_text(template.read_text() + "\n# a save\n")
    run = engine.grade([lab])[0]
    rounds.append({
        "failing": failing(run), "messages": messages(run), "ready": len(ready),
        "forked_during_grading": len(forked), "ready_alive_after": sum(process.is_alive() for process in ready),
    })
print(json.dumps(rounds))
"""


def test_watch_grades_a_save_with_workers_forked_before_it_and_never_with_stale_code(solved):
    """The workers watch forks ahead wait with the grader loaded and none of the learner's code: the save
    made after they were forked is what they grade, even when another command has timed the tests since.
    A save of the template, which they had not loaded, gets workers forked afresh."""
    run = subprocess.run(
        [sys.executable, "-c", WATCH_ROUNDS, str(solved / APP1)],
        cwd=paths.ROOT,
        env={**os.environ, "WORKSHOP_LABS": str(solved)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    first, code, template = json.loads(run.stdout.strip().splitlines()[-1])
    assert first["failing"] == [], "the reference solution passes"
    assert code["ready"] >= 1 and code["forked_during_grading"] == 0, f"the save was graded by the workers forked ahead: {code}"
    listing = [name for name in code["failing"] if "lists" in name]
    assert listing, f"the save (GET /items raises) was not graded: failing {code['failing']}"
    assert any("saved after the fork" in message for message in code["messages"]), code["messages"]
    assert template["ready"] >= 1 and template["forked_during_grading"] == template["ready"], (
        f"after a save of the template, the workers forked ahead are replaced by fresh ones: {template}"
    )
    assert template["ready_alive_after"] == 0, "the workers forked ahead that could not be used are stopped"
    assert template["failing"] == code["failing"], "the same code grades the same after a save of the template"


def test_moto_sns_signing_key_is_made_before_the_workers_are_forked(monkeypatch):
    """moto signs SNS envelopes with an RSA key, 10 to 75 ms to make: the parent makes it while it prepares
    a lab whose grader fans out, so the workers forked after it (every watch save) have it already."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from workshop.grading import sns_delivery, warmup

    sns_delivery.signing_key.cache_clear()
    warmup.load_ahead("lab05_fan_out")

    def made_again(*args, **kwargs):
        raise AssertionError("a worker made its own SNS signing key")

    monkeypatch.setattr(rsa, "generate_private_key", made_again)
    assert sns_delivery.signing_key().key_size == 2048


def test_x_ray_s_recorder_makes_its_clients_with_the_graders_session_when_it_is_loaded_ahead():
    """Powertools' Tracer imports aws_xray_sdk, whose recorder makes two X-Ray clients at import, each
    through a new botocore session that reads botocore's endpoints and X-Ray's model again (lab 3:
    0.15-0.25 s of the parent's preparation). Loaded ahead, they are made with the graders' session."""
    probe = textwrap.dedent("""
        import sys
        import botocore.session
        from workshop.grading import warmup

        warmup.shared_session()
        made = []
        original = botocore.session.Session.__init__
        def counted(self, *args, **kwargs):
            made.append(1)
            original(self, *args, **kwargs)
        botocore.session.Session.__init__ = counted
        warmup.learned = lambda lab_id: {"modules": ["aws_xray_sdk", "aws_xray_sdk.core"], "models": []}
        warmup.load_ahead("lab03_sqs_processing")
        from aws_xray_sdk.core import xray_recorder
        print(len(made), "aws_xray_sdk.core" in sys.modules)
    """)
    run = subprocess.run([sys.executable, "-c", probe], cwd=paths.ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-3000:]
    sessions, imported = run.stdout.split()
    assert imported == "True", "aws_xray_sdk was not loaded ahead"
    assert sessions == "0", f"loading aws_xray_sdk ahead made {sessions} botocore sessions of its own"


# --- scheduling: several labs ------------------------------------------------------------------


def test_the_labs_that_took_longest_are_graded_first_and_reported_in_order(monkeypatch):
    """check --all starts the longest labs first (by how long their tests took last time), so that the
    last to finish are short; the results keep the labs' order."""
    labs = list(manifest.labs())
    took = {labs[1].id: 0.5, labs[-1].id: 1.3, labs[2].id: 0.8}
    monkeypatch.setattr(grading_engine.warmup, "seconds_of", lambda lab_id, digest: {"test": took.get(lab_id, 0.0)})
    runs = [grading_engine.LabRun(lab) for lab in labs]

    order = [run.lab.id for run in grading_engine._longest_first(runs)]

    never_timed = [lab.id for lab in labs if lab.id not in took]
    assert order == [labs[-1].id, labs[2].id, labs[1].id, *never_timed], order
    assert [run.lab.id for run in runs] == [lab.id for lab in labs], "the results' list is not reordered"


class FakeWorker:
    """Stands for a worker in the scheduling tests: running for its first `running_looks` looks, then finished."""

    def __init__(self, run, nodeids, running_looks=0, on_end=None):
        self.run, self.nodeids, self.looks = run, nodeids, 0
        self.running_looks, self.on_end = running_looks, on_end
        self.receiver, self._sender = Pipe(duplex=False)

    def follow(self, readable):
        self.looks += 1
        if self.looks <= self.running_looks:
            return grading_engine._RUNNING
        if self.on_end is not None:
            self.on_end(self)
        return None

    def close(self):
        self.receiver.close()
        self._sender.close()


def test_the_next_lab_is_prepared_while_the_workers_of_the_one_before_run(monkeypatch):
    """The parent warms the next lab while a lab's workers run, not once they have finished, when a
    core would wait for it."""
    first, second = list(manifest.labs())[:2]
    events: list[tuple[str, str]] = []

    def finishing(run, nodeids):
        return FakeWorker(run, nodeids, running_looks=1, on_end=lambda worker: events.append(("ended", worker.run.lab.id)))

    engine = grading_engine.Engine("solutions")
    monkeypatch.setattr(grading_engine, "_longest_first", lambda runs: runs)
    monkeypatch.setattr(grading_engine, "parallel", lambda: 1)
    monkeypatch.setattr(engine, "warm", lambda labs, first_calls=False: events.append(("warmed", labs[0].id)))
    monkeypatch.setattr(engine, "_start", lambda run, nodeids, key="": events.append(("started", run.lab.id)) or finishing(run, nodeids))

    engine.grade([first, second])

    assert events.index(("warmed", second.id)) < events.index(("ended", first.id)), events
    assert events.index(("ended", first.id)) < events.index(("started", second.id)), events


def test_labs_waiting_for_a_core_get_one_worker_each_and_the_last_share_their_tests(monkeypatch):
    """Grading several labs, a lab's tests are shared among workers only when no other lab waits for a
    core: before that, more workers would only add forks (check --all: 0.46 s less CPU, 0.2 s sooner)."""
    labs = list(manifest.labs())[:4]
    started: dict[str, list[int]] = {}
    engine = grading_engine.Engine("solutions")
    monkeypatch.setattr(grading_engine, "_longest_first", lambda runs: runs)
    monkeypatch.setattr(grading_engine, "parallel", lambda: 2)
    monkeypatch.setattr(grading_engine.warmup, "tests_of", lambda lab_id, digest: {f"{lab_id}::test_{n}": 1 for n in range(8)})
    monkeypatch.setattr(grading_engine.warmup, "seconds_of", lambda lab_id, digest: {})
    monkeypatch.setattr(engine, "warm", lambda labs, first_calls=False: None)
    monkeypatch.setattr(engine, "_start", lambda run, nodeids, key="": started.setdefault(run.lab.id, []).append(len(nodeids)) or FakeWorker(run, nodeids))

    engine.grade(labs)

    assert [started[lab.id] for lab in labs] == [[8], [8], [4, 4], [4, 4]], started
    started.clear()
    engine.grade(labs[:1])
    assert started == {labs[0].id: [4, 4]}, "one lab alone is shared among the cores"
    # ... unless its tests took less together last time than another worker costs to start (lab 6's).
    quick = {f"{labs[0].id}::test_{n}": 0.005 for n in range(8)}
    monkeypatch.setattr(grading_engine.warmup, "seconds_of", lambda lab_id, digest: quick)
    started.clear()
    engine.grade(labs[:1])
    assert started == {labs[0].id: [8]}, started


def test_a_grading_collects_garbage_less_often_and_gives_the_thresholds_back(monkeypatch):
    """The parent grades (and prepares) with the collector's grading thresholds, and puts the process's
    own back after, even when the grading fails: watch goes on with the defaults between saves."""
    seen = []

    def fails(self, labs, only):
        seen.append(gc.get_threshold())
        raise RuntimeError("a grading that fails")

    monkeypatch.setattr(grading_engine.Engine, "_grade", fails)
    before = gc.get_threshold()
    assert before != collector.GRADING_THRESHOLDS
    with pytest.raises(RuntimeError):
        grading_engine.Engine("solutions").grade(list(manifest.labs())[:1])
    assert seen == [collector.GRADING_THRESHOLDS]
    assert gc.get_threshold() == before
