"""Create a lab's stack in moto's CloudFormation, as `sam deploy` would create it in AWS.

Used by the local runtime (workshop/local/lab.py) and by tests/meta/test_stack.py. Call `import_moto()`
and `workshop.sandbox.enter()` first, then the functions here inside `moto.mock_aws()`.

moto cannot create everything SAM produces. What it cannot is taken out before the create
(MOTO_CANNOT_CREATE, MOTO_CANNOT_SET); test_stack.py checks those parts on the transformed template.
"""

from __future__ import annotations

import copy
import io
import json
import sys
import zipfile
from dataclasses import dataclass
from typing import Any

from workshop import templates
from workshop.sandbox import REGION

# Resource types moto 5's CloudFormation cannot create, with what it does with them.
MOTO_CANNOT_CREATE: dict[str, str] = {
    "AWS::ApiGateway::Deployment": "fails: it cannot deploy the RestApi's OpenAPI body",
    "AWS::ApiGateway::Stage": "fails with the deployment it needs",
    "AWS::SNS::Subscription": "drops Lambda subscriptions and their filter policies",
    "AWS::Scheduler::Schedule": "not implemented",
    "AWS::S3::BucketPolicy": "not implemented (warns and skips it)",
    "AWS::Lambda::EventInvokeConfig": "not implemented (warns and skips it)",
    "AWS::SQS::QueuePolicy": "not implemented (warns and skips it)",
    "AWS::SNS::TopicPolicy": "not implemented (warns and skips it)",
    "AWS::Budgets::Budget": "not implemented (warns and skips it); a budget has no local effect anyway",
    "AWS::Lambda::Alias": "not implemented (its Ref is empty): what names an alias names its function instead",
}
# Properties moto ignores or fails on, taken out of the resources that keep being created.
MOTO_CANNOT_SET: dict[str, tuple[str, ...]] = {
    "AWS::ApiGateway::RestApi": ("Body",),  # an OpenAPI body: moto cannot import it
    "AWS::S3::Bucket": ("NotificationConfiguration",),  # S3 notifications: dropped
    "AWS::Lambda::Function": ("Architectures", "Layers"),  # dropped
}

# Values for the template parameters that have no Default, as a learner would type them at
# `sam deploy --guided`: moto refuses to create a stack without them. The one place that names them.
LOCAL_PARAMETERS: dict[str, str] = {
    "AlertEmail": "learner@example.com",  # the budget's alert address (AWS sends nothing from moto)
}

# What moto stores as each function's code: the real code runs in this process, never in moto.
_PLACEHOLDER_HANDLER = "def lambda_handler(event, context):\n    return None\n"


def import_moto() -> None:
    """Import moto's CloudFormation (which imports every moto service) in 0.8 s instead of 2.1.

    Two imports dominate, and neither is needed here:
    - jsonschema (through moto's API Gateway) imports rfc3987_syntax: templates.without_iri_grammar.
    - moto's EC2 models create three boto3 sessions to list the regions: 0.45 s. One session, lent to
      them, gives the same list: the graders' (warmup.shared_session), which the lab's clients use too,
      so that botocore's endpoints (0.1 s to read) and each service's model are read once a process.
    """
    if "moto.cloudformation.parsing" in sys.modules:
        return
    from unittest import mock

    from workshop.grading import warmup

    templates.without_iri_grammar()
    session = warmup.shared_session()
    with mock.patch("boto3.Session", lambda *args, **kwargs: session):
        import moto.cloudformation.parsing  # noqa: F401


def for_moto(template: dict[str, Any]) -> dict[str, Any]:
    """A transformed template without what moto cannot create."""
    result = copy.deepcopy(template)
    result["Resources"] = {n: r for n, r in result["Resources"].items() if r["Type"] not in MOTO_CANNOT_CREATE}
    for logical_id, resource in result["Resources"].items():
        for name in MOTO_CANNOT_SET.get(resource["Type"], ()):
            resource.get("Properties", {}).pop(name, None)
        if resource["Type"] == "AWS::ApiGateway::RestApi":
            resource["Properties"].setdefault("Name", logical_id)  # the body named it
    result["Resources"] = _aliases_as_functions(result["Resources"], template["Resources"])
    removed = set(template["Resources"]) - set(result["Resources"])
    # Outputs that name a removed resource go too (lab 1's API URL names the RestApi, which stays).
    result["Outputs"] = {
        k: v for k, v in template.get("Outputs", {}).items() if not templates.references(v) & removed
    }
    return result


def _aliases_as_functions(resources: dict[str, Any], original: dict[str, Any]) -> dict[str, Any]:
    """Point each {"Ref": <alias>} (the alias's ARN) at its function's ARN (lab 7's rule invokes the alias)."""
    functions = {
        name: {"Fn::GetAtt": [next(iter(templates.references(resource["Properties"]["FunctionName"]))), "Arn"]}
        for name, resource in original.items()
        if resource["Type"] == "AWS::Lambda::Alias"
    }

    def swap(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"Ref"} and value["Ref"] in functions:
                return copy.deepcopy(functions[value["Ref"]])
            return {key: swap(item) for key, item in value.items()}
        if isinstance(value, list):
            return [swap(item) for item in value]
        return value

    return swap(resources) if functions else resources


def placeholder_code() -> bytes:
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", _PLACEHOLDER_HANDLER)
    return code.getvalue()


def upload_artifacts(s3, lab_templates: dict[str, dict[str, Any]]) -> None:
    """What `sam package` uploads: each function's and layer's code (a placeholder) and each lab's template."""
    s3.create_bucket(Bucket=templates.ARTIFACT_BUCKET)
    code = placeholder_code()
    for name, template in lab_templates.items():
        for _, function in templates.resources_of_type(template, "AWS::Lambda::Function"):
            s3.put_object(Bucket=templates.ARTIFACT_BUCKET, Key=function["Code"]["S3Key"], Body=code)
        for _, layer in templates.resources_of_type(template, "AWS::Lambda::LayerVersion"):
            s3.put_object(Bucket=templates.ARTIFACT_BUCKET, Key=layer["Content"]["S3Key"], Body=code)
        s3.put_object(Bucket=templates.ARTIFACT_BUCKET, Key=f"{name}.template", Body=json.dumps(for_moto(template)))


@dataclass(frozen=True)
class Stack:
    """A stack created in moto: its name, and the physical id of each logical id."""

    name: str
    status: str
    reason: str | None
    physical: dict[str, str]
    parameters: dict[str, str]
    outputs: dict[str, str]


def describe(cloudformation, name: str) -> Stack:
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    resources = cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
    return Stack(
        name=name,
        status=stack["StackStatus"],
        reason=stack.get("StackStatusReason"),
        physical={r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources},
        parameters={p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])},
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
    )


def required_parameters(template: dict[str, Any]) -> list[dict[str, str]]:
    """The template's parameters without a Default, with their LOCAL_PARAMETERS value (others keep theirs)."""
    required = [name for name, p in template.get("Parameters", {}).items() if "Default" not in p]
    unknown = [name for name in required if name not in LOCAL_PARAMETERS]
    if unknown:
        raise ValueError(f"the template's parameters {unknown} have no Default: give them a value in LOCAL_PARAMETERS")
    return [{"ParameterKey": name, "ParameterValue": LOCAL_PARAMETERS[name]} for name in required]


def create(cloudformation, name: str, template: dict[str, Any]) -> Stack:
    """Create `template` (transformed, packaged, its artifacts uploaded) as stack `name` and describe it."""
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=json.dumps(for_moto(template)),
        Parameters=required_parameters(template),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    return describe(cloudformation, name)


def deploy_lab(template: dict[str, Any], name: str) -> Stack:
    """One lab's transformed template, uploaded and created in moto (inside `mock_aws()`)."""
    import boto3

    upload_artifacts(boto3.client("s3", region_name=REGION), {name: template})
    return create(boto3.client("cloudformation", region_name=REGION), name, template)
