"""Every solution passes its grader and every untouched starter fails every task, with learner-facing messages.

Each tree is graded once, in a fresh process, as a learner's commands grade: the starters with `workshop check
--all --json`, the solutions with `workshop status --json` (the same grading of every lab; its exit code and
order are checked here too, so that test_cli.py's status test need not grade the solutions again).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from workshop import manifest, paths

# Signs that a message shows the grader's own insides rather than the learner's code.
INTERNALS = ("Traceback (most recent call last)", "site-packages", "workshop/", "tests/test_lab", "conftest.py")


def graded(target: str, *command: str) -> dict:
    run = subprocess.run(
        [*paths.workshop_command(), *command, "--target", target, "--json"],
        cwd=paths.ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode in (0, 1), f"workshop {' '.join(command)} --target {target} crashed ({run.returncode}):\n{run.stderr[-3000:]}"
    return {**json.loads(run.stdout), "exit_code": run.returncode}


@pytest.fixture(scope="module")
def starters() -> dict:
    return graded("labs", "check", "--all")


@pytest.fixture(scope="module")
def solutions() -> dict:
    return graded("solutions", "status")


def test_status_of_the_solutions_passes_and_lists_every_lab_in_course_order(solutions):
    assert solutions["exit_code"] == 0 and solutions["status"] == "pass", "status exits 0 once every lab passes"
    assert [lab["id"] for lab in solutions["labs"]] == [lab.id for lab in manifest.labs()]


def by_id(results: dict) -> dict:
    return {lab["id"]: lab for lab in results["labs"]}


@pytest.mark.parametrize("lab", manifest.labs(), ids=lambda lab: lab.id)
def test_every_solution_passes_every_task(solutions, lab):
    result = by_id(solutions)[lab.id]
    failing = {
        task["task_id"]: [test["message"] for test in task["tests"] if test["status"] != "pass"]
        for task in result["tasks"]
        if task["status"] != "pass"
    }
    assert result["status"] == "pass" and not failing, f"solutions/{lab.id}: {result['message'] or failing}"


@pytest.mark.parametrize("lab", manifest.labs(), ids=lambda lab: lab.id)
def test_every_untouched_starter_fails_every_task(starters, lab):
    result = by_id(starters)[lab.id]
    assert result["status"] == "fail", f"labs/{lab.id}: {result['status']} {result['message'] or ''}"
    passing = [task["task_id"] for task in result["tasks"] if task["status"] == "pass"]
    assert not passing, (
        f"labs/{lab.id}: the starter already passes tasks {passing}; a starter must fail every task "
        "(is labs/ untouched? `git status labs/`)"
    )


@pytest.mark.parametrize("lab", manifest.labs(), ids=lambda lab: lab.id)
def test_starter_failures_speak_to_the_learner(starters, lab):
    for task in by_id(starters)[lab.id]["tasks"]:
        for test in task["tests"]:
            if test["status"] == "pass":
                continue
            message = test["message"] or ""
            assert message.strip(), f"{test['name']} failed without a message"
            leaked = [sign for sign in INTERNALS if sign in message]
            assert not leaked, f"{test['name']}'s message shows the grader's insides ({leaked}):\n{message[:1500]}"
