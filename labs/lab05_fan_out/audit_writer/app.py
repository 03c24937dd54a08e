"""Audit writer: stores every order event, unchanged, in the audit table.

Subscribed to the orders topic without a filter, it receives every order: SNS events
whose records each carry one order as a JSON string (Sns.Message). Each is stored as
it came, under its SNS message id, so a second delivery of the same message writes
the same item again and changes nothing.
"""

import os

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import SNSEvent
from aws_lambda_powertools.utilities.data_classes.sns_event import SNSMessage
from aws_lambda_powertools.utilities.typing import LambdaContext

AUDIT_TABLE = os.environ["AUDIT_TABLE"]

# Created once per execution environment, at import; reused by every warm invocation.
logger = Logger()
table = boto3.resource("dynamodb").Table(AUDIT_TABLE)


def audit_item(message: SNSMessage) -> dict:
    """The message as SNS delivered it: its text unchanged, keyed by its message id."""
    return {
        "message_id": message.message_id,
        "message": message.message,
        "topic_arn": message.topic_arn,
        "published_at": message.timestamp,
        "attributes": {
            name: attribute.value
            for name, attribute in message.message_attributes.items()
        },
    }


def write_audit(audit_table, message: SNSMessage) -> None:
    audit_table.put_item(Item=audit_item(message))
    logger.info("Order event audited", extra={"message_id": message.message_id})


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> None:
    # TODO(task 1): an SNS event's Records is a list, and SNSEvent(event).record is
    # only its first record. Audit every record of the event.
    record = SNSEvent(event).record
    write_audit(table, record.sns)
