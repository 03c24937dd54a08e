"""A deployed workshop stack is safe to forget (issue 9).

Learners deploy a lab (their starter or its solution) or the whole reference stack to a personal account,
then forget it. Each rule below reads the TRANSFORMED template (what CloudFormation would create) of every
stack: the root template.yaml and labs/ and solutions/ of every lab. A failure names the template, the
resource and the fix. What tests/meta/test_security.py already checks (encryption, public access blocks,
wildcards in our policies, failure paths, log retention of reference functions, secrets) is not repeated.

1. No idle cost: every resource type is on FREE_WHEN_IDLE (or IDLE_COST_ALLOWED, which is empty);
   no provisioned capacity, concurrency or cache is on with the template's default parameters; every
   log group has a retention, and every function a log group (starters and solutions).
2. A budget: the parameters AlertEmail, MonthlyBudgetUsd, CreateBudget and ReservedConcurrency, and a
   monthly cost budget that emails AlertEmail; the root creates one and tells the nested labs not to.
3. Reserved concurrency on every function; a maximum concurrency on every SQS event source.
4. Tags on every resource whose type takes them: workshop=lambda-patterns-workshop, lab=<lab id>.
5. Deletion: buckets, tables and log groups go with the stack; buckets expire their objects.
6. Identity: TLS-only resource policies that allow only the account and its services; Lambda
   permissions that name their source; no role that can pass or assume roles; only services assume roles.
7. The API: IAM-authorised, throttled (the write more), validated at the gateway, no CORS.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import pytest

from workshop import manifest, paths, templates
from workshop.grading import performance
from workshop.local import stack as local_stack

# Transforming and reading thirteen templates takes seconds, not the learner's sub-second checks.
pytestmark = pytest.mark.timeout(120)

LABS = manifest.labs()
ROOT_TEMPLATE = paths.ROOT / "template.yaml"
STACKS = [ROOT_TEMPLATE, *(lab.folder(tree) / "template.yaml" for lab in LABS for tree in ("labs", "solutions"))]
WORKSHOP_TAG = ("workshop", "lambda-patterns-workshop")
ROOT_LAB_TAG = "all"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

# --- 1. idle cost ---------------------------------------------------------------------------------

# Every resource type the templates may create, and why it costs nothing while nobody uses it. A type
# missing here fails the test: find out whether it bills by the hour, the month or the key first.
FREE_WHEN_IDLE: dict[str, str] = {
    "AWS::Lambda::Function": "billed per request and per GB-second of running time (no provisioned "
    "concurrency or SnapStart: checked below)",
    "AWS::Lambda::Permission": "a statement in the function's resource policy",
    "AWS::Lambda::Version": "code stored once, within the free 75 GB per region",
    "AWS::Lambda::LayerVersion": "code stored once, within the same free 75 GB (lab 7's SDK: 0.16 MB)",
    "AWS::Lambda::Alias": "a name for a version; provisioned concurrency on it is checked below",
    "AWS::Lambda::EventSourceMapping": "no price of its own; an SQS mapping's long polls are SQS requests "
    "(about $0.26 a month beyond SQS's free million: docs/deploy.md counts them)",
    "AWS::Lambda::EventInvokeConfig": "settings of asynchronous invocation",
    "AWS::IAM::Role": "IAM is free",
    "AWS::IAM::Policy": "IAM is free",
    "AWS::IAM::ManagedPolicy": "IAM is free",
    "AWS::DynamoDB::Table": "on demand (BillingMode PAY_PER_REQUEST, checked below): requests and storage only",
    "AWS::S3::Bucket": "storage and requests only; its objects expire (checked under deletion)",
    "AWS::S3::BucketPolicy": "part of the bucket",
    "AWS::SQS::Queue": "billed per request",
    "AWS::SQS::QueuePolicy": "part of the queue",
    "AWS::SNS::Topic": "billed per publish and delivery",
    "AWS::SNS::TopicPolicy": "part of the topic",
    "AWS::SNS::Subscription": "billed per delivery",
    "AWS::Logs::LogGroup": "storage only, and a retention (checked below) bounds it",
    "AWS::Events::Rule": "a schedule's invocations are free; the runs it starts are billed as Lambda",
    "AWS::Scheduler::Schedule": "billed per invocation (14 million a month free)",
    "AWS::ApiGateway::RestApi": "REST APIs are billed per request (no cache: checked below)",
    "AWS::ApiGateway::Deployment": "part of the API",
    "AWS::ApiGateway::Stage": "free unless CacheClusterEnabled (checked below)",
    "AWS::ApiGateway::Model": "part of the API",
    "AWS::ApiGateway::RequestValidator": "part of the API",
    "AWS::ApiGateway::Method": "part of the API",
    "AWS::ApiGateway::Resource": "part of the API",
    "AWS::Budgets::Budget": "budgets without actions are free",
    "AWS::CloudFormation::Stack": "a nested lab; its own resources are checked in its template",
}

# Types that do cost money while idle, kept on purpose, each with why and what it costs. None has
# earned its place: the workshop needs nothing that bills by the hour.
IDLE_COST_ALLOWED: dict[str, str] = {}

# Parameters the root passes to every nested lab, and the value a root must pass for each.
NESTED_PARAMETERS = {"AlertEmail": {"Ref": "AlertEmail"}, "ReservedConcurrency": {"Ref": "ReservedConcurrency"}, "CreateBudget": "false"}


def lab_of(path: Path) -> str:
    return ROOT_LAB_TAG if path == ROOT_TEMPLATE else path.parent.name


def transformed(path: Path) -> dict[str, Any]:
    return templates.transformed(path)


def where(path: Path) -> str:
    return paths.relative(path)


# CloudFormation's condition functions, worked out over the parameters' values by the grader's own
# evaluator, so that the checks see what a stack deployed with the template's defaults (and a learner's
# email) would create.


def parameter_values(template: dict[str, Any], **overrides: Any) -> dict[str, str]:
    """The parameters' defaults, LOCAL_PARAMETERS for those without one, and `overrides`."""
    declared = template.get("Parameters", {})
    local = {name: value for name, value in local_stack.LOCAL_PARAMETERS.items() if "Default" not in declared.get(name, {})}
    return performance.parameter_values(template, local | {name: str(value) for name, value in overrides.items()})


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else json.dumps(value)


def deployed_with_defaults(template: dict[str, Any], **overrides: Any) -> dict[str, dict[str, Any]]:
    """Each resource created with the default parameters (conditions applied): logical id -> resolved resource."""
    parameters = parameter_values(template, **overrides)
    return {
        name: performance.resolve(resource, template, parameters, keep_references=True)
        for name, resource in template["Resources"].items()
        if "Condition" not in resource or performance.holds(resource["Condition"], template, parameters)
    }


def idle_cost_problems(template: dict[str, Any]) -> list[str]:
    problems = []
    for name, resource in template["Resources"].items():
        kind = resource["Type"]
        if kind not in FREE_WHEN_IDLE and kind not in IDLE_COST_ALLOWED:
            problems.append(
                f"{name} ({kind}): not on FREE_WHEN_IDLE. If it bills while idle (by the hour, month or key), "
                "remove it or replace it with a pay-per-use resource; if it does not, add it to FREE_WHEN_IDLE "
                "with why; IDLE_COST_ALLOWED is for what must cost money, with why"
            )
    for name, resource in deployed_with_defaults(template).items():
        kind, properties = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::DynamoDB::Table" and properties.get("BillingMode") != "PAY_PER_REQUEST":
            problems.append(f"{name}: BillingMode {properties.get('BillingMode', 'PROVISIONED (the default)')} bills "
                            "its read and write capacity every hour: set BillingMode: PAY_PER_REQUEST")
        if kind == "AWS::Logs::LogGroup" and not properties.get("RetentionInDays"):
            problems.append(f"{name}: no RetentionInDays, so its storage grows forever: set RetentionInDays: 14")
        if kind == "AWS::ApiGateway::Stage" and properties.get("CacheClusterEnabled") in (True, "true"):
            problems.append(f"{name}: CacheClusterEnabled bills the cache every hour: leave it off")
        if kind == "AWS::Lambda::Function" and (properties.get("SnapStart") or {}).get("ApplyOn", "None") != "None":
            problems.append(f"{name}: SnapStart bills the cached snapshot of every active version: leave it off")
        provisioned = properties.get("ProvisionedConcurrencyConfig")
        if provisioned and templates.as_int(provisioned.get("ProvisionedConcurrentExecutions"), 1) > 0:
            problems.append(
                f"{name} ({kind}): provisioned concurrency is on with the default parameters and bills every "
                "hour: make it conditional on a parameter whose Default turns it off (lab 6's ApiProvisionedConcurrency: 0)"
            )
    return problems


@pytest.mark.parametrize("path", STACKS, ids=where)
def test_no_resource_costs_money_while_idle(path):
    problems = idle_cost_problems(transformed(path))
    assert not problems, f"{where(path)} would cost money while nobody uses it:\n" + "\n".join(problems)


def log_group_problems(template: dict[str, Any]) -> list[str]:
    groups = [g for _, g in templates.resources_of_type(template, "AWS::Logs::LogGroup") if g.get("RetentionInDays")]
    return [
        f"{name}: no AWS::Logs::LogGroup named !Sub /aws/lambda/${{{name}}} with RetentionInDays: 14, so Lambda "
        "creates one that keeps its logs forever"
        for name, _ in templates.resources_of_type(template, "AWS::Lambda::Function")
        if not any(g.get("LogGroupName") == {"Fn::Sub": f"/aws/lambda/${{{name}}}"} for g in groups)
    ]


@pytest.mark.parametrize("path", [path for path in STACKS if path != ROOT_TEMPLATE], ids=where)  # the root has no function
def test_every_function_logs_to_a_group_with_a_retention(path):
    problems = log_group_problems(transformed(path))
    assert not problems, f"{where(path)}:\n" + "\n".join(problems)


# --- 2. a budget ----------------------------------------------------------------------------------


def parameter_problems(template: dict[str, Any]) -> list[str]:
    parameters = template.get("Parameters", {})
    wanted = {
        "AlertEmail": {"Type": "String", "AllowedPattern": EMAIL_PATTERN},
        "MonthlyBudgetUsd": {"Type": "Number", "Default": 5, "MinValue": 1},
        "CreateBudget": {"Type": "String", "AllowedValues": ["true", "false"], "Default": "true"},
        "ReservedConcurrency": {"Type": "Number", "Default": 5, "MinValue": 0},
    }
    problems = []
    for name, settings in wanted.items():
        declared = parameters.get(name)
        if declared is None:
            problems.append(f"no parameter {name}: declare it with {json.dumps(settings)}")
            continue
        for key, value in settings.items():
            if _text(declared.get(key)) != _text(value):
                problems.append(f"parameter {name}: {key} is {declared.get(key)!r}, expected {value!r}")
    if "Default" in parameters.get("AlertEmail", {}):
        problems.append("parameter AlertEmail has a Default: the learner must give their own address")
    if not (parameters.get("AlertEmail") or {}).get("ConstraintDescription"):
        problems.append("parameter AlertEmail: no ConstraintDescription (\"an email address for the budget alerts\")")
    return problems


@pytest.mark.parametrize("path", STACKS, ids=where)
def test_every_stack_takes_an_alert_email_a_budget_and_a_concurrency(path):
    problems = parameter_problems(transformed(path))
    assert not problems, f"{where(path)}:\n" + "\n".join(problems)


def budget_problems(template: dict[str, Any]) -> list[str]:
    budgets = [(name, r) for name, r in template["Resources"].items() if r["Type"] == "AWS::Budgets::Budget"]
    if len(budgets) != 1:
        return [f"{len(budgets)} AWS::Budgets::Budget resources; expected one, MonthlyBudget, with Condition BudgetHere"]
    [(name, resource)] = budgets
    problems = []
    if resource.get("Condition") != "BudgetHere":
        problems.append(f"{name}: Condition is {resource.get('Condition')!r}; expected BudgetHere")
    else:
        here = performance.holds("BudgetHere", template, parameter_values(template))
        elsewhere = performance.holds("BudgetHere", template, parameter_values(template, CreateBudget="false"))
        if not here or elsewhere:
            problems.append("condition BudgetHere must be !Equals [!Ref CreateBudget, \"true\"]")
    budget = resource.get("Properties", {}).get("Budget", {})
    expected = {"BudgetType": "COST", "TimeUnit": "MONTHLY", "BudgetLimit": {"Amount": {"Ref": "MonthlyBudgetUsd"}, "Unit": "USD"}}
    problems += [f"{name}: Budget.{k} is {json.dumps(budget.get(k))}, expected {json.dumps(v)}" for k, v in expected.items() if budget.get(k) != v]
    notified = set()
    for entry in resource.get("Properties", {}).get("NotificationsWithSubscribers", []):
        notification, subscribers = entry.get("Notification", {}), entry.get("Subscribers", [])
        percent = notification.get("ThresholdType", "PERCENTAGE") == "PERCENTAGE"
        if notification.get("ComparisonOperator") == "GREATER_THAN" and percent and 0 < templates.as_int(notification.get("Threshold"), 0) <= 100:
            notified.add(notification.get("NotificationType"))  # an alert before the budget is spent, not after
        if not subscribers or any(s != {"SubscriptionType": "EMAIL", "Address": {"Ref": "AlertEmail"}} for s in subscribers):
            problems.append(f"{name}: every notification's Subscribers must be [{{SubscriptionType: EMAIL, Address: !Ref AlertEmail}}]")
    for kind, threshold in (("ACTUAL", 50), ("FORECASTED", 100)):
        if kind not in notified:
            problems.append(f"{name}: no {kind} notification (GREATER_THAN {threshold} PERCENTAGE)")
    return problems


@pytest.mark.parametrize("path", STACKS, ids=where)
def test_every_stack_creates_a_monthly_cost_budget_that_emails_the_learner(path):
    problems = budget_problems(transformed(path))
    assert not problems, f"{where(path)}:\n" + "\n".join(problems)


def nested_template(properties: dict[str, Any]) -> Path:
    """The lab template a transformed root's AWS::CloudFormation::Stack nests (from its packaged URL)."""
    lab_id = properties["TemplateURL"].split(f"/{templates.ARTIFACT_BUCKET}/", 1)[1].removesuffix(".template")
    return paths.ROOT / "solutions" / lab_id / "template.yaml"


def root_problems(root: dict[str, Any]) -> list[str]:
    problems = []
    for name, properties in templates.resources_of_type(root, "AWS::CloudFormation::Stack"):
        passed = properties.get("Parameters", {})
        for parameter, value in NESTED_PARAMETERS.items():
            if passed.get(parameter) != value:
                problems.append(f"{name}: Parameters.{parameter} is {json.dumps(passed.get(parameter))}; pass {json.dumps(value)}")
        declared = templates.load(nested_template(properties)).get("Parameters", {})
        undeclared = sorted(set(passed) - set(declared))
        if undeclared:
            problems.append(f"{name}: passes {undeclared}, which {paths.relative(nested_template(properties))} does not declare (the deploy would fail)")
        missing = sorted(p for p, d in declared.items() if "Default" not in d and p not in passed)
        if missing:
            problems.append(f"{name}: does not pass {missing}, which have no Default in the nested template")
    return problems


def test_the_root_creates_the_one_budget_and_passes_the_settings_to_every_lab():
    root = transformed(ROOT_TEMPLATE)
    assert performance.holds("BudgetHere", root, parameter_values(root)), "the root's CreateBudget must default to \"true\""
    problems = root_problems(root)
    assert not problems, "template.yaml: each nested lab gets AlertEmail, ReservedConcurrency and CreateBudget \"false\":\n" + "\n".join(problems)


# --- 3. reserved concurrency ----------------------------------------------------------------------


def function_behind(template: dict[str, Any], name: Any) -> str | None:
    """The AWS::Lambda::Function that a FunctionName names, through an alias if it names one."""
    for target in templates.references(name):
        resource = template["Resources"].get(target, {})
        if resource.get("Type") == "AWS::Lambda::Alias":
            return function_behind(template, resource["Properties"].get("FunctionName"))
        if resource.get("Type") == "AWS::Lambda::Function":
            return target
    return None


# Functions of a starter left without reserved concurrency because adding it is the lesson, each with
# the task. The check then asks for what bounds them meanwhile: an SQS event source's MaximumConcurrency.
UNRESERVED_STARTER_LESSONS: dict[tuple[str, str], str] = {
    ("labs/lab06_performance/template.yaml", "OrderWorkerFunction"): "task 5 of lab 6 caps the queue worker",
}


def concurrency_problems(template: dict[str, Any], path: Path | None = None) -> list[str]:
    problems = []
    lessons = {name for (stack, name) in UNRESERVED_STARTER_LESSONS if path is not None and where(path) == stack}
    capped = {
        function_behind(template, mapping.get("FunctionName"))
        for _, mapping in templates.resources_of_type(template, "AWS::Lambda::EventSourceMapping")
        if templates.as_int((mapping.get("ScalingConfig") or {}).get("MaximumConcurrency"), None)
    }
    fix = "ReservedConcurrentExecutions: !If [ReserveConcurrency, !Ref ReservedConcurrency, !Ref AWS::NoValue] (Globals.Function)"
    by_default = deployed_with_defaults(template)
    without = deployed_with_defaults(template, ReservedConcurrency=0)
    for name, function in templates.resources_of_type(template, "AWS::Lambda::Function"):
        value = function.get("ReservedConcurrentExecutions")
        fixed = None if isinstance(value, (dict, bool)) else templates.as_int(value, None)  # 10 or "10"
        if fixed is not None:
            if fixed <= 0:
                problems.append(f"{name}: ReservedConcurrentExecutions {value} stops the function; use {fix}")
            continue
        reserved = by_default.get(name, {}).get("Properties", {}).get("ReservedConcurrentExecutions")
        released = without.get(name, {}).get("Properties", {}).get("ReservedConcurrentExecutions")
        if value is None and name in lessons and name in capped:
            continue  # the lesson's to add; its event source's MaximumConcurrency bounds it meanwhile
        if value is None or templates.as_int(reserved, 0) <= 0 or released is not None:
            problems.append(f"{name}: no reserved concurrency that follows the ReservedConcurrency parameter: {fix}")
    for name, mapping in templates.resources_of_type(template, "AWS::Lambda::EventSourceMapping"):
        queues = [q for q in templates.references(mapping.get("EventSourceArn")) if template["Resources"].get(q, {}).get("Type") == "AWS::SQS::Queue"]
        if not queues:
            continue
        maximum = templates.as_int((mapping.get("ScalingConfig") or {}).get("MaximumConcurrency"), None)
        if maximum is None:
            problems.append(f"{name} (SQS event source): no ScalingConfig.MaximumConcurrency: set 2, the minimum")
            continue
        function = function_behind(template, mapping.get("FunctionName"))
        reserved = templates.as_int(by_default.get(function, {}).get("Properties", {}).get("ReservedConcurrentExecutions"), None)
        if reserved is not None and reserved < maximum:
            problems.append(
                f"{name}: the function may run {reserved} at once but the event source polls for {maximum}: the "
                "throttled messages go back to the queue and, after maxReceiveCount, to the dead-letter queue"
            )
    return problems


@pytest.mark.parametrize("path", STACKS, ids=where)
def test_every_function_has_a_reserved_concurrency_and_every_queue_consumer_a_maximum(path):
    problems = concurrency_problems(transformed(path), path)
    assert not problems, f"{where(path)}:\n" + "\n".join(problems)


# --- 4. tags --------------------------------------------------------------------------------------

# Types that take tags in CloudFormation but not from SAM, which generates them from a function's events
# without a Tags property (samtranslator's model has none; checked below). Stack tags reach them: the
# root's nested-stack Tags, and `sam deploy --tags` for one lab (docs/deploy.md says so).
SAM_CANNOT_TAG: dict[str, str] = {
    "AWS::Lambda::EventSourceMapping": "generated from an SQS event; PropagateTags does not reach it",
    "AWS::Events::Rule": "generated from a Schedule event; PropagateTags does not reach it",
}


def tags_of(properties: dict[str, Any], tag_property: str) -> dict[str, Any]:
    tags = properties.get(tag_property) or {}
    if isinstance(tags, list):
        return {t.get("Key"): t.get("Value") for t in tags if isinstance(t, dict)}
    return dict(tags) if isinstance(tags, dict) else {}


def expected_lab(path: Path, resource: dict[str, Any]) -> str:
    """The lab tag: the template's lab; in the root, a nested stack carries the lab it nests, the rest `all`."""
    if path == ROOT_TEMPLATE and resource["Type"] == "AWS::CloudFormation::Stack":
        return nested_template(resource["Properties"]).parent.name
    return lab_of(path)


def where_to_tag(kind: str, tag_property: str) -> str:
    if kind.startswith(("AWS::Lambda::", "AWS::IAM::")):
        return "a Tags map in Globals.Function, with PropagateTags: true"
    if kind.startswith("AWS::ApiGateway::"):
        return "a Tags map on the AWS::Serverless::Api (or Globals.Api), with PropagateTags: true"
    if kind == "AWS::CloudFormation::Stack":
        return "a Tags map on the AWS::Serverless::Application"
    return f"a {tag_property} list of Key/Value pairs on the resource"


def tag_problems(path: Path, template: dict[str, Any], source: dict[str, Any]) -> list[str]:
    problems = []
    for name, resource in template["Resources"].items():
        kind = resource["Type"]
        tag_property = templates.tag_property(kind)
        if tag_property is None or (kind in SAM_CANNOT_TAG and name not in source["Resources"]):
            continue
        tags = tags_of(resource.get("Properties", {}), tag_property)
        wanted = dict([WORKSHOP_TAG, ("lab", expected_lab(path, resource))])
        wrong = {k: tags.get(k) for k, v in wanted.items() if tags.get(k) != v}
        if wrong:
            problems.append(f"{name} ({kind}): {tag_property} has {wrong}; expected {wanted}: {where_to_tag(kind, tag_property)}")
    return problems


@pytest.mark.parametrize("path", STACKS, ids=where)
def test_every_resource_that_takes_tags_names_the_workshop_and_its_lab(path):
    problems = tag_problems(path, transformed(path), templates.load(path))
    assert not problems, f"{where(path)}: a learner finds leftovers by these tags:\n" + "\n".join(problems)


def test_sam_still_cannot_tag_what_the_tag_check_excuses():
    from samtranslator.model.events import EventsRule
    from samtranslator.model.lambda_ import LambdaEventSourceMapping

    models = {"AWS::Lambda::EventSourceMapping": LambdaEventSourceMapping, "AWS::Events::Rule": EventsRule}
    assert set(models) == set(SAM_CANNOT_TAG)
    for kind, model in models.items():
        assert "Tags" not in model.property_types, f"SAM now tags {kind}: take it off SAM_CANNOT_TAG and tag it"


# --- 5. deletion ----------------------------------------------------------------------------------

DELETED_WITH_THE_STACK = ("AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::Logs::LogGroup")
KEPT = {"Retain", "RetainExceptOnCreate", "Snapshot"}

# Resources a stack may keep when it is deleted, each with why that leaves nothing behind.
RETAIN_ALLOWED: dict[str, str] = {
    "AWS::Lambda::Version": "SAM's AutoPublishAlias keeps old versions across updates (DeletionPolicy Retain); "
    "deleting the function, which the stack does, deletes every version with it",
}


def deletion_problems(template: dict[str, Any]) -> list[str]:
    problems = []
    for name, resource in template["Resources"].items():
        kind = resource["Type"]
        for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
            value = resource.get(policy)
            if kind in DELETED_WITH_THE_STACK and value != "Delete":
                problems.append(f"{name} ({kind}): {policy} is {value!r}; state {policy}: Delete (nothing is kept: it is a workshop)")
            elif value in KEPT and kind not in RETAIN_ALLOWED:
                problems.append(f"{name} ({kind}): {policy} {value} outlives the stack; use Delete")
    for name, bucket in templates.resources_of_type(template, "AWS::S3::Bucket"):
        rules = [r for r in (bucket.get("LifecycleConfiguration") or {}).get("Rules", []) if r.get("Status") == "Enabled"]
        whole = [r for r in rules if not r.get("Prefix") and not r.get("TagFilters") and not r.get("ObjectSizeGreaterThan")]
        if not any(0 < templates.as_int(r.get("ExpirationInDays"), 0) <= 30 for r in whole):
            problems.append(f"{name}: no enabled LifecycleConfiguration rule with ExpirationInDays: 30 (or fewer) on the "
                            "whole bucket, so a forgotten bucket keeps its objects (and its bill) forever")
        if (bucket.get("VersioningConfiguration") or {}).get("Status") == "Enabled":
            if not any(r.get("NoncurrentVersionExpiration") or r.get("NoncurrentVersionExpirationInDays") for r in whole):
                problems.append(f"{name}: versioned, but no rule expires noncurrent versions")
            if not any(r.get("AbortIncompleteMultipartUpload") for r in whole):
                problems.append(f"{name}: versioned, but no rule aborts incomplete multipart uploads")
    return problems


@pytest.mark.parametrize("path", STACKS, ids=where)
def test_buckets_tables_and_log_groups_go_with_the_stack_and_buckets_empty_themselves(path):
    problems = deletion_problems(transformed(path))
    assert not problems, f"{where(path)}:\n" + "\n".join(problems)


# --- 6. identity ----------------------------------------------------------------------------------

RESOURCE_POLICIES = {  # policy type: (property naming the resources, the resource type)
    "AWS::S3::BucketPolicy": ("Bucket", "AWS::S3::Bucket"),
    "AWS::SQS::QueuePolicy": ("Queues", "AWS::SQS::Queue"),
    "AWS::SNS::TopicPolicy": ("Topics", "AWS::SNS::Topic"),
}
OWN_ACCOUNT = re.compile(r"^(arn:(\$\{AWS::Partition\}|aws):iam::)?\$\{AWS::AccountId\}(:root)?$")
SOURCE_KEYS = {"aws:sourceaccount", "aws:sourcearn"}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def is_own_account(principal: Any) -> bool:
    if principal == {"Ref": "AWS::AccountId"}:
        return True
    text = principal.get("Fn::Sub") if isinstance(principal, dict) else None
    return isinstance(text, str) and bool(OWN_ACCOUNT.match(text))


def condition_keys(statement: dict[str, Any]) -> set[str]:
    return {key.lower() for operator in (statement.get("Condition") or {}).values() if isinstance(operator, dict) for key in operator}


def allow_problems(statement: dict[str, Any]) -> list[str]:
    """What an Allow statement of a resource policy grants beyond the account and its services."""
    if "NotPrincipal" in statement:
        return ["an Allow with NotPrincipal grants everyone else"]
    principal = statement.get("Principal")
    if not isinstance(principal, dict):
        return [f"allows Principal {json.dumps(principal)}: name the account or a service"]
    problems = []
    for kind, values in principal.items():
        if kind == "AWS":
            problems += [f"allows AWS principal {json.dumps(v)}: only the own account" for v in as_list(values) if not is_own_account(v)]
        elif kind == "Service":
            if not condition_keys(statement) & SOURCE_KEYS:
                problems.append(f"allows service {json.dumps(values)} without an aws:SourceAccount or aws:SourceArn condition")
        else:
            problems.append(f"allows {kind} principals: only the own account or a service")
    return problems


def resource_policy_problems(template: dict[str, Any]) -> list[str]:
    problems = []
    resources = template["Resources"]
    covered: dict[str, list[dict[str, Any]]] = {}
    for policy_name, policy in resources.items():
        if policy["Type"] not in RESOURCE_POLICIES:
            continue
        target, _ = RESOURCE_POLICIES[policy["Type"]]
        document = policy.get("Properties", {}).get("PolicyDocument", {})
        for name in templates.references(policy.get("Properties", {}).get(target)):
            covered.setdefault(name, []).append(document)
        for statement in as_list(document.get("Statement", [])):
            if statement.get("Effect") == "Allow":
                problems += [f"{policy_name}: {p}" for p in allow_problems(statement)]
    for policy_type, (_, kind) in RESOURCE_POLICIES.items():
        for name, _ in templates.resources_of_type(template, kind):
            if not any(templates.denies_plain_http(d) for d in covered.get(name, [])):
                problems.append(f"{name} ({kind}): no {policy_type} that denies Principal \"*\" when aws:SecureTransport is false")
    return problems


@pytest.mark.parametrize("path", STACKS, ids=where)
def test_buckets_queues_and_topics_refuse_plain_http_and_allow_only_the_account(path):
    problems = resource_policy_problems(transformed(path))
    assert not problems, f"{where(path)}:\n" + "\n".join(problems)


def permission_problems(template: dict[str, Any]) -> list[str]:
    problems = []
    for name, permission in templates.resources_of_type(template, "AWS::Lambda::Permission"):
        principal = permission.get("Principal")
        if not (isinstance(principal, str) and principal.endswith(".amazonaws.com")) and not is_own_account(principal):
            problems.append(f"{name}: lets {json.dumps(principal)} invoke the function: only a service of the account")
        if not permission.get("SourceArn") and not permission.get("SourceAccount"):
            problems.append(f"{name}: no SourceArn or SourceAccount, so {principal} acting for any account may invoke the function")
        if principal == "s3.amazonaws.com" and not permission.get("SourceAccount"):
            problems.append(f"{name}: S3 bucket ARNs name no account: add SourceAccount: !Ref AWS::AccountId")
        if permission.get("FunctionUrlAuthType") == "NONE":
            problems.append(f"{name}: a public function URL")
    return problems


@pytest.mark.parametrize("path", STACKS, ids=where)
def test_every_lambda_permission_names_its_source(path):
    problems = permission_problems(transformed(path))
    assert not problems, f"{where(path)}:\n" + "\n".join(problems)


ROLE_ACTIONS = ("iam:passrole", "sts:assumerole", "sts:assumerolewithwebidentity", "sts:assumerolewithsaml")

# AWS-managed policies a role may hold because they grant no IAM or STS action. Any other fails the
# check: read its JSON in the AWS managed policy reference first.
MANAGED_POLICIES_WITHOUT_ROLE_ACTIONS: dict[str, str] = {
    **templates.ACCEPTED_MANAGED_POLICIES,
    "AmazonSQSFullAccess": "sqs:* only: lab 3's and lab 5's starters hold it until the least-privilege task",
}
# Managed policies known to grant what no function role may have, for a clear message.
MANAGED_POLICIES_WITH_ROLE_ACTIONS: dict[str, str] = {
    "AdministratorAccess": "every action",
    "PowerUserAccess": "every action but IAM's and Organizations', sts:AssumeRole included",
    "IAMFullAccess": "iam:*",
    "AmazonDynamoDBFullAccess": "iam:PassRole (to DAX and Application Auto Scaling)",
    "AWSLambda_FullAccess": "iam:PassRole (to Lambda)",
    "AWSLambdaFullAccess": "iam:PassRole",
}


def grants_role_actions(statement: dict[str, Any]) -> list[str]:
    if statement.get("Effect") != "Allow":
        return []
    if "NotAction" in statement:
        return [f"NotAction {json.dumps(statement['NotAction'])} (allows everything else, roles included)"]
    found = []
    for action in as_list(statement.get("Action", [])):
        if isinstance(action, str) and any(fnmatch.fnmatchcase(target, action.lower()) for target in ROLE_ACTIONS):
            found.append(action)
    return found


def managed_policy_name(arn: Any) -> str:
    names = re.findall(r"policy/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)", json.dumps(arn))
    return names[-1] if names else json.dumps(arn)


def role_problems(template: dict[str, Any]) -> list[str]:
    problems = []
    documents = []  # (owner, statement)
    for name, role in templates.resources_of_type(template, "AWS::IAM::Role"):
        for statement in as_list(role.get("AssumeRolePolicyDocument", {}).get("Statement", [])):
            principal = statement.get("Principal")
            services = as_list(principal.get("Service", [])) if isinstance(principal, dict) else []
            if not isinstance(principal, dict) or set(principal) != {"Service"} or not all(isinstance(s, str) and s.endswith(".amazonaws.com") for s in services):
                problems.append(f"{name}: its trust policy lets {json.dumps(principal)} assume it; only AWS service principals")
        documents += [(name, s) for p in role.get("Policies", []) for s in as_list(p.get("PolicyDocument", {}).get("Statement", []))]
        for arn in role.get("ManagedPolicyArns", []):
            policy = managed_policy_name(arn)
            if policy in MANAGED_POLICIES_WITH_ROLE_ACTIONS:
                problems.append(f"{name}: managed policy {policy} grants {MANAGED_POLICIES_WITH_ROLE_ACTIONS[policy]}; "
                                "replace it with a SAM policy template or a statement of the actions the function uses")
            elif policy not in MANAGED_POLICIES_WITHOUT_ROLE_ACTIONS:
                problems.append(f"{name}: managed policy {policy} is not known to grant no IAM or STS action; check its JSON "
                                "and add it to MANAGED_POLICIES_WITHOUT_ROLE_ACTIONS, or replace it")
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        documents += [(name, s) for name, p in templates.resources_of_type(template, kind) for s in as_list(p.get("PolicyDocument", {}).get("Statement", []))]
    for owner, statement in documents:
        for action in grants_role_actions(statement):
            problems.append(f"{owner}: allows {action}, so the function could pass or assume a role (and its rights)")
    return problems


@pytest.mark.parametrize("path", STACKS, ids=where)
def test_no_role_can_pass_or_assume_a_role_and_only_services_assume_roles(path):
    problems = role_problems(transformed(path))
    assert not problems, f"{where(path)}:\n" + "\n".join(problems)


# --- 7. the API -----------------------------------------------------------------------------------

OPERATIONS = {"get", "put", "post", "delete", "patch", "head", "options", "x-amazon-apigateway-any-method"}
WRITES = {"post", "put", "patch"}


def encoded(path: str) -> str:
    """A resource path as a Stage's MethodSettings name it: /items/{id} -> /~1items~1{id}."""
    return "/" + path.replace("/", "~1")


def operations(body: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, operation) for path, item in body.get("paths", {}).items() for method, operation in item.items() if method in OPERATIONS]


def body_schema(body: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
    """The model an operation's request body must match: a Swagger 2 body parameter or an OpenAPI 3 requestBody."""
    references = [p.get("schema", {}).get("$ref", "") for p in operation.get("parameters", []) if p.get("in") == "body"]
    references += [c.get("schema", {}).get("$ref", "") for c in operation.get("requestBody", {}).get("content", {}).values()]
    models = body.get("definitions") or body.get("components", {}).get("schemas", {})
    return models.get(references[0].rsplit("/", 1)[-1], {}) if references else {}


def body_problems(name: str, body: dict[str, Any]) -> list[str]:
    problems = []
    schemes = body.get("securityDefinitions") or body.get("components", {}).get("securitySchemes", {})  # Swagger 2 or OpenAPI 3
    sigv4 = {key for key, scheme in schemes.items() if scheme.get("x-amazon-apigateway-authtype") == "awsSigv4"}
    validators = body.get("x-amazon-apigateway-request-validators", {})
    if "x-amazon-apigateway-cors" in body or "Access-Control-Allow-Origin" in json.dumps(body):
        problems.append(f"{name}: CORS headers: the docs call the API with curl, never from a browser page; remove Cors")
    for path, method, operation in operations(body):
        route = f"{name} {method.upper()} {path}"
        if method == "options":
            problems.append(f"{route}: an OPTIONS method (CORS pre-flight): remove Cors")
            continue
        if not any(set(requirement) & sigv4 for requirement in operation.get("security", [])):
            problems.append(f"{route}: not IAM-authorised: Auth: {{DefaultAuthorizer: AWS_IAM}} on the AWS::Serverless::Api")
        if method in WRITES:
            validator = validators.get(operation.get("x-amazon-apigateway-request-validator"), {})
            schema = body_schema(body, operation)
            if not validator.get("validateRequestBody") or not schema:
                problems.append(f"{route}: the gateway does not validate the body: RequestModel {{Model: ..., Required: true, ValidateBody: true}}")
            elif schema.get("additionalProperties") is not False or not schema.get("required"):
                problems.append(f"{route}: its model must list what is required and refuse other properties (additionalProperties: false)")
            elif (method, path) == ("post", "/items"):
                fields = schema.get("properties", {})
                expected = {"name": {"minLength": 1, "maxLength": 100}, "price": {"minimum": 0, "maximum": 1_000_000}}
                for field, limits in expected.items():
                    if any(fields.get(field, {}).get(k) != v for k, v in limits.items()):
                        problems.append(f"{route}: the model's {field} must have {limits} (the function's own limits)")
    return problems


def stage_problems(name: str, stage: dict[str, Any], body: dict[str, Any]) -> list[str]:
    settings = {(s.get("ResourcePath"), s.get("HttpMethod")): s for s in stage.get("MethodSettings", [])}
    everything = settings.get(("/*", "*"), {})
    rate, burst = everything.get("ThrottlingRateLimit"), everything.get("ThrottlingBurstLimit")
    if not rate or not burst:
        return [f"{name}: no MethodSettings throttling on ResourcePath /* HttpMethod \"*\" (rate 10, burst 20)"]
    problems = []
    for path, method, _ in operations(body):
        if method not in WRITES:
            continue
        write = settings.get((encoded(path), method.upper()), {})
        if not (0 < write.get("ThrottlingRateLimit", rate) < rate and 0 < write.get("ThrottlingBurstLimit", burst) < burst):
            problems.append(f"{name}: {method.upper()} {path} writes: throttle it below the stage's {rate}/s, burst {burst}, with a "
                            f"MethodSettings entry ResourcePath {encoded(path)} (slashes as ~1), HttpMethod {method.upper()} (rate 2, burst 5)")
    return problems


def api_problems(template: dict[str, Any]) -> list[str]:
    problems = []
    apis = dict(templates.resources_of_type(template, "AWS::ApiGateway::RestApi"))
    for name, api in apis.items():
        problems += body_problems(name, api.get("Body") or {})
    staged = set()
    for name, stage in templates.resources_of_type(template, "AWS::ApiGateway::Stage"):
        [api] = templates.references(stage.get("RestApiId")) or {""}
        staged.add(api)
        problems += stage_problems(name, stage, (apis.get(api) or {}).get("Body") or {})
    problems += [f"{name}: no AWS::ApiGateway::Stage, so nothing throttles it" for name in set(apis) - staged]
    for name, method in templates.resources_of_type(template, "AWS::ApiGateway::Method"):
        if method.get("HttpMethod") == "OPTIONS":
            problems.append(f"{name}: an OPTIONS method (CORS pre-flight)")
        elif method.get("AuthorizationType") != "AWS_IAM":
            problems.append(f"{name}: AuthorizationType {method.get('AuthorizationType')!r}; expected AWS_IAM")
    return problems


def has_api(template: dict[str, Any]) -> bool:
    return any(r["Type"].startswith("AWS::ApiGateway::") for r in template["Resources"].values())


def declares_api(path: Path) -> bool:
    """Does the template, as written, ask for an API (an Api event or an explicit AWS::Serverless::Api)?"""
    text = path.read_text(encoding="utf-8")
    return "AWS::Serverless::Api" in text or re.search(r"^\s*Type:\s*Api\s*$", text, re.M) is not None


API_STACKS = [path for path in STACKS if declares_api(path)]


@pytest.mark.parametrize("path", API_STACKS, ids=where)
def test_the_api_requires_iam_is_throttled_validates_writes_and_allows_no_cors(path):
    template = transformed(path)
    assert has_api(template), f"{where(path)} declares an API but its transformed template creates none"
    problems = api_problems(template)
    assert not problems, f"{where(path)}:\n" + "\n".join(problems)


def test_no_other_stack_creates_an_api():
    # The API rule runs on API_STACKS only: a stack outside it must not create one unchecked.
    assert API_STACKS, "no stack declares an API: lab 1's items API should"
    unchecked = [where(path) for path in STACKS if path not in API_STACKS and has_api(transformed(path))]
    assert not unchecked, f"these stacks create an API the API rule does not check: {unchecked}"


# --- the deploy page ------------------------------------------------------------------------------


def test_the_deploy_page_ends_with_the_delete_step_and_the_check_that_nothing_tagged_remains():
    page = (paths.DOCS / "deploy.md").read_text(encoding="utf-8")
    title, _, last = page.rsplit("\n## ", 1)[-1].partition("\n")
    assert "delete" in title.lower(), f"docs/deploy.md ends with `## {title}`; it must end with the delete step"
    for needed in ("sam delete", "aws resourcegroupstaggingapi get-resources", "Key=workshop,Values=lambda-patterns-workshop",
                   "aws logs describe-log-groups", "aws budgets describe-budgets"):
        assert needed in last, f"docs/deploy.md's last section (`## {title}`) does not run {needed!r}"


# --- the checks do look ---------------------------------------------------------------------------


@pytest.fixture
def scratch(tmp_path) -> tuple[Path, dict[str, Any]]:
    """Lab 1's solution copied to a scratch folder, loaded (SAM), to break on purpose."""
    folder = tmp_path / "lab01_api_gateway"
    folder.mkdir()
    path = folder / "template.yaml"
    path.write_text((paths.ROOT / "solutions" / "lab01_api_gateway" / "template.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return path, templates.load(path)


def test_the_idle_cost_check_fails_on_what_bills_by_the_hour(scratch):
    path, template = scratch
    resources = template["Resources"]
    resources["Nat"] = {"Type": "AWS::EC2::NatGateway", "Properties": {"SubnetId": "subnet-1", "AllocationId": "eipalloc-1"}}
    resources["Key"] = {"Type": "AWS::KMS::Key", "Properties": {}}
    table = next(name for name, r in resources.items() if r["Type"] == "AWS::DynamoDB::Table")
    resources[table]["Properties"]["BillingMode"] = "PROVISIONED"
    template["Parameters"] = {**template.get("Parameters", {}), "Warm": {"Type": "Number", "Default": 1}}
    template["Conditions"] = {**template.get("Conditions", {}), "IsWarm": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Warm"}, 0]}]}}
    function = next(r for r in resources.values() if r["Type"] == "AWS::Serverless::Function")["Properties"]
    function["AutoPublishAlias"] = "live"
    function["ProvisionedConcurrencyConfig"] = {"Fn::If": ["IsWarm", {"ProvisionedConcurrentExecutions": {"Ref": "Warm"}}, {"Ref": "AWS::NoValue"}]}
    problems = "\n".join(idle_cost_problems(templates.transform(template, path.parent)))
    assert "Nat (AWS::EC2::NatGateway): not on FREE_WHEN_IDLE" in problems
    assert "Key (AWS::KMS::Key): not on FREE_WHEN_IDLE" in problems
    assert f"{table}: BillingMode PROVISIONED" in problems
    assert "provisioned concurrency is on with the default parameters" in problems
    template["Parameters"]["Warm"]["Default"] = 0  # off by default, as lab 6 has it: no finding
    del resources["Nat"], resources["Key"]
    resources[table]["Properties"]["BillingMode"] = "PAY_PER_REQUEST"
    assert not [p for p in idle_cost_problems(templates.transform(template, path.parent)) if "provisioned" in p or "BillingMode" in p]


def test_the_other_checks_fail_on_what_they_look_for(scratch):
    path, template = scratch
    resources = template["Resources"]
    resources["Open"] = {"Type": "AWS::SQS::Queue", "DeletionPolicy": "Retain", "Properties": {}}
    resources["OpenPolicy"] = {"Type": "AWS::SQS::QueuePolicy", "Properties": {"Queues": [{"Ref": "Open"}], "PolicyDocument": {
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*"}]}}}
    resources["Tick"] = {"Type": "AWS::Events::Rule", "Properties": {"ScheduleExpression": "rate(1 hour)"}}  # ours, not SAM's
    resources["Anyone"] = {"Type": "AWS::Lambda::Permission", "Properties": {
        "Action": "lambda:InvokeFunction", "FunctionName": "f", "Principal": "s3.amazonaws.com"}}
    resources["Passer"] = {"Type": "AWS::IAM::Role", "Properties": {
        "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]},
        "ManagedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"],
        "Policies": [{"PolicyName": "p", "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "iam:Pass*", "Resource": "*"}]}}]}}
    transformed_template = templates.transform(template, path.parent)
    untagged = "\n".join(tag_problems(path, transformed_template, template))
    assert "Open (AWS::SQS::Queue): Tags has" in untagged and "Tick (AWS::Events::Rule): Tags has" in untagged
    assert any("Open (AWS::SQS::Queue): DeletionPolicy Retain outlives" in p for p in deletion_problems(transformed_template))
    policies = "\n".join(resource_policy_problems(transformed_template))
    assert "OpenPolicy: allows Principal \"*\"" in policies and "Open (AWS::SQS::Queue): no AWS::SQS::QueuePolicy that denies" in policies
    permissions = "\n".join(permission_problems(transformed_template))
    assert "Anyone: no SourceArn or SourceAccount" in permissions and "Anyone: S3 bucket ARNs name no account" in permissions
    roles = "\n".join(role_problems(transformed_template))
    assert "Passer: its trust policy lets" in roles and "AdministratorAccess grants every action" in roles and "allows iam:Pass*" in roles
    template["Parameters"]["AlertEmail"]["Default"] = "someone@example.com"
    del template["Resources"]["MonthlyBudget"]
    assert "parameter AlertEmail has a Default" in "\n".join(parameter_problems(templates.transform(template, path.parent)))
    assert budget_problems(templates.transform(template, path.parent)) == [
        "0 AWS::Budgets::Budget resources; expected one, MonthlyBudget, with Condition BudgetHere"
    ]
    assert concurrency_problems({"Resources": {"F": {"Type": "AWS::Lambda::Function", "Properties": {}}}})
    assert log_group_problems({"Resources": {"F": {"Type": "AWS::Lambda::Function", "Properties": {}}}})
    open_api = copy.deepcopy(transformed_template)
    for name, resource in open_api["Resources"].items():
        if resource["Type"] == "AWS::ApiGateway::RestApi":
            for _, _, operation in operations(resource["Properties"]["Body"]):
                operation.pop("security", None)
                operation.pop("x-amazon-apigateway-request-validator", None)
        if resource["Type"] == "AWS::ApiGateway::Stage":
            resource["Properties"]["MethodSettings"] = []
    api = "\n".join(api_problems(open_api))
    assert "not IAM-authorised" in api and "no MethodSettings throttling" in api and "does not validate the body" in api
