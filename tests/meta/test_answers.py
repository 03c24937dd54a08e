"""The graders judge answers as a reviewer would: right-but-different answers pass, plausible wrong ones fail
the check that is about them, with words that say what is wrong (tests/answers/<lab>.toml)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workshop import manifest, paths, variants

LABS = manifest.labs()
RIGHT_ANSWERS_PER_LAB = 3
# Every lab's answers are graded once, in the first test that needs them: minutes, not seconds.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def judged() -> dict[str, list[dict]]:
    """Every lab's answers, graded once, in one warm process (as `python -m workshop.variants` does)."""
    run = subprocess.run(
        [sys.executable, "-m", "workshop.variants"], cwd=paths.ROOT, capture_output=True, text=True, timeout=840
    )
    assert run.returncode in (0, 1), f"workshop.variants failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    by_lab: dict[str, list[dict]] = {}
    for entry in json.loads(run.stdout):
        by_lab.setdefault(entry["lab"], []).append(entry)
    return by_lab


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_each_lab_has_right_but_different_answers(lab):
    right = [answer for answer in variants.answers(lab) if answer.right]
    assert len(right) >= RIGHT_ANSWERS_PER_LAB, (
        f"tests/answers/{lab.id}.toml has {len(right)} right-but-different answers; give it {RIGHT_ANSWERS_PER_LAB}"
    )


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_the_graders_judge_each_answer_right(lab, judged):
    expected = {answer.variant.name for answer in variants.answers(lab)}
    graded = {entry["name"]: entry for entry in judged.get(lab.id, [])}
    assert set(graded) == expected, f"graded {sorted(graded)}, expected {sorted(expected)}"
    problems = [f"{name}: {entry['problem']}" for name, entry in graded.items() if entry["problem"]]
    assert not problems, "\n".join(problems)


def test_an_edit_that_no_longer_fits_the_reference_is_an_error():
    lab = LABS[0]
    edit = variants.Edit("items_api/app.py", "text the reference never had", "anything")
    with pytest.raises(variants.VariantError, match="exactly once in items_api/app.py, found it 0 times"):
        variants.apply(lab, "stale", [edit])


def test_a_wrong_answer_that_passes_or_fails_elsewhere_is_reported():
    """judge() itself: a wrong answer must fail the named check, with the named words."""
    lab = LABS[0]
    wrong = variants.Answer(variants.Variant(lab, "w"), right=False, fails="test_task3_", says=("unknown field",))

    def result(name: str, passed: bool, message: str = ""):
        from workshop.grading import runner

        return runner.LabResult(lab, [runner.TaskResult(lab.tasks[2], [runner.TestResult(name, passed, message)])])

    assert "was not caught by test_task3_" in variants.judge(wrong, result("test_task3_x", True))
    assert "failed without saying" in variants.judge(wrong, result("test_task3_x", False, "another reason"))
    assert variants.judge(wrong, result("test_task3_x", False, "an unknown field was stored")) == ""
    right = variants.Answer(variants.Variant(lab, "r"), right=True)
    assert "a right answer failed: test_task3_x: no" in variants.judge(right, result("test_task3_x", False, "no"))


def test_variants_graded_together_are_of_different_labs(tmp_path):
    """Each lab's folder holds one variant at a time: two of the same lab at once would grade one file twice."""
    lab = LABS[0]
    with pytest.raises(ValueError, match="different labs"):
        variants.grade_together([(variants.Variant(lab, "a"), ""), (variants.Variant(lab, "b"), "")], tmp_path)
