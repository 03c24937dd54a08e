"""`LocalLab`: a lab's stack in moto, its functions run like Lambda runs them, and its event sources.

    from workshop.local import LocalLab

    with LocalLab("2", target="solutions") as lab:
        [invocation] = lab.put_object("uploads/orders.csv", b"sku,quantity,unit_price\\n...")
        print(invocation.log_text())          # START, the function's logs, END, REPORT
        lab.objects("ResultsBucket")          # what the function wrote

Opening a LocalLab enters the sandbox (fake credentials, no network), starts moto, creates what the
lab's [lab.local] in labs.toml asks for (a SecureString parameter, sample items), then the lab's
template as a stack (workshop/local/stack.py). Each function gets its own execution environment
(workshop/local/runtime.py): the first invocation is a cold start, the next ones are warm.

Event sources, with the settings the template gives them and the semantics AWS documents:
- `put_object`: S3 notifies the functions whose event filter (prefix, suffix) the key matches, with
  the event S3 itself (moto's) builds; functions are invoked asynchronously (retries, on-failure
  destination).
- `send_messages` / `poll_queue`: the event source mapping polls the queue in batches of up to its
  BatchSize, honours `batchItemFailures` when ReportBatchItemFailures is on, and moto's queue moves a
  message to its dead-letter queue after maxReceiveCount receives. Failed messages come back at once:
  the VisibilityTimeout is not waited for.
- `publish`: SNS (moto's, which evaluates each subscription's FilterPolicy) delivers a copy to each
  subscribed function, each invoked asynchronously and on its own: one failing does not touch the others.
- `tick`: the simulated clock moves forward and each scheduled rule fires, with EventBridge's
  Scheduled Event, at every moment its schedule expression names in between.

Invocations are serialised (one at a time, as one execution environment takes them): `invoke` is
safe to call from a server's threads.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from workshop import manifest, paths, sandbox, templates
from workshop.lambda_runtime import FunctionError, load_event
from workshop.local import runtime, stack
from workshop.local.runtime import ExecutionEnvironment, FunctionSpec, Invocation

STACK_NAME = "workshop-local"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
KEPT_INVOCATIONS = 1000

# Which event files (events/<source>_<scenario>.json) fit a function, from what invokes it.
_PRINCIPAL_SOURCES = {
    "apigateway.amazonaws.com": "api",
    "s3.amazonaws.com": "s3",
    "sns.amazonaws.com": "sns",
    "events.amazonaws.com": "eventbridge",
}


class LocalError(LookupError):
    """Bad input to the local runtime; the message says what, and what exists."""


class FunctionFailed(Exception):
    """Raised for an event source by a failed invocation, so that its retry logic sees a failure."""

    def __init__(self, invocation: Invocation) -> None:
        assert invocation.error is not None
        super().__init__(invocation.error["errorMessage"])
        self.invocation = invocation


@dataclass
class QueueDelivery:
    """What the SQS event source mapping did with the messages on a queue."""

    invocations: list[Invocation] = field(default_factory=list)
    batches: list[Any] = field(default_factory=list)  # workshop.grading.sqs_delivery.Invocation, one per batch
    dead_letters: list[dict] = field(default_factory=list)  # the messages now on the dead-letter queue
    stopped: str = ""


@dataclass
class AsyncDelivery:
    """One event delivered asynchronously to one function: every attempt, and where the event ended."""

    function: str
    attempts: list[Invocation]
    outcome: str  # "succeeded", "lost", or the logical id of the failure queue the event went to


def _utc(moment: datetime | str) -> datetime:
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            raise LocalError(f"{moment!r} is not a time: write it as 2026-11-27T14:00:00Z") from None
    if moment.tzinfo is None:
        raise LocalError(f"{moment.isoformat()} has no time zone: add Z (UTC), as in 2026-11-27T14:00:00Z")
    return moment.astimezone(timezone.utc)


# --- what AWS refuses, checked here because moto accepts some of it --------------------------------

S3_KEY_MAX_BYTES = 1024
SQS_BODY_MAX_BYTES = 1024 * 1024  # 1 MiB
SNS_MESSAGE_MAX_BYTES = 256 * 1024  # 256 KiB
SNS_SUBJECT_MAX_CHARACTERS = 100
# The characters SQS accepts in a message body (the XML 1.0 set); anything else is refused.
SQS_CHARACTERS = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
# Where the simulated clock can go: schedules count from the Unix epoch, and each fire time needs room.
EARLIEST_TICK = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST_TICK = datetime(9999, 1, 1, tzinfo=timezone.utc)


def _utf8_size(text: str, what: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise LocalError(f"{what} is not valid UTF-8 text (at character {error.start}): AWS accepts Unicode text only") from None


def clock_time(moment: datetime | str) -> datetime:
    """A time the simulated clock can move to, in UTC."""
    found = _utc(moment)
    if not EARLIEST_TICK <= found <= LATEST_TICK:
        raise LocalError(
            f"{found.isoformat().replace('+00:00', 'Z')} is outside the clock's range: tick between "
            f"{EARLIEST_TICK:%Y-%m-%dT%H:%M:%SZ} and {LATEST_TICK:%Y-%m-%dT%H:%M:%SZ}"
        )
    return found


def check_s3_key(key: str) -> None:
    size = _utf8_size(key, "the object key")
    if not 1 <= size <= S3_KEY_MAX_BYTES:
        raise LocalError(f"an S3 object key is 1 to {S3_KEY_MAX_BYTES} bytes of UTF-8; this one is {size}")


def check_sqs_body(body: str, what: str) -> None:
    size = _utf8_size(body, what)
    if size == 0:
        raise LocalError(f"{what} is empty: SQS refuses a message without a body (at least one character)")
    if size > SQS_BODY_MAX_BYTES:
        raise LocalError(f"{what} is {size:,} bytes: SQS takes at most {SQS_BODY_MAX_BYTES:,} (1 MiB) per message")
    if not SQS_CHARACTERS.fullmatch(body):
        bad = next(c for c in body if not SQS_CHARACTERS.fullmatch(c))
        raise LocalError(f"{what} holds the character U+{ord(bad):04X}, which SQS refuses in a message body")


def check_sns_message(message: str, attributes: dict[str, str], subject: str | None) -> None:
    size = _utf8_size(message, "the message")
    if size == 0:
        raise LocalError("the message is empty: SNS refuses to publish an empty message")
    if size > SNS_MESSAGE_MAX_BYTES:
        raise LocalError(f"the message is {size:,} bytes: SNS takes at most {SNS_MESSAGE_MAX_BYTES:,} (256 KiB)")
    for name, value in attributes.items():
        _utf8_size(value, f"the value of attribute {name!r}")
        if not value:
            raise LocalError(f"attribute {name!r} has an empty value: SNS refuses a message attribute without a value")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,256}", name) or ".." in name or name[0] == "." or name[-1] == "." or name.lower().startswith(("aws.", "amazon.")):
            raise LocalError(
                f"{name!r} is not a message attribute name SNS accepts: up to 256 letters, digits, '-', '_' and "
                "'.', not starting or ending with '.', no '..', and not starting with AWS. or Amazon."
            )
    if subject is not None:
        _utf8_size(subject, "the subject")
        if not subject.strip() or len(subject) > SNS_SUBJECT_MAX_CHARACTERS or any(c < " " for c in subject):
            raise LocalError(
                f"an SNS subject is 1 to {SNS_SUBJECT_MAX_CHARACTERS} printable characters on one line, not {subject!r}"
            )


# What each source sends, as `sources()` names them.
SOURCE_LABELS = {
    "api": "an API Gateway REST API (payload format 1.0: httpMethod, path, body)",
    "s3": "S3 event notifications",
    "sqs": "an SQS queue",
    "sns": "an SNS topic",
    "eventbridge": "an EventBridge schedule",
}


def describe_event(event: Any) -> tuple[str | None, str]:
    """The source an event comes from, as sources() names them, and what to call it; (None, "") when unknown."""
    if not isinstance(event, dict):
        return None, ""
    context = event.get("requestContext")
    if isinstance(context, dict) and event.get("version") == "2.0" and "http" in context:
        return "api-http", "an API Gateway HTTP API event (payload format 2.0: requestContext.http, rawPath)"
    if isinstance(context, dict) and "httpMethod" in event:
        return "api", "an API Gateway REST API event (payload format 1.0)"
    if "detail-type" in event and "source" in event:
        return "eventbridge", "an EventBridge event"
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        origin = records[0].get("eventSource") or records[0].get("EventSource")
        kinds = {
            "aws:s3": ("s3", "an S3 event notification"),
            "aws:sqs": ("sqs", "an SQS event"),
            "aws:sns": ("sns", "an SNS event"),
            "aws:dynamodb": ("dynamodb", "a DynamoDB stream event"),
            "aws:kinesis": ("kinesis", "a Kinesis event"),
        }
        return kinds.get(origin, (None, ""))
    return None, ""


def labs_with_events(kind: str) -> list[str]:
    """The numbers of the labs (reference templates) whose functions have an event of `kind` (SQS, S3,
    SNS, Schedule): what a "this lab has none" message points to."""
    found = []
    for lab in manifest.labs():
        try:
            types = templates.event_types(templates.loaded(lab.folder("solutions") / "template.yaml"))
        except Exception:  # noqa: BLE001 (a hint in a message: a template that does not load names no lab)
            continue
        if any(kind in kinds for kinds in types.values()):
            found.append(str(lab.number))
    return found


def _elsewhere(kind: str) -> str:
    numbers = labs_with_events(kind)
    return f"; lab {' and '.join(numbers)} {'has' if len(numbers) == 1 else 'have'} one" if numbers else ""


class LocalLab:
    """A lab's stack in moto and its functions, run like Lambda runs them (see the module)."""

    def __init__(self, lab: str | int, target: str = "labs") -> None:
        self.lab = manifest.find(str(lab))
        self.target = target
        self.folder = self.lab.folder(target)
        if not self.lab.functions:
            raise LocalError(
                f"lab {self.lab.number} has no functions of its own (its template reuses other labs' code): "
                "run them in their own labs"
            )
        try:
            self.template = templates.transformed(self.folder / "template.yaml")
        except templates.TemplateError as error:
            raise LocalError(str(error)) from None
        self._functions = dict(templates.resources_of_type(self.template, "AWS::Lambda::Function"))
        self._lock = threading.RLock()
        self._environments: dict[str, ExecutionEnvironment] = {}
        self.invocations: list[Invocation] = []  # the latest KEPT_INVOCATIONS, oldest first
        self._invoked = 0  # how many there have been in all
        self.clock = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        self._exit = contextlib.ExitStack()
        self._opened = False

    @property
    def number(self) -> int:
        return self.lab.number

    # --- opening and closing ---------------------------------------------------------------------

    def __enter__(self) -> LocalLab:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> LocalLab:
        if self._opened:
            return self
        sandbox.enter()
        stack.import_moto()
        import boto3
        from moto import mock_aws

        from workshop.grading import warmup

        mock = mock_aws()
        mock.start()
        self._exit.callback(mock.stop)
        # moto's start leaves boto3 without a default session (its stop puts the old one back): the lab's
        # clients and its functions' use the one moto's import read botocore's endpoints and models with.
        boto3.DEFAULT_SESSION = warmup.shared_session()
        try:
            self._create_parameters()
            self.stack = stack.deploy_lab(self.template, STACK_NAME)
            if self.stack.status != "CREATE_COMPLETE":
                raise LocalError(f"moto could not create lab {self.number}'s stack: {self.stack.reason}")
            self._seed()
            self._remove_motos_pollers()
            self._stdout, self._stderr = self._exit.enter_context(runtime.routed_output())
        except BaseException:
            self._exit.close()
            raise
        self._opened = True
        return self

    def close(self) -> None:
        self._exit.close()
        self._opened = False

    def _create_parameters(self) -> None:
        parameters = self.template.get("Parameters", {})
        for parameter, value in self.lab.local.secure_parameters.items():
            name = parameters.get(parameter, {}).get("Default")
            if not name:
                raise LocalError(f"labs.toml: lab {self.number}'s template has no parameter {parameter} with a Default")
            self.client("ssm").put_parameter(Name=name, Value=value, Type="SecureString")

    def _remove_motos_pollers(self) -> None:
        """moto's own SQS event source mappings would run the function in Docker: this runtime polls instead.
        (Disabled, not deleted: moto's queue keeps a deleted mapping and goes on using it.)"""
        lambda_client = self.client("lambda")
        for mapping in lambda_client.list_event_source_mappings()["EventSourceMappings"]:
            lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)

    def _seed(self) -> None:
        for table, file in self.lab.local.seed.items():
            items = json.loads((self.folder / file).read_text(encoding="utf-8"), parse_float=Decimal)
            with self.resource("dynamodb").Table(self.physical(table)).batch_writer() as batch:
                for item in items:
                    batch.put_item(Item=item)

    # --- the stack -------------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=sandbox.REGION)

    def resource(self, service: str) -> Any:
        import boto3

        return boto3.resource(service, region_name=sandbox.REGION)

    def physical(self, logical_id: str) -> str:
        """The physical id moto gave a resource of the template (a table's name, a queue's URL...)."""
        try:
            return self.stack.physical[logical_id]
        except KeyError:
            known = ", ".join(sorted(self.stack.physical))
            raise LocalError(f"lab {self.number}'s stack has no resource {logical_id!r}; it has: {known}") from None

    @property
    def outputs(self) -> dict[str, str]:
        return self.stack.outputs

    def buckets(self) -> set[str]:
        """The logical ids of the stack's buckets."""
        return {bucket for bucket, _ in templates.resources_of_type(self.template, "AWS::S3::Bucket")}

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object of one of the stack's buckets (logical id), by key."""
        s3, name = self.client("s3"), self.physical(bucket)
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name) for o in page.get("Contents", [])]
        return {key: s3.get_object(Bucket=name, Key=key)["Body"].read() for key in keys}

    def items(self, table: str) -> list[dict]:
        """Every item of one of the stack's tables (logical id)."""
        table_resource = self.resource("dynamodb").Table(self.physical(table))
        response = table_resource.scan()
        found = response["Items"]
        while "LastEvaluatedKey" in response:
            response = table_resource.scan(ExclusiveStartKey=response["LastEvaluatedKey"])
            found += response["Items"]
        return found

    # --- functions -------------------------------------------------------------------------------

    def function_id(self, name: str) -> str:
        """A function's logical id, from its folder (items_api) or its logical id (ItemsApiFunction)."""
        by_folder = {p["Code"]["S3Key"].removesuffix(".zip"): logical for logical, p in self._functions.items() if "Code" in p}
        logical_id = by_folder.get(name) or (name if name in self._functions else None)
        if logical_id is None:
            known = ", ".join(f"{folder} ({by_folder[folder]})" for folder in sorted(by_folder)) or "none"
            raise LocalError(f"lab {self.number} has no function {name!r}; its functions: {known}")
        return logical_id

    def _code(self, logical_id: str) -> tuple[Path, str]:
        """A function's code folder and handler, as the template names them."""
        properties = self._functions[logical_id]
        return self.folder / properties["Code"]["S3Key"].removesuffix(".zip"), properties.get("Handler", "app.lambda_handler")

    def spec(self, name: str) -> FunctionSpec:
        logical_id = self.function_id(name)
        properties = self._functions[logical_id]
        physical_name = self.physical(logical_id)
        configuration = self.client("lambda").get_function_configuration(FunctionName=physical_name)
        folder, handler = self._code(logical_id)
        return FunctionSpec(
            logical_id=logical_id,
            physical_name=physical_name,
            folder=folder,
            handler=handler,
            # moto's configuration holds the MemorySize the stack resolved (a Ref, an Fn::If).
            memory_mb=templates.as_int(configuration.get("MemorySize", properties.get("MemorySize")), 128),
            timeout_seconds=float(templates.as_int(properties.get("Timeout"), 3)),
            environment=dict(configuration.get("Environment", {}).get("Variables", {})),
        )

    def is_durable(self, logical_id: str) -> bool:
        """Durable in the template (DurableConfig), or by its code (@durable_execution) before the template
        says so. Asked here, so that other functions never import the durable SDK (0.1 s of every invoke)."""
        folder, handler = self._code(logical_id)  # from the template: no call to moto
        code = folder / f"{handler.rpartition('.')[0]}.py"
        configured = "DurableConfig" in self._functions[logical_id]
        return configured or (code.is_file() and "durable_execution" in code.read_text(encoding="utf-8", errors="replace"))

    def sources(self, name: str) -> set[str]:
        """What invokes a function, as the prefixes of the event files that fit it (api, s3, sqs, sns, eventbridge)."""
        logical_id = self.function_id(name)
        found = set()
        for kind, prefix in (("AWS::Lambda::EventSourceMapping", "sqs"), ("AWS::Scheduler::Schedule", "eventbridge")):
            for _, properties in templates.resources_of_type(self.template, kind):
                if logical_id in templates.references(properties):
                    found.add(prefix)
        # A function with AutoPublishAlias is invoked through its alias (lab 7): the alias names it.
        names = {logical_id} | {
            alias
            for alias, properties in templates.resources_of_type(self.template, "AWS::Lambda::Alias")
            if logical_id in templates.references(properties.get("FunctionName"))
        }
        for _, properties in templates.resources_of_type(self.template, "AWS::Lambda::Permission"):
            if names & templates.references(properties.get("FunctionName")):
                found.add(_PRINCIPAL_SOURCES.get(properties.get("Principal"), "other"))
        return found

    def event_mismatch(self, function: str, event: Any) -> str:
        """Why `event` cannot be what the function is built for (another source, another payload format,
        a bucket the stack does not have), in words, or "" when it fits or its kind is unknown."""
        kind, label = describe_event(event)
        logical_id = self.function_id(function)
        sources = self.sources(function)
        if kind is None or not sources:
            return ""
        expected = " or ".join(SOURCE_LABELS.get(source, source) for source in sorted(sources))
        if kind not in sources:
            return (
                f"this is {label}, but {logical_id} is invoked by {expected}: it reads the fields of that event "
                "and will fail here as it would in AWS if such an event reached it"
            )
        if kind == "s3":
            buckets = {self.physical(logical) for logical, _ in templates.resources_of_type(self.template, "AWS::S3::Bucket")}
            named = {
                ((record.get("s3") or {}).get("bucket") or {}).get("name") for record in event["Records"] if isinstance(record, dict)
            }
            foreign = sorted(str(name) for name in named - buckets)
            if foreign:
                return (
                    f"the event names bucket {', '.join(foreign)}, which lab {self.number}'s stack does not have "
                    f"(its buckets: {', '.join(sorted(buckets)) or 'none'}), so reading the object fails with "
                    f"NoSuchBucket. `workshop upload {self.number} FILE` puts a file in the lab's bucket and invokes "
                    "the function with the event S3 sends"
                )
        return ""

    def event(self, name: str, function: str | None = None) -> tuple[str, Any]:
        """An event: a JSON file's path, or a name in the lab's events/ (with `function`: the first that fits)."""
        events_dir = self.folder / "events"
        available = sorted(p.stem for p in events_dir.glob("*.json"))
        if name is None:
            assert function is not None
            sources = self.sources(function)
            fitting = [event for event in available if event.split("_", 1)[0] in sources]
            if not fitting:
                raise LocalError(
                    f"no event in {paths.relative(events_dir)} fits {self.function_id(function)} "
                    f"(invoked by {', '.join(sorted(sources)) or 'nothing'}): "
                    f"name one with --event (events here: {', '.join(available) or 'none'})"
                )
            name = fitting[0]
        as_file = Path(name)
        try:
            if as_file.suffix == ".json" and as_file.is_file():
                return str(as_file), json.loads(as_file.read_text(encoding="utf-8"))
            return paths.relative(events_dir / f"{name.removesuffix('.json')}.json"), load_event(events_dir, name)
        except FunctionError as error:
            raise LocalError(str(error)) from None
        except RecursionError:
            raise LocalError(f"{name} is nested too deeply to read as JSON") from None
        except ValueError as error:  # not UTF-8, not JSON, or a number of more than 4,300 digits
            raise LocalError(f"{name} is not valid JSON: {error}") from None
        except OSError as error:  # a name longer than the file system takes, say
            raise LocalError(f"cannot read the event {name}: {error.strerror}") from None

    def invoke(self, function: str, event: Any = None, *, request_id: str | None = None) -> Invocation:
        """Invoke a function (folder or logical id) with an event (a dict, or a name in events/), synchronously."""
        if event is None or isinstance(event, str):
            event = self.event(event, function)[1]
        return self.invoke_with(function, event, request_id=request_id)

    def invoke_with(self, function: str, payload: Any, *, request_id: str | None = None) -> Invocation:
        """Invoke a function with `payload` exactly as given, as Lambda's Invoke API does: any JSON value,
        null and strings included (invoke() reads None and strings as "the default event" and names)."""
        if not self._opened:
            raise LocalError("open the LocalLab first: `with LocalLab(...) as lab:`")
        event = payload
        logical_id = self.function_id(function)
        with self._lock:
            environment = self._environments.get(logical_id)
            if environment is None:
                environment = ExecutionEnvironment(self.spec(logical_id), self._stdout, self._stderr)
                self._environments[logical_id] = environment
            invocation = environment.invoke(event, request_id)
            self.invocations.append(invocation)
            self._invoked += 1
            del self.invocations[:-KEPT_INVOCATIONS]  # a long-running start-api keeps its memory flat
        return invocation

    def _handler_for(self, function: str):
        """A handler for an event source's delivery loop: it invokes the function and raises when it failed."""

        def handler(event: dict, context: Any) -> Any:
            invocation = self.invoke(function, event, request_id=getattr(context, "aws_request_id", None))
            if invocation.error is not None:
                raise FunctionFailed(invocation)
            return invocation.response

        return handler

    def _since(self, before: int) -> list[Invocation]:
        """The invocations made since `_invoked` was `before`."""
        return self.invocations[max(0, len(self.invocations) - (self._invoked - before)):]

    def _invoke_asynchronously(self, function: str, event: dict, message_id: str) -> AsyncDelivery:
        from workshop.grading import sns_delivery

        before = self._invoked
        settings = sns_delivery.asynchronous_settings(self.template, function)
        failure_queues = {settings.on_failure: self.physical(settings.on_failure)} if settings.on_failure else {}
        delivered = sns_delivery.invoke_asynchronously(
            self.client("sqs"), failure_queues, settings, event, message_id, self._handler_for(function),
            function_name=self.physical(function),
        )
        return AsyncDelivery(function, self._since(before), delivered.outcome)

    # --- S3 ----------------------------------------------------------------------------------------

    def s3_filters(self, bucket: str) -> list[tuple[str, dict[str, str]]]:
        """The functions a bucket (logical id) notifies, each with its key filter ({"prefix": ..., "suffix": ...})."""
        from workshop.grading import s3_events

        return [(function, s3_events.filter_rules(c)) for function, c in self._s3_triggers().get(bucket, [])]

    def _s3_triggers(self) -> dict[str, list[tuple[str, dict]]]:
        """Bucket logical id -> [(function logical id, its LambdaConfiguration)]."""
        from workshop.grading import s3_events

        found: dict[str, list[tuple[str, dict]]] = {}
        for function in self._functions:
            for bucket, configurations in s3_events.trigger_buckets(self.template, function).items():
                found.setdefault(bucket, []).extend((function, c) for c in configurations)
        return found

    def _s3_queues(self, bucket: str) -> dict[str, str]:
        """Wire the bucket's notifications (with the template's filters) to one queue per function, once."""
        wired = getattr(self, "_wired_buckets", {})
        self._wired_buckets = wired
        if bucket in wired:
            return wired[bucket]
        from workshop.grading import s3_events

        sqs = self.client("sqs")
        queues, configurations = {}, []
        for function, configuration in self._s3_triggers()[bucket]:
            url = queues.get(function) or sqs.create_queue(QueueName=f"local-s3-{function}"[:80])["QueueUrl"]
            queues[function] = url
            rules = [{"Name": name, "Value": value} for name, value in s3_events.filter_rules(configuration).items()]
            entry: dict[str, Any] = {
                "Id": f"{function}-{len(configurations)}",
                "QueueArn": sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"],
                "Events": [configuration.get("Event", "s3:ObjectCreated:*")],
            }
            if rules:
                entry["Filter"] = {"Key": {"FilterRules": rules}}
            configurations.append(entry)
        self.client("s3").put_bucket_notification_configuration(
            Bucket=self.physical(bucket), NotificationConfiguration={"QueueConfigurations": configurations}
        )
        wired[bucket] = queues
        return queues

    def trigger_bucket(self, bucket: str | None) -> str:
        triggers = self._s3_triggers()
        if bucket is None:
            if not triggers:
                raise LocalError(f"lab {self.number} has no bucket that invokes a function (an Events: {{Type: S3}}){_elsewhere('S3')}")
            if len(triggers) != 1:
                raise LocalError(
                    f"lab {self.number} has {len(triggers)} buckets that invoke a function "
                    f"({', '.join(sorted(triggers)) or 'none'}): name one"
                )
            return next(iter(triggers))
        if bucket not in triggers:
            raise LocalError(
                f"{bucket} invokes no function of lab {self.number}; the buckets that do: {', '.join(sorted(triggers)) or 'none'}"
            )
        return bucket

    def put_object(self, key: str, body: bytes | str, *, bucket: str | None = None) -> list[AsyncDelivery]:
        """Put an object in a bucket of the stack (logical id; default: the one that invokes a function)
        and deliver the events S3 sends: one per function whose event filter matches the key."""
        bucket = self.trigger_bucket(bucket)
        check_s3_key(key)
        queues = self._s3_queues(bucket)
        self.client("s3").put_object(Bucket=self.physical(bucket), Key=key, Body=body.encode() if isinstance(body, str) else body)
        return self._deliver_s3(queues)

    def _deliver_s3(self, queues: dict[str, str]) -> list[AsyncDelivery]:
        from workshop.grading.sqs_delivery import receive_all

        sqs, delivered = self.client("sqs"), []
        for function, url in queues.items():
            for message in receive_all(sqs, url):
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                event = json.loads(message["Body"])
                if "Records" not in event:  # S3's s3:TestEvent, sent when the notification is set up
                    continue
                for record in event["Records"]:
                    # S3 URL-encodes the key as a form value, slashes kept ("a b/c" -> "a+b/c"); moto encodes them too.
                    stored = record["s3"]["object"]
                    stored["key"] = quote_plus(unquote_plus(stored["key"]), safe="/")
                delivered.append(self._invoke_asynchronously(function, event, message["MessageId"]))
        return delivered

    # --- SQS ---------------------------------------------------------------------------------------

    def queue_function(self, function: str | None) -> str:
        mapped = [
            logical
            for logical in self._functions
            if any(logical in templates.references(p.get("FunctionName")) for _, p in templates.resources_of_type(self.template, "AWS::Lambda::EventSourceMapping"))
        ]
        if function is not None:
            logical_id = self.function_id(function)
            if logical_id not in mapped:
                raise LocalError(f"{logical_id} has no SQS event source; the functions that do: {', '.join(mapped) or 'none'}")
            return logical_id
        if not mapped:
            raise LocalError(f"lab {self.number} has no function that polls a queue (an Events: {{Type: SQS}}){_elsewhere('SQS')}")
        if len(mapped) != 1:
            raise LocalError(f"lab {self.number} has {len(mapped)} functions with an SQS event source ({', '.join(mapped)}): name one with --function")
        return mapped[0]

    def queue_settings(self, function: str | None = None):
        from workshop.grading.sqs_delivery import QueueSettings

        return QueueSettings.from_template(self.template, self.queue_function(function))

    def send_messages(self, bodies: list[str | dict], *, function: str | None = None, attributes: dict[str, str] | None = None) -> QueueDelivery:
        """Send messages to the queue a function polls (dicts as JSON), then let its event source mapping poll."""
        settings = self.queue_settings(function)
        url = self.physical(settings.queue)
        sqs = self.client("sqs")
        texts = [body if isinstance(body, str) else json.dumps(body) for body in bodies]
        for number, text in enumerate(texts, start=1):
            check_sqs_body(text, f"message {number}" if len(texts) > 1 else "the message")
        for text in texts:
            request: dict[str, Any] = {"QueueUrl": url, "MessageBody": text}
            if attributes:
                request["MessageAttributes"] = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
            sqs.send_message(**request)
        return self.poll_queue(function)

    def poll_queue(self, function: str | None = None) -> QueueDelivery:
        """Poll the function's queue as its event source mapping does, until the queue is empty."""
        from workshop.grading import sqs_delivery

        logical_id = self.queue_function(function)
        settings = self.queue_settings(logical_id)
        sqs = self.client("sqs")
        url = self.physical(settings.queue)
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "RedrivePolicy"])["Attributes"]
        dead_letter_url = None
        if "RedrivePolicy" in attributes:
            dead_letter_arn = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]
            dead_letter_url = sqs.get_queue_url(QueueName=dead_letter_arn.rsplit(":", 1)[1])["QueueUrl"]
        queues = sqs_delivery.Queues(url, attributes["QueueArn"], dead_letter_url)
        before = self._invoked
        # moto moves a message to the dead-letter queue on the receive after its maxReceiveCount-th.
        max_receives = (settings.max_receive_count or 9) + 1
        # Enough invocations for every message to be received max_receives times; the limit only stops a
        # function that never deletes its messages from running forever.
        batches = -(-sqs_delivery.waiting(sqs, url) // settings.batch_size)
        delivery = sqs_delivery.drain(
            sqs, queues, self._handler_for(logical_id), settings,
            max_receives=max_receives, max_invocations=max(200, batches * max_receives),
        )
        # Every one of them, however many: the count the learner reads must be the real one.
        dead_letters = sqs_delivery.receive_all(sqs, dead_letter_url, sqs_delivery.waiting(sqs, dead_letter_url)) if dead_letter_url else []
        if dead_letter_url:  # receiving counted as a receive: make them visible again for the learner's own look
            for message in dead_letters:
                sqs.change_message_visibility(QueueUrl=dead_letter_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        return QueueDelivery(self._since(before), delivery.invocations, dead_letters, delivery.stopped)

    # --- SNS ---------------------------------------------------------------------------------------

    def fanout(self):
        fanout = getattr(self, "_wired_fanout", None)
        if fanout is None:
            from workshop.grading import sns_delivery

            try:
                settings = sns_delivery.TopicSettings.from_template(self.template)
            except sns_delivery.SettingsError as error:
                raise LocalError(f"lab {self.number} has no topic to publish to ({error}){_elsewhere('SNS')}") from None
            failure_queues = {s.on_failure: self.physical(s.on_failure) for s in settings.subscribers if s.on_failure}
            fanout = sns_delivery.FanOut.create(
                self.client("sns"), self.client("sqs"), settings, "local-sns",
                topic_arn=self.physical(settings.topic), failure_queues=failure_queues,
            )
            self._wired_fanout = fanout
        return fanout

    def publish(self, message: str | dict, attributes: dict[str, str] | None = None, subject: str | None = None) -> list[AsyncDelivery]:
        """Publish to the lab's topic and deliver a copy to each subscribed function whose filter policy matches."""
        from workshop.grading import sns_delivery

        fanout = self.fanout()
        text = message if isinstance(message, str) else json.dumps(message)
        check_sns_message(text, attributes or {}, subject)
        fanout.publish(self.client("sns"), text, attributes, subject)
        sqs, delivered = self.client("sqs"), []
        for subscriber in fanout.settings.subscribers:
            subscription_arn = f"{fanout.topic_arn}:{uuid.uuid5(uuid.NAMESPACE_URL, subscriber.function)}"
            for queued in sns_delivery.receive_all(sqs, fanout.subscription_queues[subscriber.function], 50):
                envelope = json.loads(queued["Body"])
                event = sns_delivery.sns_event(envelope, subscription_arn)
                delivered.append(self._invoke_asynchronously(subscriber.function, event, envelope["MessageId"]))
        return delivered

    # --- schedules ---------------------------------------------------------------------------------

    def schedules(self) -> list[tuple[str, str, str, Any]]:
        """(rule logical id, schedule expression, function logical id, the target's constant Input or None)."""
        found = []
        for rule, properties in templates.resources_of_type(self.template, "AWS::Events::Rule"):
            expression = properties.get("ScheduleExpression")
            if not expression or properties.get("State", "ENABLED") != "ENABLED":
                continue
            for target in properties.get("Targets", []):
                for function in templates.references(target.get("Arn")) & set(self._functions):
                    found.append((rule, expression, function, target.get("Input")))
        return found

    def tick(self, until: datetime | str, *, since: datetime | str | None = None) -> list[AsyncDelivery]:
        """Move the simulated clock to `until`: each scheduled rule fires at every moment of (since, until]
        its expression names (since: where the clock was). A rate() counts from the rule's creation,
        here the Unix epoch, so that rate(1 hour) fires on the hour."""
        from workshop.local import schedule

        end = clock_time(until)
        start = clock_time(since) if since is not None else self.clock
        if end <= start:
            raise LocalError(f"the clock is at {start:%Y-%m-%dT%H:%M:%SZ}: tick to a later time than that")
        rules = self.schedules()
        if not rules:
            raise LocalError(f"lab {self.number} has no scheduled function (an Events: {{Type: Schedule}} in its template){_elsewhere('Schedule')}")
        fires = []
        for rule, expression, function, constant in rules:
            try:
                moments = schedule.fire_times(expression, start, end, origin=EPOCH)
            except schedule.ScheduleError as error:
                raise LocalError(f"{rule}: {error}") from None
            fires += [(moment, rule, function, constant) for moment in moments]
        delivered = []
        for moment, rule, function, constant in sorted(fires, key=lambda fire: fire[0]):
            rule_arn = f"arn:aws:events:{sandbox.REGION}:123456789012:rule/{self.physical(rule)}"
            event = json.loads(constant) if constant else schedule.scheduled_event(moment, rule_arn)
            delivered.append(self._invoke_asynchronously(function, event, event.get("id", str(uuid.uuid4()))))
        self.clock = end
        return delivered


def next_fire(lab: LocalLab, after: datetime) -> datetime | None:
    """The first moment after `after` a schedule of the lab fires (within a year), for messages."""
    from workshop.local import schedule

    moments = []
    for _, expression, _, _ in lab.schedules():
        with contextlib.suppress(schedule.ScheduleError):
            found = schedule.fire_times(expression, after, after + timedelta(days=366), origin=EPOCH, limit=100_000)
            moments += found[:1]
    return min(moments, default=None)
