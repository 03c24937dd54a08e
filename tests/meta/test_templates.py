"""Every template transforms offline; the reference templates and the root one lint clean; runtimes are current."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date
from importlib import metadata
from pathlib import Path

import pytest

from workshop import manifest, paths, runtimes, templates

# Linting and deploying into moto take seconds, not the learner's sub-second checks.
pytestmark = pytest.mark.timeout(60)

LABS = manifest.labs()
ROOT_TEMPLATE = paths.ROOT / "template.yaml"
REFERENCE_TEMPLATES = [ROOT_TEMPLATE, *(lab.folder("solutions") / "template.yaml" for lab in LABS)]


@pytest.mark.parametrize("target", ["labs", "solutions"])
@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_every_lab_template_transforms(lab, target):
    transformed = templates.transform(templates.load(lab.folder(target) / "template.yaml"), lab.folder(target))
    assert any(r["Type"] == "AWS::Lambda::Function" for r in transformed["Resources"].values())


# What cfn-lint (with the serverless rules) may say about an untouched starter template, because fixing
# it is one of the lab's tasks. Starters are otherwise hardened like the solutions (test_security.py).
STARTER_LESSONS = {
    "W2531": "a deprecated runtime (python3.9): task 5 of lab 1 moves to a current one",
    "E3027": "an invalid schedule expression (a five-field Unix cron): task 5 of lab 4 fixes it",
    "ES1007": "functions SNS invokes without an on-failure destination: task 4 of lab 5 adds one",
}


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_starter_templates_lint_clean_but_for_what_their_tasks_fix(lab):
    path = lab.folder("labs") / "template.yaml"
    findings = templates.lint(path.read_text(encoding="utf-8"), serverless=True)
    findings += templates.lint(templates.transformed(path), serverless=True)
    allowed = STARTER_LESSONS.keys() | templates.ACCEPTED_SERVERLESS_FINDINGS.keys()
    unexpected = [finding for finding in findings if finding.rule not in allowed]
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
    # Lab 6 tunes labs 1, 3 and 4's functions: nesting it too would deploy them twice.
    expected = [f"solutions/{lab.id}/template.yaml" for lab in LABS if lab.functions]
    assert locations == expected, f"template.yaml nests {locations}; expected {expected} (manifest order)"
    stacks = [r for r in templates.transform(root, paths.ROOT)["Resources"].values() if r["Type"] == "AWS::CloudFormation::Stack"]
    assert len(stacks) == len(expected)


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_reference_functions_run_a_runtime_supported_for_more_than_a_year(lab):
    transformed = templates.transformed(lab.folder("solutions") / "template.yaml")
    for name, properties in templates.resources_of_type(transformed, "AWS::Lambda::Function"):
        problem = runtimes.problem_with(properties.get("Runtime"))
        assert problem is None, f"solutions/{lab.id} {name}: {problem}; move to a newer runtime (and its Powertools layer)"


def powertools_layers(template: dict) -> list[tuple[str, dict, str]]:
    """(function, its properties, layer ARN text) for each Powertools layer of a transformed template."""
    return [
        (name, properties, text)
        for name, properties in templates.resources_of_type(template, "AWS::Lambda::Function")
        for layer in properties.get("Layers", [])
        if "AWSLambdaPowertoolsPython" in (text := json.dumps(layer))
    ]


@pytest.mark.parametrize("target", ["labs", "solutions"])
@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_powertools_layers_are_of_the_installed_major_and_match_runtime_and_architecture(lab, target):
    installed = int(metadata.version("aws-lambda-powertools").split(".")[0])
    layers = powertools_layers(templates.transformed(lab.folder(target) / "template.yaml"))
    if target == "solutions":
        assert layers, f"solutions/{lab.id}: no function takes Powertools from its public layer"
    for name, properties, text in layers:
        layer = runtimes.powertools_layer(text)
        assert layer, f"{target}/{lab.id} {name}: {text} is not a Powertools layer ARN this check can read"
        assert layer.major >= installed, (
            f"{target}/{lab.id} {name}: the layer is Powertools v{layer.major}, the graders run v{installed} "
            f"(aws-lambda-powertools {metadata.version('aws-lambda-powertools')}): move to AWSLambdaPowertoolsPythonV{installed}"
        )
        architecture = (properties.get("Architectures") or ["x86_64"])[0]
        assert (layer.runtime, layer.architecture) == (properties.get("Runtime"), architecture), (
            f"{target}/{lab.id} {name}: the layer is built for {layer.runtime} on {layer.architecture}; the "
            f"function runs {properties.get('Runtime')} on {architecture}"
        )


def test_the_layer_check_reads_powertools_layer_arns():
    arn = "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"
    assert runtimes.powertools_layer(arn) == runtimes.PowertoolsLayer(3, "python3.13", "arm64", 27)
    assert runtimes.powertools_layer(arn.replace("V3-python313-arm64", "V2-python312-x86_64")).major == 2
    assert runtimes.powertools_layer("arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV2:79") is None
    assert runtimes.powertools_layer("arn:aws:lambda:eu-west-1:123456789012:layer:mine:1") is None


def test_the_runtime_check_flags_deprecated_near_and_unknown_runtimes():
    today = date(2026, 11, 27)
    assert runtimes.problem_with("python3.13", today) is None
    assert "deprecated by Lambda on 15 December 2025" in runtimes.problem_with("python3.9", today)
    near = runtimes.problem_with("python3.12", date(2028, 1, 1))
    assert "less than a year" in near and "; move to python3.14" in near, near
    assert "not a Python runtime" in runtimes.problem_with("nodejs22.x", today)


def test_the_runtime_dates_are_cfn_lint_s_not_our_own():
    """cfn-lint's lifecycle data is the one source: runtimes.py holds no date of its own."""
    import cfnlint.data.AdditionalSpecs

    source = Path(runtimes.__file__).read_text(encoding="utf-8")
    assert not re.search(r"date\(\d{4}", source) and not re.search(r"\d{4}-\d{2}-\d{2}", source), "a date in runtimes.py"
    data = json.loads((Path(cfnlint.data.AdditionalSpecs.__file__).parent / "LmbdRuntimeLifecycle.json").read_text())
    assert runtimes.python_lifecycles()["python3.11"].deprecated == date.fromisoformat(data["python3.11"]["deprecated"])
    assert runtimes.python_lifecycles()["python3.10"].successor == data["python3.10"]["successor"]
    gone = runtimes.problem_with("python3.8", date(2026, 11, 27))
    assert "no new function can use it from" in gone and "move to" in gone, gone


def test_a_broken_template_gets_a_clear_error(tmp_path):
    (tmp_path / "template.yaml").write_text("Resources: [not, a, mapping\n")
    with pytest.raises(templates.TemplateError, match="not valid YAML"):
        templates.load(tmp_path / "template.yaml")
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties: {}\n"
    )
    with pytest.raises(templates.TemplateError, match="SAM cannot transform"):
        templates.transform(templates.load(tmp_path / "template.yaml"), tmp_path)


TRANSFORM_IN_A_FRESH_PROCESS = """
import sys
from pathlib import Path
from workshop import templates
path = Path(sys.argv[1])
templates.transform(templates.load(path), path.parent)
print(sorted(name for name in sys.modules if name.startswith("rfc3987_syntax.")))
"""


def test_a_transform_never_builds_jsonschemas_iri_grammar():
    """samtranslator imports jsonschema, which imports rfc3987_syntax when it is installed and builds an IRI
    grammar as it does: 1 s of the 1.3 s a learner waited whenever a template was new (a save, a fresh clone)."""
    template = manifest.labs()[0].folder("solutions") / "template.yaml"
    run = subprocess.run([sys.executable, "-c", TRANSFORM_IN_A_FRESH_PROCESS, str(template)], cwd=paths.ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]", f"the transform imported {run.stdout.strip()}"


def test_a_loaded_template_is_read_from_the_cache_next_time_unless_json_would_change_it(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE", tmp_path / "cache")
    template = tmp_path / "template.yaml"
    template.write_text("Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Sub '${AWS::StackName}-q'\n")
    monkeypatch.setattr(templates, "_loaded", {})
    first = templates.loaded(template)
    assert first["Resources"]["Queue"]["Properties"]["QueueName"] == {"Fn::Sub": "${AWS::StackName}-q"}
    first["Resources"].clear()  # a caller's change reaches no other caller
    parsed = []
    monkeypatch.setattr(templates, "load", lambda path: parsed.append(path) or pytest.fail("parsed again"))
    monkeypatch.setattr(templates, "_loaded", {})  # a new process: only the disk remembers
    assert templates.loaded(template)["Resources"]["Queue"]["Type"] == "AWS::SQS::Queue"
    assert not parsed
    # A date (an unquoted policy Version) is not JSON: that template is parsed each time, and stays a date.
    monkeypatch.undo()
    monkeypatch.setattr(paths, "CACHE", tmp_path / "cache")
    template.write_text("Resources:\n  Policy:\n    Type: AWS::IAM::ManagedPolicy\n    Properties:\n      PolicyDocument:\n        Version: 2012-10-17\n")
    for _ in range(2):
        monkeypatch.setattr(templates, "_loaded", {})
        assert templates.loaded(template)["Resources"]["Policy"]["Properties"]["PolicyDocument"]["Version"] == date(2012, 10, 17)
    assert len(list((tmp_path / "cache" / "templates").glob("*.yaml.json"))) == 1, "only the first template was cached"
    # A damaged entry is read as no entry, and made again.
    template.write_text("Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Sub '${AWS::StackName}-q'\n")
    for damage in ("{not json", "[1, 2]"):
        for entry in (tmp_path / "cache" / "templates").glob("*.yaml.json"):
            entry.write_text(damage)
        monkeypatch.setattr(templates, "_loaded", {})
        assert templates.loaded(template)["Resources"]["Queue"]["Type"] == "AWS::SQS::Queue", damage


def test_every_file_names_the_same_powertools_layer_version():
    """Templates, hints, pages and graders all name one layer version: a bump is one search and replace,
    and this test finds the place it missed."""
    found: dict[tuple[int, int], list[str]] = {}
    skipped = {".venv", "site", ".git", ".workshop", "node_modules", "__pycache__"}
    for path in paths.ROOT.rglob("*"):
        if skipped & set(path.relative_to(paths.ROOT).parts) or path.suffix not in {".yaml", ".md", ".toml", ".py", ".ipynb"}:
            continue
        for match in re.finditer(r"AWSLambdaPowertoolsPythonV(\d+)-python3\d+-(?:arm64|x86_64):(\d+)", path.read_text(encoding="utf-8", errors="replace")):
            found.setdefault((int(match[1]), int(match[2])), []).append(paths.relative(path))
    assert len(found) == 1, "more than one Powertools layer version: " + "; ".join(
        f"V{major}:{version} in {sorted(set(files))}" for (major, version), files in found.items()
    )
    assert len(next(iter(found.values()))) >= 10, "the layer is named in fewer places than the templates alone"
