"""Hourly sales report: the orders of the previous full hour, as one JSON object in S3.

Receives EventBridge "Scheduled Event"s, one per hour. The event's `time` is the moment
the run was scheduled for, so a late run, a retry or a replay of the same event reports
the same hour, at the same key, with the same content.
"""

import json
import os
from datetime import datetime, timedelta, timezone

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from boto3.dynamodb.conditions import Attr

TABLE_NAME = os.environ["TABLE_NAME"]
INDEX_NAME = os.environ["INDEX_NAME"]
REPORT_BUCKET = os.environ["REPORT_BUCKET"]
REPORT_PREFIX = os.environ["REPORT_PREFIX"]

# Created once per execution environment, at import; reused by every warm invocation.
# TODO(task 4): a Powertools Logger and Metrics, created here, once.
table = boto3.resource("dynamodb").Table(TABLE_NAME)
s3 = boto3.client("s3")


def previous_hour(now: datetime) -> datetime:
    """The start of the last full hour before `now`."""
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def orders_of_hour(orders_table, index_name: str, hour: datetime) -> list[dict]:
    # TODO(task 3): a scan reads the whole table, every hour ever, to keep one; and
    # it returns at most 1 MB. Query the hour's partition of the index (index_name,
    # key order_hour) instead, and follow LastEvaluatedKey to the last page.
    response = orders_table.scan(
        FilterExpression=Attr("order_hour").eq(f"{hour:%Y-%m-%dT%H}")
    )
    return response["Items"]


def build_report(hour: datetime, orders: list[dict]) -> dict:
    # TODO(task 3): money in Decimal, never float: add up the totals exactly.
    revenue = sum(float(order["total"]) for order in orders)
    # TODO(task 4): an hour without orders is a report of zeros, not an error.
    average = revenue / len(orders)
    return {
        "hour_start": hour.isoformat(),
        "hour_end": (hour + timedelta(hours=1)).isoformat(),
        "orders": len(orders),
        "revenue": revenue,
        "average_order": round(average, 2),
    }


def write_report(s3_client, bucket: str, key: str, report: dict) -> None:
    s3_client.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(report, indent=2).encode("utf-8"),
        ContentType="application/json",
    )


# TODO(task 4): inject the Lambda context into the logs, and publish the metrics
# at the end of every invocation (log_metrics).
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    # TODO(task 1): which hour? The wall clock says when this run started, which
    # can be late, or a retry; the event's "time" says which run this is.
    hour = previous_hour(datetime.now(timezone.utc))
    report = build_report(hour, orders_of_hour(table, INDEX_NAME, hour))
    # TODO(task 2): one key per hour. With the time of the run in it, every rerun
    # adds a report instead of replacing the hour's one.
    run = datetime.now(timezone.utc)
    key = f"{REPORT_PREFIX}{hour:%Y/%m/%d/%H}-{run:%H%M%S}.json"
    write_report(s3, REPORT_BUCKET, key, report)
    # TODO(task 4): publish the orders counted and the revenue as metrics, and log
    # the run as JSON, instead of printing.
    print(f"Report {key}: {report['orders']} orders, revenue {report['revenue']}")
    return {"key": key, **report}
