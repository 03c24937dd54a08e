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
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

COUNTERS_TABLE = os.environ["COUNTERS_TABLE"]
IDEMPOTENCY_TABLE = os.environ["IDEMPOTENCY_TABLE"]

# Created once per execution environment, at import; reused by every warm invocation.
logger = Logger()
table = boto3.resource("dynamodb").Table(COUNTERS_TABLE)
persistence = DynamoDBPersistenceLayer(table_name=IDEMPOTENCY_TABLE)
# SNS keeps a message's id when it delivers the message again: one id, one count.
idempotency = IdempotencyConfig(event_key_jmespath="Sns.MessageId")


def count_order(counters_table, order: dict) -> None:
    """Add one order and its total to its customer's counters, in one atomic update."""
    counters_table.update_item(
        Key={"customer": order["customer"]},
        UpdateExpression="ADD orders :one, revenue :total",
        ExpressionAttributeValues={":one": 1, ":total": order["total"]},
    )


@idempotent_function(
    data_keyword_argument="record",
    config=idempotency,
    persistence_store=persistence,
)
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
    # Lets Idempotency release a message id whose invocation timed out.
    idempotency.register_lambda_context(context)
    for record in SNSEvent(event).records:
        count(record=record)
