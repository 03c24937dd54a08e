"""CSV summaries: summarise each CSV file uploaded to S3 into a signed JSON result.

Receives S3 event notifications (s3:ObjectCreated:*) for objects under uploads/ ending
in .csv, possibly several records per event. Writes one result per object to
OUTPUT_BUCKET, at OUTPUT_PREFIX + the object's key + ".json", signed with HMAC-SHA256.
"""

import csv
import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

# TODO(task 3): a missing setting must fail at start, naming it: no silent defaults.
OUTPUT_BUCKET = os.environ.get("OUTPUT_BUCKET", "csv-summaries")
OUTPUT_PREFIX = os.environ.get("OUTPUT_PREFIX", "results/")

# Created once per execution environment, at import; reused by every warm invocation.
logger = Logger()
s3 = boto3.client("s3")


def number(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def summarise(rows: Iterator[list[str]]) -> dict:
    """Row count, column names, and count/sum/min/max of every numeric column."""
    # TODO(task 4): an empty file, or a row whose number of fields is not the
    # header's, is a bad file: raise an error that says what is wrong.
    header = next(rows)
    # One entry per column: its figures so far, or None once it holds text.
    figures: list[dict | None] = [{} for _ in header]
    count = 0
    for row in rows:
        if not row:
            continue  # a blank line
        count += 1
        for column, text in enumerate(row):
            seen = figures[column]
            if seen is None or not text.strip():
                continue  # a text column, or a blank cell
            value = number(text)
            if value is None:
                figures[column] = None
            elif not seen:
                figures[column] = {"count": 1, "sum": value, "min": value, "max": value}
            else:
                seen["count"] += 1
                seen["sum"] += value
                seen["min"] = min(seen["min"], value)
                seen["max"] = max(seen["max"], value)
    numeric = {name: seen for name, seen in zip(header, figures) if seen}
    return {"rows": count, "columns": header, "numeric": numeric}


def summarise_object(s3_client, bucket: str, key: str) -> dict:
    """The summary of one CSV object."""
    # TODO(task 6): stream the body; .read() holds the whole file in memory.
    body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    # TODO(task 4): a file that is not UTF-8 text or not a valid CSV table gets an
    # error result ({"error": "what is wrong"}) instead of crashing the invocation.
    return summarise(csv.reader(body.decode("utf-8-sig").splitlines()))


def put_signed_json(
    s3_client, bucket: str, key: str, document: dict, signing_key: str
) -> None:
    """Write `document` as JSON, with the HMAC-SHA256 of its bytes in the metadata."""
    body = json.dumps(document, indent=2, default=json_number).encode("utf-8")
    signature = hmac.new(signing_key.encode("utf-8"), body, hashlib.sha256).hexdigest()
    s3_client.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType="application/json",
        Metadata={"signature": signature},
    )


@logger.inject_lambda_context
@event_source(data_class=S3Event)
def lambda_handler(event: S3Event, context: LambdaContext) -> dict:
    # TODO(task 3): the key comes from the SecureString parameter named by
    # SIGNING_KEY_PARAMETER, through Powertools Parameters (cached), never from
    # a plain environment variable.
    signing_key = os.environ.get("SIGNING_KEY", "dev-key")
    written, skipped = [], []
    # TODO(task 1): summarise every record of the event, not only the first.
    record = event.record
    bucket = record.s3.bucket.name
    # TODO(task 2): keys arrive URL-encoded ("uploads/Q3+sales%28final%29.csv").
    key = record.s3.get_object.key
    # TODO(task 4): an object deleted before it is read (NoSuchKey) is logged and
    # skipped.
    result = summarise_object(s3, bucket, key)
    result_key = f"{OUTPUT_PREFIX}{key}.json"
    document = {"source": {"bucket": bucket, "key": key}, **result}
    put_signed_json(s3, OUTPUT_BUCKET, result_key, document, signing_key)
    written.append(result_key)
    return {"results": written, "skipped": skipped}
