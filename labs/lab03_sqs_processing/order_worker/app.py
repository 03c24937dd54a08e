"""Order worker: writes each order of an SQS batch, with its total, to DynamoDB.

Receives SQS events: up to BatchSize records, each with one order as its JSON body
({"order_id", "customer", "items": [{"sku", "quantity", "unit_price"}]}).
Answers with the ids of the messages that failed (batchItemFailures), so that only
those return to the queue.
"""

import json
import os

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

TABLE_NAME = os.environ["TABLE_NAME"]

# Created once per execution environment, at import; reused by every warm invocation.
table = boto3.resource("dynamodb").Table(TABLE_NAME)

# TODO(task 2): a Powertools BatchProcessor for SQS records, created here, once.
# TODO(task 3): a Powertools Logger and Tracer, created here, once.


def order_total(order: dict) -> float:
    # TODO(task 1): money in Decimal, never float (DynamoDB refuses floats, and
    # 3 * 0.10 + 0.20 is not 0.5 in floating point); round the total to cents.
    return sum(item["quantity"] * item["unit_price"] for item in order["items"])


def process(record: dict) -> None:
    # TODO(task 1): parse the body so that prices stay exact (Decimal).
    order = json.loads(record["body"])
    # TODO(task 2): refuse (raise for) an order with missing fields or a quantity
    # below 1; a pydantic model describes a valid order in one place.
    # TODO(task 3): log with the message id as the correlation id; on failure,
    # log the exception (logger.exception) and raise it again.
    print("processing", record["messageId"])
    # TODO(task 4): write each order once: a second delivery of the same order_id
    # must neither overwrite the first nor count as a failure.
    table.put_item(Item={**order, "total": order_total(order)})


# TODO(task 3): inject the Lambda context into the logs, trace this handler and
# the function that processes one record.
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    # TODO(task 2): one poison message fails the whole batch here, and every
    # message of it comes back. Let the BatchProcessor process the records and
    # answer with batchItemFailures (process_partial_response).
    # TODO(task 6): what this returns decides which messages Lambda deletes and
    # which come back, until the queue moves them to its dead-letter queue.
    for record in event["Records"]:
        process(record)
    return {}
