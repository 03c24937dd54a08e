"""CSV summaries: summarise each CSV file uploaded to S3 into a signed JSON result.

Receives S3 event notifications (s3:ObjectCreated:*) for objects under uploads/ ending
in .csv, possibly several records per event. Writes one result per object to
OUTPUT_BUCKET, at OUTPUT_PREFIX + the object's key + ".json", signed with HMAC-SHA256.
"""

import csv
import hashlib
import hmac
import io
import json
import os
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote_plus

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

OUTPUT_BUCKET = os.environ["OUTPUT_BUCKET"]
OUTPUT_PREFIX = os.environ["OUTPUT_PREFIX"]
SIGNING_KEY_PARAMETER = os.environ["SIGNING_KEY_PARAMETER"]
SIGNING_KEY_MAX_AGE = 300  # seconds: a rotated key is in use within five minutes
# The largest number a JSON reader can parse (a double's range); a larger cell is text.
LARGEST_NUMBER = Decimal("1e308")

# Created once per execution environment, at import; reused by every warm invocation.
logger = Logger()
s3 = boto3.client("s3")


class BadFile(ValueError):
    """The object is not a CSV table this function can summarise."""


def number(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() and value.copy_abs() <= LARGEST_NUMBER else None


def json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def summarise(rows: Iterator[list[str]]) -> dict:
    """Row count, column names, and count/sum/min/max of every numeric column."""
    header = next(rows, None)
    if not header:
        raise BadFile("the file is empty: there is no header row")
    # One entry per column: its figures so far, or None once it holds text.
    figures: list[dict | None] = [{} for _ in header]
    count = 0
    for row in rows:
        if not row:
            continue  # a blank line
        count += 1
        if len(row) != len(header):
            raise BadFile(
                f"row {count} has {len(row)} fields; the header has {len(header)}"
            )
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
    """The summary of one CSV object, or an error result that says what is wrong."""
    body = s3_client.get_object(Bucket=bucket, Key=key)["Body"]
    # A text stream over the body: csv pulls a few KB at a time, never the whole file.
    text = io.TextIOWrapper(body, encoding="utf-8-sig", newline="")
    try:
        return summarise(csv.reader(text))
    except BadFile as error:
        problem = str(error)
    except csv.Error as error:
        problem = f"the file is not valid CSV: {error}"
    except UnicodeDecodeError as error:
        problem = f"the file is not UTF-8 text: {error}"
    logger.warning("Cannot summarise the file", extra={"key": key, "error": problem})
    return {"error": problem}


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
    # Cached by Powertools: one call to Parameter Store per SIGNING_KEY_MAX_AGE.
    signing_key = parameters.get_parameter(
        SIGNING_KEY_PARAMETER, decrypt=True, max_age=SIGNING_KEY_MAX_AGE
    )
    written, skipped = [], []
    for record in event.records:
        bucket = record.s3.bucket.name
        key = unquote_plus(record.s3.get_object.key)  # keys arrive URL-encoded
        try:
            result = summarise_object(s3, bucket, key)
        except s3.exceptions.NoSuchKey:
            logger.warning("Object gone before it was read", extra={"key": key})
            skipped.append(key)
            continue
        result_key = f"{OUTPUT_PREFIX}{key}.json"
        document = {"source": {"bucket": bucket, "key": key}, **result}
        put_signed_json(s3, OUTPUT_BUCKET, result_key, document, signing_key)
        written.append(result_key)
    return {"results": written, "skipped": skipped}
