"""The reference stack deploys: the root template, transformed and packaged as `sam deploy` would, is
created in moto's CloudFormation, every lab as a nested stack, and reaches CREATE_COMPLETE; then each
function's environment names the physical resources of its own stack.

moto cannot create everything SAM produces. What it cannot is taken out before the create (see
workshop/local/stack.py, which `workshop invoke` uses too) and checked on the transformed template
instead, by the test below the deploy.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from workshop import manifest, paths, templates
from workshop.local import stack as local_stack
from workshop.sandbox import REGION

# Linting and deploying into moto take seconds, not the learner's sub-second checks.
pytestmark = pytest.mark.timeout(60)

LABS = manifest.labs()
ROOT_TEMPLATE = paths.ROOT / "template.yaml"

def transformed_lab(lab) -> dict[str, Any]:
    folder = lab.folder("solutions")
    return templates.transform(templates.load(folder / "template.yaml"), folder)


def s3_key(url: str) -> str:
    return url.split(f"/{templates.ARTIFACT_BUCKET}/", 1)[1]


@pytest.fixture(scope="module")
def deployed():
    """The root stack created in moto: its nested stacks by lab id, and moto's clients to read them."""
    import boto3
    from moto import mock_aws

    root = templates.transform(templates.load(ROOT_TEMPLATE), paths.ROOT)
    # The labs the root nests (that it nests every lab is test_templates' to check).
    stacks = templates.resources_of_type(root, "AWS::CloudFormation::Stack")
    nested_ids = {s3_key(p["TemplateURL"]).removesuffix(".template") for _, p in stacks}
    lab_templates = {lab.id: transformed_lab(lab) for lab in LABS if lab.id in nested_ids}
    with mock_aws():
        local_stack.upload_artifacts(boto3.client("s3", region_name=REGION), lab_templates)
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        local_stack.create(cloudformation, "lambda-patterns-workshop", root)
        nested = {}
        for summary in cloudformation.list_stack_resources(StackName="lambda-patterns-workshop")["StackResourceSummaries"]:
            if summary["ResourceType"] == "AWS::CloudFormation::Stack":
                location = root["Resources"][summary["LogicalResourceId"]]["Properties"]["TemplateURL"]
                nested[s3_key(location).removesuffix(".template")] = summary["PhysicalResourceId"]
        yield {
            "root": cloudformation.describe_stacks(StackName="lambda-patterns-workshop")["Stacks"][0],
            "nested": nested,
            "templates": lab_templates,
            "cloudformation": cloudformation,
            "lambda": boto3.client("lambda", region_name=REGION),
        }


def test_the_root_stack_and_every_nested_lab_stack_reach_create_complete(deployed):
    cloudformation = deployed["cloudformation"]
    assert deployed["root"]["StackStatus"] == "CREATE_COMPLETE", deployed["root"].get("StackStatusReason")
    assert sorted(deployed["nested"]) == sorted(deployed["templates"]), "moto created each nested lab once"
    for lab, stack_id in deployed["nested"].items():
        stack = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE", f"{lab}: {stack.get('StackStatusReason')}"
        created = {r["LogicalResourceId"] for r in cloudformation.list_stack_resources(StackName=stack_id)["StackResourceSummaries"]}
        expected = set(local_stack.for_moto(deployed["templates"][lab])["Resources"])
        assert expected <= created, f"{lab}: moto did not create {sorted(expected - created)}"
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        wanted = set(local_stack.for_moto(deployed["templates"][lab])["Outputs"])
        assert set(outputs) == wanted and all(outputs.values()), f"{lab}: outputs {outputs}; expected {sorted(wanted)}"


def test_every_output_of_the_root_names_an_output_of_a_nested_lab():
    # moto leaves the root's own outputs (Fn::GetAtt <stack>.Outputs.<name>) empty: checked here instead.
    root = templates.load(ROOT_TEMPLATE)
    locations = {name: p["Location"] for name, p in templates.resources_of_type(root, "AWS::Serverless::Application")}
    for key, output in root.get("Outputs", {}).items():
        application, name = output["Value"]["Fn::GetAtt"]
        lab = templates.load(paths.ROOT / locations[application])
        assert name.removeprefix("Outputs.") in lab.get("Outputs", {}), f"template.yaml output {key}: {name}"


def expected_value(value: Any, physical: dict[str, str], parameters: dict[str, str]) -> str | None:
    """What a variable's template value becomes once deployed, when the template says so plainly."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return physical.get(value["Ref"], parameters.get(value["Ref"]))
    return None  # Fn::Sub and friends: checked to be set, not for their value


def test_every_function_is_configured_with_the_physical_names_of_its_own_stack(deployed):
    cloudformation, lambda_ = deployed["cloudformation"], deployed["lambda"]
    for lab, stack_id in deployed["nested"].items():
        template = deployed["templates"][lab]
        resources = cloudformation.list_stack_resources(StackName=stack_id)["StackResourceSummaries"]
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
        stack = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]
        parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
        for name, function in templates.resources_of_type(template, "AWS::Lambda::Function"):
            configuration = lambda_.get_function_configuration(FunctionName=physical[name])
            deployed_variables = configuration.get("Environment", {}).get("Variables", {})
            for variable, value in function.get("Environment", {}).get("Variables", {}).items():
                assert deployed_variables.get(variable), f"{lab} {name}: {variable} is not set once deployed"
                wanted = expected_value(value, physical, parameters)
                assert wanted is None or deployed_variables[variable] == wanted, (
                    f"{lab} {name}: {variable} is {deployed_variables[variable]!r} once deployed; expected "
                    f"{wanted!r} (the template's {json.dumps(value)})"
                )
        checked = [v for _, f in templates.resources_of_type(template, "AWS::Lambda::Function") for v in f["Environment"]["Variables"].values()]
        assert any(isinstance(v, dict) and v.get("Ref") in physical for v in checked), f"{lab}: no variable names a resource"


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_what_moto_cannot_create_is_wired_to_resources_of_the_template(lab):
    template = transformed_lab(lab)
    resources = template["Resources"]
    names = set(resources) | set(template.get("Parameters", {}))
    for name, resource in resources.items():
        kind, properties = resource["Type"], resource.get("Properties", {})
        removed = properties if kind in local_stack.MOTO_CANNOT_CREATE else {k: properties.get(k) for k in local_stack.MOTO_CANNOT_SET.get(kind, ())}
        dangling = {r for r in templates.references(removed) - names if not r.startswith("AWS::")}
        assert not dangling, f"solutions/{lab.id} {name} ({kind}) names {sorted(dangling)}, not in the template"
        if kind == "AWS::Lambda::Function":
            assert properties.get("Architectures") == ["arm64"], f"solutions/{lab.id} {name}: Architectures"
            layers = json.dumps(properties.get("Layers", []))
            assert re.search(r"layer:AWSLambdaPowertoolsPythonV\d+-python\d+-arm64:\d+", layers), f"{name}: {layers}"
        if kind == "AWS::SNS::Subscription":
            assert properties.get("Protocol") == "lambda" and templates.references(properties.get("Endpoint"))
            assert resources[next(iter(templates.references(properties.get("TopicArn"))))]["Type"] == "AWS::SNS::Topic"
        if kind == "AWS::Lambda::EventInvokeConfig":
            destination = properties["DestinationConfig"]["OnFailure"]["Destination"]
            assert {resources[r]["Type"] for r in templates.references(destination)} == {"AWS::SQS::Queue"}
        if kind == "AWS::S3::BucketPolicy":
            assert resources[properties["Bucket"]["Ref"]]["Type"] == "AWS::S3::Bucket"
        if kind in ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
            targets = properties.get("Queues") or properties.get("Topics")
            wanted = {"AWS::SQS::QueuePolicy": "AWS::SQS::Queue", "AWS::SNS::TopicPolicy": "AWS::SNS::Topic"}[kind]
            assert {resources[r]["Type"] for r in templates.references(targets)} == {wanted}, f"solutions/{lab.id} {name}"
        if kind == "AWS::Budgets::Budget":  # what it says is test_deployed_safety's to check
            assert templates.references(properties) <= {"MonthlyBudgetUsd", "AlertEmail"}, f"solutions/{lab.id} {name}"
        if kind == "AWS::ApiGateway::Stage":
            assert resources[properties["RestApiId"]["Ref"]]["Type"] == "AWS::ApiGateway::RestApi"
        if kind == "AWS::ApiGateway::RestApi":
            assert properties.get("Body", {}).get("paths"), f"solutions/{lab.id} {name} has no routes"
        if kind == "AWS::S3::Bucket" and properties.get("NotificationConfiguration"):
            for notification in properties["NotificationConfiguration"].get("LambdaConfigurations", []):
                target = templates.references(notification.get("Function"))
                assert target and resources[next(iter(target))]["Type"] == "AWS::Lambda::Function"
