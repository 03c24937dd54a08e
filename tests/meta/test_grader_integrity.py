"""The graders are checked against the hashes shipped in workshop/graders.sha256: a changed, deleted or
added grader file is reported with how to restore it, and a Windows line-ending conversion is not.

The tests that break graders do it on a temporary copy of them, never on the repository's files.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from workshop import cli, doctor, manifest, paths
from workshop.grading import integrity
from workshop.grading.integrity import Change, Kind

LAB1, LAB2 = manifest.find("lab01"), manifest.find("lab02")
GRADER1 = "tests/test_lab01_api_gateway.py"
REFRESH = "`.venv/bin/workshop verify --refresh-starters`"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The repository's grader files, copied with a record of their hashes as they are now."""
    for name in integrity.grader_files():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(paths.ROOT / name, tmp_path / name)
    integrity.record(tmp_path)
    return tmp_path


def test_the_recorded_hashes_match_the_graders_in_the_repository():
    found = integrity.changes()
    assert not found, (
        f"the graders differ from {integrity.RECORD}: {[f'{c.path} ({c.kind})' for c in found]}. After changing "
        f"a grader (tests/conftest.py, tests/test_*.py or workshop/grading/), run {REFRESH} and commit "
        f"{integrity.RECORD} with it"
    )


def test_the_record_lists_every_lab_grader_conftest_and_grading_module():
    recorded = integrity.recorded_hashes()
    assert recorded is not None, f"{integrity.RECORD} is missing or malformed: run {REFRESH}"
    expected = {integrity.CONFTEST, *(lab.grader.relative_to(paths.ROOT).as_posix() for lab in manifest.labs())}
    expected |= {path.relative_to(paths.ROOT).as_posix() for path in (paths.ROOT / "workshop/grading").rglob("*.py")}
    assert set(recorded) == expected, (
        f"{integrity.RECORD} misses {sorted(expected - set(recorded))} and lists {sorted(set(recorded) - expected)} "
        f"in vain: run {REFRESH}"
    )


def test_the_record_is_sorted_sha256sum_output(checkout):
    lines = (checkout / integrity.RECORD).read_text(encoding="utf-8").splitlines()
    names = [line.split("  ", 1)[1] for line in lines]
    assert names == sorted(names) == integrity.grader_files(checkout), f"the record is not sorted by path: {names}"
    for line in lines:
        digest, name = line.split("  ", 1)
        # The repository's files have LF endings, so the normalised hash is sha256sum's.
        assert digest == hashlib.sha256((checkout / name).read_bytes()).hexdigest(), f"wrong hash in: {line}"


def test_an_untouched_copy_has_no_changes(checkout):
    assert integrity.changes(checkout) == [], "a faithful copy of the graders is reported as changed"
    assert [integrity.problem_for(lab, checkout) for lab in manifest.labs()] == [None] * len(manifest.labs())


def test_an_edited_grader_is_reported_for_its_own_lab_only(checkout):
    grader = checkout / GRADER1
    grader.write_text(grader.read_text(encoding="utf-8") + "\ndef test_task1_free():\n    pass\n", encoding="utf-8")
    assert integrity.changes(checkout) == [Change(GRADER1, Kind.CHANGED)]
    assert integrity.problem_for(LAB1, checkout) == (
        f"{GRADER1} was changed since the workshop was installed, so this lab's verdict cannot be trusted. "
        f"Restore it: `git checkout -- {GRADER1}` (or download the workshop again)."
    )
    assert integrity.problem_for(LAB2, checkout) is None, "lab 2's verdict does not depend on lab 1's grader"


def test_a_deleted_conftest_is_reported_missing_for_every_lab(checkout):
    (checkout / "tests/conftest.py").unlink()
    assert integrity.changes(checkout) == [Change("tests/conftest.py", Kind.DELETED)]
    for lab in manifest.labs():
        problem = integrity.problem_for(lab, checkout) or ""
        assert problem.startswith("tests/conftest.py is missing"), f"{lab.id}: {problem!r}"
        assert "`git checkout -- tests/conftest.py`" in problem, f"{lab.id}: no restore command in {problem!r}"


def test_an_edited_grading_module_is_reported_for_every_lab(checkout):
    with (checkout / "workshop/grading/plugin.py").open("a", encoding="utf-8") as module:
        module.write("# tweaked\n")
    for lab in manifest.labs():
        problem = integrity.problem_for(lab, checkout) or ""
        assert "workshop/grading/plugin.py was changed" in problem, f"{lab.id}: {problem!r}"
        assert "`git checkout -- workshop/grading/plugin.py`" in problem, f"{lab.id}: {problem!r}"


def test_an_added_grader_file_is_reported_with_how_to_remove_it(checkout):
    (checkout / "workshop/grading/shortcut.py").write_text("PASS = True\n", encoding="utf-8")
    (checkout / "tests/test_mine.py").write_text("def test_task1_mine():\n    pass\n", encoding="utf-8")
    assert integrity.changes(checkout) == [
        Change("tests/test_mine.py", Kind.NEW),
        Change("workshop/grading/shortcut.py", Kind.NEW),
    ]
    problem = integrity.problem_for(LAB1, checkout) or ""
    # A new module of the grading package concerns every lab; a test file of no lab, none.
    assert problem == (
        "workshop/grading/shortcut.py was added since the workshop was installed, so this lab's verdict cannot "
        "be trusted. Delete workshop/grading/shortcut.py (or download the workshop again)."
    )


def test_crlf_line_endings_alone_are_not_a_change(checkout):
    for name in integrity.grader_files(checkout):
        file = checkout / name
        file.write_bytes(file.read_bytes().replace(b"\n", b"\r\n"))
    assert integrity.changes(checkout) == [], "a git autocrlf checkout on Windows reads as changed graders"
    grader = checkout / GRADER1
    grader.write_bytes(grader.read_bytes().replace(b"assert ", b"assert True or ", 1))
    assert integrity.changes(checkout) == [Change(GRADER1, Kind.CHANGED)], "a real edit hides behind CRLF endings"


@pytest.mark.parametrize(("content", "kind"), [(None, Kind.DELETED), ("not a hash  tests/conftest.py\n", Kind.CHANGED)])
def test_without_a_readable_record_nothing_is_vouched_for(checkout, content, kind):
    record = checkout / integrity.RECORD
    if content is None:
        record.unlink()
    else:
        record.write_text(content, encoding="utf-8")
    assert integrity.changes(checkout) == [Change(integrity.RECORD, kind)]
    problem = integrity.problem_for(LAB2, checkout) or ""
    assert f"`git checkout -- {integrity.RECORD}`" in problem, problem


def test_the_doctor_fails_on_a_changed_grader_and_prints_the_fix(checkout, monkeypatch, capsys):
    (checkout / GRADER1).write_text("def test_task1_anything():\n    pass\n", encoding="utf-8")
    (checkout / "tests/conftest.py").unlink()
    monkeypatch.setattr(doctor, "CHECKS", (lambda: doctor.graders(checkout),))
    assert cli.main(["doctor"]) == 1, "workshop doctor exits 0 with a changed grader"
    output = capsys.readouterr().out
    missing = "tests/conftest.py is missing: it was deleted since the workshop was installed"
    assert f"✘ Graders: {missing}; {GRADER1} was changed" in output, output
    restore = f"`git checkout -- tests/conftest.py {GRADER1}`"
    assert f"fix: restore them: {restore} (or download the workshop again)" in output, output


def test_the_doctor_reports_the_graders_as_shipped_on_this_checkout():
    run = subprocess.run(
        [*paths.workshop_command(), "doctor"], cwd=paths.ROOT, capture_output=True, text=True, timeout=120
    )
    count = len(integrity.grader_files())
    assert f"✔ Graders: {count} grader files match the workshop as shipped" in run.stdout, (
        f"`workshop doctor` on the repository does not vouch for its graders:\n{run.stdout}{run.stderr[-2000:]}"
    )
