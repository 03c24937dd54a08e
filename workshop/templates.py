"""Read, package, transform and lint SAM templates offline.

`sam package` would upload each CodeUri folder and nested template to S3; here we only rewrite those
local paths to S3 locations (nothing is uploaded) so that samtranslator can turn the template into
the plain CloudFormation that AWS would deploy, which the graders and the project's checks then read.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from workshop import paths
from workshop.sandbox import REGION

ARTIFACT_BUCKET = "workshop-artifacts"

# Warnings cfn-lint raises on correct SAM output. Each entry says why it is safe to ignore.
KNOWN_FALSE_POSITIVES: dict[str, str] = {
    # SAM's SQSPollerPolicy grants actions on a queue whose ARN cfn-lint cannot resolve statically.
    "W3037": "SAM's SQSPollerPolicy expands to actions cfn-lint does not recognise for the resource",
}

# The serverless rules for cfn-lint (PyPI cfn-lint-serverless, the rules of awslabs/serverless-rules),
# appended to cfn-lint's own as a module: `cfn-lint --append-rules cfn_lint_serverless.rules`.
SERVERLESS_RULES = "cfn_lint_serverless.rules"

# The one list of what the reference templates may leave open from those rules, each with why.
# Everything else they report is fixed in the templates; tests/meta/test_security.py checks what no
# rule set covers (encryption at rest, TLS-only buckets, wildcards in policies, secrets).
# ES1007 (an async function without an on-failure destination) is not accepted: its one false
# positive, lab 7's alias, is left out by lint() (_alias_permissions_with_failure_destination).
ACCEPTED_SERVERLESS_FINDINGS: dict[str, str] = {
    "WS1000": "X-Ray tracing (Tracing: Active) makes SAM attach AWSXrayWriteOnlyAccess, a managed policy "
    "on Resource *, which the graders of labs 1 and 2 and the no-wildcard rule refuse; traces also cost "
    "money past the free tier. Turning it on is the learner's choice, not a hardening.",
    "WS2002": "API Gateway tracing: left off for the same reasons as WS1000.",
    "ES2000": "API Gateway access logs need the account-wide CloudWatch role of API Gateway "
    "(AWS::ApiGateway::Account), a per-account setting that a workshop stack must not change.",
    "ES1001": "An SQS event source mapping takes no on-failure destination (only streams and Kafka do); "
    "the queue's RedrivePolicy to a dead-letter queue is SQS's failure path (graded in lab 3).",
    "ES6000": "Raised on the dead-letter queues and on-failure destinations themselves, which are the end "
    "of the line, and on lab 5's notifications queue, which no function of the stack consumes. "
    "test_security checks that every queue a function reads has a RedrivePolicy.",
    "ES4000": "The schedule's only target is the function, invoked asynchronously: its EventInvokeConfig "
    "sends a run that still fails to an on-failure queue (checked by ES1007 and test_security); a rule "
    "DLQ would only catch EventBridge failing to reach Lambda at all for 24 hours.",
    "ES7000": "SNS hands each message to Lambda's asynchronous queue, whose retries and on-failure "
    "destination (ES1007, test_security) keep what fails; a subscription DLQ would only catch SNS "
    "failing to reach Lambda at all, and needs a queue policy for SNS on top.",
}

# AWS-managed policies that SAM attaches by itself and the reference templates therefore keep. They
# hold Resource "*" statements, which tests/meta/test_security.py refuses in our own policies; these
# are accepted because AWS maintains them and SAM offers no way to leave them out of a role it creates.
ACCEPTED_MANAGED_POLICIES: dict[str, str] = {
    "AWSLambdaBasicExecutionRole": "logs:CreateLogGroup, CreateLogStream and PutLogEvents only; every "
    "function's log group is declared (with a retention) in its template",
    "AWSLambdaSQSQueueExecutionRole": "sqs:ReceiveMessage, DeleteMessage and GetQueueAttributes, attached "
    "with an SQS event; the function's SQSPollerPolicy scopes the same actions to its one queue",
    "AWSLambdaBasicDurableExecutionRolePolicy": "the three logs actions and lambda:CheckpointDurableExecution "
    "and GetDurableExecutionState (AWS's managed policy reference, v3), attached by SAM to a function with "
    "DurableConfig (lab 7) in place of AWSLambdaBasicExecutionRole",
}

# Actions that our own policies may allow on Resource "*", because AWS offers no narrower resource.
ACCEPTED_WILDCARD_RESOURCE_ACTIONS: dict[str, str] = {
    "ssm:DescribeParameters": "in SAM's SSMParameterWithSlashPrefixReadPolicy, which lab 2 teaches; the "
    "action supports no resource-level permission and lists parameters' metadata, never their values",
}

_SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9:]+)(?:\.[A-Za-z0-9.]+)?\}")


class TemplateError(ValueError):
    """The template cannot be read or transformed; the message says what and where."""


def load(path: Path) -> dict[str, Any]:
    """A template as a dict, with short-form tags (!Ref, !Sub, ...) in their long JSON form."""
    from samtranslator.yaml_helper import yaml_parse

    try:
        template = yaml_parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TemplateError(f"{path} does not exist") from None
    except Exception as error:  # yaml raises several unrelated types; all mean "not valid YAML"
        raise TemplateError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise TemplateError(f"{path} has no Resources section")
    return template


# The local folder each kind of resource zips and uploads at `sam package` (lab 7 builds a layer).
PACKAGED_CODE = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


def package(template: dict[str, Any], folder: Path) -> dict[str, Any]:
    """What `sam package` does to local paths, without uploading: they become S3 locations."""
    packaged = copy.deepcopy(template)
    for resource in packaged["Resources"].values():
        properties = resource.get("Properties") or {}
        kind = resource.get("Type")
        code_property = PACKAGED_CODE.get(kind)
        if code_property and isinstance(properties.get(code_property), str):
            local = (folder / properties[code_property]).resolve()
            properties[code_property] = f"s3://{ARTIFACT_BUCKET}/{local.name}.zip"
        elif kind == "AWS::Serverless::Application" and isinstance(properties.get("Location"), str):
            local = (folder / properties["Location"]).resolve()
            properties["Location"] = f"https://s3.{REGION}.amazonaws.com/{ARTIFACT_BUCKET}/{local.parent.name}.template"
    return packaged


class _NoManagedPolicies:
    """samtranslator asks IAM for managed policy ARNs; offline there are none to look up."""

    def load(self) -> dict[str, str]:
        return {}


def without_iri_grammar() -> None:
    """Keep jsonschema, which samtranslator and moto's API Gateway import, from importing rfc3987_syntax
    (Jupyter installs it): it builds an IRI grammar when imported, about 1 s, as much as all the rest of
    samtranslator's import. Without it jsonschema skips the "iri" format check, which no schema of
    samtranslator's, no template and no event of the workshop uses."""
    sys.modules.setdefault("rfc3987_syntax", None)  # None: `import rfc3987_syntax` raises ImportError


def transform(template: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The CloudFormation that SAM produces from `template` (whose local paths are relative to `folder`)."""
    without_iri_grammar()  # importing samtranslator: 1.3 -> 0.35 s, paid whenever a template is new
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform as sam_transform

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    # Given no feature-toggle configuration (there is none to give offline), samtranslator warns once
    # per API with an OpenApiVersion (labs 1 and 6 set one): noise on the learner's console.
    logging.getLogger("samtranslator.feature_toggle.feature_toggle").setLevel(logging.ERROR)
    # Nor are its usage metrics, which it warns it never published (there is nowhere to publish them).
    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)
    try:
        return sam_transform(package(template, folder), {}, _NoManagedPolicies())
    except InvalidDocumentException as error:
        causes = "; ".join(cause.message for cause in error.causes)
        raise TemplateError(f"SAM cannot transform the template: {causes}") from None


_loaded: dict[str, dict[str, Any]] = {}
_transformed: dict[str, dict[str, Any]] = {}


def loaded(path: Path) -> dict[str, Any]:
    """load(), remembered by the template's text: a copy each time, so no caller changes another's.

    The grading engine loads each template before it forks the lab's worker, and a grader reads its
    template in every check. YAML parsing in pure Python takes 20-50 ms a template, so the result is
    kept on disk too (as JSON, read in well under a millisecond), unless JSON would change it (a date).
    """
    path = path.resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return load(path)  # load() says what is wrong with the path
    key = _cache_key(text)
    if key not in _loaded:
        cached = paths.CACHE / "templates" / f"{key}.yaml.json"
        template = _read_cache(cached)
        if template is None:
            template = load(path)
            if json.loads(encoded := json.dumps(template, default=str)) == template:
                _write_cache(cached, encoded)
        _loaded[key] = template
    return copy.deepcopy(_loaded[key])


def _cache_key(*parts: str) -> str:
    """What a cached result depends on: the parts given, and the version of samtranslator that read it."""
    return hashlib.sha256("\0".join([*parts, _translator_version()]).encode()).hexdigest()[:32]


@functools.cache
def _translator_version() -> str:
    """Looked up once a process: a grader reads its template in every check (0.3 ms a look-up)."""
    return metadata.version("aws-sam-translator")


def _read_cache(cached: Path) -> dict[str, Any] | None:
    """A cached template; None when there is none yet, or a damaged entry (then it is made again)."""
    try:
        found = json.loads(cached.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _write_cache(cached: Path, encoded: str) -> None:
    try:
        paths.write_atomically(cached, encoded)
    except OSError:
        pass  # a read-only checkout still grades, only more slowly


def transformed(path: Path) -> dict[str, Any]:
    """load() then transform() for a template file.

    Cached in memory and on disk, keyed by what the result depends on (the template's text, its
    folder's name, which packaging uses for a CodeUri of ".", and the translator's version) and not by
    where the file is: a copy of the labs in a new folder, or a template edited and saved back the
    same, is not transformed again. Importing samtranslator alone takes about a second, which the
    learner's grading loop should only pay when the template has changed.
    """
    path = path.resolve()
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    key = _cache_key(path.parent.name, text)
    if key in _transformed:
        return _transformed[key]
    cached = paths.CACHE / "templates" / f"{key}.json"
    result = _read_cache(cached)
    if result is None:
        result = transform(load(path), path.parent)
        _write_cache(cached, json.dumps(result))
    _transformed[key] = result
    return result


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str
    line: int

    @property
    def is_error(self) -> bool:
        return self.rule.startswith("E")

    def __str__(self) -> str:
        return f"{self.rule} (line {self.line}): {self.message}"


def lint(template: dict[str, Any] | str, *, serverless: bool = False) -> list[Finding]:
    """cfn-lint's findings for a template (SAM or plain CloudFormation), known false positives left out.

    With `serverless`, the serverless rules run too (their accepted findings are the caller's to drop).
    """
    from cfnlint.decode.decode import decode_str

    # As cfnlint.api.lint does, with a runner built once (its `rules=` takes only the older RulesCollection).
    decoded, errors = decode_str(template if isinstance(template, str) else json.dumps(template))
    matches = errors or ([] if decoded is None else list(_linter(serverless).validate_template(decoded)))
    findings = [Finding(m.rule.id, m.message, m.linenumber) for m in matches]
    paired = set() if isinstance(template, str) else _alias_permissions_with_failure_destination(template)
    return [
        f for f in findings
        if f.rule not in KNOWN_FALSE_POSITIVES
        and not (f.rule == "ES1007" and any(f.message.startswith(f"Lambda permission {p} ") for p in paired))
    ]


@functools.cache
def _linter(serverless: bool) -> Any:
    """cfn-lint's runner, built once per configuration: building its rules reads hundreds of JSON files,
    more than a lint itself takes, and cfn-lint's CLI also runs one set of rules over many templates."""
    from cfnlint.api import ManualArgs
    from cfnlint.config import ConfigMixIn
    from cfnlint.runner import Runner

    append = {"append_rules": [SERVERLESS_RULES]} if serverless else {}
    return Runner(ConfigMixIn(**ManualArgs(regions=[REGION], **append)))


def _alias_permissions_with_failure_destination(template: dict[str, Any]) -> set[str]:
    """The asynchronous permissions on an alias whose EventInvokeConfig has an on-failure destination.

    The serverless rule ES1007 pairs a permission with an EventInvokeConfig by FunctionName alone. With
    AutoPublishAlias (lab 7's durable function, which EventBridge must invoke through its alias) the
    permission names the alias, and SAM's EventInvokeConfig names the function with the alias as its
    Qualifier: the rule reports a missing destination where there is one. Only those findings are
    dropped; a function (of any lab) whose EventInvokeConfig has no OnFailure destination is still reported.
    """
    resources = template.get("Resources") or {}
    aliases = {
        name: (alias["Properties"].get("FunctionName"), alias["Properties"].get("Name"))
        for name, alias in resources.items() if alias.get("Type") == "AWS::Lambda::Alias"
    }
    with_destination = {
        (json.dumps(config["Properties"].get("FunctionName"), sort_keys=True), config["Properties"].get("Qualifier"))
        for config in resources.values()
        if config.get("Type") == "AWS::Lambda::EventInvokeConfig"
        and ((config["Properties"].get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    }
    paired = set()
    for name, permission in resources.items():
        target = (permission.get("Properties") or {}).get("FunctionName")
        if permission.get("Type") != "AWS::Lambda::Permission" or not isinstance(target, dict):
            continue
        function, alias_name = aliases.get(target.get("Ref"), (None, None))
        if function is not None and (json.dumps(function, sort_keys=True), alias_name) in with_destination:
            paired.add(name)
    return paired


def as_int(value: object, default: Any) -> Any:
    """A template's number (CloudFormation accepts "30" as well as 30), or `default` when absent or not one."""
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def resources_of_type(template: dict[str, Any], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") == kind:
            yield name, resource.get("Properties") or {}


def event_types(template: dict[str, Any]) -> dict[str, set[str]]:
    """What invokes each serverless function of an untransformed template: its Events' Types (Api, S3,
    SQS, SNS, Schedule...), by logical id."""
    return {
        name: {
            event["Type"]
            for event in ((properties.get("Events") or {}).values())
            if isinstance(event, dict) and isinstance(event.get("Type"), str)
        }
        for name, properties in resources_of_type(template, "AWS::Serverless::Function")
    }


def references(value: Any) -> set[str]:
    """Every logical id that `value` names through Ref, Fn::GetAtt or ${...} in Fn::Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found |= {name for name in _SUB_VARIABLE.findall(str(text)) if not name.startswith("AWS::")}
            found |= references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= references(inner)
    return found


def denies_plain_http(document: dict[str, Any]) -> bool:
    """Does a resource policy's document deny every request not made over TLS (aws:SecureTransport false)?"""
    statements = document.get("Statement", [])
    return any(
        s.get("Effect") == "Deny"
        and s.get("Principal") in ("*", {"AWS": "*"})
        and str(((s.get("Condition") or {}).get("Bool") or {}).get("aws:SecureTransport")).lower() == "false"
        for s in ([statements] if isinstance(statements, dict) else statements)
    )


def tag_property(kind: str) -> str | None:
    """The property that tags a resource of this CloudFormation type ("Tags", "ResourceTags"...), or None
    when the type takes no tags: from the resource schemas bundled with cfn-lint (their `tagging` section)."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER, ResourceNotFoundError

    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, kind).schema
    except ResourceNotFoundError:
        return None
    if "tagging" not in schema:  # an older schema: a Tags property says it all
        return "Tags" if "Tags" in schema.get("properties", {}) else None
    tagging = schema["tagging"]
    if not tagging.get("taggable"):
        return None
    return str(tagging.get("tagProperty", "/properties/Tags")).removeprefix("/properties/")
