"""Grade variants of the reference solutions in one warm process: mutants, right-but-different answers and
known wrong answers.

A variant is a lab's reference solution with some files changed. They are graded as a learner's labs are
(the engine, a worker per lab), on one temporary copy of solutions/ that each variant changes and then
puts back, so the engine stays warm and each grading costs about what a save in `workshop watch` does.

    python -m workshop.variants LAB_NUMBER     grade the lab's right and wrong answers (tests/answers/)
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from workshop import manifest, paths

ANSWERS = paths.TESTS / "answers"


@dataclass(frozen=True)
class Edit:
    """Replace `old`, which must occur exactly once in `file` (a path inside the lab), with `new`."""

    file: str
    old: str
    new: str


@dataclass(frozen=True)
class Variant:
    lab: manifest.Lab
    name: str
    files: dict[str, str] = field(default_factory=dict)  # path inside the lab -> its whole new text


class VariantError(ValueError):
    """A variant that no longer fits the reference (an edit's text is gone): review it."""


def apply(lab: manifest.Lab, name: str, edits: Iterable[Edit]) -> Variant:
    """The variant that `edits` make of the lab's reference solution."""
    files: dict[str, str] = {}
    for edit in edits:
        path = lab.folder("solutions") / edit.file
        if not path.is_file():
            raise VariantError(f"{lab.id}: {name!r} edits {edit.file}, which the reference does not have")
        text = files.get(edit.file, path.read_text(encoding="utf-8"))
        found = text.count(edit.old)
        if found != 1:
            raise VariantError(
                f"{lab.id}: {name!r} expects {edit.old!r} exactly once in {edit.file}, found it {found} times: "
                "the reference changed, so update the variant"
            )
        files[edit.file] = text.replace(edit.old, edit.new)
    return Variant(lab, name, files)


@contextmanager
def reference_copy() -> Iterator[Path]:
    """A copy of solutions/ that the engine grades as the learner's `labs` tree while the block runs."""
    original = paths.TARGETS["labs"]
    with tempfile.TemporaryDirectory(prefix="workshop-variants-") as folder:
        copy = Path(folder) / "labs"
        shutil.copytree(paths.SOLUTIONS, copy, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        paths.TARGETS["labs"] = copy  # the workers are forked from this process, so they see it too
        try:
            yield copy
        finally:
            paths.TARGETS["labs"] = original


def grade(variant: Variant, copy: Path, checks: str = ""):
    """Grade one variant on `copy` (from reference_copy), then put the reference back. `checks`: only
    the tests whose names start with it (a wrong answer needs only the check that is about it)."""
    return grade_together([(variant, checks)], copy)[0]


def grade_together(chosen: list[tuple[Variant, str]], copy: Path) -> list:
    """Grade variants of different labs at once, as `check --all` grades labs (each lab's folder holds
    one variant at a time), each with its `checks` as in `grade`; the results in the order given."""
    from workshop.grading import runner

    labs = [variant.lab.id for variant, _ in chosen]
    if len(set(labs)) != len(labs):
        raise ValueError("variants graded together must be of different labs")
    originals = {}
    try:
        for variant, _ in chosen:
            folder = copy / variant.lab.id
            for name, text in variant.files.items():
                originals.setdefault(folder / name, (folder / name).read_bytes())
                (folder / name).write_text(text, encoding="utf-8")
        return runner.grade_checks([(variant.lab, checks) for variant, checks in chosen], "labs", long_lived=True)
    finally:
        for path, data in originals.items():
            path.write_bytes(data)


# --- the project's right and wrong answers (tests/answers/<lab>.toml) -------------------------------


@dataclass(frozen=True)
class Answer:
    variant: Variant
    right: bool
    fails: str = ""  # a wrong answer: the check that must fail (a test name, or its start)
    says: tuple[str, ...] = ()  # ... and words its message must hold


def answers(lab: manifest.Lab) -> list[Answer]:
    """The lab's right-but-different answers (each must pass) and known wrong ones (each must fail a named
    check, with named words), from tests/answers/<lab id>.toml."""
    path = ANSWERS / f"{lab.id}.toml"
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    found = []
    for kind in ("right", "wrong"):
        for entry in document.get(kind, []):
            edits = [Edit(edit["file"], edit["old"], edit["new"]) for edit in entry["edit"]]
            variant = apply(lab, entry["name"], edits)
            says = entry.get("says", [])
            found.append(Answer(variant, kind == "right", entry.get("fails", ""), tuple([says] if isinstance(says, str) else says)))
    return found


def judge(answer: Answer, result) -> str:
    """What is wrong with how the graders treated an answer, or "" when they got it right."""
    failures = [test for task in result.tasks for test in task.tests if not test.passed]
    if result.error:
        return f"the grader could not run: {result.error[:800]}"
    if answer.right:
        if not failures:
            return ""
        return "a right answer failed: " + "; ".join(f"{test.name}: {test.message[:600]}" for test in failures)
    matching = [test for test in failures if test.name.startswith(answer.fails)]
    if not matching:
        failed = ", ".join(test.name for test in failures) or "nothing"
        return f"a wrong answer was not caught by {answer.fails} (failed: {failed})"
    missing = [words for words in answer.says if not any(words in test.message for test in matching)]
    if missing:
        return f"{answer.fails} failed without saying {missing}: {matching[0].message[:800]}"
    return ""


def main(argv: list[str]) -> int:
    """Grade the right and wrong answers of the labs named (numbers or ids; default all), print JSON."""
    from workshop import sandbox

    sandbox.enter()
    labs = [manifest.find(name) for name in argv] or list(manifest.labs())
    waiting = [answers(lab) for lab in labs]
    judged: list[list[dict]] = [[] for _ in labs]  # each lab's, in its file's order
    with reference_copy() as copy:
        while any(waiting):
            # One answer of each lab at a time, graded together: the labs' workers share the cores.
            batch = [(index, queue.pop(0)) for index, queue in enumerate(waiting) if queue]
            results = grade_together([(answer.variant, "" if answer.right else answer.fails) for _, answer in batch], copy)
            for (index, answer), result in zip(batch, results):
                judged[index].append({"lab": answer.variant.lab.id, "name": answer.variant.name, "right": answer.right,
                                      "problem": judge(answer, result)})
    report = [entry for entries in judged for entry in entries]
    print(json.dumps(report, indent=1))
    return 1 if any(entry["problem"] for entry in report) else 0


if __name__ == "__main__":
    from workshop.process_exit import exit_now

    exit_now(main(sys.argv[1:]))  # without the teardown of all of moto that Python would do (process_exit.py)
