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
from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration
from aws_lambda_powertools import Logger

STOCK_TABLE = os.environ["STOCK_TABLE"]
PAYMENTS_TABLE = os.environ["PAYMENTS_TABLE"]
ORDERS_TABLE = os.environ["ORDERS_TABLE"]
WAREHOUSE_QUEUE_URL = os.environ["WAREHOUSE_QUEUE_URL"]

# TODO(task 3): how long the warehouse has to confirm a shipment (a Duration) before
# the order is undone; DurableConfig's ExecutionTimeout (template.yaml) must fit it.
# TODO(task 4): a bounded retry strategy for the payment provider, which is sometimes
# briefly unavailable; and none for the stock: out of stock stays out of stock.

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


@durable_execution
def lambda_handler(event: dict, context: DurableContext) -> dict:
    # Replay-aware: a replay does not log again what the first run logged.
    context.set_logger(logger)
    order = json.loads(json.dumps(event["detail"]), parse_float=Decimal)
    # TODO(task 2): this code runs again at every replay (after each wait, retry or
    # callback), so each replay gets another time and another payment id. Take them
    # from a step, whose result the replays get back unchanged.
    placed_at = datetime.now(UTC).isoformat()
    payment_id = f"pay-{uuid.uuid4()}"

    # TODO(task 1): a call that changes the world, outside a step: every replay
    # reserves the stock again.
    reserve_stock(order)
    # TODO(task 4): a payment that fails for good leaves the stock reserved. Undo what
    # was done, newest first (refund_payment, release_stock), each in a step, and end
    # with {"status": "FAILED", "reason": ...}.
    context.step(lambda _: take_payment(order, payment_id), name="take-payment")

    # TODO(task 3): a fixed wait does not know whether the warehouse shipped. Wait for
    # its answer with context.wait_for_callback (the warehouse gets the callback id
    # from request_shipment), with a timeout; never time.sleep, never a polling loop.
    context.step(
        lambda _: request_shipment(order, placed_at, callback_id=""),
        name="request-shipment",
    )
    context.wait(Duration.from_days(1), name="give-the-warehouse-a-day")
    context.step(
        lambda _: record_order(
            order, placed_at, "COMPLETED", payment_id=payment_id, tracking="unknown"
        ),
        name="complete-order",
    )
    context.logger.info("Order completed")
    return {
        "order_id": order["order_id"],
        "status": "COMPLETED",
        "payment_id": payment_id,
    }
