"""Hourly sales report: the orders of the previous full hour, as one JSON object in S3.

Receives EventBridge "Scheduled Event"s, one per hour. The event's `time` is the moment
the run was scheduled for, so a late run, a retry or a replay of the same event reports
the same hour, at the same key, with the same content.
"""

import json
import os
from datetime import datetime, timedelta
from decimal import Decimal

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from boto3.dynamodb.conditions import Key

TABLE_NAME = os.environ["TABLE_NAME"]
INDEX_NAME = os.environ["INDEX_NAME"]
REPORT_BUCKET = os.environ["REPORT_BUCKET"]
REPORT_PREFIX = os.environ["REPORT_PREFIX"]
CENT = Decimal("0.01")

# Created once per execution environment, at import; reused by every warm invocation.
logger = Logger()
metrics = Metrics()
table = boto3.resource("dynamodb").Table(TABLE_NAME)
s3 = boto3.client("s3")


def previous_hour(scheduled_time: str) -> datetime:
    """The start of the last full hour before the scheduled time (UTC)."""
    scheduled = datetime.fromisoformat(scheduled_time)
    return scheduled.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def orders_of_hour(orders_table, index_name: str, hour: datetime) -> list[dict]:
    """Every order of the hour: its partition of the index, page after page."""
    query = {
        "IndexName": index_name,
        "KeyConditionExpression": Key("order_hour").eq(f"{hour:%Y-%m-%dT%H}"),
    }
    response = orders_table.query(**query)
    orders = response["Items"]
    while "LastEvaluatedKey" in response:
        response = orders_table.query(
            **query, ExclusiveStartKey=response["LastEvaluatedKey"]
        )
        orders.extend(response["Items"])
    return orders


def build_report(hour: datetime, orders: list[dict]) -> dict:
    """The hour's figures, from the hour and its orders alone: nothing of the run."""
    revenue = sum((order["total"] for order in orders), Decimal(0)).quantize(CENT)
    average = (revenue / len(orders)).quantize(CENT) if orders else Decimal("0.00")
    return {
        "hour_start": hour.isoformat(),
        "hour_end": (hour + timedelta(hours=1)).isoformat(),
        "orders": len(orders),
        "revenue": str(revenue),
        "average_order": str(average),
    }


def write_report(s3_client, bucket: str, key: str, report: dict) -> None:
    """The whole report, at a key of the hour: a rerun replaces it, never adds to it."""
    s3_client.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(report, indent=2).encode("utf-8"),
        ContentType="application/json",
    )


@logger.inject_lambda_context
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict:
    hour = previous_hour(event.time)
    report = build_report(hour, orders_of_hour(table, INDEX_NAME, hour))
    key = f"{REPORT_PREFIX}{hour:%Y/%m/%d/%H}.json"
    write_report(s3, REPORT_BUCKET, key, report)
    metrics.add_metric(
        name="OrdersCounted", unit=MetricUnit.Count, value=report["orders"]
    )
    metrics.add_metric(
        name="Revenue", unit=MetricUnit.NoUnit, value=float(report["revenue"])
    )
    logger.info("Report written", extra={"key": key, **report})
    return {"key": key, **report}
