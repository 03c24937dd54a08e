"""Order worker: writes each order of an SQS batch, with its total, to DynamoDB.

Receives SQS events: up to BatchSize records, each with one order as its JSON body
({"order_id", "customer", "items": [{"sku", "quantity", "unit_price"}]}).
Answers with the ids of the messages that failed (batchItemFailures), so that only
those return to the queue.
"""

import os
from decimal import Decimal

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

TABLE_NAME = os.environ["TABLE_NAME"]
CENT = Decimal("0.01")

# Created once per execution environment, at import; reused by every warm invocation.
logger = Logger()
tracer = Tracer()
processor = BatchProcessor(event_type=EventType.SQS)
table = boto3.resource("dynamodb").Table(TABLE_NAME)


class OrderItem(BaseModel):
    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)
    unit_price: Decimal = Field(ge=0, decimal_places=2)


class Order(BaseModel):
    """One message body. Decimal, never float: money must add up exactly."""

    order_id: str = Field(min_length=1)
    customer: str = Field(min_length=1)
    items: list[OrderItem] = Field(min_length=1)


def order_total(order: Order) -> Decimal:
    total = sum((item.quantity * item.unit_price for item in order.items), Decimal(0))
    return total.quantize(CENT)


def write_once(orders_table, order: Order) -> bool:
    """Write the order unless it is already there; False for a duplicate delivery."""
    item = {**order.model_dump(), "total": order_total(order)}
    try:
        orders_table.put_item(
            Item=item, ConditionExpression="attribute_not_exists(order_id)"
        )
    except orders_table.meta.client.exceptions.ConditionalCheckFailedException:
        return False
    return True


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    """Process one message; raising marks it, and only it, as failed."""
    logger.set_correlation_id(record.message_id)
    try:
        order = Order.model_validate_json(record.body)
        written = write_once(table, order)
    except Exception:
        logger.exception(
            "Order rejected",
            extra={"receive_count": record.attributes.approximate_receive_count},
        )
        raise
    if written:
        logger.info("Order written", extra={"order_id": order.order_id})
    else:
        logger.info("Duplicate delivery skipped", extra={"order_id": order.order_id})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event,
        record_handler=record_handler,
        processor=processor,
        context=context,
    )
