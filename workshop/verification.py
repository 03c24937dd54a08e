"""`workshop verify`, for instructors: the course is sound before a class starts.

- every reference solution passes every task;
- every shipped starter (workshop/starters/, not the working copy in labs/, which a learner may have
  changed) fails every task, each failure with a message;
- every task has its three tiers of hints, and is reachable from a failing check; a hint written for one
  check names a check its grader defines.
Both gradings run in fresh processes, as a learner's `make check` does.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import tempfile
from pathlib import Path

from workshop import manifest, paths, starters
from workshop.grading import integrity

HINT_TIERS = 3


def graded(target: str, labs_folder: Path | None = None) -> dict:
    environment = {**os.environ, **({"WORKSHOP_LABS": str(labs_folder)} if labs_folder else {})}
    run = subprocess.run(
        [*paths.workshop_command(), "check", "--all", "--json", "--target", target],
        cwd=paths.ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode not in (0, 1):
        raise RuntimeError(f"`workshop check --all --target {target}` failed:\n{run.stderr[-2000:]}")
    return json.loads(run.stdout)


def problems_with_solutions(results: dict) -> list[str]:
    return [
        f"solutions/{lab['id']}: task {task['task_id']} fails"
        for lab in results["labs"]
        for task in lab["tasks"]
        if task["status"] != "pass"
    ] + [f"solutions/{lab['id']}: {lab['message']}" for lab in results["labs"] if lab["message"]]


def problems_with_starters(results: dict) -> list[str]:
    found = []
    for lab in results["labs"]:
        if lab["message"]:
            found.append(f"starter {lab['id']}: the grader could not run: {lab['message'][:200]}")
        for task in lab["tasks"]:
            if task["status"] == "pass":
                found.append(f"starter {lab['id']}: task {task['task_id']} already passes")
            silent = [t["name"] for t in task["tests"] if t["status"] != "pass" and not t["message"]]
            found += [f"starter {lab['id']}: {name} fails without a message" for name in silent]
    return found


def problems_with_hints() -> list[str]:
    found = [
        f"{lab.id}: task {task.number} has {len(task.hints)} hint(s), not {HINT_TIERS}"
        for lab in manifest.labs()
        for task in lab.tasks
        if len(task.hints) != HINT_TIERS
    ]
    for lab in manifest.labs():
        tests = grader_tests(lab)
        found += [
            f"{lab.id}: task {task.number} has a hint for {name}, which {paths.relative(lab.grader)} does not define"
            for task in lab.tasks
            for name, _ in task.checks
            if name not in tests
        ]
    return found


def grader_tests(lab: manifest.Lab) -> set[str]:
    """The names of the test functions a lab's grader defines (read, not imported)."""
    tree = ast.parse(lab.grader.read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def main(refresh: bool = False) -> int:
    labs = list(manifest.labs())
    if refresh:
        for written in starters.refresh_archives(labs):
            print(f"packed {paths.relative(written)}")
        print(f"recorded {paths.relative(integrity.record())} ({len(integrity.grader_files())} grader files)")
    drifted = [lab.id for lab in labs if starters.changed_files(lab)]
    if drifted:
        print(f"Note: labs/ differs from the shipped starters for {', '.join(drifted)}; verifying the shipped ones.")
    problems = problems_with_hints()
    with tempfile.TemporaryDirectory(prefix="workshop-starters-") as folder:
        for lab in labs:
            starters.write_files(Path(folder) / lab.id, starters.pristine(lab))
        problems += problems_with_starters(graded("labs", Path(folder)))
    problems += problems_with_solutions(graded("solutions"))
    for problem in problems:
        print(f"  ✘ {problem}")
    tasks = sum(len(lab.tasks) for lab in labs)
    if problems:
        print(f"{len(problems)} problem(s) across {len(labs)} labs.")
        return 1
    print(f"✔ {len(labs)} labs, {tasks} tasks: every solution passes, every starter fails, every task has its hints.")
    return 0
