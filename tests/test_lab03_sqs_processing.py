"""Grader for lab 3: SQS queue processing, error handling with Powertools.

Each test_taskN_* checks task N of docs/labs/lab03_sqs_processing.md. A failure tells you what the grader
sent, what came back, what it expected and where to look. PYTEST_DONT_REWRITE: the messages below are
shown to you exactly as written.

Rules and the checks that enforce them (the page's tasks and the TODO(task N) of the starter):

| Rule | Check |
| --- | --- |
| 1: each valid order is written under its order_id, with its customer, its items and its total | test_task1_writes_each_valid_order_with_its_exact_total |
| 1: the total is Decimal, quantity x unit_price added up exactly and quantized to the cent | test_task1_writes_each_valid_order_with_its_exact_total |
| 2: batchItemFailures names exactly the poison messages of sqs_orders_mixed.json | test_task2_reports_exactly_the_poison_messages_of_a_batch |
| 2: every valid order of a batch is written, after the poison ones too; no poison one is | test_task2_writes_every_valid_order_of_a_batch_with_poison_messages |
| 2: each row of the page's table of poison messages is refused; a short but valid order is not | test_task2_rejects_every_kind_of_invalid_order |
| 2: a message whose write fails (throttled, denied) is reported, not swallowed; the others are not | test_task2_reports_a_message_whose_write_fails |
| 2: the BatchProcessor is created once, at module level | test_task2_creates_the_batch_processor_once_per_cold_start |
| 3: each failure logs a JSON ERROR line with the exception, function_name and the message id as correlation_id | test_task3_logs_each_failure_as_json_with_the_context_and_the_message_id |
| 3: the failure still reaches Lambda after it is logged (raised again, or reported) | test_task3_logs_each_failure_as_json_with_the_context_and_the_message_id |
| 3: lambda_handler is traced with capture_lambda_handler, the record's processing with capture_method | test_task3_traces_the_handler_and_the_processing_of_each_record |
| 4: an order sent twice in one batch is written once, with its first total, and is not a failure | test_task4_writes_an_order_sent_twice_in_one_batch_once |
| 4: a message delivered again changes nothing and is not a failure | test_task4_keeps_the_first_write_when_a_message_comes_back |
| 5: ReportBatchItemFailures, BatchSize 2 to 10,000, MaximumBatchingWindowInSeconds 1 to 300 | test_task5_reports_batch_item_failures_from_batches_of_a_sensible_size |
| 5: the SQS event polls the queue by its ARN (resolved: not its URL) | test_task5_reports_batch_item_failures_from_batches_of_a_sensible_size |
| 5: a RedrivePolicy to another queue of the template, by its ARN (resolved: not its URL), maxReceiveCount 2 to 5 | test_task5_redrives_failing_messages_to_a_dead_letter_queue |
| 5: VisibilityTimeout at least six times the function's Timeout | test_task5_queue_visibility_timeout_is_six_function_timeouts |
| 5: no function-level dead-letter queue | test_task5_has_no_function_level_dead_letter_queue |
| 5: SQSPollerPolicy and DynamoDBWritePolicy on this queue and this table only | test_task5_grants_this_queue_and_this_table_only |
| 5: the role allows PutItem (and polling, with a Role of its own) on the ARNs AWS resolves, not on a URL or an ARN given as a name | test_task5_grants_this_queue_and_this_table_only |
| 5: least privilege: no `*` resource, no other queue or table, no action beyond SQSPollerPolicy's and DynamoDBWritePolicy's (and GetItem) | test_task5_grants_this_queue_and_this_table_only |
| 5: TABLE_NAME is !Ref to the table; arm64, a current runtime, the Powertools layer | test_task5_keeps_lab_1s_settings_table_name_arm64_current_runtime_powertools_layer |
| 6: every message ends in the table (valid, with its total) or in the dead-letter queue (poison) | test_task6_every_message_ends_in_the_table_or_the_dead_letter_queue |

Not checked offline, and named so on the page: the wait of a real visibility timeout, Lambda's throttling
below MaximumConcurrency, the traces in X-Ray.
"""

from __future__ import annotations

import contextlib
import functools
import json
import uuid
from collections import Counter
from decimal import Decimal

import botocore.client
import pytest
from aws_lambda_powertools import Tracer
from aws_lambda_powertools.utilities.batch.base import BasePartialBatchProcessor
from aws_lambda_powertools.utilities.batch.exceptions import BaseBatchProcessingError

from workshop import templates
from workshop.grading import sqs_delivery
from workshop.grading.aws import client, resource
from workshop.grading.feedback import LearnerCodeError, learner_code
from workshop.grading.logs import json_lines
from workshop.grading.template_checks import (
    UnresolvedValue,
    actions_on,
    assert_keeps_lab_1_settings,
    beyond,
    deployed_elsewhere,
    function_by_code_uri,
    grants_of,
    load_both,
    resolve_value,
    resource_arn,
    role_of,
)

FUNCTION = "order_worker"
APP = f"{FUNCTION}/app.py"
CENT = Decimal("0.01")
# Managed policies SAM attaches by itself to a function with an SQS event; only your own Role avoids them.
SAM_MANAGED_POLICIES = ("AWSLambdaBasicExecutionRole", "AWSLambdaSQSQueueExecutionRole")


# --- helpers ---------------------------------------------------------------------------------------


def create_table() -> str:
    """A fresh orders table with a random name (so no hard-coded name can match)."""
    name = f"orders-{uuid.uuid4().hex[:8]}"
    resource("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def stored_orders(table_name: str) -> dict[str, dict]:
    items = resource("dynamodb").Table(table_name).scan()["Items"]
    return {str(item.get("order_id")): item for item in items}


def problem_with(body: str) -> str | None:
    """Why a message body is not a valid order (the grader's own reference), or None when it is one."""
    try:
        order = json.loads(body, parse_float=Decimal)
    except json.JSONDecodeError:
        return "not valid JSON"
    if not isinstance(order, dict):
        return "JSON, but not an object"
    missing = [key for key in ("order_id", "customer", "items") if not order.get(key)]
    if missing:
        return f"no {' and no '.join(missing)}"
    if not all(isinstance(order[key], str) for key in ("order_id", "customer")) or not isinstance(order["items"], list):
        return "order_id, customer or items of the wrong type"
    for item in order["items"]:
        if not isinstance(item, dict) or not item.get("sku") or not isinstance(item.get("sku"), str):
            return "an item without sku"
        price = item.get("unit_price")
        if isinstance(price, bool) or not isinstance(price, (int, Decimal)):
            return f"unit_price {price}"
        if price < 0 or Decimal(price) != Decimal(price).quantize(CENT):
            return f"unit_price {price}"
        quantity = item.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            return f"quantity {quantity}"
    return None


def expected_total(body: str) -> Decimal:
    order = json.loads(body, parse_float=Decimal)
    return sum((Decimal(i["quantity"]) * i["unit_price"] for i in order["items"]), Decimal(0)).quantize(CENT)


def arithmetic(body: str) -> str:
    items = json.loads(body, parse_float=Decimal)["items"]
    return " + ".join(f"{i['quantity']} x {i['unit_price']}" for i in items)


def order_id(record: dict) -> str:
    return json.loads(record["body"])["order_id"]


def claimed_order_id(body: str) -> str | None:
    """The order_id a body carries, valid or not (None when it is not JSON or has none)."""
    with contextlib.suppress(ValueError, AttributeError):
        return json.loads(body).get("order_id")
    return None


def label(record: dict) -> str:
    """A record as the learner can find it in the event file."""
    return f"message {record['messageId'][:8]}... ({problem_with(record['body']) or order_id(record)})"


def with_body(record: dict, body: object) -> dict:
    """A copy of `record` carrying `body` (JSON-encoded unless a string), under a message id of its own."""
    text = body if isinstance(body, str) else json.dumps(body)
    return {**record, "messageId": str(uuid.uuid4()), "body": text}


def reported_failures(response: object, event: dict) -> list[str]:
    """The message ids a response names in batchItemFailures; an AssertionError when its shape is wrong."""
    if response is None or response == {}:
        return []
    sent = [record["messageId"] for record in event["Records"]]
    failures = response.get("batchItemFailures", []) if isinstance(response, dict) else None
    if failures is None and isinstance(response, dict):
        return []  # Lambda reads a null list as "nothing failed"
    shape_ok = isinstance(failures, list) and all(isinstance(f, dict) and "itemIdentifier" in f for f in failures)
    assert shape_ok, (
        f"Your lambda_handler returned {response!r:.300}; Lambda expects "
        '{"batchItemFailures": [{"itemIdentifier": "<messageId>"}, ...]} (process_partial_response builds it). '
        "Lambda treats any other shape as a failure of the whole batch."
    )
    unknown = [f["itemIdentifier"] for f in failures if f["itemIdentifier"] not in sent]
    assert not unknown, (
        f"batchItemFailures names {unknown}, which are not message ids of the batch ({sent}). "
        "Lambda then fails the whole batch: use each record's messageId."
    )
    return [f["itemIdentifier"] for f in failures]


def change_first_quantity(record: dict, quantity: int) -> dict:
    order = json.loads(record["body"])
    order["items"][0]["quantity"] = quantity
    return {**record, "body": json.dumps(order)}


def invoke(handler, event: dict, context, what: str, advice: str = ""):
    with learner_code(f"Your lambda_handler, given {what},", advice):
        return handler(event, context)


@pytest.fixture
def order_worker(load_handler):
    """load(): a fresh orders table, then the learner's handler bound to it; returns both."""

    def load():
        table_name = create_table()
        # A service name of its own per cold start: each gets a fresh Powertools logger, as in a new sandbox.
        handler = load_handler(
            FUNCTION, TABLE_NAME=table_name, POWERTOOLS_SERVICE_NAME=f"order-worker-{uuid.uuid4().hex[:8]}"
        )
        return handler, table_name

    return load


# --- task 1 ----------------------------------------------------------------------------------------


def test_task1_writes_each_valid_order_with_its_exact_total(order_worker, load_event, lambda_context):
    # GIVEN a batch of three valid orders (events/sqs_orders_valid.json) and an empty table
    handler, table_name = order_worker()
    event = load_event("sqs_orders_valid")

    # WHEN the function receives it
    invoke(
        handler,
        event,
        lambda_context,
        "events/sqs_orders_valid.json (three valid orders)",
        advice="Parse the body so that prices are Decimal (json.loads(body, parse_float=Decimal), or a pydantic "
        "model with Decimal fields), and compute the total in Decimal too.",
    )

    # THEN each order is in the table, with its fields and its total, exact to the cent
    stored = stored_orders(table_name)
    for record in event["Records"]:
        sent = json.loads(record["body"], parse_float=Decimal)
        item = stored.get(sent["order_id"])
        assert item is not None, (
            f"The table has no order {sent['order_id']!r} after the batch (it holds {sorted(stored)}). "
            "Write each order under its order_id, the table's key."
        )
        assert item.get("customer") == sent["customer"] and len(item.get("items") or []) == len(sent["items"]), (
            f"Order {sent['order_id']} is stored as {item}; expected its customer {sent['customer']!r} "
            f"and its {len(sent['items'])} items, as the message carried them."
        )
        total, expected = item.get("total"), expected_total(record["body"])
        assert isinstance(total, Decimal), (
            f"Order {sent['order_id']} is stored with total {total!r}; expected the number {expected} "
            "(a Decimal in Python, a number in DynamoDB), not a string."
        )
        assert total == expected, (
            f"Order {sent['order_id']} is stored with total {total}; expected exactly {expected} "
            f"({arithmetic(record['body'])}). In float, 3 x 0.10 + 0.20 is 0.5000000000000001: add up "
            "quantity x unit_price in Decimal, and quantize the total to cents."
        )


# --- task 2 ----------------------------------------------------------------------------------------

WHOLE_BATCH_LESSON = (
    "One bad message made the whole invocation fail, so Lambda returns every message of the batch to the "
    "queue, the good ones too, and the bad one brings them back again and again. Let a BatchProcessor call "
    "your code once per record and answer with process_partial_response(...)."
)


def poison_and_valid(event: dict) -> tuple[list[dict], list[dict]]:
    records = event["Records"]
    return [r for r in records if problem_with(r["body"])], [r for r in records if not problem_with(r["body"])]


def test_task2_reports_exactly_the_poison_messages_of_a_batch(order_worker, load_event, lambda_context):
    # GIVEN a batch of five messages, three of them poison (not JSON, no items, a negative quantity)
    handler, _ = order_worker()
    event = load_event("sqs_orders_mixed")
    poison, valid = poison_and_valid(event)

    # WHEN the function receives it
    response = invoke(
        handler, event, lambda_context, "events/sqs_orders_mixed.json (2 valid orders, 3 poison messages)",
        advice=WHOLE_BATCH_LESSON,
    )

    # THEN it answers with batchItemFailures naming exactly the poison messages
    failed = reported_failures(response, event)
    missing = [label(r) for r in poison if r["messageId"] not in failed]
    assert not missing, (
        f"Your lambda_handler returned {response!r:.300}; it does not report {missing} as failed.\n"
        "A message reported as processed is deleted from the queue: a failure nobody reports is lost. "
        "Raise from the record handler for every message you cannot process (missing fields and a quantity "
        "below 1 included: validate the order), and return process_partial_response(...)."
    )
    wrongly = [label(r) for r in valid if r["messageId"] in failed]
    assert not wrongly, (
        f"Your lambda_handler reports the valid {wrongly} as failed too; only the poison messages should "
        "come back. If task 1 still fails, start there (floats make every write fail)."
    )


def test_task2_writes_every_valid_order_of_a_batch_with_poison_messages(order_worker, load_event, lambda_context):
    # GIVEN the same batch of 2 valid orders and 3 poison messages, and an empty table
    handler, table_name = order_worker()
    event = load_event("sqs_orders_mixed")
    poison, valid = poison_and_valid(event)

    # WHEN the function receives it
    invoke(handler, event, lambda_context, "events/sqs_orders_mixed.json", advice=WHOLE_BATCH_LESSON)

    # THEN the valid orders are written, whatever their position in the batch, and nothing poison is
    stored = stored_orders(table_name)
    unwritten = [order_id(r) for r in valid if order_id(r) not in stored]
    assert not unwritten, (
        f"After the batch the table holds {sorted(stored)}; the valid orders {unwritten} are missing. "
        "Every valid message must be written, before and after the poison ones."
    )
    written = [label(r) for r in poison if claimed_order_id(r["body"]) in stored]
    assert not written, (
        f"The table holds orders from the poison {written}; an invalid order must not be stored. "
        "Validate every order (fields present, quantity at least 1) before writing it."
    )



def invalid_orders(valid: dict) -> list[tuple[str, object]]:
    """One copy of a valid order per rule of the page's table, each breaking that rule alone."""

    def changed(change) -> dict:
        order = json.loads(json.dumps(valid))
        change(order)
        return order

    def item(**fields) -> dict:
        return changed(lambda order: order["items"][0].update(fields))

    def without_item_field(name: str) -> dict:
        return changed(lambda order: order["items"][0].pop(name))

    return [
        ("a JSON list, not an object", [valid]),
        ("no order_id", changed(lambda order: order.pop("order_id"))),
        ("an empty order_id", changed(lambda order: order.update(order_id=""))),
        ("no customer", changed(lambda order: order.pop("customer"))),
        ("an empty customer", changed(lambda order: order.update(customer=""))),
        ("no items", changed(lambda order: order.pop("items"))),
        ("an empty list of items", changed(lambda order: order.update(items=[]))),
        ("an item without sku", without_item_field("sku")),
        ("an item with an empty sku", item(sku="")),
        ("an item without quantity", without_item_field("quantity")),
        ("quantity 0", item(quantity=0)),
        ("quantity 1.5, not a whole number", item(quantity=1.5)),
        ("an item without unit_price", without_item_field("unit_price")),
        ("unit_price -0.10", item(unit_price=-0.10)),
        ('unit_price "cheap", not a number', item(unit_price="cheap")),
        ("unit_price 0.105, a fraction of a cent", item(unit_price=0.105)),
    ]


def test_task2_rejects_every_kind_of_invalid_order(order_worker, load_event, lambda_context):
    # GIVEN one batch holding, for each rule of the page's table, a copy of a valid order that breaks that rule
    # alone (each under an order_id of its own), then the valid order itself, and an empty table. The valid order
    # is short but valid: one-character ids and sku, and a free item (unit_price 0)
    handler, table_name = order_worker()
    template = load_event("sqs_orders_valid")["Records"][0]
    valid = {**json.loads(template["body"]), "order_id": "7", "customer": "c"}
    valid["items"] = [*valid["items"], {"sku": "X", "quantity": 1, "unit_price": 0}]
    records, rules = [], {}
    for number, (rule, body) in enumerate(invalid_orders(valid), start=1):
        if isinstance(body, dict) and body.get("order_id"):
            body["order_id"] = f"{valid['order_id']}-invalid-{number}"
        record = with_body(template, body)
        records.append(record)
        rules[record["messageId"]] = rule
    good = with_body(template, valid)
    event = {"Records": [*records, good]}

    # WHEN the function receives it
    try:
        response = invoke(
            handler, event, lambda_context, f"a batch of {len(records)} invalid orders and 1 valid one",
            advice=WHOLE_BATCH_LESSON,
        )
    except LearnerCodeError as error:
        if not isinstance(error.__cause__, BaseBatchProcessingError):
            raise
        # Powertools raises when every record failed: the same answer as naming them all in batchItemFailures
        response = {"batchItemFailures": [{"itemIdentifier": record["messageId"]} for record in event["Records"]]}

    # THEN it reports every invalid order as failed, writes none of them, and writes the valid one
    failed = reported_failures(response, event)
    stored = stored_orders(table_name)
    accepted = [rule for message, rule in rules.items() if message not in failed]
    assert not accepted, (
        f"Your lambda_handler did not report as failed the orders with {accepted} (each a copy of "
        f"{valid['order_id']} of events/sqs_orders_valid.json, with that one change). Each breaks a rule of the "
        "page's table, so it can never succeed: raise for it in the record handler. A pydantic model says it in "
        "one place: order_id and customer str with Field(min_length=1), items a list with Field(min_length=1), "
        "sku str with Field(min_length=1), quantity int with Field(gt=0), unit_price Decimal with Field(ge=0)."
    )
    written = sorted(oid for oid in stored if oid.startswith(f"{valid['order_id']}-invalid-") or oid == "")
    assert not written, f"The table holds the invalid orders {written}: validate each order before writing it."
    assert good["messageId"] not in failed and valid["order_id"] in stored, (
        f"Your lambda_handler reported the valid order {json.dumps(valid)}, last in the batch, as failed, or did not "
        f"write it (the table holds {sorted(stored)}). It is short but valid: an order_id, customer and sku of one "
        "character are still there, and an item may be free (unit_price 0). Only the invalid messages should fail "
        "(task 1 first, if it fails)."
    )


# The errors DynamoDB answers a write with when it cannot take it now, or at all.
WRITE_ERRORS = {
    "ProvisionedThroughputExceededException": "The level of configured provisioned throughput for the table was "
    "exceeded. Consider increasing your provisioning level with the UpdateTable API.",
    "AccessDeniedException": "User: arn:aws:sts::123456789012:assumed-role/order-worker-role is not authorized to "
    "perform: dynamodb:PutItem on resource: the orders table",
}


def failing_writes(monkeypatch: pytest.MonkeyPatch, errors: dict[str, str]) -> list[str]:
    """Make DynamoDB refuse to write the orders named in `errors` (order_id -> error code), through a client or a
    resource alike; returns the list of order ids it refused, as it refuses them."""
    original = botocore.client.BaseClient._make_api_call
    refused: list[str] = []

    def refusing(client, operation_name, api_params):
        if client.meta.service_model.service_name == "dynamodb" and operation_name == "PutItem":
            key = (api_params.get("Item") or {}).get("order_id")
            key = key.get("S") if isinstance(key, dict) else key  # a client's item is typed: {"S": "ord-1"}
            if key in errors:
                refused.append(key)
                code = errors[key]
                response = {"Error": {"Code": code, "Message": WRITE_ERRORS[code]}, "ResponseMetadata": {}}
                raise client.exceptions.from_code(code)(response, operation_name)
        return original(client, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", refusing)
    return refused


def test_task2_reports_a_message_whose_write_fails(monkeypatch, order_worker, load_event, lambda_context):
    # GIVEN the batch of three valid orders, and DynamoDB refusing two of the writes: the first one throttled
    # (ProvisionedThroughputExceededException), the last one denied (AccessDeniedException)
    handler, table_name = order_worker()
    event = load_event("sqs_orders_valid")
    first, middle, last = event["Records"]
    errors = {order_id(first): "ProvisionedThroughputExceededException", order_id(last): "AccessDeniedException"}
    refused = failing_writes(monkeypatch, errors)

    # WHEN the function receives it
    response = invoke(
        handler, event, lambda_context, "events/sqs_orders_valid.json while DynamoDB refused two of its writes",
        advice=WHOLE_BATCH_LESSON,
    )

    # THEN the two messages whose write failed are reported as failed, and only they
    failed = reported_failures(response, event)
    assert refused, (
        f"Your code wrote none of the orders {sorted(errors)} with put_item (the grader refuses those writes "
        "to see what your code does then). Write each order with table.put_item (task 1)."
    )
    lost = [f"{order_id(r)} ({errors[order_id(r)]})" for r in (first, last) if r["messageId"] not in failed]
    assert not lost, (
        f"DynamoDB refused to write {lost}, and your lambda_handler returned {response!r:.300}: it did not report "
        "those messages as failed, so Lambda deletes them and the orders are lost. Only a duplicate "
        "(ConditionalCheckFailedException) is success: catch that exception alone, or check "
        "error.response[\"Error\"][\"Code\"] and raise every other error again, so that the message comes back "
        "and is retried."
    )
    assert middle["messageId"] not in failed and order_id(middle) in stored_orders(table_name), (
        f"The write of {order_id(middle)} succeeded, yet your lambda_handler reports it as failed or did not write "
        "it. Only the messages whose write failed should come back."
    )


def test_task2_creates_the_batch_processor_once_per_cold_start(monkeypatch, order_worker, load_event, lambda_context):
    # GIVEN a count of the Powertools batch processors created (BatchProcessor and its kin), from the import on
    created: list[str] = []
    original = BasePartialBatchProcessor.__init__

    def counting(self, *args, **kwargs):
        created.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(BasePartialBatchProcessor, "__init__", counting)
    handler, _ = order_worker()
    at_import = len(created)

    # WHEN two batches arrive in the same execution environment (a cold start, then a warm invocation)
    for name in ("sqs_orders_valid", "sqs_orders_mixed"):
        with contextlib.suppress(Exception):  # other checks grade what it answers; this one counts processors
            handler(load_event(name), lambda_context)

    # THEN no processor was created by an invocation: the one created at import serves every batch
    during = created[at_import:]
    assert not during, (
        f"Your code created {len(during)} {during[0]} object(s) during 2 invocations ({at_import} at import). "
        "Create processor = BatchProcessor(event_type=EventType.SQS) once, at module level, next to the logger, "
        "and pass it to process_partial_response(..., processor=processor): warm invocations reuse it."
    )


# --- task 3 ----------------------------------------------------------------------------------------


def test_task3_logs_each_failure_as_json_with_the_context_and_the_message_id(
    order_worker, load_event, lambda_context, capsys
):
    # GIVEN the function, and each poison message of events/sqs_orders_mixed.json in a batch of its own
    handler, _ = order_worker()
    poison, _ = poison_and_valid(load_event("sqs_orders_mixed"))
    capsys.readouterr()

    for record in poison:
        # WHEN the function receives it (another task grades what it answers; this one reads the logs)
        raised, response = False, None
        try:
            response = handler({"Records": [record]}, lambda_context)
        except Exception:  # noqa: BLE001  (raising is one correct way to fail the message)
            raised = True
        lines, other = json_lines(capsys.readouterr().out)

        # THEN it logged JSON ...
        assert lines, (
            f"For the poison {label(record)}, your code wrote no JSON log line to stdout"
            + (f"; it printed: {other[:3]}" if other else "")
            + ".\nprint() writes plain text that nobody can search by field. Create logger = Logger() once at "
            "module level (its service name comes from POWERTOOLS_SERVICE_NAME) and log through it."
        )
        # ... an ERROR line with the exception, for this message (its id as correlation id) ...
        errors = [line for line in lines if line.get("level") == "ERROR" and "exception" in line]
        assert errors, (
            f"For the poison {label(record)}, your code logged {[line.get('message') for line in lines][:4]} "
            "but no ERROR line with the exception. Catch the error in the record handler, log it with "
            "logger.exception(...) (which adds the traceback) and raise it again."
        )
        ids = [line.get("correlation_id") for line in errors]
        assert record["messageId"] in ids, (
            f"The ERROR line for the poison message {record['messageId']} has correlation_id {ids[0]!r}; "
            "expected that message's id, so that one search finds everything logged about it. "
            "Call logger.set_correlation_id(record.message_id) first thing for each record."
        )
        # ... inside the Lambda context ...
        line = errors[ids.index(record["messageId"])]
        assert line.get("function_name") == lambda_context.function_name, (
            f"The ERROR line for {record['messageId']} has function_name {line.get('function_name')!r}; "
            f"expected {lambda_context.function_name!r}, from the Lambda context. "
            "Decorate lambda_handler with @logger.inject_lambda_context."
        )
        # ... and did not swallow the failure
        failed = raised or record["messageId"] in str(response)
        assert failed, (
            f"Your code logged the failure of {record['messageId']} and then returned {response!r:.200}: "
            "the message counts as processed and is deleted, lost. After logger.exception(...), raise again."
        )


def spy_on_tracer(monkeypatch: pytest.MonkeyPatch) -> dict[str, Counter]:
    """Record which functions Tracer's decorators wrap, and count the calls of the wrapped functions."""
    seen: dict[str, Counter] = {"capture_lambda_handler": Counter(), "capture_method": Counter()}

    for decorator, calls in seen.items():
        original = getattr(Tracer, decorator)

        def spy(self, function=None, *args, _original=original, _calls=calls, **kwargs):
            if function is None:  # @tracer.capture_method(capture_response=False): a partial of the spy
                return _original(self, None, *args, **kwargs)
            decorated = _original(self, function, *args, **kwargs)
            name = function.__name__
            _calls[name] += 0

            @functools.wraps(decorated)
            def counted(*call_args, **call_kwargs):
                _calls[name] += 1
                return decorated(*call_args, **call_kwargs)

            return counted

        monkeypatch.setattr(Tracer, decorator, spy)
    return seen


def test_task3_traces_the_handler_and_the_processing_of_each_record(
    monkeypatch, order_worker, load_event, lambda_context
):
    # GIVEN a spy on Powertools Tracer's decorators while Lambda imports the function
    traced = spy_on_tracer(monkeypatch)
    handler, _ = order_worker()
    records = load_event("sqs_orders_valid")["Records"]

    # WHEN three batches of one message each arrive (another task grades the writes; this one counts calls)
    for record in records:
        with contextlib.suppress(Exception):
            handler({"Records": [record]}, lambda_context)

    # THEN lambda_handler is traced with capture_lambda_handler ...
    handlers = traced["capture_lambda_handler"]
    assert "lambda_handler" in handlers, (
        f"@tracer.capture_lambda_handler decorates {sorted(handlers) or 'nothing'} in {APP}; "
        "expected lambda_handler (create tracer = Tracer() once, at module level)."
    )
    assert handlers["lambda_handler"] == len(records), (
        f"The traced lambda_handler ran {handlers['lambda_handler']} times for {len(records)} invocations: "
        "the function Lambda calls must be the traced one."
    )
    # ... and the processing of each record with capture_method
    methods = traced["capture_method"]
    per_record = [name for name, calls in methods.items() if calls >= len(records)]
    assert per_record, (
        f"@tracer.capture_method decorates {sorted(methods) or 'nothing'}"
        + (f" (calls: {dict(methods)})" if methods else "")
        + f"; expected the function that processes one record, run once for each of the {len(records)} "
        "messages, so that each shows as its own subsegment in the trace."
    )


# --- task 4 ----------------------------------------------------------------------------------------

DUPLICATE_ADVICE = (
    "A duplicate delivery is not an error: the order is already written. Write with "
    'ConditionExpression="attribute_not_exists(order_id)" and treat ConditionalCheckFailedException as '
    "success (task 1 first, if it still fails)."
)


def test_task4_writes_an_order_sent_twice_in_one_batch_once(order_worker, load_event, lambda_context):
    # GIVEN a batch holding the same order twice (events/sqs_orders_duplicate.json), the second copy changed
    # by the grader (quantity 4 -> 40) so that an overwrite would show
    handler, table_name = order_worker()
    event = load_event("sqs_orders_duplicate")
    first, second = event["Records"]
    event["Records"][1] = change_first_quantity(second, 40)

    # WHEN the function receives it
    response = invoke(
        handler, event, lambda_context, "events/sqs_orders_duplicate.json (one order, twice)",
        advice=DUPLICATE_ADVICE,
    )

    # THEN the duplicate is not a failure, and the order is written once, as first sent
    failed = reported_failures(response, event)
    assert not failed, (
        f"Your lambda_handler reports {failed} as failed; both messages carry order {order_id(first)}, which "
        f"was written. {DUPLICATE_ADVICE}"
    )
    stored = stored_orders(table_name).get(order_id(first), {})
    assert stored.get("total") == expected_total(first["body"]), (
        f"Order {order_id(first)} is stored with total {stored.get('total')}; expected {expected_total(first['body'])}, "
        f"from its first copy. The second copy (total {expected_total(event['Records'][1]['body'])}) overwrote it: "
        "put_item replaces an item with the same key unless the write is conditional."
    )


def test_task4_keeps_the_first_write_when_a_message_comes_back(order_worker, load_event, lambda_context):
    # GIVEN the valid batch, already processed once
    handler, table_name = order_worker()
    invoke(handler, load_event("sqs_orders_valid"), lambda_context, "events/sqs_orders_valid.json", "See task 1.")
    before = stored_orders(table_name)

    # WHEN its first message comes back (events/sqs_orders_redelivered.json: ApproximateReceiveCount 2),
    # its quantity changed by the grader (3 -> 30) so that an overwrite would show
    event = load_event("sqs_orders_redelivered")
    record = event["Records"][0]
    event["Records"][0] = change_first_quantity(record, 30)
    response = invoke(
        handler, event, lambda_context, "events/sqs_orders_redelivered.json (a message delivered again)",
        advice=DUPLICATE_ADVICE,
    )

    # THEN the redelivery is not a failure, and the first write stands
    failed = reported_failures(response, event)
    assert not failed, (
        f"Your lambda_handler reports the redelivered message {failed} as failed; its order "
        f"{order_id(record)} is already written, so it would come back until the dead-letter queue. "
        f"{DUPLICATE_ADVICE}"
    )
    after = stored_orders(table_name)
    oid = order_id(record)
    assert after.get(oid, {}).get("total") == before.get(oid, {}).get("total") and len(after) == len(before), (
        f"The second delivery of order {oid} changed its stored total from {before.get(oid, {}).get('total')} to "
        f"{after.get(oid, {}).get('total')}. SQS delivers at least once: make the write conditional on the order "
        "not being there yet (attribute_not_exists(order_id)), so a repeat changes nothing."
    )


# --- task 5 ----------------------------------------------------------------------------------------


def queue_settings(cfn: dict, name: str) -> sqs_delivery.QueueSettings:
    """What the transformed template says about the function's SQS event source and queue."""
    try:
        return sqs_delivery.QueueSettings.from_template(cfn, name)
    except sqs_delivery.SettingsError as error:
        raise AssertionError(f"template.yaml: {error}.") from None


def resolved_arn(value: object, cfn: dict) -> str:
    """What a template value deploys as (with the grader's stand-in names), for a message."""
    try:
        return str(resolve_value(value, cfn))
    except UnresolvedValue as error:
        return f"something the grader could not work out ({error})"


def event_source(lab_dir) -> tuple[str, dict, dict, str, dict]:
    """The function's name and deployed properties, its SQS event source mapping, its queue's name and properties."""
    sam, cfn = load_both(lab_dir)
    name, _, function = function_by_code_uri(sam, cfn, lab_dir, FUNCTION)
    settings = queue_settings(cfn, name)
    mapping = next(
        resource["Properties"]
        for resource in cfn["Resources"].values()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping" and resource["Properties"].get("FunctionName") == {"Ref": name}
    )
    return name, function, mapping, settings.queue, cfn["Resources"][settings.queue].get("Properties") or {}


def test_task5_reports_batch_item_failures_from_batches_of_a_sensible_size(lab_dir):
    # GIVEN the SQS event source of the function, as AWS deploys it
    name, _, mapping, queue, _ = event_source(lab_dir)
    _, cfn = load_both(lab_dir)

    # THEN it polls the queue by its ARN (what an event source mapping needs) ...
    resolved, arn = resolved_arn(mapping.get("EventSourceArn"), cfn), resource_arn(cfn, queue)
    assert resolved == arn, (
        f"{name}'s SQS event polls {resolved}, not the ARN of {queue} ({arn}): AWS refuses to create the event "
        f"source mapping. An SQS event's Queue takes the queue's ARN, !GetAtt {queue}.Arn (a queue's !Ref is "
        "its URL)."
    )
    # THEN Lambda reads batchItemFailures ...
    assert "ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or []), (
        f"{name}'s SQS event has FunctionResponseTypes {mapping.get('FunctionResponseTypes') or 'none'}; expected "
        "[ReportBatchItemFailures]. Without it Lambda ignores the batchItemFailures your handler returns: "
        "a batch that returns is deleted whole, its failed messages with it."
    )
    # ... from batches of a sensible size, gathered for a while
    size, window = mapping.get("BatchSize"), mapping.get("MaximumBatchingWindowInSeconds")
    assert isinstance(size, int) and 2 <= size <= 10_000, (
        f"{name}'s SQS event has BatchSize {size}; choose one from 2 to 10,000 (10 is a good start): "
        "one message per invocation pays a whole invocation for each message."
    )
    assert isinstance(window, int) and 1 <= window <= 300, (
        f"{name}'s SQS event has MaximumBatchingWindowInSeconds {window}; choose 1 to 300 seconds (5 is a good "
        "start): Lambda then waits that long to fill a batch, so a quiet queue costs fewer invocations"
        + (" (and AWS requires it when BatchSize is over 10)." if isinstance(size, int) and size > 10 else ".")
    )


def test_task5_redrives_failing_messages_to_a_dead_letter_queue(lab_dir):
    # GIVEN the function's queue, as AWS deploys it
    _, cfn = load_both(lab_dir)
    name, _, _, queue_name, queue = event_source(lab_dir)
    others = {n for n, _ in templates.resources_of_type(cfn, "AWS::SQS::Queue")} - {queue_name}

    # THEN it moves a message that keeps failing to another queue of the template, after 2 to 5 receives
    redrive = queue.get("RedrivePolicy")
    assert isinstance(redrive, dict), (
        f"The queue of {name}'s SQS event has no RedrivePolicy: a poison message comes back to the function "
        "until its retention period ends (4 days by default), failing every time. Add "
        "RedrivePolicy: {deadLetterTargetArn: !GetAtt OrdersDeadLetterQueue.Arn, maxReceiveCount: 3}."
    )
    target = redrive.get("deadLetterTargetArn")
    resolved = resolved_arn(target, cfn)
    assert templates.references(target) & others and resolved in {resource_arn(cfn, q) for q in others}, (
        f"{queue_name}'s RedrivePolicy.deadLetterTargetArn is {target!r}, which deploys as {resolved}; expected "
        f"the ARN of another queue of the template, !GetAtt <queue>.Arn (the other queues: {sorted(others) or 'none'})"
        + (". A queue's !Ref is its URL: SQS refuses it as a deadLetterTargetArn." if "https://" in resolved else ".")
    )
    count = templates.as_int(redrive.get("maxReceiveCount"), None)
    assert count is not None and 2 <= count <= 5, (
        f"RedrivePolicy.maxReceiveCount is {redrive.get('maxReceiveCount')!r}; choose 2 to 5. With 1, a message "
        "that failed once for a passing reason (a throttled write) is given up at once; with many, a poison "
        "message costs that many failed invocations before it is set aside."
    )


def test_task5_queue_visibility_timeout_is_six_function_timeouts(lab_dir):
    # GIVEN the function and its queue, as AWS deploys them
    name, function, _, _, queue = event_source(lab_dir)
    timeout = templates.as_int(function.get("Timeout"), sqs_delivery.DEFAULT_FUNCTION_TIMEOUT)
    visibility = templates.as_int(queue.get("VisibilityTimeout"), sqs_delivery.DEFAULT_VISIBILITY_TIMEOUT)

    # THEN a batch in progress stays invisible long enough for Lambda to finish and retry it
    assert visibility >= 6 * timeout, (
        f"The queue's VisibilityTimeout is {visibility} s and {name}'s Timeout {timeout} s; AWS recommends at "
        f"least six times the function's timeout ({6 * timeout} s). Shorter, and a batch still being processed "
        "(or retried after throttling) becomes visible again: another invocation gets the same messages."
    )


def test_task5_has_no_function_level_dead_letter_queue(lab_dir):
    # GIVEN the function as AWS deploys it
    name, function, _, _, _ = event_source(lab_dir)

    # THEN it has no DeadLetterConfig: the dead-letter queue belongs on the SQS queue
    assert not function.get("DeadLetterConfig"), (
        f"{name} has a function-level dead-letter queue (DeadLetterQueue in the template). It only catches failed "
        "asynchronous invocations, and Lambda polls SQS synchronously: nothing would ever reach it. Remove it "
        "and give the queue a RedrivePolicy to the dead-letter queue instead."
    )


# What the worker's work needs, and the most its policies may allow (lower case, as IAM compares actions).
# SAM attaches AWSLambdaSQSQueueExecutionRole by itself, which lets Lambda poll (on every queue); with a
# Role of your own, the role must allow the polling itself.
POLL_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
POLLER_ACTIONS = frozenset(  # SQSPollerPolicy
    f"sqs:{a}" for a in ("changemessagevisibility", "changemessagevisibilitybatch", "deletemessage",
                         "deletemessagebatch", "getqueueattributes", "receivemessage")
)
TABLE_ACTIONS = frozenset(  # DynamoDBWritePolicy, and a GetItem for a learner who reads before writing
    f"dynamodb:{a}" for a in ("putitem", "updateitem", "batchwriteitem", "getitem", "conditioncheckitem")
)


def test_task5_grants_this_queue_and_this_table_only(lab_dir):
    # GIVEN the role the function runs with, as AWS deploys it, every ARN resolved as AWS would (with the
    # grader's stand-in names for your account and stack)
    sam, cfn = load_both(lab_dir)
    name, _, function = function_by_code_uri(sam, cfn, lab_dir, FUNCTION)
    queue = queue_settings(cfn, name).queue
    role = role_of(cfn, function)
    variable = ((function.get("Environment") or {}).get("Variables") or {}).get("TABLE_NAME")
    tables = sorted(templates.references(variable) & {n for n, _ in templates.resources_of_type(cfn, "AWS::DynamoDB::Table")})
    table = tables[0] if tables else next(iter(n for n, _ in templates.resources_of_type(cfn, "AWS::DynamoDB::Table")), None)
    own = {queue: (resource_arn(cfn, queue), POLLER_ACTIONS)}
    if table:
        own[table] = (resource_arn(cfn, table), TABLE_ACTIONS)

    # THEN no managed policy beyond the two SAM attaches itself ...
    managed_arns = [json.dumps(arn) for arn in role.get("ManagedPolicyArns", [])]
    managed = [arn for arn in role.get("ManagedPolicyArns", []) if not any(p in json.dumps(arn) for p in SAM_MANAGED_POLICIES)]
    assert not managed, (
        f"{name}'s role has the managed policies {managed}, which reach every queue or table in the account. "
        "Use SAM policy templates scoped to one resource: SQSPollerPolicy with QueueName: !GetAtt OrdersQueue."
        "QueueName and DynamoDBWritePolicy with TableName: !Ref OrdersTable."
    )
    grants = grants_of(cfn, role)

    # ... allowed to write orders and to poll, on the real ARNs of its table and its queue ...
    sam_polls = any("AWSLambdaSQSQueueExecutionRole" in arn for arn in managed_arns)
    needs = [("dynamodb:PutItem", table)] + ([] if sam_polls else [(a, queue) for a in POLL_ACTIONS])
    missing = []
    for action, logical_id in needs:
        if logical_id is None:
            missing.append(f"{action} on the orders table, but the template has no DynamoDB table")
            continue
        arn = own[logical_id][0]
        if not any(grant.allows(action, arn) for grant in grants):
            missing.append(f"{action} on {logical_id} ({arn}). {deployed_elsewhere(grants, logical_id, arn)}".rstrip())
    assert not missing, (
        f"{name} may not do what its work needs, on the ARNs AWS will check (the grader's stand-in names for "
        "your account and stack):\n  - " + "\n  - ".join(missing)
        + "\nAdd DynamoDBWritePolicy: {TableName: !Ref OrdersTable} (a table's !Ref is its name) to Policies"
        + ("." if sam_polls else ", and SQSPollerPolicy: {QueueName: !GetAtt OrdersQueue.QueueName}: with a Role "
           "of your own, SAM no longer attaches AWSLambdaSQSQueueExecutionRole.")
    )
    # ... a policy that names its queue or its table resolves to that resource's ARN ...
    unmatched = [problem for logical_id, (arn, _) in own.items() if (problem := deployed_elsewhere(grants, logical_id, arn))]
    assert not unmatched, (
        f"{name}'s policy names its resource by a value that deploys as another ARN. {' '.join(unmatched)} "
        "SQSPollerPolicy takes QueueName: !GetAtt OrdersQueue.QueueName, DynamoDBWritePolicy TableName: "
        "!Ref OrdersTable."
    )
    # ... on this queue and this table only, with no action its work does not need
    too_broad, too_much = beyond(grants, own)
    assert not too_broad, (
        f"{name}'s policy reaches beyond its queue ({queue}: {own[queue][0]}) and its table "
        f"({table}: {own[table][0] if table else 'none'}): {'; '.join(too_broad)[:600]}. Scope every statement to "
        "one of them, by name, with no * in the ARN (SAM's SQSPollerPolicy and DynamoDBWritePolicy do this for you)."
    )
    assert not too_much, (
        f"{name}'s policy allows {actions_on(too_much)}, which the worker never does: it polls its "
        "queue and writes orders. Least privilege: a bug or a stolen credential could do that too. Use the "
        "policy templates that grant no more: DynamoDBWritePolicy, not DynamoDBCrudPolicy; SQSPollerPolicy."
    )


def test_task5_keeps_lab_1s_settings_table_name_arm64_current_runtime_powertools_layer(lab_dir):
    # GIVEN the function as AWS deploys it (Globals applied)
    sam, cfn = load_both(lab_dir)
    name, _, function = function_by_code_uri(sam, cfn, lab_dir, FUNCTION)
    tables = {n for n, _ in templates.resources_of_type(cfn, "AWS::DynamoDB::Table")}

    # THEN TABLE_NAME names the template's table ...
    variable = ((function.get("Environment") or {}).get("Variables") or {}).get("TABLE_NAME")
    assert isinstance(variable, dict) and variable.get("Ref") in tables, (
        f"{name}'s TABLE_NAME is {variable!r}; expected !Ref to the template's table ({', '.join(sorted(tables))})."
    )
    # ... and it keeps lab 1's settings: arm64, a current runtime, the Powertools layer, nothing bundled
    assert_keeps_lab_1_settings(name, function, lab_dir / FUNCTION)


# --- task 6 ----------------------------------------------------------------------------------------


def test_task6_every_message_ends_in_the_table_or_the_dead_letter_queue(
    order_worker, lab_dir, load_event, lambda_context
):
    # GIVEN a queue configured like the template's (batch size, partial batch responses, redrive), an empty
    # table, and on the queue the messages of events/sqs_orders_mixed.json and events/sqs_orders_duplicate.json
    sam, cfn = load_both(lab_dir)
    name, _, _ = function_by_code_uri(sam, cfn, lab_dir, FUNCTION)
    settings = queue_settings(cfn, name)
    handler, table_name = order_worker()
    sqs = client("sqs")
    queues = sqs_delivery.create_queues(sqs, settings, f"orders-{uuid.uuid4().hex[:8]}")
    bodies = [r["body"] for event in ("sqs_orders_mixed", "sqs_orders_duplicate") for r in load_event(event)["Records"]]
    sent = {sqs.send_message(QueueUrl=queues.url, MessageBody=body)["MessageId"]: body for body in bodies}

    # WHEN Lambda drains the queue into the function, as its event source mapping would
    delivery = sqs_delivery.drain(sqs, queues, handler, settings, context=lambda_context)

    # THEN the queue is empty: no message keeps coming back ...
    errors = [i.error for i in delivery.invocations if i.error]
    assert delivery.drained, (
        f"After {len(delivery.invocations)} invocations the grader stopped: {delivery.stopped}; "
        f"{sqs_delivery.waiting(sqs, queues.url)} message(s) are still on the queue.\n"
        + (f"Your handler failed whole batches, raising {errors[0]}\n" if errors else "")
        + (
            "The queue has no RedrivePolicy (task 5), so a failing message never leaves it."
            if settings.max_receive_count is None
            else "Look at which messages your handler reports as failed (task 2)."
        )
    )
    # ... every valid order was written and deleted, with the right total ...
    stored = stored_orders(table_name)
    dead = {m["MessageId"]: m["Body"] for m in sqs_delivery.receive_all(sqs, queues.dead_letter_url)} if queues.dead_letter_url else {}
    valid = {message: body for message, body in sent.items() if not problem_with(body)}
    poison = {message: body for message, body in sent.items() if problem_with(body)}
    unwritten = sorted({json.loads(body)["order_id"] for body in valid.values()} - set(stored))
    assert not unwritten, (
        f"After the queue was drained, the valid orders {unwritten} are not in the table"
        + (f" ({sum(m in dead for m in valid)} valid message(s) ended in the dead-letter queue)" if dead else "")
        + ".\n"
        + (f"Your handler raised {errors[0]}\n" if errors else "")
        + "A valid message must be written and deleted the first time, whatever else is in its batch (task 2)."
    )
    wrong = {
        json.loads(body)["order_id"]: (stored[json.loads(body)["order_id"]].get("total"), expected_total(body))
        for body in valid.values()
        if stored[json.loads(body)["order_id"]].get("total") != expected_total(body)
    }
    assert not wrong, f"Stored totals (stored, expected): {wrong}. See task 1 (and task 4 for a duplicate)."
    # ... and every poison message sits in the dead-letter queue, none in the table: nothing is lost
    stored_poison = [f"{m[:8]}... ({problem_with(b)})" for m, b in poison.items() if claimed_order_id(b) in stored]
    assert not stored_poison, f"The poison messages {stored_poison} were written to the table; see task 2."
    lost = [f"{message[:8]}... ({problem_with(body)})" for message, body in poison.items() if message not in dead]
    notes = sorted({i.note for i in delivery.invocations if i.note})
    assert not lost, (
        f"{len(lost)} poison message(s) are neither in the table nor in the dead-letter queue: {lost}. "
        "They were deleted from the queue, lost"
        + (f": {notes[0]}." if notes else ", because your handler did not report them as failed (task 2).")
    )
    dead_valid = [f"{m[:8]}... ({json.loads(b)['order_id']})" for m, b in valid.items() if m in dead]
    assert not dead_valid, (
        f"The valid messages {dead_valid} ended in the dead-letter queue; a valid order is written and deleted, "
        "even when it comes twice (task 4)."
    )
