"""Grader for lab 7: orchestration with durable functions, idempotent steps and compensation (the saga pattern).

Each test_taskN_* checks task N of docs/labs/lab07_durable_orders.md. Your workflow runs in AWS's own local
runner (the durable execution testing SDK): Lambda's checkpoints and replays, its waits skipped; its tables
and its queue are moto's. The grader plays the warehouse (it confirms, refuses, or never answers) and the
payment provider's bad days. PYTEST_DONT_REWRITE: the messages below are shown to you exactly as written.

| Rule | Check |
| --- | --- |
| 1: each write (stock, payment, warehouse request, order record) happens in one invocation only, never again in a replay | test_task1_runs_each_side_effect_once_across_replays |
| 1: the stock goes down by the order's quantities once; one charge, of the order's total; one shipment request | test_task1_runs_each_side_effect_once_across_replays |
| 1: each step, compensation and wait has a name in the execution history | test_task1_names_each_step_in_the_execution_history |
| 2: the order record and the result name the payment that was charged; the record, the time the warehouse was told | test_task2_keeps_the_payment_id_and_the_order_time_across_replays |
| 2: a payment step that runs again (its first answer lost) charges once: one successful charge call | test_task2_charges_once_when_the_payment_step_runs_again |
| 3: the workflow waits with a callback whose id reaches the warehouse (with the order id and items), never with time.sleep | test_task3_waits_for_the_warehouse_with_a_callback |
| 3: the warehouse's confirmation completes the order, with its tracking number (recorded and returned) | test_task3_waits_for_the_warehouse_with_a_callback |
| 3: the callback has a timeout; when it passes, the order ends FAILED and says so | test_task3_gives_up_when_the_warehouse_never_answers |
| 4: a payment that fails twice, then works, completes the order with one charge | test_task4_retries_a_flaky_payment_and_charges_once |
| 4: a payment that keeps failing is tried 2 to 10 times, then the stock is released and the order FAILED says why | test_task4_gives_up_on_a_payment_that_keeps_failing_and_releases_the_stock |
| 4: out of stock is tried once, charges nothing, and the order FAILED says why | test_task4_does_not_retry_an_order_that_is_out_of_stock |
| 4: a refused shipment refunds the payment, then releases the stock (reverse order), and the order FAILED says why | test_task4_refunds_then_releases_when_the_warehouse_refuses |
| 4: a failed order is logged as a warning with its reason and its execution's ARN (context.logger) | test_task4_logs_why_an_order_failed_with_its_execution |
| 5: DurableConfig: an ExecutionTimeout from the callback's timeout to 366 days, RetentionPeriodInDays 1 to 90 | test_task5_is_durable_with_an_execution_timeout_that_fits_the_longest_wait |
| 5: AutoPublishAlias; the EventBridge rule invokes the alias | test_task5_is_invoked_through_an_alias |
| 5: the three tables (write actions), the queue (send), the checkpoints; no other resource, no other action | test_task5_grants_its_tables_its_queue_and_its_checkpoints_only |
| 5: arm64, python3.13 or python3.14, and the Powertools layer built for both | test_task5_runs_on_arm64_and_a_runtime_durable_functions_support |
| 5: the function's package is its code (nothing in requirements.txt), within lab 6's budget | test_task5_ships_the_sdk_in_a_layer_without_what_the_runtime_has |
| 5: the SDK, pinned, in a layer of the template (BuildMethod makefile), installed with --no-deps into python/ | test_task5_ships_the_sdk_in_a_layer_without_what_the_runtime_has |

Not checked offline, and named so on the page: Lambda's real timers (a wait of days), a crash of the
sandbox in the middle of a step, the console's execution history.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import botocore.client
import pytest

from workshop import templates
from workshop.grading import durable
from workshop.grading.aws import client, resource
from workshop.grading.feedback import learner_code
from workshop.grading.logs import json_lines
from workshop.grading.performance import PACKAGE_BUDGET, package
from workshop.grading.template_checks import (
    POWERTOOLS_LAYER,
    RUNTIME_PACKAGES,
    actions_on,
    beyond,
    function_by_code_uri,
    grants_of,
    layer_arns,
    load_both,
    make_recipe,
    requirement_names,
    resource_arn,
    role_of,
)

FUNCTION = "order_workflow"
TABLES = {"STOCK_TABLE": "sku", "PAYMENTS_TABLE": "payment_id", "ORDERS_TABLE": "order_id"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
DURABLE_RUNTIMES = ("python3.13", "python3.14")
DURABLE_ACTIONS = ("lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState")
DURABLE_MANAGED_POLICY = "AWSLambdaBasicDurableExecutionRolePolicy"
SDK = "aws-durable-execution-sdk-python"
NO_DEPENDENCIES = re.compile(r"--no-deps\b|--no-dependencies\b")


# --- the world the workflow changes, and what it did to it -------------------------------------------


@dataclass(frozen=True)
class Effect:
    """One call that changed the world, and the invocation (1 = the first run, 2+ = replays) that made it."""

    invocation: int
    what: str  # stock, payment, order, warehouse
    call: str  # the API operation
    fingerprint: str  # the call's parameters: a replay repeats them exactly


@dataclass
class World:
    names: dict[str, str]
    stock_before: dict[str, int]
    effects: list[Effect] = field(default_factory=list)  # the writes that succeeded
    attempts: list[Effect] = field(default_factory=list)  # every write tried, failed ones too
    invocation: int = 0
    payment_failures: list[str] = field(default_factory=list)  # error codes for the next payment writes
    lose_first_payment_answer: bool = False
    payment_attempts: int = 0

    def table(self, variable: str):
        return resource("dynamodb").Table(self.names[variable])

    def stock(self) -> dict[str, int]:
        return {i["sku"]: int(i["available"]) for i in self.table("STOCK_TABLE").scan()["Items"]}

    def charges(self, order_id: str) -> list[dict]:
        return [p for p in self.table("PAYMENTS_TABLE").scan()["Items"] if p.get("order_id") == order_id]

    def order_record(self, order_id: str) -> dict | None:
        return self.table("ORDERS_TABLE").get_item(Key={"order_id": order_id}).get("Item")

    def shipment_requests(self) -> list[dict]:
        sqs = client("sqs")
        messages = sqs.receive_message(QueueUrl=self.names["WAREHOUSE_QUEUE_URL"], MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    def of(self, what: str) -> list[Effect]:
        return [e for e in self.effects if e.what == what]


def table_of(world: World, api_params: dict) -> str | None:
    names = {world.names[v]: v for v in TABLES}
    found = api_params.get("TableName")
    if found is None:  # TransactWriteItems: the tables of its items
        for item in api_params.get("TransactItems", []):
            for action in item.values():
                found = action.get("TableName")
    return {"STOCK_TABLE": "stock", "PAYMENTS_TABLE": "payment", "ORDERS_TABLE": "order"}.get(names.get(found, ""))


def watch(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    """Record every write the workflow makes (and play the payment provider's failures), client or resource alike."""
    original = botocore.client.BaseClient._make_api_call

    def recording(client, operation_name, api_params):
        service = client.meta.service_model.service_name
        what = None
        if service == "dynamodb" and operation_name in WRITES:
            what = table_of(world, api_params)
        elif service == "sqs" and operation_name.startswith("SendMessage"):
            what = "warehouse"
        if what is None:
            return original(client, operation_name, api_params)
        effect = Effect(world.invocation, what, operation_name, json.dumps(api_params, sort_keys=True, default=str))
        world.attempts.append(effect)
        if what == "payment" and operation_name == "PutItem":
            world.payment_attempts += 1
            if world.payment_failures:
                code = world.payment_failures.pop(0)
                error = {"Error": {"Code": code, "Message": "The payment provider is unavailable"}, "ResponseMetadata": {}}
                raise botocore.exceptions.ClientError(error, operation_name)
        answer = original(client, operation_name, api_params)
        world.effects.append(effect)
        if what == "payment" and operation_name == "PutItem" and world.lose_first_payment_answer:
            world.lose_first_payment_answer = False  # charged, but the answer never reached the workflow
            error = {"Error": {"Code": "InternalServerError", "Message": "Connection reset after the charge"}, "ResponseMetadata": {}}
            raise botocore.exceptions.ClientError(error, operation_name)
        return answer

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)


@pytest.fixture
def workflow(load_handler, load_event, monkeypatch):
    """make(): fresh tables (random names) with the lab's stock, a warehouse queue, and the learner's handler."""

    def make(stock: dict[str, int] | None = None):
        dynamodb = resource("dynamodb")
        names = {}
        for variable, key in TABLES.items():
            name = f"{variable.split('_')[0].lower()}-{uuid.uuid4().hex[:8]}"
            dynamodb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            names[variable] = name
        names["WAREHOUSE_QUEUE_URL"] = client("sqs").create_queue(QueueName=f"warehouse-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        stock = stock or {"KEYBOARD-01": 5, "CABLE-USB-C": 20, "MONITOR-27": 1}
        for sku, available in stock.items():
            dynamodb.Table(names["STOCK_TABLE"]).put_item(Item={"sku": sku, "available": available})
        handler = load_handler(FUNCTION, **names)
        world = World(names, dict(stock))
        watch(monkeypatch, world)
        return handler, world

    return make


def run(handler, world: World, event: dict, what: str, warehouse: str = durable.CONFIRM, **options) -> durable.Run:
    """Run the workflow with `event`; the warehouse answers as `warehouse` says."""

    def invoked(number: int) -> None:
        world.invocation = number

    with learner_code(f"Your workflow, given {what},"):
        result = durable.run_workflow(handler, event, warehouse=warehouse, on_invocation=invoked, **options)
    return result


def quantities(event: dict) -> Counter:
    wanted: Counter = Counter()
    for item in event["detail"]["items"]:
        wanted[item["sku"]] += item["quantity"]
    return wanted


def history(result: durable.Run, *, results: bool = True) -> str:
    return "Its execution history (as `workshop invoke 7` prints it):\n" + (
        durable.history_table(result, results=results) or "  (no operation)"
    )


def repeated(world: World) -> list[str]:
    """Writes made again, identical, by a later invocation: what a replay repeats outside a step."""
    seen: dict[str, int] = {}
    found = []
    for effect in world.effects:
        first = seen.setdefault(effect.fingerprint, effect.invocation)
        if first != effect.invocation:
            found.append(f"the {effect.what} write ({effect.call}) of invocation {first}, again in invocation {effect.invocation}")
    return list(dict.fromkeys(found))


def assert_completed(result: durable.Run, what: str) -> None:
    status, reason = result.outcome()
    assert status == "COMPLETED", (
        f"Your workflow, given {what}, ended with {status or result.status!r}"
        + (f" ({reason})" if reason else "")
        + f"; expected the order COMPLETED.\n{history(result)}"
    )


# --- task 1 ----------------------------------------------------------------------------------------


def test_task1_runs_each_side_effect_once_across_replays(workflow, load_event):
    # GIVEN an order the stock can serve, and a warehouse that confirms the shipment
    handler, world = workflow()
    event = load_event("eventbridge_order_placed")

    # WHEN the workflow runs to its end: Lambda replays the handler after each wait and callback
    result = run(handler, world, event, "events/eventbridge_order_placed.json")

    # THEN it was replayed at least once (it waited for something) ...
    assert result.invocations >= 2, (
        f"Your workflow ran in {result.invocations} invocation: it never waited, so Lambda never replayed it. "
        "Wait for the warehouse's confirmation first (task 3).\n" + history(result)
    )
    # ... and no replay repeated a write: each one happened inside a step, once
    again = repeated(world)
    assert not again, (
        f"Lambda ran your handler {result.invocations} times (1 + {result.invocations - 1} replays), and a replay "
        f"repeated what the first run had done: {'; '.join(again)}.\n"
        "Code outside a step runs again at every replay. Put each call that changes the world in its own step: "
        'context.step(lambda _: reserve_stock(order), name="reserve-stock").\n' + history(result, results=False)
    )
    # ... so the stock went down once, one charge was taken, the warehouse was asked once
    stock, wanted = world.stock(), quantities(event)
    wrong = {sku: (world.stock_before[sku], stock[sku]) for sku in wanted if world.stock_before[sku] - stock[sku] != wanted[sku]}
    assert not wrong, (
        "The stock (before, after) is " + ", ".join(f"{sku}: {b} -> {a}" for sku, (b, a) in wrong.items())
        + f"; the order takes {dict(wanted)}, once. " + history(result)
    )
    order_id = event["detail"]["order_id"]
    charges = world.charges(order_id)
    assert len(charges) == 1, f"The payments table holds {len(charges)} charges for {order_id}; expected one."
    total = sum((Decimal(str(i["unit_price"])) * i["quantity"] for i in event["detail"]["items"]), Decimal(0))
    assert charges[0].get("amount") == total and charges[0].get("status") == "CHARGED", (
        f"The charge for {order_id} is {charges[0]}; expected amount {total} (the order's total, in Decimal) and "
        "status CHARGED, as take_payment writes them."
    )
    assert len(world.of("warehouse")) == 1, f"The warehouse was asked {len(world.of('warehouse'))} times to ship {order_id}; expected once."
    assert isinstance(result.result, dict) and result.result.get("order_id") == order_id, (
        f"Your workflow returned {result.result!r}; expected {{\"order_id\": \"{order_id}\", \"status\": ...}}."
    )


def test_task1_names_each_step_in_the_execution_history(workflow, load_event):
    # GIVEN an order, once with a warehouse that confirms it and once with one that refuses it (undo steps)
    for warehouse, what in ((durable.CONFIRM, "a warehouse that confirms"), (durable.REFUSE, "a warehouse that refuses")):
        handler, world = workflow()

        # WHEN the workflow runs to its end
        result = run(handler, world, load_event("eventbridge_order_placed"), what, warehouse=warehouse)

        # THEN each operation it started has a name: the execution history is what an operator reads
        unnamed = [step.kind for step in result.history if step.depth == 0 and not step.name]
        assert not unnamed, (
            f"Given {what}, your workflow started {len(unnamed)} operation(s) without a name ({', '.join(unnamed)}): "
            "Lambda's execution history lists them blank, and nobody can tell which step did what. Give each "
            'step, compensation and wait a name: context.step(..., name="reserve-stock"), '
            "context.step(compensation, name=name).\n" + history(result, results=False)
        )


# --- task 2 ----------------------------------------------------------------------------------------


def test_task2_keeps_the_payment_id_and_the_order_time_across_replays(workflow, load_event):
    # GIVEN an order, and a warehouse that confirms it
    handler, world = workflow()
    event = load_event("eventbridge_order_placed")
    order_id = event["detail"]["order_id"]

    # WHEN the workflow runs to its end (the shipment request before the callback, the order record after it)
    result = run(handler, world, event, "events/eventbridge_order_placed.json")
    assert_completed(result, "events/eventbridge_order_placed.json")

    # THEN the order record names the charge that was taken ...
    charges = world.charges(order_id)
    record = world.order_record(order_id) or {}
    charged = sorted(str(c.get("payment_id")) for c in charges)
    assert charged and record.get("payment_id") in charged, (
        f"The payment provider charged {charged or 'nothing'} for {order_id}, in invocation "
        f"{[e.invocation for e in world.of('payment')][:1] or '?'}; the order record, written after the replay, says "
        f"payment_id {record.get('payment_id')!r}. Code between steps runs again at every replay: an id made "
        "there (uuid4()) is a new one each time. Make it in a step, whose result the replay returns unchanged.\n"
        + history(result)
    )
    # ... and the time it was placed: the one the warehouse was told before the wait
    requests = world.shipment_requests()
    told = {str(r.get("placed_at")) for r in requests if isinstance(r, dict)}
    assert record.get("placed_at") in told, (
        f"The warehouse was told placed_at {sorted(told) or 'nothing'} (before the wait); the order record, "
        f"written after the replay, says {record.get('placed_at')!r}. datetime.now() between steps gives a new "
        "time at every replay: take the time from a step.\n" + history(result)
    )
    # ... and the workflow's result names that charge too
    returned = result.result.get("payment_id") if isinstance(result.result, dict) else None
    assert returned in charged, (
        f"Your workflow returned {result.result!r}; the card was charged under {charged}. Return the payment_id "
        "the charge was made with, from the step that made it: the replay's own uuid4() is another one."
    )


def test_task2_charges_once_when_the_payment_step_runs_again(workflow, load_event):
    # GIVEN a payment provider that charges the card but whose answer is lost the first time (a 500)
    handler, world = workflow()
    world.lose_first_payment_answer = True
    event = load_event("eventbridge_order_placed")
    order_id = event["detail"]["order_id"]

    # WHEN the workflow runs: its payment step fails once, and Lambda runs it again
    result = run(handler, world, event, "a payment provider whose first answer is lost")

    # THEN the card was charged once, under one payment id, and the order completed
    charges = world.charges(order_id)
    assert len(charges) == 1, (
        f"The card was charged {len(charges)} times for {order_id} ({sorted(str(c.get('payment_id')) for c in charges)}). "
        "The first charge went through but its answer was lost, so the step ran again with a new payment id. A "
        "step can run more than once: give the charge an id made in an earlier step (an idempotency key), and "
        "write it only if it is not there yet (ConditionExpression=\"attribute_not_exists(payment_id)\").\n"
        + history(result)
    )
    charged = [e for e in world.of("payment") if e.call == "PutItem"]
    assert len(charged) == 1, (
        f"Your workflow charged the card {len(charged)} times under the same payment id: the second charge "
        "overwrote the first in the table, but a payment provider bills each one. Charge only if the payment "
        "id is not there yet: ConditionExpression=\"attribute_not_exists(payment_id)\", and treat "
        "ConditionalCheckFailedException as \"already charged\".\n" + history(result)
    )
    assert_completed(result, "a payment provider whose first answer was lost")


# --- task 3 ----------------------------------------------------------------------------------------


def no_sleep(monkeypatch: pytest.MonkeyPatch, handler) -> list[float]:
    """Record the learner's time.sleep calls (the module's own `time`, or a `sleep` it imported)."""
    module = sys.modules[getattr(handler, "__wrapped_module__", None) or handler.__module__]
    slept: list[float] = []

    class Clock:
        def __getattr__(self, name):
            import time

            return getattr(time, name)

        @staticmethod
        def sleep(seconds):
            slept.append(seconds)

    if hasattr(module, "time"):
        monkeypatch.setattr(module, "time", Clock())
    if hasattr(module, "sleep"):
        monkeypatch.setattr(module, "sleep", Clock.sleep)
    return slept


def test_task3_waits_for_the_warehouse_with_a_callback(workflow, load_event, monkeypatch):
    # GIVEN an order, and a warehouse that confirms the shipment with a tracking number
    handler, world = workflow()
    slept = no_sleep(monkeypatch, handler)
    event = load_event("eventbridge_order_placed")
    order_id = event["detail"]["order_id"]

    # WHEN the workflow runs
    result = run(handler, world, event, "events/eventbridge_order_placed.json", tracking="TRACK-7001")

    # THEN it never slept ...
    assert not slept, (
        f"Your workflow called time.sleep({slept[0]}): Lambda bills every second of it, and an invocation "
        "lasts 15 minutes at most. Wait with context.wait_for_callback(...), which suspends the function "
        "for free until the warehouse answers."
    )
    # ... it waited with a callback, whose id the warehouse received ...
    assert result.callback_id, (
        "Your workflow created no callback, so nothing waits for the warehouse's answer: it completes the order "
        "whether or not it shipped. Use context.wait_for_callback(submitter, ...): the submitter sends the "
        "callback id to the warehouse (request_shipment), and the workflow resumes when the warehouse answers "
        "with it.\n" + history(result)
    )
    requests = world.shipment_requests()
    assert any(r.get("callback_id") == result.callback_id for r in requests if isinstance(r, dict)), (
        f"The warehouse received {requests or 'no shipment request'}; none carries the callback id "
        f"{result.callback_id[:24]}..., so it cannot answer. Send the request from the submitter of "
        "wait_for_callback, with the callback_id it is given.\n" + history(result)
    )
    wanted = [{"sku": i["sku"], "quantity": i["quantity"]} for i in event["detail"]["items"]]
    assert requests[0].get("order_id") == order_id and requests[0].get("items") == wanted, (
        f"The warehouse received {requests[0]}; it needs the order_id {order_id!r} and the items to ship, "
        f"{wanted}, as request_shipment sends them."
    )
    # ... and the confirmation completed the order with the warehouse's tracking number
    assert_completed(result, "a warehouse that confirmed the shipment")
    record = world.order_record(order_id) or {}
    assert record.get("status") == "COMPLETED" and record.get("tracking") == "TRACK-7001", (
        f"The warehouse confirmed with {{\"tracking\": \"TRACK-7001\"}}; the order record is {record}. Record the "
        "order COMPLETED with the tracking number the callback returned (a JSON string: json.loads it).\n"
        + history(result)
    )
    returned = result.result.get("tracking") if isinstance(result.result, dict) else None
    assert returned == "TRACK-7001", (
        f"Your workflow returned {result.result!r}; the warehouse confirmed with tracking \"TRACK-7001\". Return "
        'it with the order: {"order_id": ..., "status": "COMPLETED", "payment_id": ..., "tracking": tracking}.'
    )


def test_task3_gives_up_when_the_warehouse_never_answers(workflow, load_event):
    # GIVEN an order, and a warehouse that never answers
    handler, world = workflow()
    event = load_event("eventbridge_order_placed")
    order_id = event["detail"]["order_id"]

    # WHEN the workflow runs and its callback's timeout passes (the runner fires it at once)
    result = run(handler, world, event, "a warehouse that never answers", warehouse=durable.SILENCE)

    # THEN the callback had a timeout, a sensible one ...
    assert result.callback_id, "Your workflow created no callback to wait for the warehouse (see the first check of task 3).\n" + history(result)
    timeout = result.callback_timeout or 0
    assert 3600 <= timeout <= 30 * 86400, (
        f"Your callback's timeout is {timeout} s" + (" (none: the order would wait until the execution's own timeout)" if not timeout else "")
        + ". Give it one from an hour to 30 days, the time the warehouse has to confirm: "
        "WaitForCallbackConfig(timeout=Duration.from_days(3))."
    )
    # ... and when it passed, the order ended FAILED, saying why
    status, reason = result.outcome()
    record = world.order_record(order_id) or {}
    assert status == "FAILED" and record.get("status") == "FAILED", (
        f"The warehouse never confirmed, yet your workflow ended with {status!r} and the order record {record}. "
        "Catch the CallbackError (CallbackTimeoutError) of wait_for_callback, undo what was done (task 4), "
        "record the order FAILED and return {\"status\": \"FAILED\", \"reason\": ...}.\n" + history(result)
    )
    assert re.search(r"time|confirm|ship|warehouse", f"{reason} {record.get('reason', '')}", re.I), (
        f"Your workflow failed the order with the reason {reason!r} (the record says {record.get('reason')!r}); "
        "say why: the shipment was not confirmed in time."
    )


# --- task 4 ----------------------------------------------------------------------------------------


def assert_undone(world: World, event: dict, result: durable.Run, why: str) -> None:
    """Nothing half done: the stock as before, no charge kept, the order FAILED."""
    order_id = event["detail"]["order_id"]
    stock = world.stock()
    held = {sku: world.stock_before[sku] - stock[sku] for sku in quantities(event) if stock[sku] != world.stock_before[sku]}
    kept = [c for c in world.charges(order_id) if c.get("status") != "REFUNDED"]
    record = world.order_record(order_id) or {}
    status, reason = result.outcome()
    problems = [f"the stock still holds {held} for it" for _ in [held] if held]
    problems += [f"the charge {kept[0].get('payment_id')} was kept ({kept[0].get('status')})" for _ in [kept] if kept]
    problems += [f"the order record is {record or 'missing'}" for _ in [record] if record.get("status") != "FAILED"]
    problems += [f"the order record {record} says no reason" for _ in [record] if record and not record.get("reason")]
    problems += [f"the workflow ended {status!r}" for _ in [status] if status != "FAILED"]
    problems += [f"its result {result.result} does not name the order {order_id!r}" for _ in [result.result]
                 if isinstance(result.result, dict) and result.result.get("order_id") != order_id]
    assert not problems, (
        f"When {why}, the order is half done: {'; '.join(problems)}. Undo what was done, newest first "
        "(refund_payment, then release_stock), each in a step, then record the order FAILED and return "
        "{\"order_id\": ..., \"status\": \"FAILED\", \"reason\": ...}.\n" + history(result)
    )


def test_task4_retries_a_flaky_payment_and_charges_once(workflow, load_event):
    # GIVEN a payment provider that is unavailable twice, then works
    handler, world = workflow()
    world.payment_failures = ["ServiceUnavailable", "ServiceUnavailable"]
    event = load_event("eventbridge_order_placed")

    # WHEN the workflow runs
    result = run(handler, world, event, "a payment provider unavailable twice")

    # THEN it retried the payment and completed the order, with one charge
    assert_completed(result, "a payment provider that failed twice, then worked")
    assert len(world.charges(event["detail"]["order_id"])) == 1, "Expected one charge after the retries; see task 2."


def test_task4_gives_up_on_a_payment_that_keeps_failing_and_releases_the_stock(workflow, load_event):
    # GIVEN a payment provider that is down for good
    handler, world = workflow()
    world.payment_failures = ["ServiceUnavailable"] * 1000
    event = load_event("eventbridge_order_placed")

    # WHEN the workflow runs (the grader stops it after 40 attempts)
    result = run(handler, world, event, "a payment provider that is down", stop=lambda: world.payment_attempts > 40)

    # THEN it tried the payment a bounded number of times ...
    assert 2 <= world.payment_attempts <= 10, (
        f"Your workflow tried the payment {world.payment_attempts} time(s)"
        + (" and was still retrying when the grader stopped it" if world.payment_attempts > 40 else "")
        + ". A flaky provider deserves a few attempts, with a growing delay, and then an end: "
        "StepConfig(retry_strategy=create_retry_strategy(RetryStrategyConfig(max_attempts=3, ...))).\n"
        + history(result)
    )
    # ... then released the stock and failed the order, saying why
    assert_undone(world, event, result, "the payment fails for good")
    status, reason = result.outcome()
    assert re.search(r"pay|unavailable|charge", reason, re.I), (
        f"Your workflow failed the order with the reason {reason!r}; say why: the payment failed "
        "(the error's message says the payment provider is unavailable)."
    )


def test_task4_does_not_retry_an_order_that_is_out_of_stock(workflow, load_event):
    # GIVEN an order for 3 monitors when the stock holds 1
    handler, world = workflow()
    event = load_event("eventbridge_order_sold_out")

    # WHEN the workflow runs
    result = run(handler, world, event, "events/eventbridge_order_sold_out.json")

    # THEN it tried the reservation once: out of stock stays out of stock ...
    tries = sorted({e.invocation for e in world.attempts if e.what == "stock"})
    assert len(tries) <= 1, (
        f"Your workflow tried to reserve the stock in {len(tries)} invocations ({tries}): it retried a reservation "
        "that cannot succeed. Retry what may work next time (a throttled call), not \"out of stock\": give "
        "that step a strategy that does not retry it (max_attempts=1, or retryable_error_types).\n" + history(result)
    )
    # ... charged nothing, asked the warehouse nothing, and failed the order saying why
    assert not world.of("payment") and not world.of("warehouse"), (
        f"Out of stock, your workflow still {'charged the card' if world.of('payment') else 'asked the warehouse to ship'}."
        "\n" + history(result)
    )
    assert_undone(world, event, result, "the stock cannot cover the order")
    _, reason = result.outcome()
    assert re.search(r"stock", reason, re.I), f"Your workflow failed the order with the reason {reason!r}; say why: out of stock."


def test_task4_refunds_then_releases_when_the_warehouse_refuses(workflow, load_event):
    # GIVEN an order, and a warehouse that refuses to ship it
    handler, world = workflow()
    event = load_event("eventbridge_order_placed")

    # WHEN the workflow runs
    result = run(handler, world, event, "a warehouse that refuses the shipment", warehouse=durable.REFUSE)

    # THEN what was done is undone, and the order FAILED says why ...
    assert_undone(world, event, result, "the warehouse refuses the shipment")
    _, reason = result.outcome()
    assert re.search(r"refus|ship|warehouse", reason, re.I), (
        f"Your workflow failed the order with the reason {reason!r}; say why: the warehouse refused the shipment."
    )
    # ... newest first: the refund before the release of the stock
    after = [e.what for e in world.effects if e.invocation == max(e.invocation for e in world.effects)]
    undo = [what for what in after if what in ("payment", "stock")]
    assert undo[:1] == ["payment"], (
        f"Your workflow undid the order in this order: {undo}. Undo newest first, the reverse of the steps: "
        "refund the payment (taken last), then release the stock (reserved first), as a saga does.\n" + history(result)
    )


def test_task4_logs_why_an_order_failed_with_its_execution(workflow, load_event, capsys):
    # GIVEN an order, and a warehouse that refuses to ship it
    handler, world = workflow()
    event = load_event("eventbridge_order_placed")
    capsys.readouterr()

    # WHEN the workflow runs, and fails the order
    result = run(handler, world, event, "a warehouse that refuses the shipment", warehouse=durable.REFUSE)
    lines, other = json_lines(capsys.readouterr().out)
    status, reason = result.outcome()
    assert status == "FAILED" and reason, f"Your workflow ended {status!r} with no reason; see the other checks of task 4."

    # THEN a warning (or worse) says why, with the execution it belongs to: what an operator searches for
    warnings = [line for line in lines if str(line.get("level", "")).upper() in ("WARNING", "ERROR", "CRITICAL")]
    why = [line for line in warnings if any(w in json.dumps(line, default=str).lower() for w in (reason.lower(), "refus"))]
    assert why, (
        f"Your workflow failed the order ({reason!r}) and logged "
        f"{[(line.get('level'), line.get('message')) for line in lines][:4] or other[:3] or 'nothing'}: no warning "
        "says why it failed. Log it when the order fails: "
        'context.logger.warning("Order failed", extra={"reason": reason}).'
    )
    assert any(line.get("executionArn") for line in why), (
        f"Your warning {why[0].get('message')!r} does not name the execution (no executionArn): an operator cannot "
        "find its history. Log with context.logger, after context.set_logger(logger): the SDK adds the "
        "execution's ARN, and does not log again in a replay what the first run logged."
    )


# --- task 5 ----------------------------------------------------------------------------------------


def the_function(lab_dir):
    sam, cfn = load_both(lab_dir)
    name, _, function = function_by_code_uri(sam, cfn, lab_dir, FUNCTION)
    return sam, cfn, name, function


def test_task5_is_durable_with_an_execution_timeout_that_fits_the_longest_wait(lab_dir, workflow, load_event):
    # GIVEN the function as AWS deploys it, and the callback timeout its workflow uses
    _, _, name, function = the_function(lab_dir)
    handler, world = workflow()
    waited = run(handler, world, load_event("eventbridge_order_placed"), "events/eventbridge_order_placed.json").callback_timeout or 86400

    # THEN it is durable, with an ExecutionTimeout longer than that wait, and a retention for its history
    config = function.get("DurableConfig")
    assert isinstance(config, dict), (
        f"{name} has no DurableConfig: Lambda runs it as a plain function, which stops after 15 minutes and "
        "cannot checkpoint. Add DurableConfig: {ExecutionTimeout: ..., RetentionPeriodInDays: ...}."
    )
    timeout = templates.as_int(config.get("ExecutionTimeout"), None)
    assert timeout is not None and waited < timeout <= 31_622_400, (
        f"{name}'s DurableConfig.ExecutionTimeout is {config.get('ExecutionTimeout')!r} s; your workflow waits up to "
        f"{waited} s for the warehouse, plus its steps and retries. Choose more than that, at most 366 days "
        "(31,622,400 s): e.g. 345600 (4 days) for a 3-day wait."
    )
    retention = templates.as_int(config.get("RetentionPeriodInDays"), None)
    assert retention is not None and 1 <= retention <= 90, (
        f"{name}'s DurableConfig.RetentionPeriodInDays is {config.get('RetentionPeriodInDays')!r}; choose 1 to 90 days: "
        "how long Lambda keeps a finished execution's history, to look at what each step did."
    )


def test_task5_is_invoked_through_an_alias(lab_dir):
    # GIVEN the function as AWS deploys it, with its versions, aliases and rules
    _, cfn, name, _ = the_function(lab_dir)
    aliases = [n for n, a in templates.resources_of_type(cfn, "AWS::Lambda::Alias") if name in templates.references(a.get("FunctionName"))]

    # THEN a published version has an alias ...
    assert aliases, (
        f"{name} has no alias: its events would invoke $LATEST, and a deploy halfway through a workflow would replay "
        "its finished steps with other code. Add AutoPublishAlias: live (SAM publishes a version at each deploy "
        "and points the alias at it)."
    )
    # ... and the event that starts a workflow invokes that alias
    targets = [t for _, rule in templates.resources_of_type(cfn, "AWS::Events::Rule") for t in rule.get("Targets", [])]
    wrong = [t.get("Arn") for t in targets if not templates.references(t.get("Arn")) & set(aliases)]
    assert targets and not wrong, (
        f"The EventBridge rule targets {wrong or 'nothing'}; expected the alias {aliases[0]}. With AutoPublishAlias, "
        "SAM points the function's events at the alias."
    )


def test_task5_grants_its_tables_its_queue_and_its_checkpoints_only(lab_dir):
    # GIVEN the role the function runs with, every ARN resolved as AWS would
    _, cfn, name, function = the_function(lab_dir)
    role = role_of(cfn, function)
    variables = (function.get("Environment") or {}).get("Variables") or {}
    own: dict[str, tuple[str, set[str]]] = {}
    for variable in TABLES:
        for logical_id in templates.references(variables.get(variable)):
            own[logical_id] = (resource_arn(cfn, logical_id), {"dynamodb:putitem", "dynamodb:updateitem", "dynamodb:batchwriteitem", "dynamodb:getitem", "dynamodb:conditioncheckitem"})
    for logical_id in templates.references(variables.get("WAREHOUSE_QUEUE_URL")):
        own[logical_id] = (resource_arn(cfn, logical_id), {"sqs:sendmessage", "sqs:sendmessage*", "sqs:sendmessagebatch"})
    for _, config in templates.resources_of_type(cfn, "AWS::Lambda::EventInvokeConfig"):
        on_failure = ((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        for logical_id in templates.references(on_failure):  # SAM lets the role send failed events there
            own[logical_id] = (resource_arn(cfn, logical_id), {"sqs:sendmessage"})
    managed = [json.dumps(arn) for arn in role.get("ManagedPolicyArns", [])]
    grants = grants_of(cfn, role)

    # THEN no managed policy but the one for durable functions (or the basic one) ...
    broad = [arn for arn in managed if not any(p in arn for p in (DURABLE_MANAGED_POLICY, "AWSLambdaBasicExecutionRole"))]
    assert not broad, (
        f"{name}'s role has the managed policies {broad}, which reach every table or queue of the account. Use SAM "
        "policy templates scoped to one resource: DynamoDBWritePolicy: {TableName: !Ref StockTable} (one per "
        "table), SQSSendMessagePolicy: {QueueName: !GetAtt WarehouseQueue.QueueName}."
    )
    # ... it may checkpoint and read its durable state ...
    durable_managed = any(DURABLE_MANAGED_POLICY in arn for arn in managed)
    execution_arn = f"{resource_arn(cfn, name)}:1/durable-execution/order-7001/1"  # what Lambda authorizes
    missing = [a for a in DURABLE_ACTIONS if not durable_managed and not any(g.allows(a, execution_arn) for g in grants)]
    assert not missing, (
        f"{name} may not {', '.join(missing)}: a durable function saves each step's result and reads it back at "
        "every replay with these. DurableConfig makes SAM attach AWSLambdaBasicDurableExecutionRolePolicy; with a "
        "Role of your own, allow them on arn:aws:lambda:<region>:<account>:function:<name>:*."
    )
    # ... and reaches its three tables and its queue only, with the actions its work needs
    tables = [v for v in TABLES if not templates.references(variables.get(v))]
    assert not tables, f"{name}'s {', '.join(tables)} must be !Ref to the template's tables (a name is never hard-coded)."
    lambda_grants = [g for g in grants if all(a.lower().startswith("lambda:") for a in g.actions)]
    durable_actions = {a.lower() for a in DURABLE_ACTIONS}
    loose = [
        f"{', '.join(g.actions)} on {', '.join(g.resources)}"
        for g in lambda_grants
        if g.not_action
        or not {a.lower() for a in g.actions} <= durable_actions
        or not all(r.startswith(resource_arn(cfn, name) + ":") for r in g.resources)
    ]
    assert not loose, (
        f"{name}'s policy allows {'; '.join(loose)[:400]}. A durable function needs the two checkpoint actions "
        f"on its own versions only: {', '.join(DURABLE_ACTIONS)} on arn:aws:lambda:<region>:<account>:function:<name>:*."
    )
    too_broad, too_much = beyond([g for g in grants if g not in lambda_grants], own)
    assert not too_broad, (
        f"{name}'s policy reaches beyond its tables and its queue: {'; '.join(too_broad)[:600]}. Scope every statement "
        "to one of them by name, with no * (SAM's DynamoDBWritePolicy and SQSSendMessagePolicy do it for you)."
    )
    assert not too_much, (
        f"{name}'s policy allows {actions_on(too_much)}, which the workflow never does: it writes its tables and "
        "sends to its queue. Least privilege: DynamoDBWritePolicy, not DynamoDBCrudPolicy."
    )
    needed = [(v, a) for v, a in (("STOCK_TABLE", "dynamodb:UpdateItem"), ("PAYMENTS_TABLE", "dynamodb:PutItem"), ("ORDERS_TABLE", "dynamodb:PutItem"))]
    cannot = [f"{a} on {v}" for v, a in needed for ref in templates.references(variables.get(v)) if not any(g.allows(a, own[ref][0]) for g in grants)]
    queue = next(iter(templates.references(variables.get("WAREHOUSE_QUEUE_URL"))), None)
    if queue is None or not any(g.allows("sqs:SendMessage", own[queue][0]) for g in grants):
        cannot.append("sqs:SendMessage on the warehouse queue")
    assert not cannot, f"{name} may not do what its work needs: {', '.join(cannot)}. Add the scoped policy templates."


def test_task5_runs_on_arm64_and_a_runtime_durable_functions_support(lab_dir):
    # GIVEN the function as AWS deploys it
    _, _, name, function = the_function(lab_dir)

    # THEN arm64 (lab 1), and a runtime durable functions support
    assert function.get("Architectures") == ["arm64"], f"{name} runs on {function.get('Architectures') or ['x86_64']}; expected [arm64] (lab 1)."
    assert function.get("Runtime") in DURABLE_RUNTIMES, (
        f"{name} runs {function.get('Runtime')}; durable functions run on {' and '.join(DURABLE_RUNTIMES)} only."
    )
    # ... with the Powertools layer built for that runtime (its pydantic-core is compiled for one Python)
    powertools = [m for m in (POWERTOOLS_LAYER.match(str(layer)) for layer in layer_arns(function)) if m]
    wanted = (str(function["Runtime"]).replace(".", ""), "arm64")
    assert powertools and (powertools[0]["python"], powertools[0]["arch"]) == wanted, (
        f"{name} runs {function['Runtime']} on arm64 with the layers {layer_arns(function)}; expected the public "
        f"Powertools layer built for them: ...:layer:AWSLambdaPowertoolsPythonV3-{wanted[0]}-arm64:27."
    )


def test_task5_ships_the_sdk_in_a_layer_without_what_the_runtime_has(lab_dir):
    # GIVEN the function as written and as AWS deploys it, its folder, and the layers of its template
    sam, cfn, name, function = the_function(lab_dir)
    installs = requirement_names(lab_dir / FUNCTION / "requirements.txt")
    size, _ = package(lab_dir / FUNCTION)

    # THEN its own package is its code, within lab 6's budget: sam build installs nothing into it ...
    brings = f"{SDK} brings boto3 and botocore, 17.7 MB zipped" if SDK in installs else "libraries far larger than your code"
    assert not installs, (
        f"{FUNCTION}/requirements.txt installs {', '.join(installs)} into the function's package, and sam build installs "
        f"what each requires with it: {brings}, against lab 6's budget of {PACKAGE_BUDGET:,} bytes, unpacked at every "
        "cold start. Ship the SDK in the layer DurableSdkLayer (sdk_layer/) instead, and leave this requirements.txt "
        "with nothing to install."
    )
    assert size <= PACKAGE_BUDGET, (
        f"{FUNCTION}/ zips to {size:,} bytes; lab 6's budget for a package is {PACKAGE_BUDGET:,}. The folder is the "
        "package: keep your code in it, and libraries in a layer (is the SDK copied into it?)."
    )
    # ... and it loads a layer of this template (SAM names it after its id, plus a hash of its content)
    built_here = dict(templates.resources_of_type(sam, "AWS::Serverless::LayerVersion"))
    loaded = {ref for layer in function.get("Layers", []) for ref in templates.references(layer)}
    ours = [n for n in built_here if any(re.fullmatch(re.escape(n) + "[0-9a-f]{10}", ref) for ref in loaded)]
    assert ours, (
        f"{name} loads the layers {layer_arns(function)}, none built by this template: {SDK} is in no public "
        "layer, nor in Powertools'. Add `Layers: [!Ref DurableSdkLayer]` to the function (SAM adds it to the "
        "Globals' Powertools layer)."
    )
    # ... built from a pinned SDK, without its dependencies, where Lambda looks for Python layers (/opt/python)
    layer = ours[0]
    folder = lab_dir / str(built_here[layer].get("ContentUri", "")).rstrip("/")
    where = f"{folder.name}/"
    requirements = (folder / "requirements.txt").read_text(encoding="utf-8") if (folder / "requirements.txt").is_file() else ""
    assert re.search(rf"^\s*{SDK}==", requirements, re.M), (
        f"{where}requirements.txt does not pin {SDK} (==): the layer would get whatever version is newest on the day "
        "of the build, and a replay could meet other code than its first run."
    )
    provided = [p for p in requirement_names(folder / "requirements.txt") if p in RUNTIME_PACKAGES]
    assert not provided, f"{where}requirements.txt lists {', '.join(provided)}, which the runtime already has: remove them."
    build = (sam["Resources"][layer].get("Metadata") or {}).get("BuildMethod")
    assert build == "makefile", (
        f"{layer} is built with {build or 'no BuildMethod'}; a python3.x build method installs the SDK's dependencies "
        f"(boto3, botocore) into the layer. Set `Metadata: {{BuildMethod: makefile}}`: sam build runs {where}Makefile."
    )
    recipe = make_recipe(folder / "Makefile", f"build-{layer}")
    assert recipe, f"{where}Makefile has no target build-{layer}: sam build runs the target named after the layer's id."
    assert re.search(r"pip3?\b.*\binstall\b", recipe) and NO_DEPENDENCIES.search(recipe), (
        f"{where}Makefile's build-{layer} installs the SDK with its dependencies: boto3 and botocore, 17.7 MB zipped, "
        "which the runtime already has. Add --no-deps to its pip install."
    )
    assert "$(ARTIFACTS_DIR)/python" in recipe.replace("${ARTIFACTS_DIR}", "$(ARTIFACTS_DIR)"), (
        f"{where}Makefile's build-{layer} does not install into $(ARTIFACTS_DIR)/python: Lambda unpacks a layer in /opt, "
        "and Python finds its packages in /opt/python only."
    )
