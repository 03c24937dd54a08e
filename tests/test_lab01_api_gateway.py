"""Grader for lab 1: API Gateway + Lambda + DynamoDB, initialising clients outside the handler.

Each test_taskN_* checks task N of docs/labs/lab01_api_gateway.md. A failure tells you what the grader
sent, what came back, what it expected and where to look. PYTEST_DONT_REWRITE: the messages below are
shown to you exactly as written.

Rules and the checks that enforce them (the rules of the lab's page and of each TODO(task N)):

| Task | Rule | Check |
| --- | --- | --- |
| 1 | GET /items answers 200 with {"items": [...]}, the items of the table named by TABLE_NAME | test_task1_lists_the_items_of_the_table_named_by_TABLE_NAME |
| 1 | TABLE_NAME is read once, at import: without it the cold start fails, naming it | test_task1_fails_at_start_naming_a_missing_TABLE_NAME |
| 1 | every item, past the first 1 MB page (LastEvaluatedKey) | test_task1_lists_items_beyond_the_first_page |
| 2 | GET /items/{id} answers 200 with the item | test_task2_returns_the_requested_item |
| 2 | a missing item gets 404, a JSON body with a "message", never a 500 | test_task2_answers_404_with_a_json_error_for_a_missing_item |
| 3 | POST /items stores the item under a generated id and answers 201 with it | test_task3_creates_an_item_and_answers_201 |
| 3 | every new item gets its own id | test_task3_gives_every_new_item_its_own_id |
| 3 | a base64-encoded body works like any other | test_task3_accepts_a_base64_encoded_body |
| 3 | a body that is not JSON gets 400, a JSON error with a "message", and nothing is stored | test_task3_answers_400_to_a_body_that_is_not_json_and_stores_nothing |
| 3 | ... a form, text/plain, broken base64, bytes that are not UTF-8 too: 400, never a crash | test_task3_answers_400_to_a_body_it_cannot_read_as_json_and_stores_nothing |
| 3 | invalid fields (name empty, only spaces, missing or over 100 characters; price negative, not a number, missing, over 1,000,000 or with three decimals; an unknown field; a body without Content-Type is JSON) get 400/422 with a "message", naming the field; nothing is stored | test_task3_rejects_invalid_fields_naming_the_field_and_stores_nothing |
| 3 | the limits are valid: a 1- and a 100-character name, a price of 0, of 1,000,000, of 0.01 | test_task3_accepts_the_values_at_the_limits |
| 3 | each new item's id is logged, on a line with the request id (correlation_id) | test_task3_logs_the_new_items_id_with_the_request_id |
| 3 | put_item never overwrites an item (ConditionExpression) | not graded: no id collision happens with uuid4 (said on the page) |
| 4 | exactly one AWS client (the DynamoDB resource's) is created at import | test_task4_creates_the_table_resource_at_import |
| 4 | nothing (client, session, resolver) is created while requests are handled | test_task4_creates_nothing_inside_the_handler |
| 5 | one Api event per route, each on the template's API (RestApiId) | test_task5_template_routes_the_three_endpoints_to_the_function |
| 5 | TABLE_NAME is !Ref to the table | test_task5_template_passes_the_table_name_in_TABLE_NAME |
| 5 | read and write this table only, through a SAM policy template, no managed policy | test_task5_template_grants_access_to_this_table_only |
| 5 | arm64 and a runtime supported for more than a year | test_task5_template_runs_on_arm64_with_a_current_python_runtime |
| 5 | Powertools from its public layer matching runtime and architecture; nothing bundled | test_task5_template_takes_powertools_from_its_public_layer |
| 5 | POST /items' own throttling and RequestModel | not graded (the page says why: the API stays signed-only and throttled without them) |
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import uuid
from decimal import Decimal

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from workshop import runtimes, templates
from workshop.grading.aws import resource
from workshop.grading.feedback import call_api
from workshop.grading.logs import json_lines
from workshop.grading.spies import CreationSpy
from workshop.grading.template_checks import (
    POWERTOOLS_LAYER,
    actions,
    deployed_elsewhere,
    function_by_code_uri,
    grants_of,
    load_both,
    policy_statements,
    resource_arn,
    role_of,
)

FUNCTION = "items_api"
APP = f"{FUNCTION}/app.py"


# --- helpers ---------------------------------------------------------------------------------------


def create_table(*items: dict) -> str:
    """A fresh table with a random name (so no hard-coded name can match), holding `items`."""
    name = f"items-{uuid.uuid4().hex[:8]}"
    table = resource("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for item in items:
        table.put_item(Item=item)
    return name


def stored_items(table_name: str) -> list[dict]:
    return resource("dynamodb").Table(table_name).scan()["Items"]


def ids(items: object) -> list[str]:
    return sorted(str(item.get("id")) for item in items) if isinstance(items, list) else []


def with_body(event: dict, body: str) -> dict:
    return {**event, "body": body, "isBase64Encoded": False}


def with_content_type(event: dict, content_type: str | None) -> dict:
    """`event` with its Content-Type header replaced (None: without one, as API Gateway sends a bare curl -d)."""
    def replaced(headers: dict | None, value: object) -> dict:
        kept = {k: v for k, v in (headers or {}).items() if k.lower() != "content-type"}
        return kept if content_type is None else {**kept, "Content-Type": value}

    return {
        **event,
        "headers": replaced(event.get("headers"), content_type),
        "multiValueHeaders": replaced(event.get("multiValueHeaders"), [content_type]),
    }


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


def test_task1_fails_at_start_naming_a_missing_TABLE_NAME(load_handler, monkeypatch):
    # GIVEN the function's environment without TABLE_NAME (a template that forgot it)
    monkeypatch.delenv("TABLE_NAME", raising=False)

    # WHEN Lambda imports the function (a cold start)
    try:
        load_handler(FUNCTION, POWERTOOLS_SERVICE_NAME="items-api")
    except Exception as error:  # the learner's import failing is what this test wants
        # THEN the import fails, and the error names the variable
        assert "TABLE_NAME" in str(error), (
            f"Without TABLE_NAME, importing {APP} failed with {type(error).__name__}: {error}, which does not "
            'name TABLE_NAME. Read it with os.environ["TABLE_NAME"] at the top of app.py: the KeyError names it.'
        )
    else:
        raise AssertionError(
            f"Without TABLE_NAME, importing {APP} succeeded: the function would start, then fail (or use a "
            'made-up table) on its first request. Read the name once, at import, with os.environ["TABLE_NAME"]: '
            "a missing variable then stops the cold start with KeyError: 'TABLE_NAME'."
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
    assert has_message(response.body), (
        f"The 404 body is {response.text()!r:.200}; expected a JSON object whose \"message\" says what is "
        'missing, like {"message": "Item no-such-item not found"}.'
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
    assert has_message(response.body), (
        f"The 400 body is {response.text()!r:.200}; expected a JSON object whose \"message\" says what is wrong, "
        'like {"message": "The request body is not valid JSON."} (the 404 of task 2 has the same shape).'
    )
    assert stored_items(table_name) == [], f"A malformed request stored {stored_items(table_name)}; it must store nothing."


def has_message(body: object) -> bool:
    return isinstance(body, dict) and isinstance(body.get("message"), str) and bool(body["message"].strip())


UNREADABLE_BODIES = {
    # case: (Content-Type, body, isBase64Encoded)
    "a form instead of JSON": ("application/x-www-form-urlencoded", "name=Cup&price=3", False),
    "JSON text sent as text/plain": ("text/plain", '{"name": "Cup", "price": 3}', False),
    "base64 that is not base64": ("application/json", "***not base64***", True),
    "base64 of text that is not UTF-8": (
        "application/json",
        base64.b64encode('{"name": "Caf\u00e9", "price": 3}'.encode("latin-1")).decode(),
        True,
    ),
}


def test_task3_answers_400_to_a_body_it_cannot_read_as_json_and_stores_nothing(items_api, load_event, lambda_context):
    # GIVEN an empty table
    handler, table_name = items_api()
    problems = []

    for case, (content_type, body, encoded) in UNREADABLE_BODIES.items():
        # WHEN the API receives a body that is not JSON at all: a form, or bytes that do not decode
        event = with_content_type({**load_event("api_create_item"), "body": body, "isBase64Encoded": encoded}, content_type)
        try:
            response = call_api(handler, event, lambda_context)
        except AssertionError as error:  # the learner's code raised: a 502 for the client
            problems.append(f"{case} (Content-Type {content_type}, body {body[:40]!r}): {str(error).splitlines()[0][:200]}")
            continue

        # THEN it answers 400 with a JSON error that has a message
        if response.status != 400 or not has_message(response.body):
            problems.append(
                f"{case} (Content-Type {content_type}, body {body[:40]!r}): answered {response.status} "
                f"{response.text()[:160]}"
            )

    # AND the table stays empty
    stored = stored_items(table_name)
    assert not problems and not stored, (
        "POST /items takes JSON; any other body is the client's mistake, answered 400 with a JSON "
        '{"message": ...}, never a crash (a 502) nor a stored item:\n'
        + "\n".join(f"  - {p}" for p in problems)
        + (f"\nThese requests stored {len(stored)} item(s): {stored[:3]}." if stored else "")
        + "\nPowertools raises ValueError while decoding a body it cannot read (broken base64, bytes that are "
        "not UTF-8), RequestUnsupportedContentType (aws_lambda_powertools.event_handler.openapi.exceptions) for a "
        "Content-Type it does not parse, and reads a form as fields: register "
        "@app.exception_handler([ValueError, RequestUnsupportedContentType]) answering 400, and in your "
        "RequestValidationError handler answer 400 when the Content-Type is neither missing nor "
        "application/json (app.current_event.headers.get(\"content-type\"))."
    )


INVALID_BODIES = {
    "empty name": ('{"name": "", "price": 3}', "name"),
    "name of spaces only": ('{"name": "   ", "price": 3}', "name"),
    "missing name": ('{"price": 3}', "name"),
    "name over 100 characters": (json.dumps({"name": "n" * 101, "price": 3}), "name"),
    "negative price": ('{"name": "Cup", "price": -1}', "price"),
    "price that is not a number": ('{"name": "Cup", "price": "cheap"}', "price"),
    "missing price": ('{"name": "Cup"}', "price"),
    "price over 1,000,000": ('{"name": "Cup", "price": 1000000.01}', "price"),
    "price with three decimals": ('{"name": "Cup", "price": 1.005}', "price"),
    "unknown field": ('{"name": "Cup", "price": 3, "colour": "red"}', "colour"),
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
        elif not has_message(response.body):
            problems.append(f"{case}: {body[:60]} answered {response.text()[:120]}, a body without a \"message\"")

    # AND a body without a Content-Type header (API Gateway's default) is still read as JSON
    event = with_content_type(with_body(load_event("api_create_item_invalid"), '{"name": "", "price": 3}'), None)
    response = call_api(handler, event, lambda_context)
    if response.status not in (400, 422) or "name" not in response.text():
        problems.append(
            f'empty name, sent without a Content-Type header: answered {response.status} {response.text()[:120]}, '
            "expected 400 or 422 naming 'name' (without a Content-Type, the body is JSON)"
        )

    # AND the table stays empty
    stored = stored_items(table_name)
    assert not problems and not stored, (
        "POST /items must refuse invalid fields with 400 or 422 and a JSON error, with a \"message\", that "
        "names the field, so the client knows what to fix (an unknown field too: ConfigDict(extra=\"forbid\"); "
        "a name of spaces only too: ConfigDict(str_strip_whitespace=True) with min_length=1):\n"
        + "\n".join(f"  - {p}" for p in problems)
        + (f"\nInvalid requests stored {len(stored)} item(s): {stored[:3]}; they must store nothing." if stored else "")
    )


BOUNDARY_BODIES = {
    "a name of 1 character": {"name": "A", "price": 3},
    "a name of 100 characters": {"name": "n" * 100, "price": 3},
    "a price of 0": {"name": "Free sample", "price": 0},
    "a price of exactly 1,000,000": {"name": "Gold cup", "price": 1000000},
    "a price with two decimals": {"name": "Sugar", "price": 0.01},
}


def test_task3_accepts_the_values_at_the_limits(items_api, load_event, lambda_context):
    # GIVEN an empty table
    handler, table_name = items_api()
    problems = []

    for case, sent in BOUNDARY_BODIES.items():
        # WHEN the API receives a body at the edge of what is valid
        response = call_api(handler, with_body(load_event("api_create_item"), json.dumps(sent)), lambda_context)

        # THEN it is created like any other
        if response.status != 201:
            problems.append(f"{case}: {json.dumps(sent)[:60]} answered {response.status} {response.text()[:160]}")

    assert not problems, (
        "POST /items must accept every body within the rules (a name of 1 to 100 characters, a price from 0 to "
        "1,000,000 with at most two decimals), the limits included:\n"
        + "\n".join(f"  - {p}" for p in problems)
        + "\nCheck the bounds of your model: min_length=1 and max_length=100, ge=0 (not gt) and le=1_000_000, "
        "decimal_places=2."
    )


def test_task3_logs_the_new_items_id_with_the_request_id(items_api, load_event, lambda_context, capsys):
    # GIVEN an empty table and a valid POST /items, whose request id API Gateway put in requestContext
    handler, _ = items_api()
    event = load_event("api_create_item")
    request_id = event["requestContext"]["requestId"]
    capsys.readouterr()

    # WHEN the API receives it
    response = call_api(handler, event, lambda_context)

    # THEN the function logged the new item's id, on a line that carries the request id
    created = response.body.get("id") if isinstance(response.body, dict) else None
    assert response.status == 201 and created, (
        f"POST /items answered {response.status} {response.text():.200}; this check needs the item created "
        "(see the other task 3 checks first)."
    )
    lines, _ = json_lines(capsys.readouterr().out)
    naming = [line for line in lines if created in json.dumps(line)]
    assert naming, (
        f"POST /items created the item {created!r}, but no log line names it (the function logged "
        f"{len(lines)} JSON line(s): {json.dumps(lines)[:300]}).\nLog each new item's id with the module's "
        'Powertools Logger, e.g. logger.info("Item created", extra={"item_id": item["id"]}): it is how an '
        "operator finds what a request did."
    )
    assert any(line.get("correlation_id") == request_id for line in naming), (
        f"The log line {json.dumps(naming[0])[:400]} names the new item, but has no correlation_id "
        f"{request_id!r} (the requestContext.requestId of the request). Keep the starter's "
        "@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST) on lambda_handler: "
        "it adds the request id to every line, so a request's lines can be found in CloudWatch."
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
    # ... on the ARN AWS will check: the table's own (a name where an ARN belongs, or an ARN where a
    # name belongs, deploys as an ARN that matches no table) ...
    variable = ((function.get("Environment") or {}).get("Variables") or {}).get("TABLE_NAME")
    table = min(templates.references(variable) & tables or tables or {None}, key=str)
    arn = resource_arn(cfn, table) if table else None
    grants = grants_of(cfn, role)
    refused = [action for action in ("dynamodb:Scan", "dynamodb:GetItem", "dynamodb:PutItem")
               if arn is None or not any(grant.allows(action, arn) for grant in grants)]
    assert not refused, (
        f"{name} may not call {', '.join(refused)} on {table or 'a table (the template has none)'}"
        + (f" ({arn}, the ARN AWS will check; the account and stack are the grader's stand-ins)" if arn else "")
        + f". {deployed_elsewhere(grants, table, arn) if arn else ''} DynamoDBCrudPolicy takes the table's name: "
        "TableName: !Ref ItemsTable (a table's !Ref is its name; !GetAtt ItemsTable.Arn is its ARN)."
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
