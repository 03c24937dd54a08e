"""The reference templates have no open security finding.

Two rule sets first: cfn-lint's own rules (tests/meta/test_templates.py) and the serverless rules for
cfn-lint (cfn-lint-serverless), whose few accepted findings are listed, with why, in
workshop/templates.py (ACCEPTED_SERVERLESS_FINDINGS). Then what no rule set covers, checked here on the
transformed templates: encryption at rest, buckets closed to the public and to plain HTTP, no wildcard
in our own policies, a failure path for every asynchronous invocation and every consumed queue, and no secret in an
environment variable. (A log group with a retention for every function, starters included:
tests/meta/test_deployed_safety.py.)
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from workshop import manifest, paths, templates

# Linting and deploying into moto take seconds, not the learner's sub-second checks.
pytestmark = pytest.mark.timeout(60)

LABS = manifest.labs()
ROOT_TEMPLATE = paths.ROOT / "template.yaml"
REFERENCE_TEMPLATES = [ROOT_TEMPLATE, *(lab.folder("solutions") / "template.yaml" for lab in LABS)]

# Event sources that invoke a function asynchronously (Lambda's own queue, retries, destinations).
ASYNC_SOURCES = ("AWS::SNS::Subscription", "AWS::Events::Rule", "AWS::Scheduler::Schedule", "AWS::S3::Bucket")
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|PRIVATE|CREDENTIAL|(^|_)KEY$", re.IGNORECASE)


@pytest.mark.parametrize("path", REFERENCE_TEMPLATES, ids=paths.relative)
def test_reference_templates_pass_the_serverless_rules(path):
    findings = templates.lint(path.read_text(encoding="utf-8"), serverless=True)
    findings += templates.lint(templates.transform(templates.load(path), path.parent), serverless=True)
    open_findings = [f for f in findings if f.rule not in templates.ACCEPTED_SERVERLESS_FINDINGS]
    assert not open_findings, f"cfn-lint-serverless on {paths.relative(path)}:\n" + "\n".join(map(str, open_findings))


def reference(lab) -> dict[str, Any]:
    return templates.transformed(lab.folder("solutions") / "template.yaml")


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return dict(templates.resources_of_type(template, kind))


def encryption_problems(template: dict[str, Any]) -> list[str]:
    problems = []
    for name, table in of_type(template, "AWS::DynamoDB::Table").items():
        if (table.get("SSESpecification") or {}).get("SSEEnabled") is not True:
            problems.append(f"table {name}: no SSESpecification: {{SSEEnabled: true}}")
    for name, bucket in of_type(template, "AWS::S3::Bucket").items():
        if not (bucket.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration"):
            problems.append(f"bucket {name}: no BucketEncryption")
    for name, queue in of_type(template, "AWS::SQS::Queue").items():
        if queue.get("SqsManagedSseEnabled") is not True and not queue.get("KmsMasterKeyId"):
            problems.append(f"queue {name}: neither SqsManagedSseEnabled: true nor a KmsMasterKeyId")
    for name, topic in of_type(template, "AWS::SNS::Topic").items():
        if not topic.get("KmsMasterKeyId"):
            problems.append(f"topic {name}: no KmsMasterKeyId (alias/aws/sns)")
    return problems


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_every_table_bucket_queue_and_topic_is_encrypted_at_rest(lab):
    problems = encryption_problems(reference(lab))
    assert not problems, f"solutions/{lab.id}:\n" + "\n".join(problems)


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_every_bucket_blocks_public_access_and_refuses_plain_http(lab):
    template = reference(lab)
    policies = of_type(template, "AWS::S3::BucketPolicy").values()
    for name, bucket in of_type(template, "AWS::S3::Bucket").items():
        block = bucket.get("PublicAccessBlockConfiguration") or {}
        settings = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
        assert all(block.get(s) is True for s in settings), f"solutions/{lab.id} {name}: PublicAccessBlockConfiguration"
        assert any(
            templates.references(p.get("Bucket")) == {name} and templates.denies_plain_http(p.get("PolicyDocument", {}))
            for p in policies
        ), f"solutions/{lab.id} {name}: no bucket policy that denies requests whose aws:SecureTransport is false"


def wildcards(statements: list[dict[str, Any]]) -> list[str]:
    found = []
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue  # a Deny on s3:* (plain HTTP) is what a wildcard is for
        actions = statement.get("Action", [])
        for action in [actions] if isinstance(actions, str) else actions:
            if isinstance(action, str) and (action == "*" or action.endswith(":*")):
                found.append(f"action {action}")
        resources = statement.get("Resource", [])
        accepted = set([actions] if isinstance(actions, str) else actions) <= set(templates.ACCEPTED_WILDCARD_RESOURCE_ACTIONS)
        if (resources == "*" or (isinstance(resources, list) and "*" in resources)) and not accepted:
            found.append(f"resource * for {json.dumps(actions)}")
    return found


def policy_problems(template: dict[str, Any]) -> list[str]:
    problems = []
    for name, role in of_type(template, "AWS::IAM::Role").items():
        statements = [s for p in role.get("Policies", []) for s in p.get("PolicyDocument", {}).get("Statement", [])]
        problems += [f"role {name}: {w}" for w in wildcards(statements)]
        for arn in role.get("ManagedPolicyArns", []):
            if not any(f"/{accepted}" in json.dumps(arn) for accepted in templates.ACCEPTED_MANAGED_POLICIES):
                problems.append(f"role {name}: managed policy {json.dumps(arn)}")
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
        for name, policy in of_type(template, kind).items():
            problems += [f"{name}: {w}" for w in wildcards(policy.get("PolicyDocument", {}).get("Statement", []))]
    return problems


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_no_policy_allows_a_wildcard_action_or_resource(lab):
    problems = policy_problems(reference(lab))
    assert not problems, f"solutions/{lab.id}:\n" + "\n".join(problems)


def failure_path_problems(template: dict[str, Any]) -> list[str]:
    resources, problems = template["Resources"], []
    with_destination = {
        name
        for p in of_type(template, "AWS::Lambda::EventInvokeConfig").values()
        if (p.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
        for name in templates.references(p.get("FunctionName"))
    }
    for name, function in of_type(template, "AWS::Lambda::Function").items():
        invokers = [
            other
            for other, resource in resources.items()
            if resource["Type"] in ASYNC_SOURCES and name in templates.references(resource.get("Properties"))
        ]
        has_dlq = bool((function.get("DeadLetterConfig") or {}).get("TargetArn"))
        if invokers and name not in with_destination and not has_dlq:
            problems.append(f"{name} is invoked asynchronously by {invokers} without an on-failure destination")
    for name, mapping in of_type(template, "AWS::Lambda::EventSourceMapping").items():
        for queue in templates.references(mapping.get("EventSourceArn")):
            if resources[queue]["Type"] == "AWS::SQS::Queue" and not resources[queue]["Properties"].get("RedrivePolicy"):
                problems.append(f"queue {queue}, read by {name}, has no RedrivePolicy to a dead-letter queue")
    return problems


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_every_asynchronous_path_keeps_what_fails(lab):
    problems = failure_path_problems(reference(lab))
    assert not problems, f"solutions/{lab.id}:\n" + "\n".join(problems)


def secrets_in_environment(template: dict[str, Any]) -> list[str]:
    return [
        f"{name}: {variable} holds a literal value"
        for name, function in of_type(template, "AWS::Lambda::Function").items()
        for variable, value in ((function.get("Environment") or {}).get("Variables") or {}).items()
        if SECRET_NAME.search(variable) and isinstance(value, (str, int))
    ]


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_no_secret_in_an_environment_variable(lab):
    problems = secrets_in_environment(reference(lab))
    assert not problems, f"solutions/{lab.id}: pass a parameter's name instead:\n" + "\n".join(problems)


def test_the_checks_catch_what_the_starters_teach():
    """The starters' own lessons, caught by the checks above: they do look."""
    starter = {lab.id: templates.transformed(lab.folder("labs") / "template.yaml") for lab in LABS[:5]}
    assert secrets_in_environment(starter["lab02_s3_events"]) == ["CsvSummaryFunction: SIGNING_KEY holds a literal value"]
    assert any("AmazonSQSFullAccess" in p for p in policy_problems(starter["lab03_sqs_processing"]))
    assert any("RedrivePolicy" in p for p in failure_path_problems(starter["lab03_sqs_processing"]))
    assert any("without an on-failure destination" in p for p in failure_path_problems(starter["lab05_fan_out"]))
    unencrypted = {"Resources": {"T": {"Type": "AWS::SNS::Topic"}, "Q": {"Type": "AWS::SQS::Queue", "Properties": {}}}}
    assert len(encryption_problems(unencrypted)) == 2
