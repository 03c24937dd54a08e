"""Read a lab's template as the graders check it: as written (SAM) and as AWS deploys it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workshop import paths, templates


def load_both(lab_dir: Path) -> tuple[dict, dict]:
    """The lab's template as written (SAM) and transformed (CloudFormation); a failure is the learner's to fix."""
    path = lab_dir / "template.yaml"
    try:
        return templates.load(path), templates.transformed(path)
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
