"""Order workflow: reserve stock, take the payment, wait for the warehouse, complete.

Or undo: when a step fails for good, the steps already done are undone, newest first.
A Lambda durable function, started asynchronously (through its alias) by an EventBridge
event "OrderPlaced" whose detail is one order, shaped like lab 3's order messages:
{"order_id", "customer", "items": [{"sku", "quantity", "unit_price"}]}. Lambda
checkpoints each step; after a wait, a retry or a crash it runs this handler again
from the top (a replay), and each finished step returns its recorded result instead
of running again.
"""

import json
import os
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import boto3
from aws_durable_execution_sdk_python import (
    CallbackError,
    DurableContext,
    StepContext,
    StepError,
    durable_execution,
)
from aws_durable_execution_sdk_python.config import (
    Duration,
    StepConfig,
    WaitForCallbackConfig,
)
from aws_durable_execution_sdk_python.retries import (
    RetryStrategyConfig,
    create_retry_strategy,
)
from aws_durable_execution_sdk_python.types import WaitForCallbackContext
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

STOCK_TABLE = os.environ["STOCK_TABLE"]
PAYMENTS_TABLE = os.environ["PAYMENTS_TABLE"]
ORDERS_TABLE = os.environ["ORDERS_TABLE"]
WAREHOUSE_QUEUE_URL = os.environ["WAREHOUSE_QUEUE_URL"]

# The warehouse confirms within three days, or the order is undone. DurableConfig's
# ExecutionTimeout (template.yaml) leaves room for this wait and the steps around it.
SHIPMENT_TIMEOUT = Duration.from_days(3)

# A payment provider that is briefly unavailable usually answers a few seconds later:
# three attempts, 2 then 4 seconds apart. Only its errors (ClientError) are retried.
PAYMENT_RETRIES = StepConfig(
    retry_strategy=create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=3,
            initial_delay=Duration.from_seconds(2),
            backoff_rate=2,
            retryable_error_types=[ClientError],
        )
    )
)
# Out of stock stays out of stock: one attempt, then the workflow gives up.
ONE_ATTEMPT = StepConfig(
    retry_strategy=create_retry_strategy(RetryStrategyConfig(max_attempts=1))
)

# Created once per execution environment, at import; reused by every invocation.
logger = Logger()
dynamodb = boto3.resource("dynamodb")
stock = dynamodb.Table(STOCK_TABLE)
payments = dynamodb.Table(PAYMENTS_TABLE)
orders = dynamodb.Table(ORDERS_TABLE)
sqs = boto3.client("sqs")


class OutOfStock(Exception):
    """The stock cannot cover the order: no retry will change that."""


def order_total(order: dict) -> Decimal:
    prices = (i["quantity"] * Decimal(str(i["unit_price"])) for i in order["items"])
    return sum(prices, Decimal(0)).quantize(Decimal("0.01"))


def start(_: StepContext) -> dict:
    """What must not change between replays: the order's time, and its payment's id."""
    return {
        "placed_at": datetime.now(UTC).isoformat(),
        "payment_id": f"pay-{uuid.uuid4()}",
    }


def reserve_stock(order: dict) -> None:
    """Take every item off the stock in one transaction, or none of them."""
    try:
        stock.meta.client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": STOCK_TABLE,
                        "Key": {"sku": item["sku"]},
                        "UpdateExpression": "SET available = available - :quantity",
                        "ConditionExpression": "available >= :quantity",
                        "ExpressionAttributeValues": {":quantity": item["quantity"]},
                    }
                }
                for item in order["items"]
            ]
        )
    except stock.meta.client.exceptions.TransactionCanceledException as error:
        raise OutOfStock(f"not enough stock for order {order['order_id']}") from error


def release_stock(order: dict) -> None:
    for item in order["items"]:
        stock.update_item(
            Key={"sku": item["sku"]},
            UpdateExpression="SET available = available + :quantity",
            ExpressionAttributeValues={":quantity": item["quantity"]},
        )


def take_payment(order: dict, payment_id: str) -> str:
    """Charge once per payment id: a step that runs again finds its charge there."""
    try:
        payments.put_item(
            Item={
                "payment_id": payment_id,
                "order_id": order["order_id"],
                "amount": order_total(order),
                "status": "CHARGED",
            },
            ConditionExpression="attribute_not_exists(payment_id)",
        )
    except payments.meta.client.exceptions.ConditionalCheckFailedException:
        pass  # charged by an earlier attempt whose answer was lost
    return payment_id


def refund_payment(payment_id: str) -> None:
    payments.update_item(
        Key={"payment_id": payment_id},
        UpdateExpression="SET #status = :refunded",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":refunded": "REFUNDED"},
    )


def request_shipment(order: dict, placed_at: str, callback_id: str) -> None:
    """Ask the warehouse to ship; it answers SendDurableExecutionCallbackSuccess."""
    items = [{"sku": i["sku"], "quantity": i["quantity"]} for i in order["items"]]
    sqs.send_message(
        QueueUrl=WAREHOUSE_QUEUE_URL,
        MessageBody=json.dumps(
            {
                "order_id": order["order_id"],
                "items": items,
                "placed_at": placed_at,
                "callback_id": callback_id,
            }
        ),
    )


def record_order(order: dict, placed_at: str, status: str, **details: str) -> None:
    orders.put_item(
        Item={
            "order_id": order["order_id"],
            "placed_at": placed_at,
            "status": status,
            **details,
        }
    )


def failure_reason(error: Exception) -> str:
    if isinstance(error, CallbackError):
        return f"shipment not confirmed: {error}"
    return f"{error}"


@durable_execution
def lambda_handler(event: dict, context: DurableContext) -> dict:
    # Replay-aware: a replay does not log again what the first run logged.
    context.set_logger(logger)
    order = json.loads(json.dumps(event["detail"]), parse_float=Decimal)
    started = context.step(start, name="start")
    placed_at, payment_id = started["placed_at"], started["payment_id"]
    undo = []  # what to run, newest first, if a later step fails for good
    try:
        context.step(
            lambda _: reserve_stock(order), name="reserve-stock", config=ONE_ATTEMPT
        )
        undo.append(("release-stock", lambda _: release_stock(order)))

        context.step(
            lambda _: take_payment(order, payment_id),
            name="take-payment",
            config=PAYMENT_RETRIES,
        )
        undo.append(("refund-payment", lambda _: refund_payment(payment_id)))

        def ask_warehouse(callback_id: str, _: WaitForCallbackContext) -> None:
            request_shipment(order, placed_at, callback_id)

        confirmation = context.wait_for_callback(
            ask_warehouse,
            name="await-shipment",
            config=WaitForCallbackConfig(timeout=SHIPMENT_TIMEOUT),
        )
        tracking = json.loads(confirmation or "{}").get("tracking", "")
        context.step(
            lambda _: record_order(
                order, placed_at, "COMPLETED", payment_id=payment_id, tracking=tracking
            ),
            name="complete-order",
        )
    except (StepError, CallbackError) as error:
        reason = failure_reason(error)
        for name, compensation in reversed(undo):
            context.step(compensation, name=name)
        context.step(
            lambda _: record_order(order, placed_at, "FAILED", reason=reason),
            name="fail-order",
        )
        context.logger.warning("Order failed", extra={"reason": reason})
        return {"order_id": order["order_id"], "status": "FAILED", "reason": reason}
    context.logger.info("Order completed", extra={"tracking": tracking})
    return {
        "order_id": order["order_id"],
        "status": "COMPLETED",
        "payment_id": payment_id,
        "tracking": tracking,
    }
