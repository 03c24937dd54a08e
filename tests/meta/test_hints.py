"""Hints per check: a check whose failure the task's first hint does not answer has a hint of its own in
labs/labs.toml ([lab.task.checks]); `make check`, `workshop hint` and --json show it, the site lists it."""

from __future__ import annotations

import pytest

from tests.meta.test_docs_snippets import convert
from workshop import docs_snippets, manifest, verification
from workshop.grading import report
from workshop.grading import runner

LAB_TOML = (
    '[[lab]]\nid = "lab01_api_gateway"\ntitle = "t"\npattern = "p"\npractice = "b"\nfunctions = []\nminutes = 1\n'
    '[[lab.task]]\ntitle = "List the items"\nhints = ["Read TABLE_NAME.", "A pointer.", "The API."]\n'
    "[lab.task.checks]\n"
    'test_task1_reads_every_page = "A scan returns one page: follow `LastEvaluatedKey`."\n'
)


@pytest.fixture
def lab() -> manifest.Lab:
    return manifest.parse(LAB_TOML)[0]


def failing(lab: manifest.Lab, name: str) -> runner.LabResult:
    task = lab.tasks[0]
    tests = [runner.TestResult("test_task1_lists", True), runner.TestResult(name, False, "why")]
    return runner.LabResult(lab, [runner.TaskResult(task, tests)])


def test_the_failing_check_s_own_hint_is_shown_not_the_first_tier(lab):
    shown = "\n".join(report.next_steps(failing(lab, "test_task1_reads_every_page[1000 items]"), report.Style(False)))
    assert "Hint: A scan returns one page: follow `LastEvaluatedKey`." in shown
    assert "Read TABLE_NAME" not in shown and "More: workshop hint 1 1\n" in shown + "\n"


def test_a_check_without_a_hint_of_its_own_shows_the_first_tier(lab):
    shown = "\n".join(report.next_steps(failing(lab, "test_task1_reads_the_table_name"), report.Style(False)))
    assert "Hint: Read TABLE_NAME." in shown and "More: workshop hint 1 1 --tier 2" in shown


def test_json_gives_each_failing_check_its_hint(lab):
    tests = report.as_json([failing(lab, "test_task1_reads_every_page")], "labs")["labs"][0]["tasks"][0]["tests"]
    assert [test["hint"] for test in tests] == [None, "A scan returns one page: follow `LastEvaluatedKey`."]


def test_a_check_hint_must_name_a_check_of_its_own_task():
    with pytest.raises(manifest.ManifestError, match=r"task 1: 'checks' must map test_task1_\* test names"):
        manifest.parse(LAB_TOML.replace("test_task1_reads", "test_task2_reads"))


def test_verify_finds_a_hint_for_a_check_the_grader_does_not_define(lab, monkeypatch):
    monkeypatch.setattr(manifest, "labs", lambda: (lab,))
    assert verification.problems_with_hints() == [
        "lab01_api_gateway: task 1 has a hint for test_task1_reads_every_page, which tests/test_lab01_api_gateway.py "
        "does not define"
    ]


def test_every_check_hint_in_the_course_names_a_real_check():
    assert not [problem for problem in verification.problems_with_hints() if "does not define" in problem]


def test_the_page_shows_a_check_s_hint_as_its_own_collapsed_tip(lab):
    html = convert(docs_snippets.hint_blocks(lab, lab.tasks[0]))
    assert html.count('<details class="tip">') == 4, html
    assert "If the check “reads every page” fails" in html and "LastEvaluatedKey" in html
