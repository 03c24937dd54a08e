"""Helpers for lab 6's grader: what each function deploys, its package, its aliases, and conditions resolved.

A function is known by the file its handler runs (`<CodeUri>/<module>.py`), not by its logical id or
its CodeUri text: lab 6's template points at the other labs' folders (`../lab01_api_gateway/items_api/`),
and a learner may package a function in more than one way.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workshop import paths, templates

# What `sam build` leaves out of a Python function's folder (aws-lambda-builders' python_pip workflow
# excludes these): compiled bytecode is rebuilt on Lambda, so it never counts against the budget.
BUILD_EXCLUDES = ("__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".aws-sam")
EXCLUDED_SUFFIXES = (".pyc",)
# Lab 6's budget for a function's package, zipped (lab 7's is held to it too): several times our largest
# function, far below any library.
PACKAGE_BUDGET = 20_000  # bytes


@dataclass(frozen=True)
class Function:
    name: str  # logical id
    code_folder: Path  # the CodeUri folder, resolved
    handler_file: Path  # the file Lambda imports, resolved
    sam: dict  # properties as written
    cfn: dict  # properties as deployed (Globals applied)

    def runs(self, lab: str, function: str) -> bool:
        """True when this function runs `<tree>/<lab>/<function>/app.py` of the same tree."""
        parts = self.handler_file.parts
        return parts[-3:] == (lab, function, "app.py")


def functions(sam: dict, cfn: dict, lab_dir: Path) -> list[Function]:
    found = []
    for name, properties in templates.resources_of_type(sam, "AWS::Serverless::Function"):
        code_uri = properties.get("CodeUri")
        handler = str(properties.get("Handler", ""))
        if not isinstance(code_uri, str) or "." not in handler:
            continue
        folder = (lab_dir / code_uri).resolve()
        module = handler.rpartition(".")[0].replace(".", "/")
        deployed = cfn["Resources"].get(name, {}).get("Properties", {})
        found.append(Function(name, folder, folder / f"{module}.py", properties, deployed))
    return found


def the_function(all_functions: list[Function], lab: str, function: str, template: Path) -> Function:
    """The function that runs `<lab>/<function>/app.py`; a learner-facing failure when none does."""
    for candidate in all_functions:
        if candidate.runs(lab, function):
            return candidate
    raise AssertionError(
        f"{paths.relative(template)} has no AWS::Serverless::Function that runs {lab}'s {function} "
        f"(CodeUri: ../{lab}/{function}/ with Handler: app.lambda_handler). Keep the three functions "
        "of the starter; tune them, do not remove them."
    )


def package(folder: Path) -> tuple[int, list[str]]:
    """The size in bytes of `folder` zipped as `sam build` + `sam package` would, and its file names."""
    buffer = io.BytesIO()
    names = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if not path.is_file() or set(relative.parts) & set(BUILD_EXCLUDES):
                continue
            if path.suffix in EXCLUDED_SUFFIXES:
                continue
            archive.write(path, relative.as_posix())
            names.append(relative.as_posix())
    return len(buffer.getvalue()), names


def aliases_of(cfn: dict, function_name: str) -> list[dict]:
    """The deployed properties of every AWS::Lambda::Alias of the function."""
    return [
        properties
        for _, properties in templates.resources_of_type(cfn, "AWS::Lambda::Alias")
        if properties.get("FunctionName") == {"Ref": function_name}
    ]


class Unresolved(ValueError):
    """A value the grader cannot resolve offline (an import, a GetAtt, ...)."""


def parameter_values(cfn: dict, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The template's parameters as CloudFormation sees them: their defaults, unless overridden."""
    values = {
        name: str(spec["Default"])
        for name, spec in (cfn.get("Parameters") or {}).items()
        if "Default" in spec
    }
    return {**values, **(overrides or {})}


NO_VALUE = object()


def resolve(value: Any, cfn: dict, parameters: dict[str, str], *, keep_references: bool = False) -> Any:
    """`value` with Ref to parameters, Fn::If, Fn::Equals, Fn::Not, Fn::And and Fn::Or worked out.

    A Ref to anything but a parameter raises Unresolved, unless `keep_references`: then it stays as it
    is, so that whole resources resolve (their Refs to other resources are what the stack would create).
    """

    def again(inner: Any) -> Any:
        return resolve(inner, cfn, parameters, keep_references=keep_references)

    if isinstance(value, list):
        return [r for r in (again(v) for v in value) if r is not NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (key, inner), = value.items()
        if key == "Ref":
            if inner == "AWS::NoValue":
                return NO_VALUE
            if inner in parameters:
                return parameters[inner]
            if keep_references:
                return value
            raise Unresolved(f"Ref {inner}")
        if key == "Fn::If":
            condition, when_true, when_false = inner
            return again(when_true if holds(condition, cfn, parameters) else when_false)
    return {key: resolved for key, resolved in ((k, again(v)) for k, v in value.items()) if resolved is not NO_VALUE}


def holds(condition: Any, cfn: dict, parameters: dict[str, str]) -> bool:
    """Whether a condition (by name, or an expression) is true for these parameter values."""
    if isinstance(condition, str):
        definition = (cfn.get("Conditions") or {}).get(condition)
        if definition is None:
            raise Unresolved(f"condition {condition}")
        return holds(definition, cfn, parameters)
    if not isinstance(condition, dict) or len(condition) != 1:
        raise Unresolved(f"condition {condition!r}")
    (key, inner), = condition.items()
    if key == "Condition":
        return holds(inner, cfn, parameters)
    if key == "Fn::Not":
        return not holds(inner[0], cfn, parameters)
    if key == "Fn::And":
        return all(holds(c, cfn, parameters) for c in inner)
    if key == "Fn::Or":
        return any(holds(c, cfn, parameters) for c in inner)
    if key == "Fn::Equals":
        left, right = (str(resolve(side, cfn, parameters)) for side in inner)
        return left == right
    raise Unresolved(f"condition {key}")
