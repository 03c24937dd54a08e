"""Grader for lab 1: API Gateway + Lambda + DynamoDB, initialising clients outside the handler.

Each test_taskN_* checks task N of docs/labs/lab01_api_gateway.md. A failure tells you what the grader
sent, what came back, what it expected and where to look. PYTEST_DONT_REWRITE: the messages below are
shown to you exactly as written.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import uuid
from decimal import Decimal

import boto3
import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from workshop import runtimes, templates
from workshop.grading.feedback import call_api
from workshop.grading.spies import CreationSpy
from workshop.grading.template_checks import (
    POWERTOOLS_LAYER,
    actions,
    function_by_code_uri,
    load_both,
    policy_statements,
    role_of,
)

FUNCTION = "items_api"
APP = f"{FUNCTION}/app.py"


# --- helpers ---------------------------------------------------------------------------------------


def create_table(*items: dict) -> str:
    """A fresh table with a random name (so no hard-coded name can match), holding `items`."""
    name = f"items-{uuid.uuid4().hex[:8]}"
    table = boto3.resource("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for item in items:
        table.put_item(Item=item)
    return name


def stored_items(table_name: str) -> list[dict]:
    return boto3.resource("dynamodb").Table(table_name).scan()["Items"]


def ids(items: object) -> list[str]:
    return sorted(str(item.get("id")) for item in items) if isinstance(items, list) else []


def with_body(event: dict, body: str) -> dict:
    return {**event, "body": body, "isBase64Encoded": False}


@pytest.fixture
def items_api(load_handler):
    """load: a table (with the given items), then the learner's handler bound to it; returns both."""

    def load(*items: dict):
        table_name = create_table(*items)
        handler = load_handler(FUNCTION, TABLE_NAME=table_name, POWERTOOLS_SERVICE_NAME="items-api")
        return handler, table_name

    return load


# --- task 1 ----------------------------------------------------------------------------------------


def test_task1_lists_the_items_of_the_table_named_by_TABLE_NAME(items_api, load_event, lambda_context):
    # GIVEN a table with a random name, passed in TABLE_NAME, holding three items
    seeded = [{"id": f"item-{n}", "name": f"Cup {n}", "price": Decimal(n)} for n in range(1, 4)]
    handler, table_name = items_api(*seeded)

    # WHEN the API receives GET /items
    response = call_api(
        handler,
        load_event("api_list_items"),
        lambda_context,
        advice=f"The grader's table is named {table_name!r}, and that name is in the TABLE_NAME environment "
        "variable. Read the name from there: a hard-coded name only works in one account and one stage.",
    )

    # THEN it answers 200 with every item of that table
    assert response.status == 200, (
        f"GET /items answered {response.status}, expected 200.\nBody: {response.text():.500}"
    )
    assert isinstance(response.body, dict) and "items" in response.body, (
        f"GET /items answered {response.text():.300}; expected a JSON object with an \"items\" list, "
        'like {"items": [{"id": ..., "name": ..., "price": ...}]}.'
    )
    assert ids(response.body["items"]) == ids(seeded), (
        f"GET /items returned the items {ids(response.body['items'])}, expected {ids(seeded)} "
        f"(the items of the table named by TABLE_NAME, {table_name!r})."
    )


def test_task1_lists_items_beyond_the_first_page(items_api, load_event, lambda_context):
    # GIVEN items too large to fit in one 1 MB scan page
    big = "x" * 350_000
    seeded = [{"id": f"big-{n}", "name": f"Poster {n}", "price": Decimal(n), "description": big} for n in range(3)]
    handler, _ = items_api(*seeded)

    # WHEN the API receives GET /items
    response = call_api(handler, load_event("api_list_items"), lambda_context)

    # THEN every item comes back, not only the first page
    listed = ids(response.body.get("items")) if isinstance(response.body, dict) else []
    assert listed == ids(seeded), (
        f"GET /items returned {len(listed)} of the table's {len(seeded)} items ({listed}).\n"
        "DynamoDB returns at most 1 MB per scan, with a LastEvaluatedKey when there is more: "
        "scan again with ExclusiveStartKey until there is no LastEvaluatedKey."
    )


# --- task 2 ----------------------------------------------------------------------------------------


def test_task2_returns_the_requested_item(items_api, load_event, lambda_context):
    # GIVEN a table holding the item that events/api_get_item.json asks for
    event = load_event("api_get_item")
    wanted = {"id": event["pathParameters"]["id"], "name": "Teapot", "price": Decimal("24.5")}
    handler, _ = items_api(wanted, {"id": "another", "name": "Cup", "price": Decimal(3)})

    # WHEN the API receives GET /items/{id}
    response = call_api(handler, event, lambda_context)

    # THEN it answers 200 with that item
    assert response.status == 200, f"GET {event['path']} answered {response.status}, expected 200.\nBody: {response.text():.500}"
    body = response.body if isinstance(response.body, dict) else {}
    assert body.get("id") == wanted["id"] and body.get("name") == wanted["name"], (
        f"GET {event['path']} answered {response.text():.300}; expected the item {wanted['id']!r} itself, "
        'as a JSON object ({"id": ..., "name": "Teapot", "price": 24.5}).'
    )


def test_task2_answers_404_with_a_json_error_for_a_missing_item(items_api, load_event, lambda_context):
    # GIVEN a table without the item that events/api_get_item_missing.json asks for
    event = load_event("api_get_item_missing")
    handler, _ = items_api({"id": "another", "name": "Cup", "price": Decimal(3)})

    # WHEN the API receives GET /items/{id} for it
    response = call_api(
        handler,
        event,
        lambda_context,
        advice="get_item's response has no 'Item' key when nothing matches: check for that and answer 404.",
    )

    # THEN it answers 404 with a JSON body that says what is missing
    assert response.status == 404, (
        f"GET {event['path']} for a missing item answered {response.status}, expected 404.\n"
        f"Body: {response.text():.300}"
    )
    assert isinstance(response.body, dict) and response.body, (
        f"The 404 body is {response.text()!r:.200}; expected a JSON object with a message, "
        'like {"message": "Item no-such-item not found"}.'
    )
    assert "json" in response.headers.get("content-type", ""), (
        f"The 404 has Content-Type {response.headers.get('content-type')!r}; expected application/json."
    )


# --- task 3 ----------------------------------------------------------------------------------------


def assert_created(response, request: str, sent: dict, table_name: str) -> None:
    assert response.status == 201, f"{request} answered {response.status}, expected 201 Created.\nBody: {response.text():.500}"
    body = response.body if isinstance(response.body, dict) else {}
    assert isinstance(body.get("id"), str) and body["id"], (
        f"{request} answered {response.text():.300}; expected the stored item with its new, generated \"id\"."
    )
    stored = {item["id"]: item for item in stored_items(table_name)}
    assert body["id"] in stored, (
        f"{request} answered with id {body['id']!r}, but the table {table_name!r} has no such item "
        f"(it holds {sorted(stored)})."
    )
    item = stored[body["id"]]
    assert item.get("name") == sent["name"] and Decimal(str(item.get("price"))) == Decimal(str(sent["price"])), (
        f"The stored item is {item}; expected name {sent['name']!r} and price {sent['price']} from the request body."
    )
    assert body.get("name") == sent["name"] and Decimal(str(body.get("price"))) == Decimal(str(sent["price"])), (
        f"{request} answered {response.text():.300}; expected the stored item (id, name and price) in the body."
    )


def test_task3_creates_an_item_and_answers_201(items_api, load_event, lambda_context):
    # GIVEN an empty table and a valid POST /items body
    handler, table_name = items_api()
    event = load_event("api_create_item")
    sent = json.loads(event["body"])

    # WHEN the API receives it
    response = call_api(handler, event, lambda_context)

    # THEN it stores the item under a generated id and answers 201 with it
    assert_created(response, "POST /items", sent, table_name)


def test_task3_gives_every_new_item_its_own_id(items_api, load_event, lambda_context):
    # GIVEN an empty table
    handler, table_name = items_api()

    # WHEN the same body is posted twice
    first = call_api(handler, load_event("api_create_item"), lambda_context)
    second = call_api(handler, load_event("api_create_item"), lambda_context)

    # THEN there are two items with two different ids
    created = [r.body.get("id") if isinstance(r.body, dict) else None for r in (first, second)]
    assert created[0] and created[0] != created[1] and len(stored_items(table_name)) == 2, (
        f"Posting the same body twice answered ids {created} and left {len(stored_items(table_name))} item(s) "
        "in the table; expected two items with different generated ids (uuid.uuid4())."
    )


def test_task3_accepts_a_base64_encoded_body(items_api, load_event, lambda_context):
    # GIVEN a POST /items whose body API Gateway delivered base64-encoded (isBase64Encoded: true)
    handler, table_name = items_api()
    event = load_event("api_create_item_base64")
    sent = json.loads(base64.b64decode(event["body"]))

    # WHEN the API receives it
    response = call_api(
        handler,
        event,
        lambda_context,
        advice="The body is base64 (isBase64Encoded: true): app.current_event.decoded_body, or a validated "
        "model parameter, gives you the decoded text.",
    )

    # THEN it is decoded, stored and answered like any other
    assert_created(response, "POST /items with a base64-encoded body", sent, table_name)


def test_task3_answers_400_to_a_body_that_is_not_json_and_stores_nothing(items_api, load_event, lambda_context):
    # GIVEN a POST /items whose body is not valid JSON
    handler, table_name = items_api()
    event = load_event("api_create_item_malformed")

    # WHEN the API receives it
    response = call_api(
        handler,
        event,
        lambda_context,
        advice="A body that does not parse is the client's mistake: answer 400, do not crash (a crash is a 502).",
    )

    # THEN it answers 400 with a JSON error, and the table stays empty
    assert response.status == 400, (
        f"POST /items with the body {event['body']!r} answered {response.status}, expected 400 Bad Request.\n"
        f"Body: {response.text():.300}"
    )
    assert isinstance(response.body, dict), f"The 400 body is {response.text()!r:.200}; expected a JSON object with a message."
    assert stored_items(table_name) == [], f"A malformed request stored {stored_items(table_name)}; it must store nothing."


INVALID_BODIES = {
    "empty name": ('{"name": "", "price": 3}', "name"),
    "missing name": ('{"price": 3}', "name"),
    "name over 100 characters": (json.dumps({"name": "n" * 101, "price": 3}), "name"),
    "negative price": ('{"name": "Cup", "price": -1}', "price"),
    "price that is not a number": ('{"name": "Cup", "price": "cheap"}', "price"),
    "missing price": ('{"name": "Cup"}', "price"),
    "price over 1,000,000": ('{"name": "Cup", "price": 1000000.01}', "price"),
    "price with three decimals": ('{"name": "Cup", "price": 1.005}', "price"),
}


def test_task3_rejects_invalid_fields_naming_the_field_and_stores_nothing(items_api, load_event, lambda_context):
    # GIVEN bodies whose JSON is valid but whose fields are not (see INVALID_BODIES)
    handler, table_name = items_api()
    problems = []

    for case, (body, field) in INVALID_BODIES.items():
        # WHEN the API receives each of them
        response = call_api(handler, with_body(load_event("api_create_item_invalid"), body), lambda_context)

        # THEN it answers 400 or 422 with a message naming the field
        if response.status not in (400, 422):
            problems.append(f"{case}: {body[:60]} answered {response.status}, expected 400 or 422")
        elif field not in response.text():
            problems.append(f"{case}: {body[:60]} answered {response.text()[:120]}, which does not name {field!r}")

    # AND the table stays empty
    stored = stored_items(table_name)
    assert not problems and not stored, (
        "POST /items must refuse invalid fields with 400 or 422 and an error that names the field, so the "
        "client knows what to fix:\n"
        + "\n".join(f"  - {p}" for p in problems)
        + (f"\nInvalid requests stored {len(stored)} item(s): {stored[:3]}; they must store nothing." if stored else "")
    )


# --- task 4 ----------------------------------------------------------------------------------------


WARM_START_LESSON = (
    "A function's module-level code runs once per execution environment (the cold start); the handler "
    "runs on every request (warm starts reuse the environment). A client or resource created in the "
    "handler pays for its set-up, and a new HTTPS connection to DynamoDB, on every request. Create it "
    "once, at the top of app.py, and reuse it."
)


def test_task4_creates_the_table_resource_at_import(monkeypatch, load_handler):
    # GIVEN a spy on everything that creates an AWS client
    table_name = create_table()
    spy = CreationSpy(monkeypatch, APIGatewayRestResolver)

    # WHEN Lambda imports the function (the cold start)
    with spy.counting() as at_import:
        load_handler(FUNCTION, TABLE_NAME=table_name, POWERTOOLS_SERVICE_NAME="items-api")

    # THEN the DynamoDB resource has been created there, once
    clients = [c for c in at_import if c.startswith("AWS client")]
    assert len(clients) == 1, (
        f"Importing {APP} created {len(clients)} AWS clients; expected exactly one (the DynamoDB resource's).\n"
        + ("\n".join(clients) + "\n" if clients else "")
        + WARM_START_LESSON
    )


def test_task4_creates_nothing_inside_the_handler(monkeypatch, items_api, load_event, lambda_context):
    # GIVEN the function, imported, and a spy on everything that creates an AWS client or a resolver
    handler, _ = items_api({"id": "7f3a2c1e-5b4d-4e8f-9a6b-0c1d2e3f4a5b", "name": "Cup", "price": Decimal(3)})
    spy = CreationSpy(monkeypatch, APIGatewayRestResolver)

    # WHEN three requests arrive (three warm invocations)
    with spy.counting() as during_requests:
        for name in ("api_list_items", "api_get_item", "api_create_item"):
            # Other tasks grade the answers; this one only counts what the requests create.
            with contextlib.suppress(Exception):
                handler(load_event(name), lambda_context)

    # THEN nothing was created inside the handler
    assert not during_requests, (
        f"During 3 warm invocations your code created {len(during_requests)} client(s), session(s) or resolver(s):\n"
        + "\n".join(f"  {c}" for c in during_requests[:6])
        + f"\n{WARM_START_LESSON}"
    )


# --- task 5 ----------------------------------------------------------------------------------------

EXPECTED_ROUTES = {("GET", "/items"), ("GET", "/items/{id}"), ("POST", "/items")}


def test_task5_template_routes_the_three_endpoints_to_the_function(lab_dir):
    # GIVEN the lab's template
    sam, cfn = load_both(lab_dir)
    name, properties, _ = function_by_code_uri(sam, cfn, lab_dir, FUNCTION)

    # THEN the function is app.lambda_handler, with one Api event per route
    assert properties.get("Handler") == "app.lambda_handler", (
        f"{name}'s Handler is {properties.get('Handler')!r}; expected app.lambda_handler (app.py, lambda_handler)."
    )
    events = [
        e["Properties"]
        for e in (properties.get("Events") or {}).values()
        if e.get("Type") == "Api" and isinstance(e.get("Properties"), dict)
    ]
    routes = {(str(e.get("Method", "")).upper(), e.get("Path")) for e in events}
    missing = sorted(EXPECTED_ROUTES - routes)
    assert not missing, (
        f"{name} has Api events for {sorted(routes)}; missing {missing}. "
        "Add one event per route under Events (Type: Api, with RestApiId, Path and Method)."
    )
    # AND every route is on the template's API, the one with IAM auth, throttling and the NewItem model
    apis = {n for n, _ in templates.resources_of_type(sam, "AWS::Serverless::Api")}
    elsewhere = sorted(
        f"{str(e.get('Method', '')).upper()} {e.get('Path')}"
        for e in events
        if not templates.references(e.get("RestApiId")) & apis
    )
    assert not elsewhere, (
        f"{name}'s routes {elsewhere} name no API of the template (RestApiId). SAM puts such routes on a "
        "second API that it creates for them, open to anyone: without the IAM auth, throttling and body "
        "validation of ItemsApi. Add RestApiId: !Ref ItemsApi to each event."
    )


def test_task5_template_passes_the_table_name_in_TABLE_NAME(lab_dir):
    # GIVEN the lab's template, as AWS deploys it
    sam, cfn = load_both(lab_dir)
    name, _, function = function_by_code_uri(sam, cfn, lab_dir, FUNCTION)
    tables = {n for n, _ in templates.resources_of_type(cfn, "AWS::DynamoDB::Table")}

    # THEN TABLE_NAME is a reference to the template's table
    variable = ((function.get("Environment") or {}).get("Variables") or {}).get("TABLE_NAME")
    assert isinstance(variable, dict) and variable.get("Ref") in tables, (
        f"{name}'s TABLE_NAME is {variable!r}; expected !Ref to the template's table ({', '.join(sorted(tables))}), "
        "so that the name CloudFormation generates reaches the code, in every stage and account."
    )


def test_task5_template_grants_access_to_this_table_only(lab_dir):
    # GIVEN the role the function runs with, as AWS deploys it
    sam, cfn = load_both(lab_dir)
    name, _, function = function_by_code_uri(sam, cfn, lab_dir, FUNCTION)
    role = role_of(cfn, function)
    tables = {n for n, _ in templates.resources_of_type(cfn, "AWS::DynamoDB::Table")}

    # THEN no managed policy beyond logging (SAM always attaches AWSLambdaBasicExecutionRole) ...
    managed = [arn for arn in role.get("ManagedPolicyArns", []) if "AWSLambdaBasicExecutionRole" not in json.dumps(arn)]
    assert not managed, (
        f"{name}'s role has the managed policies {managed}. Broad managed policies such as "
        "AmazonDynamoDBFullAccess reach every table in the account; use a SAM policy template "
        "(DynamoDBCrudPolicy with TableName: !Ref ...) scoped to this table."
    )
    # ... enough to do the job ...
    statements = policy_statements(role)
    granted = {action for statement in statements for action in actions(statement)}
    assert {"dynamodb:Scan", "dynamodb:GetItem", "dynamodb:PutItem"} <= granted, (
        f"{name} may call {sorted(granted) or 'nothing'} on DynamoDB; it needs at least Scan, GetItem and PutItem "
        "on its table. Add a SAM policy template: Policies: [DynamoDBCrudPolicy: {TableName: !Ref ItemsTable}]."
    )
    # ... and on this table only
    too_broad = [s for s in statements if s.get("Resource") == "*" or not (templates.references(s.get("Resource")) & tables)]
    assert not too_broad and not {"*", "dynamodb:*"} & granted, (
        f"{name}'s policy reaches beyond its table: {json.dumps(too_broad or sorted(granted))[:400]}. "
        "Scope every statement to the table with !Ref (SAM's DynamoDBCrudPolicy does this for you)."
    )


def test_task5_template_runs_on_arm64_with_a_current_python_runtime(lab_dir):
    # GIVEN the function as AWS deploys it (Globals applied)
    sam, cfn = load_both(lab_dir)
    name, _, function = function_by_code_uri(sam, cfn, lab_dir, FUNCTION)

    # THEN it runs on Graviton, with a runtime Lambda supports for at least another year
    assert function.get("Architectures") == ["arm64"], (
        f"{name} runs on {function.get('Architectures') or ['x86_64 (the default)']}; expected [arm64]: "
        "Graviton costs about 20% less per GB-second and is as fast or faster for code like this."
    )
    problem = runtimes.problem_with(function.get("Runtime"))
    assert problem is None, (
        f"{name}: {problem}. Choose a runtime that stays supported for more than a year "
        "(Globals.Function.Runtime), such as python3.13."
    )


def test_task5_template_takes_powertools_from_its_public_layer(lab_dir):
    # GIVEN the function as AWS deploys it
    sam, cfn = load_both(lab_dir)
    name, _, function = function_by_code_uri(sam, cfn, lab_dir, FUNCTION)

    # THEN Powertools comes from the public layer built for its runtime and architecture ...
    layers = [layer.get("Fn::Sub") if isinstance(layer, dict) else layer for layer in function.get("Layers", [])]
    matches = [m for m in (POWERTOOLS_LAYER.match(str(layer)) for layer in layers) if m]
    assert matches, (
        f"{name} has the layers {layers or 'none'}; expected the public Powertools layer, "
        "!Sub arn:aws:lambda:${AWS::Region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:<version>."
    )
    runtime = str(function.get("Runtime", "")).replace(".", "")
    architecture = (function.get("Architectures") or ["x86_64"])[0]
    layer = matches[0]
    assert (layer["python"], layer["arch"]) == (runtime, architecture), (
        f"{name} runs {function.get('Runtime')} on {architecture}, but its Powertools layer is built for "
        f"{layer['python']} on {layer['arch']}: pick the layer that matches the runtime and architecture."
    )
    # ... and neither it nor boto3 is bundled in the package
    requirements = (lab_dir / FUNCTION / "requirements.txt").read_text(encoding="utf-8").lower()
    bundled = [p for p in ("boto3", "botocore", "aws-lambda-powertools", "pydantic") if re.search(rf"^\s*{p}\b", requirements, re.M)]
    assert not bundled, (
        f"{FUNCTION}/requirements.txt bundles {bundled}: boto3 comes with the runtime and Powertools (with "
        "pydantic) with its layer. Bundling them makes the package tens of MB larger and the cold start slower."
    )
