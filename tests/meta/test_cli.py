"""The `workshop` command, run for real in fresh processes, on temporary copies of labs/.

Each test copies the starters (and sometimes breaks one on purpose) into a temporary folder that
WORKSHOP_LABS points the command at, so the repository's labs/ is never touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from workshop import bench, manifest, paths, starters

import launcher  # tests/meta is on sys.path (pytest's default prepend import mode)

LAB1 = manifest.find("lab01")
APP1 = "lab01_api_gateway/items_api/app.py"


@pytest.fixture
def labs(tmp_path: Path) -> Path:
    """A copy of the untouched starters, as a learner's labs/ folder."""
    folder = tmp_path / "labs"
    for lab in manifest.labs():
        starters.write_files(folder / lab.id, starters.files_in(paths.ROOT / "labs" / lab.id))
    return folder


def workshop(labs: Path, *arguments: str, timeout: float = 300, cwd: Path = paths.ROOT, **environment: str) -> subprocess.CompletedProcess:
    """The real `workshop` command with stdin not a terminal, forked from this test process's warm
    launcher (launcher.py: the same console script, without importing the libraries again)."""
    env = {**os.environ, "WORKSHOP_LABS": str(labs), "NO_COLOR": "1", **environment}
    return launcher.run(list(arguments), cwd=cwd, env=env, timeout=timeout)


def graded(labs: Path, *arguments: str, cwd: Path = paths.ROOT, **environment: str) -> dict:
    run = workshop(labs, "check", "--json", *arguments, cwd=cwd, **environment)
    assert run.returncode in (0, 1), run.stderr[-2000:]
    return {lab["id"]: lab for lab in json.loads(run.stdout)["labs"]}


def solve(labs: Path, lab: manifest.Lab) -> None:
    starters.write_files(labs / lab.id, starters.files_in(lab.folder("solutions")))


def messages(lab: dict) -> list[str]:
    return [test["message"] or "" for task in lab["tasks"] for test in task["tests"] if test["status"] != "pass"]


# --- commands ----------------------------------------------------------------------------------------


def test_check_grades_the_first_unfinished_lab_and_never_advances(labs):
    assert list(graded(labs)) == ["lab01_api_gateway"], "a fresh start grades lab 1 only"
    solve(labs, LAB1)
    results = graded(labs)
    assert list(results) == ["lab01_api_gateway", "lab02_s3_events"]
    assert results["lab01_api_gateway"]["status"] == "pass" and results["lab02_s3_events"]["status"] == "fail"
    text = workshop(labs, "check").stdout
    assert "not checked" in text and "Lab 2 · " in text and "Lab 3 · " not in text


def test_status_grades_every_lab(labs):
    # `status --json` on the solutions (exit 0, every lab in order): test_starters_and_solutions.py.
    status = workshop(labs, "status")
    assert status.returncode == 1, "status exits like check: 1 while a task is unfinished"
    assert all(lab.pattern in status.stdout for lab in manifest.labs())
    assert "not checked" not in status.stdout


def test_hint_gives_one_tier_at_a_time(labs):
    first = workshop(labs, "hint", "1", "2")
    assert LAB1.tasks[1].hints[0] in first.stdout and LAB1.tasks[1].hints[1] not in first.stdout
    assert "workshop hint 1 2 --tier 2" in first.stdout
    every = workshop(labs, "hint", "1", "2", "--tier", "3").stdout
    assert all(hint in every for hint in LAB1.tasks[1].hints) and "More:" not in every
    assert LAB1.tasks[0].title in workshop(labs, "hint", "1").stdout, "without a task, the first failing one"
    assert workshop(labs, "hint", "1", "9").returncode == 2


def test_solution_waits_until_the_lab_passes_unless_revealed(labs):
    refused = workshop(labs, "solution", "1")
    assert refused.returncode == 1 and "--reveal" in refused.stdout and "+++" not in refused.stdout
    revealed = workshop(labs, "solution", "1", "--reveal").stdout
    assert f"--- labs/{APP1}" in revealed and '+TABLE_NAME = os.environ["TABLE_NAME"]' in revealed


def test_reset_asks_keeps_a_backup_and_undo_brings_it_back(labs):
    app = labs / APP1
    app.write_text(app.read_text() + "\n# my work in progress\n")
    unconfirmed = workshop(labs, "reset", "1")
    assert unconfirmed.returncode == 2 and "my work in progress" in app.read_text(), "no --yes, no reset"

    done = workshop(labs, "reset", "1", "--yes")
    assert done.returncode == 0 and "my work in progress" not in app.read_text()
    assert app.read_bytes() == starters.pristine(LAB1)["items_api/app.py"]
    saved = list((labs.parent / ".workshop" / "backups" / LAB1.id).iterdir())
    assert any("my work in progress" in (b / "items_api" / "app.py").read_text() for b in saved)

    undone = workshop(labs, "reset", "--undo", "1")
    assert undone.returncode == 0 and "my work in progress" in app.read_text()


def test_reset_of_an_untouched_lab_changes_nothing(labs):
    run = workshop(labs, "reset", "1", "--yes")
    assert run.returncode == 0 and "nothing to reset" in run.stdout
    assert not (labs.parent / ".workshop").exists()


def test_doctor_checks_the_machine(labs):
    run = workshop(labs, "doctor")
    for name in ("Python", "Virtual environment", "Packages", "No real AWS", "AWS SAM CLI"):
        assert name in run.stdout
    assert run.returncode == 0, run.stdout


def test_watch_grades_again_after_a_save_and_shows_finished_labs_as_done(labs):
    """Watching lab 2 with lab 1 solved: the table says lab 1 is done (once the other labs are graded),
    a save grades lab 2 again, and watch never suggests itself."""
    shutil.rmtree(labs / LAB1.id)
    shutil.copytree(paths.SOLUTIONS / LAB1.id, labs / LAB1.id)
    app2 = labs / "lab02_s3_events/csv_summary/app.py"
    process = subprocess.Popen(
        [*paths.workshop_command(), "watch", "2"],
        cwd=paths.ROOT,
        env={**os.environ, "WORKSHOP_LABS": str(labs), "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=bench.ctrl_c_as_in_a_terminal,  # the test sends it Ctrl-C
    )
    screens: list[str] = []
    try:
        deadline, screen = time.monotonic() + 120, ""
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            screen += line
            if line.startswith("Watching"):
                screens.append(screen)
                screen = ""
                if "not checked" not in screens[-1] and len(screens) >= 2 and not app2.read_text().endswith("\n\n"):
                    app2.write_text(app2.read_text() + "\n")  # a save, once every lab has been graded
                elif app2.read_text().endswith("\n\n") and len(screens) >= 3:
                    break
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=10)
    assert len(screens) >= 3, "\n=====\n".join(screens)[-3000:]
    first, table, after_save = screens[0], screens[1], screens[-1]
    assert "not checked" in first, "the first screen shows lab 2 at once, before grading the others"
    assert re.search(r"1 API Gateway \+ Lambda \+ DynamoDB\s+5/5 .* done", table), table
    assert "Lab 2 ·" in after_save and "Next: make task 1 pass" in after_save, after_save
    assert "workshop watch" not in "".join(screens), "watch suggests itself"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the dropped KeyboardInterrupt
def test_a_ctrl_c_that_python_drops_still_stops_watch(monkeypatch):
    """Python drops a KeyboardInterrupt raised while it runs a finalizer (`Exception ignored in ...`):
    a Ctrl-C that lands in one must stop watch all the same."""
    from workshop import watch

    class PressesCtrlCWhenCollected:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)  # the Ctrl-C interrupts this sleep: inside the finalizer

    graded = []

    def grade(labs):
        graded.append(labs)
        assert len(graded) < 4, "watch went on grading after a Ctrl-C"
        PressesCtrlCWhenCollected()  # collected at once
        return {}

    monkeypatch.setattr(watch, "grade", grade)
    monkeypatch.setattr(watch, "show", lambda *shown: None)
    monkeypatch.setattr(watch, "ready_next", lambda lab: None)
    # Ctrl-C as a terminal delivers it, even when this suite was started with SIGINT ignored (`cmd &`).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            watch.watch(LAB1)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(graded) == 1, "watch graded again after the Ctrl-C"


def test_verify_checks_solutions_starters_and_hints(labs):
    run = workshop(labs, "verify")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "every solution passes, every starter fails, every task has its hints" in run.stdout


# --- graders that never strand a learner ----------------------------------------------------------


def test_a_syntax_error_fails_its_own_lab_only(labs):
    (labs / APP1).write_text((labs / APP1).read_text() + "\ndef broken(:\n")
    solve(labs, manifest.find("lab02"))
    results = graded(labs, "--all")
    assert all("SyntaxError" in m and "app.py, line" in m for m in messages(results[LAB1.id])[:10])
    assert results["lab02_s3_events"]["status"] == "pass", "another lab still grades"


def test_a_library_copied_into_a_function_folder_fails_the_package_budget(labs):
    # A learner who "vendors" lab 7's SDK (pip install -t order_workflow/) instead of using its layer
    lab = manifest.find("lab07")
    solve(labs, lab)
    import aws_durable_execution_sdk_python as sdk

    shutil.copytree(Path(sdk.__file__).parent, labs / lab.id / "order_workflow" / "aws_durable_execution_sdk_python",
                    ignore=shutil.ignore_patterns("__pycache__"))
    graded_lab = graded(labs, "7")[lab.id]
    assert graded_lab["status"] != "pass"
    failed = [test for task in graded_lab["tasks"] for test in task["tests"] if test["status"] != "pass"]
    assert [test["name"] for test in failed] == ["test_task5_ships_the_sdk_in_a_layer_without_what_the_runtime_has"]
    assert "order_workflow/ zips to" in failed[0]["message"] and "lab 6's budget" in failed[0]["message"]


def test_a_missing_handler_fails_only_the_tasks_that_need_it(labs):
    app = labs / APP1
    app.write_text(app.read_text().replace("def lambda_handler(", "def handler("))
    solve(labs, LAB1)
    app.write_text(app.read_text().replace("def lambda_handler(", "def handler("))
    lab = graded(labs, "1")[LAB1.id]
    template_task = lab["tasks"][-1]
    assert template_task["status"] == "pass", "the template task does not need the handler"
    assert "has no function named 'lambda_handler'" in messages(lab)[0]


def test_a_hang_fails_only_the_checks_that_hung(labs):
    solve(labs, LAB1)
    app = labs / APP1
    app.write_text(app.read_text().replace("def list_items():\n", "def list_items():\n    while True:\n        pass\n"))
    # A second of CPU is ten times what a check of lab 1 uses: each hung check costs the suite one, not five.
    lab = graded(labs, "1", WORKSHOP_CHECK_CPU_SECONDS="1")[LAB1.id]
    hung = [m for m in messages(lab) if "s of CPU without finishing" in m]
    assert hung and all("timeout" in m and "loop that never ends" in m for m in hung)
    statuses = {task["task_id"]: task["status"] for task in lab["tasks"]}
    # Tasks 2 and 3 never call GET /items: they still grade, and pass.
    assert statuses[1] == "fail" and statuses[2] == "pass" and statuses[3] == "pass", statuses


def test_printed_output_never_floods_the_screen(labs):
    solve(labs, LAB1)
    app = labs / APP1
    app.write_text(app.read_text().replace("def list_items():\n", "def list_items():\n    print('x' * 80 * 2000)\n"))
    run = workshop(labs, "check", "1")
    assert run.returncode == 0 and len(run.stdout.splitlines()) < 40


def test_reaching_the_network_is_blocked_and_explained(labs):
    solve(labs, LAB1)
    app = labs / APP1
    app.write_text(
        app.read_text().replace(
            "def list_items():\n",
            "def list_items():\n    import urllib.request\n    urllib.request.urlopen('https://example.com', timeout=5)\n",
        )
    )
    lab = graded(labs, "1")[LAB1.id]
    assert any("blocked a network connection" in m and "offline" in m for m in messages(lab)), messages(lab)[:2]


# --- the output the docs show is real --------------------------------------------------------------

SHOWN = {
    "docs/snippets/check-starter.txt": ["check"],
    "docs/snippets/hint-example.txt": ["hint", "1", "1", "--tier", "2"],
    # Each lab page's "Run the grader": that lab, graded on the untouched starter.
    **{f"docs/snippets/check/{lab.id}.txt": ["check", str(lab.number)] for lab in manifest.labs()},
}
RANDOM_NAME = re.compile(r"\b(items|orders|uploads|summaries|reports)-[0-9a-f]{6,12}\b")


def test_the_readme_shows_the_real_progress_table():
    table = (paths.ROOT / "docs" / "snippets" / "check-starter.txt").read_text(encoding="utf-8").splitlines()[:9]
    readme = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    assert "\n".join(table) in readme, "README.md's make check output is stale: copy the first 9 lines of docs/snippets/check-starter.txt"


@pytest.mark.parametrize("snippet", SHOWN, ids=list(SHOWN))
def test_the_output_shown_in_the_docs_is_what_the_command_prints(snippet):
    arguments = SHOWN[snippet]
    run = workshop(paths.ROOT / "labs", *arguments, COLUMNS="100")
    shown = (paths.ROOT / snippet).read_text(encoding="utf-8")
    assert RANDOM_NAME.sub("<random>", run.stdout) == RANDOM_NAME.sub("<random>", shown), (
        f"{snippet} is stale: regenerate it on untouched labs/ with "
        f"`NO_COLOR=1 COLUMNS=100 .venv/bin/workshop {' '.join(arguments)} > {snippet}`"
    )


def test_a_failing_task_points_at_its_section_on_the_served_site(labs):
    run = workshop(labs, "check", "1")
    assert "read http://127.0.0.1:8000/labs/lab01_api_gateway/#task-1 (`make docs` serves the site)" in run.stdout, run.stdout
    assert "docs/labs/lab01_api_gateway.md" not in run.stdout, "the Markdown source is not where a learner reads"


def test_a_passing_lab_says_what_to_do_next():
    run = workshop(paths.SOLUTIONS, "check", "2")
    assert run.returncode == 0, run.stdout[-2000:]
    after = run.stdout.split("Lab 2 passes.", 1)[1]
    assert "compare your code with the reference: `workshop solution 2`" in after
    assert "upload a file with `workshop upload 2 FILE`" in after and "explore.ipynb in Jupyter" in after
    assert "Then lab 3, Order worker: `workshop check 3`." in after


def test_check_grades_the_same_from_any_folder(labs):
    """A learner's terminal is often in their lab's folder, or anywhere else: `workshop check` grades the
    same from there as from the checkout (the graders' paths are the checkout's, never the current folder's)."""
    solve(labs, LAB1)
    from_root = graded(labs, "1")[LAB1.id]
    for folder in (labs / LAB1.id, labs.parent):
        lab = graded(labs, "1", cwd=folder)[LAB1.id]
        assert lab["status"] == from_root["status"] == "pass", f"from {folder}: {lab['status']} {messages(lab)[:2]}"
