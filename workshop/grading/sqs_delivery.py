"""Drain an SQS queue into a handler the way Lambda's event source mapping does, offline.

In AWS, Lambda polls the queue for you: it receives up to BatchSize messages, builds an SQS event
from them, invokes the function, then deletes the messages that succeeded. A message that failed
stays on the queue and comes back once its visibility timeout expires; after maxReceiveCount
receives, the queue's RedrivePolicy moves it to the dead-letter queue. `drain` does the same against
a moto queue (moto itself counts the receives and moves messages to the dead-letter queue), so the
graders and notebooks can watch a whole delivery cycle in milliseconds:

- the handler raises: the whole batch failed;
- without `FunctionResponseTypes: [ReportBatchItemFailures]`, a handler that returns succeeded for
  every message, whatever it returned (Lambda ignores batchItemFailures then);
- with it, the messages named in `batchItemFailures` failed; an empty or missing list means none
  did; a malformed response, or an id that is not in the batch, fails the whole batch;
- failed messages are made visible again at once (instead of waiting for the visibility timeout).

The loop is bounded: it stops when the queue is empty, when a message has been received
`max_receives` times (a queue without a RedrivePolicy would return it until its retention period
ends), or after `max_invocations`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from workshop.grading.feedback import describe
from workshop.lambda_runtime import LambdaContext
from workshop.sandbox import REGION
from workshop.templates import as_int, references

SQS_RECEIVE_LIMIT = 10  # messages per ReceiveMessage call, an SQS limit
DEFAULT_BATCH_SIZE = 10  # Lambda's default for an SQS event source
DEFAULT_FUNCTION_TIMEOUT = 3  # seconds, Lambda's default
DEFAULT_VISIBILITY_TIMEOUT = 30  # seconds, SQS's default
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
EMPTY = "the queue is empty"  # why drain() stopped, when all went well


class SettingsError(ValueError):
    """The template does not describe an SQS-triggered function; the message says what is missing."""


@dataclass(frozen=True)
class QueueSettings:
    """What a template says about one function's SQS event source and its queue."""

    batch_size: int = DEFAULT_BATCH_SIZE
    report_batch_item_failures: bool = False
    max_receive_count: int | None = None  # None: the queue has no RedrivePolicy
    visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT
    function_timeout: int = DEFAULT_FUNCTION_TIMEOUT
    batching_window: int | None = None
    queue: str = ""  # the queue's logical id in the template

    @classmethod
    def from_template(cls, cfn: dict, function: str) -> QueueSettings:
        """Read the settings of `function` (a logical id) from a transformed (CloudFormation) template."""
        resources = cfn.get("Resources", {})
        mappings = [
            resource.get("Properties") or {}
            for resource in resources.values()
            if resource.get("Type") == "AWS::Lambda::EventSourceMapping"
            and (resource.get("Properties") or {}).get("FunctionName") == {"Ref": function}
        ]
        queues = {name for name, resource in resources.items() if resource.get("Type") == "AWS::SQS::Queue"}
        sqs = [(m, q) for m in mappings for q in sorted(references(m.get("EventSourceArn")) & queues)]
        if not sqs:
            raise SettingsError(
                f"{function} has no SQS event on a queue of the template "
                "(Events: {Type: SQS, Properties: {Queue: !GetAtt <queue>.Arn}})"
            )
        mapping, queue = sqs[0]
        queue_properties = resources[queue].get("Properties") or {}
        redrive = queue_properties.get("RedrivePolicy") or {}
        function_properties = resources.get(function, {}).get("Properties") or {}
        window = mapping.get("MaximumBatchingWindowInSeconds")
        return cls(
            batch_size=as_int(mapping.get("BatchSize"), DEFAULT_BATCH_SIZE),
            report_batch_item_failures=REPORT_BATCH_ITEM_FAILURES
            in (mapping.get("FunctionResponseTypes") or []),
            max_receive_count=as_int(redrive.get("maxReceiveCount"), None),
            visibility_timeout=as_int(queue_properties.get("VisibilityTimeout"), DEFAULT_VISIBILITY_TIMEOUT),
            function_timeout=as_int(function_properties.get("Timeout"), DEFAULT_FUNCTION_TIMEOUT),
            batching_window=as_int(window, None),
            queue=queue,
        )


@dataclass(frozen=True)
class Queues:
    url: str
    arn: str
    dead_letter_url: str | None  # None when the settings have no redrive policy


def create_queues(sqs: Any, settings: QueueSettings, name: str) -> Queues:
    """A queue (and its dead-letter queue, when the settings redrive) configured like the template's."""
    attributes = {"VisibilityTimeout": str(settings.visibility_timeout)}
    dead_letter_url = None
    if settings.max_receive_count is not None:
        dead_letter_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dead_letter_arn = queue_arn(sqs, dead_letter_url)
        attributes["RedrivePolicy"] = (
            f'{{"deadLetterTargetArn": "{dead_letter_arn}", "maxReceiveCount": {settings.max_receive_count}}}'
        )
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return Queues(url, queue_arn(sqs, url), dead_letter_url)


def queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def to_record(message: dict, source_arn: str) -> dict:
    """One received message as Lambda puts it in an SQS event's Records."""
    attributes = {
        name: str(value)
        for name, value in message.get("Attributes", {}).items()
        if name in ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
                    "AWSTraceHeader", "MessageGroupId", "MessageDeduplicationId", "SequenceNumber")
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": source_arn,
        "awsRegion": REGION,
    }


@dataclass
class Invocation:
    """One call of the handler with one batch, and what Lambda made of it."""

    message_ids: list[str]
    receive_counts: dict[str, int]
    response: Any = None
    error: str = ""  # the handler raised: what, and where in the learner's code
    failed: list[str] = field(default_factory=list)  # returned to the queue
    deleted: list[str] = field(default_factory=list)
    note: str = ""  # why Lambda read the response the way it did, when that is not obvious


@dataclass
class Delivery:
    """Everything `drain` did, in order, and why it stopped."""

    invocations: list[Invocation] = field(default_factory=list)
    stopped: str = ""

    @property
    def deleted(self) -> set[str]:
        return {message for invocation in self.invocations for message in invocation.deleted}

    @property
    def drained(self) -> bool:
        """The queue was empty when the loop stopped."""
        return self.stopped == EMPTY

    def receives(self, message_id: str) -> int:
        return sum(message_id in invocation.message_ids for invocation in self.invocations)


def failed_ids(response: Any, batch: list[str]) -> tuple[list[str], str]:
    """The messages Lambda returns to the queue for a response to a batch (ReportBatchItemFailures on)."""
    if response is None or response == {}:
        return [], ""
    if not isinstance(response, dict):
        return list(batch), f"the response {response!r:.80} is not an object: the whole batch failed"
    failures = response.get("batchItemFailures")
    if failures is None or failures == []:
        return [], ""
    if not isinstance(failures, list):
        return list(batch), "batchItemFailures is not a list: the whole batch failed"
    failed = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in batch:
            return list(batch), (
                f"batchItemFailures holds {failure!r:.80}, which names no message of the batch: "
                "the whole batch failed"
            )
        failed.append(identifier)
    return [message for message in batch if message in failed], ""


def receive_batch(sqs: Any, url: str, batch_size: int) -> list[dict]:
    """Up to `batch_size` visible messages, with their attributes, as Lambda's poller gathers them."""
    messages: list[dict] = []
    while len(messages) < batch_size:
        received = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(SQS_RECEIVE_LIMIT, batch_size - len(messages)),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not received:
            break
        messages.extend(received)
    return messages


def _chunks(items: list[dict]) -> Iterator[list[dict]]:
    for start in range(0, len(items), SQS_RECEIVE_LIMIT):
        yield items[start : start + SQS_RECEIVE_LIMIT]


def drain(
    sqs: Any,
    queues: Queues,
    handler: Callable[[dict, Any], Any],
    settings: QueueSettings,
    context: Any | None = None,
    max_receives: int = 10,
    max_invocations: int = 200,
) -> Delivery:
    """Invoke `handler` with batches from the queue until it is empty (or the loop gives up)."""
    delivery = Delivery()
    while len(delivery.invocations) < max_invocations:
        messages = receive_batch(sqs, queues.url, settings.batch_size)
        if not messages:
            delivery.stopped = EMPTY
            return delivery
        batch = [message["MessageId"] for message in messages]
        counts = {m["MessageId"]: int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)) for m in messages}
        invocation = Invocation(batch, counts)
        delivery.invocations.append(invocation)
        event = {"Records": [to_record(message, queues.arn) for message in messages]}
        try:
            invocation.response = handler(event, context or LambdaContext())
        except Exception as error:  # noqa: BLE001  (any error the handler raises fails the batch, as in Lambda)
            invocation.error = describe(error)
            invocation.failed = list(batch)
        else:
            if settings.report_batch_item_failures:
                invocation.failed, invocation.note = failed_ids(invocation.response, batch)
            elif invocation.response:
                invocation.note = (
                    "without FunctionResponseTypes: [ReportBatchItemFailures], Lambda ignored the response "
                    "and deleted the whole batch"
                )
        invocation.deleted = [message for message in batch if message not in invocation.failed]
        handles = {message["MessageId"]: message["ReceiptHandle"] for message in messages}
        done = [{"Id": str(n), "ReceiptHandle": handles[m]} for n, m in enumerate(invocation.deleted)]
        retry = [
            {"Id": str(n), "ReceiptHandle": handles[m], "VisibilityTimeout": 0}
            for n, m in enumerate(invocation.failed)
        ]
        for chunk in _chunks(done):
            sqs.delete_message_batch(QueueUrl=queues.url, Entries=chunk)
        for chunk in _chunks(retry):
            sqs.change_message_visibility_batch(QueueUrl=queues.url, Entries=chunk)
        worn = sorted(m for m in invocation.failed if counts[m] >= max_receives)
        if worn:
            delivery.stopped = (
                f"{len(worn)} message(s) had been received {max_receives} times and still failed"
            )
            return delivery
    delivery.stopped = f"stopped after {max_invocations} invocations"
    return delivery


def receive_all(sqs: Any, url: str, limit: int = 100) -> list[dict]:
    """Every message waiting in a queue (a dead-letter queue, say), up to `limit`."""
    messages: list[dict] = []
    while len(messages) < limit:
        received = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=SQS_RECEIVE_LIMIT, AttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not received:
            break
        messages.extend(received)
    return messages


def waiting(sqs: Any, url: str) -> int:
    """How many messages are still on a queue, visible or in flight."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return sum(int(value) for value in attributes.values())
