"""Publish to an SNS topic and deliver to each subscribed function the way SNS and Lambda do, offline.

In AWS, every subscription of a topic gets its own copy of each message its filter policy accepts.
SNS invokes a subscribed function asynchronously, with an SNS event of one record; Lambda retries a
failed event (`MaximumRetryAttempts`, 2 by default), then sends it to the function's on-failure
destination (an invocation record with the error) or dead-letter queue (the event itself), if it has
one. Without either, the event is dropped: lost.

moto cannot run functions, but its SNS delivers to SQS subscriptions and evaluates their filter
policies. So `FanOut.create` subscribes one moto queue per function to a moto topic, each with the
`FilterPolicy` (and `FilterPolicyScope`) of that function's subscription in the template, and with
`RawMessageDelivery` off, so that each queued body is the SNS envelope. `deliver` then plays SNS and
Lambda's asynchronous invocation for each function in turn:

- each queued envelope becomes the SNS event Lambda would pass (`Records[].Sns`, with `MessageId`,
  `Message`, `MessageAttributes`, `TopicArn`...), one record per event, as SNS sends them;
- each function on its own: one that raises neither stops the others nor changes what they receive;
- a failed event is tried again up to the template's `MaximumRetryAttempts` (at most 2, Lambda's
  limit), then sent to the function's on-failure SQS queue or dead-letter SQS queue of the template,
  as Lambda would; without one, the delivery records it as lost;
- retries come at once (Lambda waits a minute, then two).

The loop is bounded: at most `max_messages` messages per function, three attempts per message.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from typing import Any

from workshop.grading.feedback import describe
from workshop.lambda_runtime import LambdaContext
from workshop.sandbox import REGION
from workshop.templates import as_int, references

ACCOUNT = "123456789012"  # moto's account
DEFAULT_MAX_RETRY_ATTEMPTS = 2  # Lambda's default, and its maximum, for asynchronous invocations
DEFAULT_FILTER_POLICY_SCOPE = "MessageAttributes"
SQS_RECEIVE_LIMIT = 10  # messages per ReceiveMessage call, an SQS limit
DESTINATION = "on-failure destination"
DEAD_LETTER_QUEUE = "dead-letter queue"
SUCCEEDED = "succeeded"
LOST = "lost"


class SettingsError(ValueError):
    """The template does not describe a topic with subscribed functions; the message says what is missing."""


@dataclass(frozen=True)
class Subscriber:
    """What a template says about one function subscribed to the topic, and about its failures."""

    function: str  # the function's logical id
    filter_policy: dict | None = None
    filter_policy_scope: str = DEFAULT_FILTER_POLICY_SCOPE
    max_retry_attempts: int = DEFAULT_MAX_RETRY_ATTEMPTS
    retry_attempts_set: bool = False  # the template says MaximumRetryAttempts itself
    on_failure: str | None = None  # the logical id of the SQS queue failed events go to
    on_failure_kind: str = ""  # DESTINATION or DEAD_LETTER_QUEUE


@dataclass(frozen=True)
class TopicSettings:
    """What a transformed template says about its one SNS topic and the functions subscribed to it."""

    topic: str  # the topic's logical id
    subscribers: tuple[Subscriber, ...]

    @classmethod
    def from_template(cls, cfn: dict) -> TopicSettings:
        resources = cfn.get("Resources", {})
        topics = sorted(name for name, r in resources.items() if r.get("Type") == "AWS::SNS::Topic")
        if len(topics) != 1:
            raise SettingsError(
                f"expected one AWS::SNS::Topic, found {len(topics)} ({', '.join(topics) or 'none'})"
            )
        topic = topics[0]
        functions = {name for name, r in resources.items() if r.get("Type") == "AWS::Lambda::Function"}
        subscribers = []
        for resource in resources.values():
            properties = resource.get("Properties") or {}
            if resource.get("Type") != "AWS::SNS::Subscription" or properties.get("Protocol") != "lambda":
                continue
            if topic not in references(properties.get("TopicArn")):
                continue
            for function in sorted(references(properties.get("Endpoint")) & functions):
                subscribers.append(_subscriber(resources, function, properties))
        if not subscribers:
            raise SettingsError(
                f"no function is subscribed to {topic} "
                "(Events: {Type: SNS, Properties: {Topic: !Ref <topic>}} on each function)"
            )
        return cls(topic, tuple(subscribers))

    def subscriber(self, function: str) -> Subscriber | None:
        return next((s for s in self.subscribers if s.function == function), None)


def asynchronous_settings(cfn: dict, function: str) -> Subscriber:
    """How Lambda handles `function`'s asynchronous invocations (retries, failure queue), from the template."""
    return _subscriber(cfn.get("Resources", {}), function, {})


def _subscriber(resources: dict, function: str, subscription: dict) -> Subscriber:
    queues = {name for name, r in resources.items() if r.get("Type") == "AWS::SQS::Queue"}
    configs = [
        resource.get("Properties") or {}
        for resource in resources.values()
        if resource.get("Type") == "AWS::Lambda::EventInvokeConfig"
        and function in references((resource.get("Properties") or {}).get("FunctionName"))
    ]
    config = configs[0] if configs else {}
    retries = as_int(config.get("MaximumRetryAttempts"), None)
    on_failure = ((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    dead_letter = ((resources[function].get("Properties") or {}).get("DeadLetterConfig") or {}).get("TargetArn")
    target, kind = None, ""
    if references(on_failure) & queues:
        target, kind = sorted(references(on_failure) & queues)[0], DESTINATION
    elif references(dead_letter) & queues:
        target, kind = sorted(references(dead_letter) & queues)[0], DEAD_LETTER_QUEUE
    policy = subscription.get("FilterPolicy")
    return Subscriber(
        function=function,
        filter_policy=policy if isinstance(policy, dict) else None,
        filter_policy_scope=str(subscription.get("FilterPolicyScope") or DEFAULT_FILTER_POLICY_SCOPE),
        max_retry_attempts=min(max(retries, 0), DEFAULT_MAX_RETRY_ATTEMPTS)
        if retries is not None
        else DEFAULT_MAX_RETRY_ATTEMPTS,
        retry_attempts_set=retries is not None,
        on_failure=target,
        on_failure_kind=kind,
    )


# --- the topic, its subscriptions and the failure queues, in moto ------------------------------


@cache
def signing_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def share_one_signing_key() -> None:
    """Make every moto SNS subscription sign with one RSA key.

    moto signs each subscription's envelopes with a 2048-bit key of its own, generated on its first
    message: about 40 ms per subscription, most of the time a fan-out test would take. The
    signatures stay valid (the key's certificate goes with each message); only the key is shared.
    """
    from moto.sns.models import Subscription

    Subscription.private_key = lambda subscription: signing_key()  # type: ignore[method-assign]


@dataclass(frozen=True)
class FanOut:
    """A moto topic with one SQS-backed subscription per function, and the template's failure queues."""

    settings: TopicSettings
    topic_arn: str
    subscription_queues: dict[str, str]  # function logical id -> the url of the queue standing in for it
    failure_queues: dict[str, str]  # queue logical id -> url

    @classmethod
    def create(
        cls, sns: Any, sqs: Any, settings: TopicSettings, name: str,
        topic_arn: str | None = None, failure_queues: dict[str, str] | None = None,
    ) -> FanOut:
        """Create the topic, the subscriptions (with the template's filter policies) and the failure queues;
        or subscribe to an existing topic (`topic_arn`) and use existing failure queues (logical id -> url).

        A filter policy SNS refuses raises SettingsError, with SNS's reason.
        """
        share_one_signing_key()
        topic_arn = topic_arn or sns.create_topic(Name=name)["TopicArn"]
        subscription_queues = {}
        for subscriber in settings.subscribers:
            url = sqs.create_queue(QueueName=f"{name}-{subscriber.function}"[:80])["QueueUrl"]
            attributes = {"RawMessageDelivery": "false"}
            if subscriber.filter_policy is not None:
                attributes["FilterPolicy"] = json.dumps(subscriber.filter_policy)
                attributes["FilterPolicyScope"] = subscriber.filter_policy_scope
            try:
                sns.subscribe(
                    TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn(sqs, url), Attributes=attributes
                )
            except sns.exceptions.InvalidParameterException as error:
                raise SettingsError(
                    f"SNS refuses the FilterPolicy of {subscriber.function}'s subscription, "
                    f"{json.dumps(subscriber.filter_policy)}: {error.response['Error']['Message']}"
                ) from None
            subscription_queues[subscriber.function] = url
        if failure_queues is None:
            failure_queues = {
                queue: sqs.create_queue(QueueName=f"{name}-{queue}"[:80])["QueueUrl"]
                for queue in sorted({s.on_failure for s in settings.subscribers if s.on_failure})
            }
        return cls(settings, topic_arn, subscription_queues, failure_queues)

    def publish(
        self, sns: Any, message: str, attributes: dict[str, str] | None = None, subject: str | None = None
    ) -> str:
        """Publish `message` with string message attributes; returns SNS's MessageId."""
        request: dict[str, Any] = {"TopicArn": self.topic_arn, "Message": message}
        if attributes:
            request["MessageAttributes"] = {
                name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
            }
        if subject:
            request["Subject"] = subject
        return sns.publish(**request)["MessageId"]

    def publish_records(self, sns: Any, event: dict) -> dict[str, str]:
        """Publish the message of each record of an SNS event file again, with its string attributes.

        SNS gives each a new MessageId: returns {new MessageId: the record's old MessageId}.
        """
        published = {}
        for record in event.get("Records", []):
            message = record["Sns"]
            attributes = {
                name: value["Value"]
                for name, value in (message.get("MessageAttributes") or {}).items()
                if value.get("Type") == "String"
            }
            published[self.publish(sns, message["Message"], attributes, message.get("Subject"))] = message["MessageId"]
        return published


def queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def sns_event(envelope: dict, subscription_arn: str) -> dict:
    """The SNS event Lambda passes a subscribed function, for one message (its SNS envelope)."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": envelope.get("Type", "Notification"),
                    "MessageId": envelope["MessageId"],
                    "TopicArn": envelope["TopicArn"],
                    "Subject": envelope.get("Subject"),
                    "Message": envelope["Message"],
                    "Timestamp": envelope.get("Timestamp", ""),
                    "SignatureVersion": envelope.get("SignatureVersion", "1"),
                    "Signature": envelope.get("Signature", ""),
                    # The SQS envelope spells these ...URL; the Lambda event ...Url.
                    "SigningCertUrl": envelope.get("SigningCertURL", ""),
                    "UnsubscribeUrl": envelope.get("UnsubscribeURL", ""),
                    "MessageAttributes": envelope.get("MessageAttributes") or {},
                },
            }
        ]
    }


# --- delivery --------------------------------------------------------------------------------------


@dataclass
class Invocation:
    """One message delivered to one function: every attempt, and where the event ended."""

    function: str
    message_id: str
    event: dict
    errors: list[str] = field(default_factory=list)  # one per failed attempt: what, and where in the learner's code
    outcome: str = ""  # SUCCEEDED, LOST, or the logical id of the queue the event was sent to

    @property
    def attempts(self) -> int:
        return len(self.errors) + (self.outcome == SUCCEEDED)


@dataclass
class Delivery:
    """Everything `deliver` did, function by function."""

    invocations: list[Invocation] = field(default_factory=list)
    not_invoked: list[str] = field(default_factory=list)  # subscribed functions given no handler

    def received(self, function: str) -> list[str]:
        """The message ids `function` was invoked with, in order."""
        return [i.message_id for i in self.invocations if i.function == function]

    def failed(self, function: str) -> list[Invocation]:
        return [i for i in self.invocations if i.function == function and i.outcome != SUCCEEDED]

    @property
    def lost(self) -> list[Invocation]:
        return [i for i in self.invocations if i.outcome == LOST]


def receive_all(sqs: Any, url: str, limit: int) -> list[dict]:
    """Every message waiting in a queue, up to `limit`, deleted as they are read."""
    messages: list[dict] = []
    while len(messages) < limit:
        received = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=min(SQS_RECEIVE_LIMIT, limit - len(messages)), WaitTimeSeconds=0
        ).get("Messages", [])
        if not received:
            break
        for message in received:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        messages.extend(received)
    return messages


def function_arn(function: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"


def invocation_record(invocation: Invocation, request_id: str, error: BaseException, function_name: str | None = None) -> dict:
    """What Lambda sends an on-failure destination once an asynchronous event has failed every attempt."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn(function_name or invocation.function)}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": len(invocation.errors),
        },
        "requestPayload": invocation.event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__, "stackTrace": []},
    }


def _send_failure(
    sqs: Any, failure_queues: dict[str, str], subscriber: Subscriber, invocation: Invocation, request_id: str,
    error: BaseException, function_name: str | None = None,
) -> None:
    """What Lambda does with an event that failed every attempt: keep it in the failure queue, or drop it."""
    if subscriber.on_failure is None:
        invocation.outcome = LOST
        return
    url = failure_queues[subscriber.on_failure]
    if subscriber.on_failure_kind == DESTINATION:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(invocation_record(invocation, request_id, error, function_name)))
    else:  # a dead-letter queue receives the event itself, the error in message attributes
        sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps(invocation.event),
            MessageAttributes={
                "RequestID": {"DataType": "String", "StringValue": request_id},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {"DataType": "String", "StringValue": str(error)[:256] or type(error).__name__},
            },
        )
    invocation.outcome = subscriber.on_failure


def invoke_asynchronously(
    sqs: Any,
    failure_queues: dict[str, str],
    subscriber: Subscriber,
    event: dict,
    message_id: str,
    handler: Callable[[dict, Any], Any],
    function_name: str | None = None,
) -> Invocation:
    """One event invoked as Lambda invokes asynchronously: retried, then sent to the failure queue or lost.

    `function_name` is the function's physical name, for the failure record (default: its logical id)."""
    invocation = Invocation(subscriber.function, message_id, event)
    request_id = str(uuid.uuid4())  # Lambda keeps it across the retries of one event
    for _ in range(1 + subscriber.max_retry_attempts):
        context = LambdaContext(function_name=subscriber.function, aws_request_id=request_id)
        try:
            handler(json.loads(json.dumps(event)), context)  # a fresh copy for every attempt
        except Exception as error:  # noqa: BLE001  (any error fails the attempt, as in Lambda)
            invocation.errors.append(describe(error))
            last_error = error
        else:
            invocation.outcome = SUCCEEDED
            return invocation
    _send_failure(sqs, failure_queues, subscriber, invocation, request_id, last_error, function_name)
    return invocation


def deliver(
    sqs: Any,
    fanout: FanOut,
    handlers: dict[str, Callable[[dict, Any], Any]],
    max_messages: int = 50,
) -> Delivery:
    """Invoke each subscribed function's handler with every message SNS routed to it (see the module)."""
    delivery = Delivery()
    for subscriber in fanout.settings.subscribers:
        url = fanout.subscription_queues[subscriber.function]
        handler = handlers.get(subscriber.function)
        if handler is None:
            delivery.not_invoked.append(subscriber.function)
            continue
        subscription_arn = f"{fanout.topic_arn}:{uuid.uuid4()}"
        for message in receive_all(sqs, url, max_messages):
            envelope = json.loads(message["Body"])
            event = sns_event(envelope, subscription_arn)
            delivery.invocations.append(
                invoke_asynchronously(sqs, fanout.failure_queues, subscriber, event, envelope["MessageId"], handler)
            )
    return delivery


@dataclass(frozen=True)
class FailedEvent:
    """An event a failure queue holds: the event, the function it failed in (when known), and why."""

    event: dict
    function: str
    error: str

    @property
    def message_ids(self) -> list[str]:
        return [record.get("Sns", {}).get("MessageId", "") for record in self.event.get("Records", [])]


def failed_events(sqs: Any, fanout: FanOut, queue: str, limit: int = 100) -> list[FailedEvent]:
    """The events waiting in one of the template's failure queues (read and deleted)."""
    found = []
    for message in receive_all(sqs, fanout.failure_queues[queue], limit):
        body = json.loads(message["Body"])
        if "requestPayload" in body:  # an on-failure destination's invocation record
            arn = body.get("requestContext", {}).get("functionArn", "")
            found.append(
                FailedEvent(body["requestPayload"], arn.split(":")[6] if arn.count(":") >= 6 else "",
                            body.get("responsePayload", {}).get("errorMessage", ""))
            )
        else:  # a dead-letter queue's copy of the event
            found.append(FailedEvent(body, "", ""))
    return found
