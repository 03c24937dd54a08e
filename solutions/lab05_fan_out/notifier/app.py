"""Notifier: tells the sales team about each large order, once.

Subscribed to the orders topic with a filter policy (see template.yaml): SNS invokes it
only for the orders published with the message attribute size = large, so every
record it receives is an order to notify. A notification is a message on the
notifications queue, a stand-in for an email. SNS delivers at least once: Powertools
Idempotency, keyed on the SNS message id, sends nothing for a second delivery.
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

NOTIFICATIONS_QUEUE_URL = os.environ["NOTIFICATIONS_QUEUE_URL"]
IDEMPOTENCY_TABLE = os.environ["IDEMPOTENCY_TABLE"]

# Created once per execution environment, at import; reused by every warm invocation.
logger = Logger()
sqs = boto3.client("sqs")
persistence = DynamoDBPersistenceLayer(table_name=IDEMPOTENCY_TABLE)
# SNS keeps a message's id when it delivers the message again: one id, one notification.
idempotency = IdempotencyConfig(event_key_jmespath="Sns.MessageId")


def notification(message: str) -> str:
    """The notification for one order (the SNS message's text, an order as JSON)."""
    order = json.loads(message, parse_float=Decimal)
    return json.dumps(
        {
            "subject": f"Large order {order['order_id']}",
            "order_id": order["order_id"],
            "customer": order["customer"],
            "total": str(order["total"]),
        }
    )


def send_notification(client, queue_url: str, message: str) -> str:
    body = notification(message)
    return client.send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"]


@idempotent_function(
    data_keyword_argument="record",
    config=idempotency,
    persistence_store=persistence,
)
def notify(record: SNSEventRecord) -> str:
    """Notify one order; a repeat of the same message id replays the first result."""
    message = record.sns.message
    notification_id = send_notification(sqs, NOTIFICATIONS_QUEUE_URL, message)
    logger.info(
        "Notification sent",
        extra={"message_id": record.sns.message_id, "notification_id": notification_id},
    )
    return notification_id


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> None:
    # Lets Idempotency release a message id whose invocation timed out.
    idempotency.register_lambda_context(context)
    for record in SNSEvent(event).records:
        notify(record=record)
