"""Analytics counter: counts the orders and the revenue of each customer, once.

Subscribed to the orders topic without a filter, it receives every order: SNS events
whose records each carry one order as a JSON string (Sns.Message), with its customer
and its total. DynamoDB adds to the counters itself (UpdateItem with ADD), so that
concurrent invocations never overwrite each other's counts; Powertools Idempotency,
keyed on the SNS message id, counts a message delivered twice only once.
"""

import json
import os
from decimal import Decimal

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import SNSEvent
from aws_lambda_powertools.utilities.data_classes.sns_event import SNSEventRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

COUNTERS_TABLE = os.environ["COUNTERS_TABLE"]

# Created once per execution environment, at import; reused by every warm invocation.
logger = Logger()
table = boto3.resource("dynamodb").Table(COUNTERS_TABLE)
# TODO(task 3): SNS delivers at least once. Create a Powertools Idempotency
# persistence layer on the table named by IDEMPOTENCY_TABLE, and a config keyed on
# the SNS message id.


def count_order(counters_table, order: dict) -> None:
    """Add one order and its total to its customer's counters, in one atomic update."""
    # TODO(task 1): read, add, write back: two invocations that read the same
    # counters at once each write their own sum, and one order is lost. Let DynamoDB
    # add in a single request (update_item with an ADD update expression).
    key = {"customer": order["customer"]}
    counters = counters_table.get_item(Key=key).get("Item", {})
    counters_table.put_item(
        Item={
            **key,
            "orders": counters.get("orders", 0) + 1,
            "revenue": counters.get("revenue", 0) + order["total"],
        }
    )


# TODO(task 3): a second delivery of the same message must not count again: make
# this function idempotent (@idempotent_function), keyed on the message id.
def count(record: SNSEventRecord) -> None:
    """Count one order; a repeat of the same message id is skipped."""
    order = json.loads(record.sns.message, parse_float=Decimal)
    count_order(table, order)
    logger.info(
        "Order counted",
        extra={"message_id": record.sns.message_id, "customer": order["customer"]},
    )


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> None:
    # TODO(task 3): give Idempotency the Lambda context (register_lambda_context).
    # TODO(task 1): an SNS event's Records is a list, and SNSEvent(event).record is
    # only its first record. Count every record of the event.
    record = SNSEvent(event).record
    count(record=record)
