"""Grading helpers for S3-triggered functions: buckets and objects in moto, real S3 events,
results read back, and watches on how the learner's code calls AWS and reads object bodies.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import botocore.client
import pytest
from botocore.response import StreamingBody

from workshop import templates
from workshop.grading.aws import client
from workshop.grading.spies import innermost_learner_line

# --- buckets, objects and events -------------------------------------------------------------


def new_bucket(label: str) -> str:
    """A fresh bucket with a random name (so that no hard-coded name can match)."""
    name = f"{label}-{uuid.uuid4().hex[:12]}"
    client("s3").create_bucket(Bucket=name)
    return name


def put_objects(bucket: str, objects: dict[str, bytes]) -> None:
    s3 = client("s3")
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def addressed_to(event: dict, *buckets: str) -> dict:
    """`event` with its records' bucket (name and ARN) replaced: record i goes to buckets[i],
    or to the last bucket given when there are more records than buckets."""
    for index, record in enumerate(event.get("Records", [])):
        bucket = buckets[min(index, len(buckets) - 1)]
        record["s3"]["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
    return event


def records_alone(event: dict) -> list[dict]:
    """One event per record of `event`, each holding that record only."""
    return [{**event, "Records": [record]} for record in event.get("Records", [])]


def event_sent_by_s3(bucket: str, key: str, body: bytes, prefix: str, suffix: str) -> dict:
    """The event S3 itself (moto's) sends when `key` is put into `bucket`.

    The bucket notifies an SQS queue, filtered on `prefix` and `suffix` like the lab's
    template; the event is the body of the message the queue receives.
    """
    s3, sqs = client("s3"), client("sqs")
    queue = sqs.create_queue(QueueName=f"s3-events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rules = [{"Name": "prefix", "Value": prefix}, {"Name": "suffix", "Value": suffix}]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"QueueArn": arn, "Events": ["s3:ObjectCreated:*"], "Filter": {"Key": {"FilterRules": rules}}}
            ]
        },
    )
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    events = [json.loads(message["Body"]) for message in messages]
    # S3 first sends an s3:TestEvent to check it may write to the queue.
    events = [event for event in events if "Records" in event]
    if len(events) != 1:
        raise RuntimeError(f"expected one S3 event for {key!r} on the queue, got {events!r}")
    return events[0]


@dataclass
class StoredResult:
    body: bytes
    metadata: dict[str, str]

    @property
    def document(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def objects_in(bucket: str) -> dict[str, StoredResult]:
    """Every object of `bucket` (the small ones a grader writes and reads), by key."""
    s3 = client("s3")
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            response = s3.get_object(Bucket=bucket, Key=item["Key"])
            found[item["Key"]] = StoredResult(response["Body"].read(), response.get("Metadata", {}))
    return found


# --- watches on the learner's code -----------------------------------------------------------


class ApiCalls:
    """Counts the AWS API calls made while installed, by (service, operation)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        original = botocore.client.BaseClient._make_api_call
        calls = self.calls

        def counting(client, operation_name, api_params):
            calls[(client.meta.service_model.service_name, operation_name)] += 1
            return original(client, operation_name, api_params)

        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)

    def count(self, service: str, operation_prefix: str = "") -> int:
        return sum(
            n for (name, operation), n in self.calls.items() if name == service and operation.startswith(operation_prefix)
        )


class WholeBodyReads:
    """Records each read of an S3 object's body that takes it whole (or more than `limit`
    bytes at once), with the line of the learner's code it came from."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
        self.reads: list[str] = []
        self.chunks = 0
        original_read, original_readlines = StreamingBody.read, StreamingBody.readlines
        spy = self

        def read(body, amt=None):
            if amt is None or amt < 0 or amt > limit:
                spy.reads.append(f".read({'' if amt is None else amt}) {innermost_learner_line()}")
            else:
                spy.chunks += 1
            return original_read(body, amt)

        def readlines(body):
            spy.reads.append(f".readlines() {innermost_learner_line()}")
            return original_readlines(body)

        monkeypatch.setattr(StreamingBody, "read", read)
        monkeypatch.setattr(StreamingBody, "readlines", readlines)


# --- the template, as AWS deploys it -----------------------------------------------------------


def buckets(cfn: dict) -> dict[str, Any]:
    """The template's buckets: logical id -> BucketName as written (None when generated)."""
    found = templates.resources_of_type(cfn, "AWS::S3::Bucket")
    return {name: properties.get("BucketName") for name, properties in found}


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _parts(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for inner in value.values():
            yield from _parts(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _parts(inner)


def buckets_named_by(value: Any, cfn: dict) -> set[str]:
    """The template's buckets that `value` (a name or ARN expression) designates: through
    Ref/GetAtt/${...}, or by repeating a bucket's BucketName expression or literal name.
    '*' stands for every bucket."""
    named = buckets(cfn)
    if isinstance(value, str) and (value == "*" or value.startswith("arn:aws:s3:::*")):
        return {"*"}
    found = templates.references(value) & set(named)
    for bucket, name in named.items():
        if name is None:
            continue
        if isinstance(name, str):
            text = json.dumps(value)
            if f'"{name}"' in text or f":::{name}" in text:
                found.add(bucket)
        elif any(_same(part, name) for part in _parts(value)):
            found.add(bucket)
    return found


def trigger_buckets(cfn: dict, function: str) -> dict[str, list[dict]]:
    """Buckets that notify `function`: logical id -> its LambdaConfigurations for it."""
    found: dict[str, list[dict]] = {}
    for bucket, properties in templates.resources_of_type(cfn, "AWS::S3::Bucket"):
        for configuration in (properties.get("NotificationConfiguration") or {}).get("LambdaConfigurations", []):
            if function in templates.references(configuration.get("Function")):
                found.setdefault(bucket, []).append(configuration)
    return found


def filter_rules(configuration: dict) -> dict[str, str]:
    """A LambdaConfiguration's key filter, as {"prefix": ..., "suffix": ...}."""
    rules = ((configuration.get("Filter") or {}).get("S3Key") or {}).get("Rules", [])
    return {str(rule.get("Name", "")).lower(): rule.get("Value") for rule in rules}


def dependency_cycle(cfn: dict) -> list[str]:
    """A circular dependency between the template's resources (as a path A -> B -> A), or []."""
    resources = cfn.get("Resources", {})

    def needs(name: str) -> set[str]:
        resource = resources[name]
        depends = resource.get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else depends
        return (templates.references(resource.get("Properties")) | set(depends)) & set(resources)

    graph = {name: needs(name) for name in resources}
    state: dict[str, str] = {}  # "visiting" or "done"
    path: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = "visiting"
        path.append(name)
        for needed in sorted(graph[name]):
            if state.get(needed) == "visiting":
                return [*path[path.index(needed):], needed]
            if needed not in state and (cycle := visit(needed)):
                return cycle
        path.pop()
        state[name] = "done"
        return []

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)):
            return cycle
    return []
