"""Every template transforms offline; the reference templates and the root one lint clean; runtimes are current."""

from __future__ import annotations

from datetime import date

import pytest

from workshop import manifest, paths, runtimes, templates

LABS = manifest.labs()
ROOT_TEMPLATE = paths.ROOT / "template.yaml"
REFERENCE_TEMPLATES = [ROOT_TEMPLATE, *(lab.folder("solutions") / "template.yaml" for lab in LABS)]


@pytest.mark.parametrize("target", ["labs", "solutions"])
@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_every_lab_template_transforms(lab, target):
    transformed = templates.transform(templates.load(lab.folder(target) / "template.yaml"), lab.folder(target))
    assert any(r["Type"] == "AWS::Lambda::Function" for r in transformed["Resources"].values())


# What cfn-lint may say about an untouched starter template, because fixing it is one of the lab's tasks.
STARTER_LESSONS = {
    "W2531": "a deprecated runtime (python3.9): task 5 of lab 1 moves to a current one",
    "E3027": "an invalid schedule expression (a five-field Unix cron): task 5 of lab 4 fixes it",
}


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_starter_templates_lint_clean_but_for_what_their_tasks_fix(lab):
    path = lab.folder("labs") / "template.yaml"
    findings = templates.lint(path.read_text(encoding="utf-8")) + templates.lint(templates.transformed(path))
    unexpected = [finding for finding in findings if finding.rule not in STARTER_LESSONS]
    assert not unexpected, f"cfn-lint on {paths.relative(path)}:\n" + "\n".join(map(str, unexpected))


@pytest.mark.parametrize("path", REFERENCE_TEMPLATES, ids=paths.relative)
def test_reference_templates_lint_clean_before_and_after_the_transform(path):
    source = templates.lint(path.read_text(encoding="utf-8"))
    after = templates.lint(templates.transform(templates.load(path), path.parent))
    assert not source, f"cfn-lint on {paths.relative(path)}:\n" + "\n".join(map(str, source))
    assert not after, f"cfn-lint on transformed {paths.relative(path)}:\n" + "\n".join(map(str, after))


def test_the_root_template_deploys_every_lab_as_a_nested_application():
    root = templates.load(ROOT_TEMPLATE)
    locations = [p.get("Location") for _, p in templates.resources_of_type(root, "AWS::Serverless::Application")]
    expected = [f"solutions/{lab.id}/template.yaml" for lab in LABS]
    assert locations == expected, f"template.yaml nests {locations}; expected {expected} (manifest order)"
    stacks = [r for r in templates.transform(root, paths.ROOT)["Resources"].values() if r["Type"] == "AWS::CloudFormation::Stack"]
    assert len(stacks) == len(LABS)


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_reference_functions_run_a_runtime_supported_for_more_than_a_year(lab):
    transformed = templates.transformed(lab.folder("solutions") / "template.yaml")
    for name, properties in templates.resources_of_type(transformed, "AWS::Lambda::Function"):
        problem = runtimes.problem_with(properties.get("Runtime"))
        assert problem is None, f"solutions/{lab.id} {name}: {problem}; move to a newer runtime (and its Powertools layer)"


def test_the_runtime_check_flags_deprecated_near_and_unknown_runtimes():
    today = date(2026, 11, 27)
    assert runtimes.problem_with("python3.13", today) is None
    assert "deprecated by Lambda on 15 December 2025" in runtimes.problem_with("python3.9", today)
    assert "less than a year" in runtimes.problem_with("python3.12", date(2028, 1, 1))
    assert "not a Python runtime" in runtimes.problem_with("nodejs22.x", today)


def test_a_broken_template_gets_a_clear_error(tmp_path):
    (tmp_path / "template.yaml").write_text("Resources: [not, a, mapping\n")
    with pytest.raises(templates.TemplateError, match="not valid YAML"):
        templates.load(tmp_path / "template.yaml")
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties: {}\n"
    )
    with pytest.raises(templates.TemplateError, match="SAM cannot transform"):
        templates.transform(templates.load(tmp_path / "template.yaml"), tmp_path)
