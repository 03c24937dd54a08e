"""Read a lab's template as the graders check it: as written (SAM) and as AWS deploys it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workshop import paths, runtimes, templates
from workshop.sandbox import REGION


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
# What the Lambda Python runtime has: boto3 and what installing it installs (the durable SDK requires it).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
PROVIDED_BY_RUNTIME_OR_LAYER = ("boto3", "botocore", "aws-lambda-powertools", "pydantic")
PUBLIC_LAYER = "!Sub arn:aws:lambda:${AWS::Region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"


def layer_arns(function: dict) -> list[str]:
    """A function's layers as a learner wrote them: an ARN, or `!Ref <layer>` for a layer of the template."""
    return [
        (layer.get("Fn::Sub") or (f"!Ref {layer['Ref']}" if "Ref" in layer else str(layer))) if isinstance(layer, dict) else layer
        for layer in function.get("Layers", [])
    ]


def bundled_packages(function_dir: Path) -> list[str]:
    """What a function's requirements.txt bundles that the runtime or the Powertools layer provides."""
    installs = requirement_names(function_dir / "requirements.txt")
    return [p for p in PROVIDED_BY_RUNTIME_OR_LAYER if p in installs]


def requirement_names(path: Path) -> list[str]:
    """The distributions a requirements.txt installs, normalised (lower case, - for _); none when it is missing."""
    if not path.is_file():
        return []
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):  # options (-r, --index-url) install nothing by themselves
            names.append(re.split(r"[\s<>=!~;\[@]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def make_recipe(makefile: Path, target: str) -> str | None:
    """The commands of `target` in a Makefile (what `sam build` runs for BuildMethod: makefile), or None."""
    if not makefile.is_file():
        return None
    lines = makefile.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if re.match(rf"^{re.escape(target)}\s*:", line):
            recipe = []
            for following in lines[number + 1 :]:
                if following.startswith("\t"):
                    recipe.append(following.strip())
                elif following.strip() and not following.lstrip().startswith("#"):
                    break
            return "\n".join(recipe)
    return None


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


# --- What a policy allows once AWS has resolved it: ARNs, not references ------------------------------
#
# A reference to the right resource is not enough: SAM's policy templates build an ARN from what they are
# given (`table/${tableName}`, `parameter/${parameterName}`, `...:${queueName}`), and AWS matches that
# ARN, character for character, against the resource a call touches. A queue's URL given as its name, an
# ARN given as a name, or a name with a leading slash where the template adds one, all name the resource
# and all match nothing. These helpers resolve a transformed template's values as CloudFormation would
# (with made-up physical names, account and region) so that a grader compares ARNs.

ACCOUNT = "123456789012"  # moto's account, also the made-up account of the resolved ARNs
PARTITION = "aws"


class UnresolvedValue(ValueError):
    """A value the grader cannot work out offline (an import, an unknown attribute...)."""


def _explicit_name(cfn: dict, properties: dict, key: str) -> str | None:
    value = properties.get(key)
    return None if value is None else resolve_value(value, cfn)


def physical_name(cfn: dict, logical_id: str) -> str:
    """The name CloudFormation gives a resource: its name property when the template sets one, else a
    generated `stack-<LogicalId>-<suffix>` (lower case for buckets)."""
    resource = cfn.get("Resources", {}).get(logical_id)
    if resource is None:
        raise UnresolvedValue(f"Ref {logical_id}, which is not a resource of the template")
    kind, properties = resource.get("Type", ""), resource.get("Properties") or {}
    key = {
        "AWS::DynamoDB::Table": "TableName", "AWS::SQS::Queue": "QueueName", "AWS::SNS::Topic": "TopicName",
        "AWS::S3::Bucket": "BucketName", "AWS::SSM::Parameter": "Name", "AWS::Lambda::Function": "FunctionName",
        "AWS::IAM::Role": "RoleName", "AWS::Events::Rule": "Name", "AWS::Logs::LogGroup": "LogGroupName",
        "AWS::SecretsManager::Secret": "Name", "AWS::Scheduler::Schedule": "Name",
    }.get(kind)
    name = _explicit_name(cfn, properties, key) if key else None
    if name is not None:
        return name
    generated = f"stack-{logical_id}-1A2B3C4D5E6F"
    if kind == "AWS::S3::Bucket":
        return generated.lower()
    if kind == "AWS::SSM::Parameter":
        return f"CFN-{logical_id}-1A2B3C4D5E6F"
    if kind == "AWS::SQS::Queue" and str(properties.get("FifoQueue")).lower() == "true":
        return generated + ".fifo"
    return generated


def attribute_value(cfn: dict, logical_id: str, attribute: str | None = None) -> str:
    """What `!Ref logical_id` (attribute None) or `!GetAtt logical_id.attribute` returns once deployed."""
    if logical_id in (cfn.get("Parameters") or {}) and attribute is None:
        spec = cfn["Parameters"][logical_id]
        if "Default" not in spec:
            raise UnresolvedValue(f"Ref {logical_id}, a parameter without a default")
        return str(spec["Default"])
    pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION,
              "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "stack",
              "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/stack/1"}
    if logical_id in pseudo and attribute is None:
        return pseudo[logical_id]
    resource = cfn.get("Resources", {}).get(logical_id)
    if resource is None:
        raise UnresolvedValue(f"Ref {logical_id}, which is not a resource or parameter of the template")
    kind, name = resource.get("Type", ""), physical_name(cfn, logical_id)
    arn = f"arn:{PARTITION}"
    values: dict[str | None, str] = {None: name}
    if kind == "AWS::DynamoDB::Table":
        values["Arn"] = f"{arn}:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        values["StreamArn"] = f"{values['Arn']}/stream/2026-01-01T00:00:00.000"
    elif kind == "AWS::SQS::Queue":
        url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        values.update({None: url, "QueueUrl": url, "QueueName": name, "Arn": f"{arn}:sqs:{REGION}:{ACCOUNT}:{name}"})
    elif kind == "AWS::SNS::Topic":
        topic = f"{arn}:sns:{REGION}:{ACCOUNT}:{name}"
        values.update({None: topic, "TopicArn": topic, "TopicName": name})
    elif kind == "AWS::S3::Bucket":
        values.update({"Arn": f"{arn}:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"})
    elif kind == "AWS::SSM::Parameter":
        values.update({"Type": "String", "Value": "value"})
    elif kind == "AWS::Lambda::Function":
        values["Arn"] = f"{arn}:lambda:{REGION}:{ACCOUNT}:function:{name}"
    elif kind == "AWS::IAM::Role":
        values["Arn"] = f"{arn}:iam::{ACCOUNT}:role/{name}"
    elif kind == "AWS::Events::Rule":
        values["Arn"] = f"{arn}:events:{REGION}:{ACCOUNT}:rule/{name}"
    elif kind == "AWS::Logs::LogGroup":
        values["Arn"] = f"{arn}:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"
    elif kind == "AWS::SecretsManager::Secret":
        secret = f"{arn}:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf"
        values.update({None: secret, "Id": secret})
    if attribute not in values:
        raise UnresolvedValue(f"{'GetAtt ' + logical_id + '.' + attribute if attribute else 'Ref ' + logical_id} ({kind})")
    return values[attribute]


def resource_arn(cfn: dict, logical_id: str) -> str:
    """The ARN of a resource of the template once deployed (what IAM matches a policy's Resource against)."""
    kind = cfn.get("Resources", {}).get(logical_id, {}).get("Type", "")
    if kind == "AWS::SQS::Queue":
        return attribute_value(cfn, logical_id, "Arn")
    if kind in ("AWS::SNS::Topic", "AWS::SecretsManager::Secret"):
        return attribute_value(cfn, logical_id)
    if kind == "AWS::SSM::Parameter":  # the name's leading slash is not doubled: /a/b is parameter/a/b
        return f"arn:{PARTITION}:ssm:{REGION}:{ACCOUNT}:parameter/{physical_name(cfn, logical_id).lstrip('/')}"
    return attribute_value(cfn, logical_id, "Arn")


_SUB_NAME = re.compile(r"\$\{([^}!][^}]*)\}")


def resolve_value(value: Any, cfn: dict, parameters: dict[str, str] | None = None) -> Any:
    """`value` as CloudFormation would deploy it: Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select,
    Fn::Split and Fn::If worked out (parameters at their defaults unless given), with made-up names."""
    from workshop.grading.performance import Unresolved, holds, parameter_values

    parameters = parameter_values(cfn) if parameters is None else parameters

    def again(inner: Any, variables: dict[str, Any] | None = None) -> Any:
        return resolve_value(inner, cfn, parameters) if variables is None else _sub(inner, variables)

    def ref(name: str) -> str:
        if name in parameters:
            return parameters[name]
        return attribute_value(cfn, name)

    def _sub(text: str, variables: dict[str, Any]) -> str:
        def one(match: re.Match) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                target, _, attribute = name.partition(".")
                return attribute_value(cfn, target, attribute)
            return ref(name)

        return _SUB_NAME.sub(one, text).replace("${!", "${")

    if isinstance(value, list):
        return [again(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        return {k: again(v) for k, v in value.items()}
    (key, inner), = value.items()
    try:
        if key == "Ref":
            return ref(inner)
        if key == "Fn::GetAtt":
            target, attribute = (inner if isinstance(inner, list) else str(inner).split(".", 1))
            return attribute_value(cfn, target, attribute)
        if key == "Fn::Sub":
            text, variables = (inner if isinstance(inner, list) else (inner, {}))
            return _sub(text, {name: again(v) for name, v in (variables or {}).items()})
        if key == "Fn::Join":
            separator, items = inner
            return str(separator).join(str(item) for item in again(items))
        if key == "Fn::Select":
            index, items = inner
            return again(items)[int(again(index))]
        if key == "Fn::Split":
            separator, text = inner
            return str(again(text)).split(separator)
        if key == "Fn::If":
            condition, when_true, when_false = inner
            return again(when_true if holds(condition, cfn, parameters) else when_false)
    except Unresolved as error:
        raise UnresolvedValue(str(error)) from None
    except (TypeError, ValueError, IndexError) as error:
        if isinstance(error, UnresolvedValue):
            raise
        raise UnresolvedValue(f"{key} {json.dumps(inner)[:120]}") from None
    if key.startswith("Fn::") or key == "Condition":
        raise UnresolvedValue(key)
    return {key: again(inner)}


def _wildcard(pattern: str, *, case_sensitive: bool) -> re.Pattern:
    """IAM's wildcards: * any run of characters (: and / included), ? one character."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", 0 if case_sensitive else re.IGNORECASE)


def arn_matches(pattern: str, arn: str) -> bool:
    return bool(_wildcard(pattern, case_sensitive=True).match(arn))


def action_matches(pattern: str, action: str) -> bool:
    return bool(_wildcard(pattern, case_sensitive=False).match(action))


@dataclass(frozen=True)
class Grant:
    """One Allow statement of a role, as AWS evaluates it: its actions and its resources' ARNs (resolved)."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]  # ARN patterns; a value the grader could not resolve is kept as "?<what>"
    statement: dict
    written: tuple[Any, ...]  # each resource as the transformed template writes it (same order)
    not_action: bool = False  # NotAction or NotResource: allows everything but what it names

    def allows(self, action: str, arn: str) -> bool:
        return (
            not self.not_action
            and any(action_matches(p, action) for p in self.actions)
            and any(arn_matches(p, arn) for p in self.resources)
        )


def grants_of(cfn: dict, role: dict) -> list[Grant]:
    """The Allow statements of a role's inline policies, their resources resolved to ARNs."""
    found = []
    for statement in policy_statements(role):
        if statement.get("Effect") != "Allow":
            continue
        written = statement.get("Resource", statement.get("NotResource", []))
        written = written if isinstance(written, list) else [written]
        resolved = []
        for value in written:
            try:
                resolved.append(str(resolve_value(value, cfn)))
            except UnresolvedValue as error:
                resolved.append(f"?{error}")
        found.append(Grant(tuple(actions(statement)), tuple(resolved), statement, tuple(written),
                           "NotAction" in statement or "NotResource" in statement))
    return found


def within(pattern: str, arn: str) -> bool:
    """Does an ARN pattern name `arn` or its sub-resources only (a table's `/index/*`, a bucket's `/*`)?

    A wildcard before the end of `arn` (`table/*`, `:*`) reaches other resources too: not within."""
    return pattern == arn or pattern.startswith(arn + "/")


def explain_arn_mismatch(resolved: str, expected: str) -> str:
    """Why a resolved ARN misses the resource's ARN, in words for the learner ("" when no pattern fits)."""
    if "https://" in resolved:
        return ("it holds a queue's URL where a name belongs: !Ref of a queue is its URL; use "
                "!GetAtt <Queue>.QueueName for a policy template's QueueName, !GetAtt <Queue>.Arn for an ARN")
    if resolved.count("arn:") > 1:
        return ("it holds an ARN where a name belongs: a policy template's TableName, QueueName, BucketName or "
                "ParameterName takes the resource's name (!Ref for a table, a bucket or a parameter)")
    if "//" in resolved.split("://", 1)[-1]:
        return ("a name with a leading slash where the policy template adds one: SSMParameterReadPolicy builds "
                "parameter/${ParameterName}; use SSMParameterWithSlashPrefixReadPolicy for a name that starts "
                "with /, or the name without its slash")
    if resolved.startswith("?"):
        return f"the grader could not work out {resolved[1:]}"
    return ""


def deployed_elsewhere(grants: list[Grant], logical_id: str, arn: str, not_an_arn: str = "") -> str:
    """Where a policy names a resource (by logical id) but deploys as another ARN: the sentence that says
    what it deploys as and why, or "". `not_an_arn` explains a value that is no ARN at all, for a
    resource whose ARN the learner writes by hand (an S3 prefix)."""
    for grant in grants:
        for written, resolved in zip(grant.written, grant.resources):
            if logical_id in templates.references(written) and not within(resolved, arn):
                why = explain_arn_mismatch(resolved, arn) or ("" if resolved.startswith("arn:") else not_an_arn)
                return (
                    f"Your policy names {logical_id}, but the ARN SAM builds from it is {resolved}, which matches "
                    "nothing in AWS" + (f": {why}" if why else "") + "."
                )
    return ""


def beyond(grants: list[Grant], own: dict[str, tuple[str, set[str]]]) -> tuple[list[str], list[tuple[str, str]]]:
    """Measure a role's grants against its own resources (logical id -> (ARN, the lower-case actions it
    needs there)): the statements that reach past them, as "<actions> on <resources>", and each
    (resource, action) it allows on its own resources but does not need."""
    too_broad: list[str] = []
    too_much: list[tuple[str, str]] = []
    for grant in grants:
        mine = [(pattern, next((r for r, (arn, _) in own.items() if within(pattern, arn)), None)) for pattern in grant.resources]
        if grant.not_action or any(owner is None for _, owner in mine):
            outside = [pattern for pattern, owner in mine if owner is None] or ["NotAction/NotResource"]
            too_broad.append(f"{', '.join(grant.actions)} on {', '.join(outside)}")
            continue
        too_much += [(owner, action) for _, owner in mine for action in grant.actions if action.lower() not in own[owner][1]]
    return too_broad, list(dict.fromkeys(too_much))


def actions_on(too_much: list[tuple[str, str]]) -> str:
    """(resource, action) pairs as "A, B on R1; C on R2"."""
    by_owner: dict[str, list[str]] = {}
    for owner, action in too_much:
        by_owner.setdefault(owner, []).append(action)
    return "; ".join(f"{', '.join(actions)} on {owner}" for owner, actions in by_owner.items())
