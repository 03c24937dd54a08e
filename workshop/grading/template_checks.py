"""Read a lab's template as the graders check it: as written (SAM) and as AWS deploys it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from workshop import paths, runtimes, templates


def load_both(lab_dir: Path) -> tuple[dict, dict]:
    """The lab's template as written (SAM) and transformed (CloudFormation); a failure is the learner's to fix."""
    path = lab_dir / "template.yaml"
    try:
        return templates.loaded(path), templates.transformed(path)
    except templates.TemplateError as error:
        raise AssertionError(f"{paths.relative(path)}: {error}") from None


def function_by_code_uri(sam: dict, cfn: dict, lab_dir: Path, code_uri: str) -> tuple[str, dict, dict]:
    """The function whose CodeUri is `code_uri`/: its name, SAM properties and deployed properties."""
    for name, properties in templates.resources_of_type(sam, "AWS::Serverless::Function"):
        if str(properties.get("CodeUri", "")).rstrip("/") == code_uri:
            return name, properties, cfn["Resources"][name]["Properties"]
    raise AssertionError(
        f"{paths.relative(lab_dir / 'template.yaml')} has no AWS::Serverless::Function "
        f"with CodeUri: {code_uri}/"
    )


def role_of(cfn: dict, function: dict) -> dict[str, Any]:
    """The deployed properties of the IAM role a transformed function runs with."""
    role = (function.get("Role") or {}).get("Fn::GetAtt", [None])[0]
    return cfn["Resources"].get(role, {}).get("Properties", {})


def policy_statements(role: dict) -> list[dict]:
    return [
        statement
        for policy in role.get("Policies", [])
        for statement in policy.get("PolicyDocument", {}).get("Statement", [])
    ]


def actions(statement: dict) -> list[str]:
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else list(action)


# Lab 1's lessons, which every later lab keeps: checked the same way everywhere.
POWERTOOLS_LAYER = re.compile(
    r"^arn:aws:lambda:\$\{AWS::Region\}:017000801446:layer:"
    r"AWSLambdaPowertoolsPythonV3-(?P<python>python3\d+)-(?P<arch>arm64|x86_64):\d+$"
)
PROVIDED_BY_RUNTIME_OR_LAYER = ("boto3", "botocore", "aws-lambda-powertools", "pydantic")
PUBLIC_LAYER = "!Sub arn:aws:lambda:${AWS::Region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"


def layer_arns(function: dict) -> list[str]:
    return [layer.get("Fn::Sub") if isinstance(layer, dict) else layer for layer in function.get("Layers", [])]


def bundled_packages(function_dir: Path) -> list[str]:
    """What a function's requirements.txt bundles that the runtime or the Powertools layer provides."""
    requirements = (function_dir / "requirements.txt").read_text(encoding="utf-8").lower()
    return [p for p in PROVIDED_BY_RUNTIME_OR_LAYER if re.search(rf"^\s*{p}\b", requirements, re.M)]


def assert_keeps_lab_1_settings(name: str, function: dict, function_dir: Path) -> None:
    """arm64, a runtime supported for another year, the public Powertools layer built for both, and
    neither boto3 nor Powertools bundled. Fails with a message for the learner."""
    assert function.get("Architectures") == ["arm64"], (
        f"{name} runs on {function.get('Architectures') or ['x86_64 (the default)']}; expected [arm64] (lab 1)."
    )
    problem = runtimes.problem_with(function.get("Runtime"))
    assert problem is None, f"{name}: {problem}. Choose a current runtime, such as python3.13 (lab 1)."
    layers = layer_arns(function)
    matches = [m for m in (POWERTOOLS_LAYER.match(str(layer)) for layer in layers) if m]
    runtime = str(function.get("Runtime", "")).replace(".", "")
    assert matches and (matches[0]["python"], matches[0]["arch"]) == (runtime, "arm64"), (
        f"{name} has the layers {layers or 'none'}; expected the public Powertools layer for "
        f"{function.get('Runtime')} on arm64: {PUBLIC_LAYER}."
    )
    bundled = bundled_packages(function_dir)
    assert not bundled, (
        f"{function_dir.name}/requirements.txt bundles {bundled}: boto3 comes with the runtime and Powertools "
        "(with pydantic) with its layer."
    )
