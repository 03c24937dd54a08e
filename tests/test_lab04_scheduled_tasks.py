"""Grader for lab 4: scheduled tasks, observability with Powertools Metrics and idempotent reruns.

Each test_taskN_* checks task N of docs/labs/lab04_scheduled_tasks.md. A failure tells you what the grader
sent, what came back, what it expected and where to look. PYTEST_DONT_REWRITE: the messages below are
shown to you exactly as written.

The grader sets the wall clock your code sees (datetime, date and time), so that a run can start late or
be retried; DynamoDB, S3 and Powertools keep the real one.

Rules and the checks that enforce them (the page's tasks and the TODO(task N) of the starter):

| Rule | Check |
| --- | --- |
| 1: the report is that of the full hour before the event's time, whatever the wall clock says | test_task1_a_late_run_reports_the_hour_before_the_event_time |
| 1: at midnight, the date steps back too (23:00 of the day before) | test_task1_a_run_just_after_midnight_reports_23_00_of_the_day_before |
| 1: a run at minutes past the hour (a rate rule) reports the previous full hour | test_task1_a_run_at_23_minutes_past_reports_the_previous_full_hour |
| 1: hour_start and hour_end: ISO 8601 strings, whole hours, with their UTC offset, one hour apart | the three test_task1_* (check_hour_fields) |
| 1: the report counts the orders of the event's hour, read for that hour (not the wall clock's) | the three test_task1_* (check_orders_of_the_hour) |
| 2: the same event twice: one object, at REPORT_PREFIX + YYYY/MM/DD/HH.json, the same content | test_task2_the_same_event_twice_writes_one_report_with_the_same_content |
| 2: the report is stored as application/json | test_task2_the_same_event_twice_writes_one_report_with_the_same_content |
| 2: a replay after a late order replaces the report: every order counted once | test_task2_a_rerun_after_a_late_order_replaces_the_report |
| 3: no Scan; a Query on the index named by INDEX_NAME, of the table named by TABLE_NAME | test_task3_queries_the_hours_partition_of_the_index_and_never_scans |
| 3: every page is read (LastEvaluatedKey); none of the hours around; revenue exact, in Decimal | test_task3_reads_every_page_of_the_hour_and_adds_up_in_decimal |
| 3: orders a JSON integer, revenue exact, average_order revenue / orders rounded to the cent | test_task3_writes_every_figure_of_the_report_exact_to_the_cent |
| 4: OrdersCounted (Count) and Revenue in the namespace of POWERTOOLS_METRICS_NAMESPACE, once per run | test_task4_publishes_the_orders_counted_and_the_revenue_as_metrics |
| 4: a JSON log line naming the hour or the key, with the Lambda context | test_task4_logs_the_run_as_json_with_the_lambda_context |
| 4: an empty hour: a report of zeros (average_order 0.00) and zero metrics | test_task4_an_hour_without_orders_writes_a_zero_report_and_zero_metrics |
| 5: one schedule, an expression EventBridge accepts, every hour, enabled; Scheduler's Input passes the time | test_task5_runs_every_hour_on_a_valid_schedule_expression |
| 5: Timeout 30 to 300 seconds | test_task5_timeout_fits_an_hourly_job |
| 5: read the table and its index, write nothing to it; s3:PutObject under the reports prefix only | test_task5_reads_the_orders_index_and_writes_only_the_reports_prefix |
| 5: dynamodb:Query on the index's ARN and s3:PutObject on a report's ARN, as AWS resolves them (not an ARN given as a name) | test_task5_reads_the_orders_index_and_writes_only_the_reports_prefix |
| 5: least privilege: no `*` resource, no whole bucket, no action beyond DynamoDBReadPolicy's and s3:PutObject (SAM's SendMessage to the failure queue aside) | test_task5_reads_the_orders_index_and_writes_only_the_reports_prefix |
| 5: TABLE_NAME, INDEX_NAME, REPORT_BUCKET, REPORT_PREFIX, the metrics namespace; lab 1's settings | test_task5_keeps_lab_1s_settings_configuration_arm64_current_runtime_powertools_layer |

Not checked offline, and named so on the page: EventBridge firing on time, Lambda's retries and on-failure
destination, CloudWatch turning the EMF lines into metrics and alarms. At an exact half cent, either way of
rounding the average is right: the page names none.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from types import ModuleType
from typing import Any

import botocore.exceptions
import pytest

from workshop import paths, templates
from workshop.grading.aws import client, resource
from workshop.grading.feedback import LearnerCodeError, learner_code, learner_frames
from workshop.grading.logs import json_lines
from workshop.grading.s3_events import new_bucket, objects_in
from workshop.grading.scheduled_jobs import (
    DynamoDBReads,
    frozen_clock,
    is_emf,
    published_metrics,
    reset_powertools_metrics,
    runs_every_hour,
    schedule_problem,
)
from workshop.grading.template_checks import (
    assert_keeps_lab_1_settings,
    beyond,
    deployed_elsewhere,
    function_by_code_uri,
    grants_of,
    load_both,
    resource_arn,
    role_of,
)

FUNCTION = "hourly_report"
APP = f"{FUNCTION}/app.py"
SEED = "seed/orders.json"
PAGE_SIZE = 5
# Managed policies SAM attaches by itself (the second one with Tracing: Active).
SAM_MANAGED_POLICIES = ("AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess", "AWSXRayDaemonWriteAccess")
DYNAMODB_READS = {"GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "ConditionCheckItem", "PartiQLSelect"}
READ_ACTIONS = frozenset(f"dynamodb:{a.lower()}" for a in DYNAMODB_READS)  # DynamoDBReadPolicy's, and no write
PUT_ACTIONS = frozenset({"s3:putobject"})  # on the reports prefix only
SEND_ACTIONS = frozenset({"sqs:sendmessage"})  # SAM's own statement for an on-failure destination queue
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"  # what EventBridge Scheduler replaces with the scheduled time
HOUR_IN_KEY = re.compile(r"(\d{4})/(\d{2})/(\d{2})/(\d{2})")

HOUR_ADVICE = (
    "The hour comes from the event's time (the moment EventBridge scheduled the run), never from the wall "
    "clock: start from datetime.fromisoformat(event[\"time\"])."
)
NOT_THE_HOUR = (
    "This error is not about which hour to report: fix it where the lines above point (reading the orders and "
    "adding them up is task 3; metrics and logs are task 4), then run this check again."
)
CENT = Decimal("0.01")


# --- helpers ---------------------------------------------------------------------------------------


def when(text: str) -> datetime:
    """An ISO 8601 time as EventBridge writes it ("2026-11-27T14:00:07Z"), in UTC."""
    return datetime.fromisoformat(text)


def expected_hour(event: dict) -> datetime:
    """The grader's own reference: the start of the full hour before the event's time."""
    return when(event["time"]).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def span(hour: datetime) -> str:
    return f"{hour:%H:%M} to {hour + timedelta(hours=1):%H:%M} on {hour:%d %B %Y} (UTC)"


def shown(value: object) -> str:
    """A value of a report as its JSON reads."""
    return json.dumps(value, default=str)


def parsed(body: bytes) -> dict | None:
    """A report's body as JSON (numbers as Decimal), or None when it is not a JSON object."""
    try:
        document = json.loads(body, parse_float=Decimal)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def as_decimal(value: object) -> Decimal | None:
    """A figure of the report as an exact number: JSON numbers and numeric strings both count."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


@dataclass
class Job:
    """The learner's function, loaded as a cold start, and the resources the grader made for it."""

    handler: Any
    module: ModuleType
    table: str
    index: str
    bucket: str
    prefix: str
    orders: list[dict]  # every order in the table: the seed's, then any the grader adds

    def key(self, hour: datetime) -> str:
        return f"{self.prefix}{hour:%Y/%m/%d/%H}.json"

    def orders_of(self, hour: datetime) -> list[dict]:
        return [order for order in self.orders if order.get("order_hour") == f"{hour:%Y-%m-%dT%H}"]

    def written_key(self, hour: datetime) -> str | None:
        """The key of the report the function wrote for `hour`: the exact one, or one whose key names the hour
        (task 2 grades the exact key; the other tasks look at the report wherever it is)."""
        keys = sorted(self.reports())
        if self.key(hour) in keys:
            return self.key(hour)
        return next((key for key in keys if hour_of_key(key) == f"{hour:%Y-%m-%d-%H}"), None)

    def add(self, *orders: dict) -> None:
        put_orders(self.table, list(orders))
        self.orders.extend(orders)

    def keep_selling_until(self, start: datetime, clock: datetime) -> None:
        """A live shop: an order in each hour from `start` to the wall clock's that has none yet."""
        hour = start.replace(minute=0, second=0, microsecond=0)
        while hour <= clock:
            if not self.orders_of(hour):
                self.add(an_order(hour, minute=17, total=Decimal("12.00")))
            hour += timedelta(hours=1)

    def reports(self) -> dict[str, Any]:
        """Every object in the report bucket, by key."""
        return objects_in(self.bucket)

    def report(self, key: str) -> dict:
        stored = self.reports().get(key)
        assert stored is not None, f"There is no object {key!r} in the report bucket (it holds {sorted(self.reports())})."
        document = parsed(stored.body)
        assert isinstance(document, dict), (
            f"The report {key} holds {stored.body[:200]!r}; expected a JSON object such as "
            '{"hour_start": "2026-11-27T13:00:00+00:00", "orders": 12, "revenue": "234.84", ...}, as json.dumps(report) writes it.'
        )
        return document


def an_order(hour: datetime, minute: int, total: Decimal) -> dict:
    """An order of the grader's own, placed `minute` minutes into `hour`."""
    return {
        "order_id": f"ord-{uuid.uuid4().hex[:8]}",
        "customer": "cust-0042",
        "items": [{"sku": "MUG-WHITE", "quantity": 1, "unit_price": total}],
        "total": total,
        "order_hour": f"{hour:%Y-%m-%dT%H}",
        "created_at": f"{hour:%Y-%m-%dT%H}:{minute:02d}:59.500Z",
    }


def read_seed(lab_dir: Path) -> list[dict]:
    path = lab_dir / SEED
    try:
        orders = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except (OSError, ValueError) as error:
        raise AssertionError(f"{paths.relative(path)}, the lab's orders, cannot be read: {error}") from None
    assert isinstance(orders, list) and orders, f"{paths.relative(path)} should hold a JSON list of orders."
    return orders


def create_orders_table(index: str) -> str:
    """The orders table with the lab's key design, a random name and a random index name."""
    name = f"orders-{uuid.uuid4().hex[:8]}"
    attributes = [("order_id", "S"), ("order_hour", "S"), ("created_at", "S")]
    client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in attributes],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": "order_hour", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["total"]},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def put_orders(table: str, orders: list[dict]) -> None:
    with resource("dynamodb").Table(table).batch_writer() as batch:
        for order in orders:
            batch.put_item(Item=order)


def learner_module(handler: Any) -> ModuleType:
    """The module Lambda imported the handler from, whose wall clock the grader sets."""
    names = (getattr(handler, "__module__", None), getattr(inspect.unwrap(handler), "__globals__", {}).get("__name__"))
    for name in names:
        module = sys.modules.get(name or "")
        if module is not None and str(getattr(module, "__file__", "")).endswith(APP):
            return module
    raise AssertionError(
        f"The lambda_handler of {APP} is not a function defined in {APP} (a decorator that does not use "
        "functools.wraps hides it): the grader cannot find its module."
    )


@pytest.fixture
def hourly_report(load_handler, lab_dir):
    """load(): the lab's seed orders in a fresh table, an empty bucket, and the learner's handler (a cold start)."""

    def load() -> Job:
        reset_powertools_metrics()
        seed = read_seed(lab_dir)
        index = f"by-hour-{uuid.uuid4().hex[:6]}"
        table = create_orders_table(index)
        put_orders(table, seed)
        bucket, prefix = new_bucket("reports"), f"reports-{uuid.uuid4().hex[:6]}/"
        with learner_code(f"Importing {APP} (the cold start)"):
            handler = load_handler(
                FUNCTION,
                TABLE_NAME=table,
                INDEX_NAME=index,
                REPORT_BUCKET=bucket,
                REPORT_PREFIX=prefix,
                # Of their own per cold start, so that no name can be hard-coded and each gets a fresh logger.
                POWERTOOLS_SERVICE_NAME=f"hourly-report-{uuid.uuid4().hex[:8]}",
                POWERTOOLS_METRICS_NAMESPACE=f"Workshop{uuid.uuid4().hex[:8]}",
            )
        return Job(handler, learner_module(handler), table, index, bucket, prefix, list(seed))

    return load


Advice = str | Callable[[BaseException], str]


def run(job: Job, event: dict, context, *, clock: datetime, what: str, advice: Advice = "") -> Any:
    """Invoke the handler while the wall clock, as the learner's code sees it, says `clock`. When it raises, the
    failure says what the grader did, the error and where; then `advice`, or what `advice(error)` says fits it."""
    action = f"Your lambda_handler, given {what} (time {event['time']}), at {clock:%H:%M:%S} by the wall clock,"
    with frozen_clock(job.module, clock):
        try:
            with learner_code(action):
                return job.handler(event, context)
        except LearnerCodeError as failure:
            error = failure.__cause__
            extra = advice(error) if callable(advice) and error is not None else advice
            if not extra or not isinstance(extra, str):
                raise
            raise LearnerCodeError(f"{failure}\n{extra}") from error


def mentions(error: BaseException, *words: str) -> bool:
    """Whether the error's type, its message or the line of the learner's code that raised it holds a word."""
    frames = learner_frames(error)
    text = f"{type(error).__name__} {error} {frames[-1].line if frames else ''}".lower()
    return any(word.lower() in text for word in words)


def hour_advice(error: BaseException) -> str:
    """HOUR_ADVICE for an error about the event's time or the hour, a pointer elsewhere for any other."""
    python_error = isinstance(error, (ValueError, TypeError, KeyError, AttributeError, IndexError))
    about_time = mentions(error, "time", "hour", "date", "isoformat", "strptime", "tzinfo", "offset")
    if python_error and not isinstance(error, botocore.exceptions.ClientError) and about_time:
        return HOUR_ADVICE
    return NOT_THE_HOUR


def rerun_advice(error: BaseException) -> str:
    """RERUN_ADVICE for an error in reading the hour's earlier report (a read-modify-write), none for any other."""
    return RERUN_ADVICE if mentions(error, "get_object", "list_objects", "head_object", "NoSuchKey", "Not Found") else ""


def metrics_advice(error: BaseException) -> str:
    """METRICS_ADVICE for an error of Powertools Metrics, none for any other."""
    return METRICS_ADVICE if mentions(error, "metric") else ""


def hour_of_key(key: str) -> str | None:
    """The hour a report key names (".../2026/11/27/13.json" -> "2026-11-27-13")."""
    match = HOUR_IN_KEY.search(key)
    return "-".join(match.groups()) if match else None


def reports_of_the_hour(job: Job, hour: datetime, after: str) -> list[str]:
    """The keys of the reports written, all of them for `hour`; an AssertionError saying what is there instead."""
    written = sorted(job.reports())
    expected = job.key(hour)
    hours = {key: hour_of_key(key) for key in written}
    assert written, (
        f"{after}, the report bucket is empty; expected the report of {span(hour)} at {expected} "
        "(REPORT_BUCKET, at REPORT_PREFIX + YYYY/MM/DD/HH.json)."
    )
    wrong = [key for key in written if hours[key] != f"{hour:%Y-%m-%d-%H}"]
    assert not wrong, (
        f"{after}, the report bucket holds {written}; expected the report of {span(hour)}, at {expected}.\n"
        f"{HOUR_ADVICE} A run that starts late, or a retry, must report the same hour as a run on time."
    )
    return written


def iso_time(value: object) -> datetime | None:
    """An ISO 8601 time of the report as a datetime, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def check_hour_fields(job: Job, key: str, hour: datetime) -> None:
    """The report's hour_start and hour_end: the hour's start and end, ISO 8601 strings in UTC, with the offset."""
    report = job.report(key)
    for field, moment in (("hour_start", hour), ("hour_end", hour + timedelta(hours=1))):
        value, time = report.get(field), iso_time(report.get(field))
        if time is None:
            why = "it is missing" if field not in report else "it is not an ISO 8601 time as a JSON string"
        elif time.tzinfo is None:
            why = (
                "it has no UTC offset, so whoever reads it takes it for their own local time. datetime.fromisoformat "
                "keeps the Z of the event's time as UTC (+00:00); strptime needs %z to keep it"
            )
        elif time.utcoffset() != timedelta(0):
            why = "it is not in UTC (+00:00)"
        elif time.replace(minute=0, second=0, microsecond=0) != time:
            why = (
                "it is not a whole hour: truncate the event's time to its hour with "
                ".replace(minute=0, second=0, microsecond=0) before stepping back one hour"
            )
        elif time != moment:
            why = f"it is another hour ({HOUR_ADVICE})" if field == "hour_start" else "hour_end is hour_start plus one hour"
        else:
            continue
        raise AssertionError(
            f"The report {key} has {field} {shown(value)}; expected {shown(moment.isoformat())}, the "
            f"{'start' if field == 'hour_start' else 'end'} of the hour reported ({span(hour)}): {why}."
        )


def check_orders_of_the_hour(job: Job, key: str, hour: datetime, clock: datetime) -> None:
    """Task 1's count: the orders of the event's hour. When the count is wrong, say whether the orders were read
    for the wall clock's hour (task 1) or read incompletely (task 3)."""
    count, expected = job.report(key).get("orders"), len(job.orders_of(hour))
    if count == expected:
        return
    clock_hour = clock.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    if count == len(job.orders_of(clock_hour)):
        why = (
            f"as many as the wall clock's previous hour has ({span(clock_hour)}). The key names the right hour, but "
            "the orders were read for the hour of the wall clock: compute the hour once, from the event's time, and "
            f"use it for the key, the query and the report. {HOUR_ADVICE}"
        )
    else:
        why = (
            "the key names the right hour, so this is about how your code reads and counts that hour's orders: "
            "task 3's work (query the index for order_hour, and follow LastEvaluatedKey)"
        )
    raise AssertionError(
        f"The report {key} counts {count!r} orders; {span(hour)} has {expected} in {SEED} (the orders whose "
        f"order_hour is {hour:%Y-%m-%dT%H}): {why}."
    )


def check_count(job: Job, key: str, hour: datetime, why: str = "") -> None:
    """The report at `key` counts the orders of `hour`, each once."""
    orders = job.orders_of(hour)
    count = job.report(key).get("orders")
    assert count == len(orders), (
        f"The report {key} counts {count!r} orders; the hour has {len(orders)}: the orders whose order_hour is "
        f"{hour:%Y-%m-%dT%H} in {SEED}{why}. Write their number as \"orders\"."
    )


# --- task 1 ----------------------------------------------------------------------------------------


def test_task1_a_late_run_reports_the_hour_before_the_event_time(hourly_report, load_event, lambda_context):
    # GIVEN the orders of seed/orders.json, and the event EventBridge sends for the run of 14:00
    # (events/eventbridge_hourly.json, time 14:00:07)
    job = hourly_report()
    event = load_event("eventbridge_hourly")
    hour = expected_hour(event)
    late = when(event["time"]) + timedelta(hours=3, minutes=42, seconds=12)
    job.keep_selling_until(when(event["time"]), late)

    # WHEN the run starts late, while orders keep coming in: the wall clock says 17:42:19
    run(job, event, lambda_context, clock=late, what="events/eventbridge_hourly.json", advice=hour_advice)

    # THEN it wrote the report of 13:00 to 14:00, the full hour before the event's time, with that hour's orders
    keys = reports_of_the_hour(job, hour, f"After a run for {event['time']} that started at {late:%H:%M:%S}")
    check_hour_fields(job, keys[0], hour)
    check_orders_of_the_hour(job, keys[0], hour, late)


def test_task1_a_run_just_after_midnight_reports_23_00_of_the_day_before(hourly_report, load_event, lambda_context):
    # GIVEN the orders of seed/orders.json, and the event of the run of midnight
    # (events/eventbridge_after_midnight.json, time 00:00:05)
    job = hourly_report()
    event = load_event("eventbridge_after_midnight")
    hour = expected_hour(event)
    late = when(event["time"]) + timedelta(hours=6, minutes=12, seconds=39)
    job.keep_selling_until(when(event["time"]), late)

    # WHEN it runs late again, while orders keep coming in: the wall clock says 06:12:44
    run(job, event, lambda_context, clock=late, what="events/eventbridge_after_midnight.json", advice=hour_advice)

    # THEN it reports 23:00 to midnight of the day before: the date steps back too
    keys = reports_of_the_hour(job, hour, f"After the run for {event['time']}")
    check_hour_fields(job, keys[0], hour)
    check_orders_of_the_hour(job, keys[0], hour, late)


def test_task1_a_run_at_23_minutes_past_reports_the_previous_full_hour(hourly_report, load_event, lambda_context):
    # GIVEN the orders of seed/orders.json, and the run of 14:23:07 of a rate(1 hour) rule created at 23 minutes
    # past an hour (events/eventbridge_hourly.json, its time changed by the grader)
    job = hourly_report()
    event = load_event("eventbridge_hourly")
    event["time"] = "2026-11-27T14:23:07Z"
    hour = expected_hour(event)
    clock = when(event["time"]) + timedelta(seconds=2)

    # WHEN it runs
    run(job, event, lambda_context, clock=clock, what="events/eventbridge_hourly.json", advice=hour_advice)

    # THEN it reports the previous full hour, 13:00 to 14:00, not 13:23 to 14:23
    keys = reports_of_the_hour(job, hour, f"After the run for {event['time']}")
    check_hour_fields(job, keys[0], hour)
    check_orders_of_the_hour(job, keys[0], hour, clock)


# --- task 2 ----------------------------------------------------------------------------------------

RERUN_ADVICE = (
    "Derive the key and the content from the hour alone: key = REPORT_PREFIX + f\"{hour:%Y/%m/%d/%H}.json\", "
    "and write the whole report each time (no time of the run in the key or the report, no read-modify-write)."
)


def test_task2_the_same_event_twice_writes_one_report_with_the_same_content(
    hourly_report, load_event, lambda_context
):
    # GIVEN the orders of seed/orders.json and the event of the run of 14:00
    job = hourly_report()
    event = load_event("eventbridge_hourly")
    hour = expected_hour(event)
    first_clock = when(event["time"]) + timedelta(seconds=0.4)

    # WHEN it is delivered twice: on time, and again three minutes later (a retry, or a second delivery)
    run(job, event, lambda_context, clock=first_clock, what="events/eventbridge_hourly.json", advice=rerun_advice)
    first = {key: stored.body for key, stored in job.reports().items()}
    run(
        job,
        event,
        lambda_context,
        clock=first_clock + timedelta(minutes=3, seconds=12),
        what="the same event again",
        advice=rerun_advice,
    )

    # THEN the bucket holds one report, at the hour's key, and the second run wrote the same content
    second = job.reports()
    expected = job.key(hour)
    assert sorted(second) == [expected], (
        f"After two deliveries of the same event, the report bucket holds {sorted(second) or 'nothing'}; "
        f"expected one object, {expected}. With the time of the run in the key, every rerun adds a report, and "
        f"nobody knows which one counts. {RERUN_ADVICE}"
    )
    assert expected in first, (
        f"After the first delivery, the report bucket held {sorted(first) or 'nothing'}; expected {expected}."
    )
    after = job.report(expected)
    before = parsed(first[expected]) or {}
    changed = ", ".join(
        f"{field} from {shown(before.get(field))} to {shown(after.get(field))}"
        for field in sorted(set(before) | set(after), key=str)
        if before.get(field) != after.get(field)
    )
    assert before == after, (
        f"The second delivery changed the report {expected}: {changed}. A rerun for the same hour "
        "must write the same report: nothing of the run (its time, its request id) in it, and never the sum "
        "of the old report and the new figures."
    )
    check_count(job, expected, hour)
    content_type = client("s3").head_object(Bucket=job.bucket, Key=expected).get("ContentType")
    assert content_type == "application/json", (
        f"The report {expected} is stored with the content type {content_type!r}; expected 'application/json', "
        "so that a browser, the S3 console or a dashboard reads it as JSON: "
        "put_object(..., ContentType=\"application/json\")."
    )


def test_task2_a_rerun_after_a_late_order_replaces_the_report(hourly_report, load_event, lambda_context):
    # GIVEN the report of 13:00 to 14:00, written by the run of 14:00
    job = hourly_report()
    event = load_event("eventbridge_hourly")
    hour = expected_hour(event)
    clock = when(event["time"]) + timedelta(seconds=0.4)
    run(job, event, lambda_context, clock=clock, what="events/eventbridge_hourly.json", advice=rerun_advice)

    # WHEN an order of 13:59 arrives late, and someone replays the event of 14:00 to include it
    job.add(an_order(hour, minute=59, total=Decimal("10.05")))
    run(
        job,
        event,
        lambda_context,
        clock=clock + timedelta(minutes=20),
        what="the same event, replayed",
        advice=rerun_advice,
    )

    # THEN the hour's one report is replaced by the figures of all its orders, counted once each
    expected = job.key(hour)
    written = sorted(job.reports())
    assert written == [expected], (
        f"After the replay, the report bucket holds {written}; expected one object, {expected}, replaced. "
        f"{RERUN_ADVICE}"
    )
    check_count(
        job,
        expected,
        hour,
        why=", plus the late order the grader added. A rerun recomputes the hour: it neither keeps the old report "
        "nor adds to it",
    )


# --- task 3 ----------------------------------------------------------------------------------------


def test_task3_queries_the_hours_partition_of_the_index_and_never_scans(
    monkeypatch, hourly_report, load_event, lambda_context
):
    # GIVEN the orders of seed/orders.json, and a watch on the function's DynamoDB reads
    job = hourly_report()
    event = load_event("eventbridge_hourly")
    hour = expected_hour(event)
    reads = DynamoDBReads(monkeypatch)

    # WHEN the run of 14:00 reports 13:00 to 14:00
    run(job, event, lambda_context, clock=when(event["time"]), what="events/eventbridge_hourly.json")

    # THEN it never scanned the table, and queried its index
    scans = reads.of("Scan") + reads.of("ExecuteStatement")
    assert not scans, (
        f"Your function scanned the orders table {len(scans)} time(s). A scan reads every item of the table, "
        "every hour ever recorded, and bills them all, to keep the few that match its filter; it gets slower and "
        f"dearer every hour. Query the index named by INDEX_NAME ({job.index}) for order_hour = "
        f"\"{hour:%Y-%m-%dT%H}\" instead: it reads that hour's orders only."
    )
    queries = reads.of("Query")
    on_index = [read for read in queries if read.index == job.index and read.table == job.table]
    assert on_index, (
        f"Your function made {len(queries)} queries, none on the index {job.index} (INDEX_NAME) of the table "
        f"{job.table} (TABLE_NAME): {[(read.table, read.index) for read in queries]}. The table's key is order_id; "
        "the hour is the partition key of the index: table.query(IndexName=INDEX_NAME, "
        f"KeyConditionExpression=Key(\"order_hour\").eq(\"{hour:%Y-%m-%dT%H}\"))."
    )


def test_task3_reads_every_page_of_the_hour_and_adds_up_in_decimal(
    monkeypatch, hourly_report, load_event, lambda_context
):
    # GIVEN the orders of seed/orders.json, and DynamoDB returning at most 5 items per page (as its 1 MB pages
    # would for a busy hour)
    job = hourly_report()
    event = load_event("eventbridge_hourly")
    hour = expected_hour(event)
    reads = DynamoDBReads(monkeypatch, page_size=PAGE_SIZE)

    # WHEN the run of 14:00 reports 13:00 to 14:00
    run(
        job,
        event,
        lambda_context,
        clock=when(event["time"]),
        what="events/eventbridge_hourly.json",
        advice=lambda error: (
            f"DynamoDB returned at most {PAGE_SIZE} items per page here: code that reads one page sees some "
            "of the hour's orders, or none at all (the first page of a scan may hold other hours only). Query the "
            "index, and follow LastEvaluatedKey."
            if mentions(error, "LastEvaluatedKey", "ExclusiveStartKey", "Items", "query", "scan", "Limit")
            else ""
        ),
    )

    # THEN the report counts every order of the hour, none of the hours around it, and adds up their totals exactly
    key = job.written_key(hour)
    assert key, (
        f"The report bucket holds {sorted(job.reports()) or 'nothing'}; expected the report of {span(hour)} at "
        f"{job.key(hour)} (task 1 first, if it fails)."
    )
    report = job.report(key)
    orders = job.orders_of(hour)
    pages = len(reads.of("Query")) + len(reads.of("Scan"))
    assert report.get("orders") == len(orders), (
        f"Your report {key} counts {report.get('orders')!r} orders; the hour has {len(orders)} in {SEED}. The "
        f"grader has DynamoDB return at most {PAGE_SIZE} items per page, as its 1 MB pages would for a busy hour; "
        f"your code read {pages} page(s). While a response has a LastEvaluatedKey, there is more: query again "
        "with ExclusiveStartKey=response[\"LastEvaluatedKey\"] and add its Items."
    )
    expected = sum((order["total"] for order in orders), Decimal(0))
    revenue = as_decimal(report.get("revenue"))
    assert revenue == expected, (
        f"Your report {key} has revenue {shown(report.get('revenue'))}; expected exactly {expected}, the sum of the "
        f"{len(orders)} totals. In float, 0.1 + 0.2 is 0.30000000000000004: DynamoDB returns numbers as Decimal, "
        "so add them up as Decimal, and write str(revenue) to the JSON (json.dumps cannot write a Decimal)."
    )


def test_task3_writes_every_figure_of_the_report_exact_to_the_cent(hourly_report, load_event, lambda_context):
    # GIVEN the orders of seed/orders.json, and one more order of 10.05 in 13:00 to 14:00 (13 orders, whose
    # average is not a whole number of cents)
    job = hourly_report()
    event = load_event("eventbridge_hourly")
    hour = expected_hour(event)
    job.add(an_order(hour, minute=41, total=Decimal("10.05")))
    orders = job.orders_of(hour)

    # WHEN the run of 14:00 reports 13:00 to 14:00
    run(job, event, lambda_context, clock=when(event["time"]), what="events/eventbridge_hourly.json")

    # THEN "orders" is a whole number, "revenue" the exact sum, "average_order" revenue / orders to the cent
    key = job.written_key(hour)
    assert key, (
        f"The report bucket holds {sorted(job.reports()) or 'nothing'}; expected the report of {span(hour)} at "
        f"{job.key(hour)} (task 1 first, if it fails)."
    )
    report = job.report(key)
    count = report.get("orders")
    assert isinstance(count, int) and not isinstance(count, bool) and count == len(orders), (
        f"The report {key} has orders {shown(count)}; expected the JSON integer {len(orders)}, the number of the "
        "hour's orders (len(orders))."
    )
    revenue = sum((order["total"] for order in orders), Decimal(0))
    assert as_decimal(report.get("revenue")) == revenue, (
        f"The report {key} has revenue {shown(report.get('revenue'))}; expected exactly {revenue}, the sum of the "
        f"{len(orders)} totals, added up as Decimal and written as str(revenue)."
    )
    exact = revenue / len(orders)
    # Either way of rounding an exact half cent is right: the page names none.
    accepted = {exact.quantize(CENT, rounding=ROUND_HALF_EVEN), exact.quantize(CENT, rounding=ROUND_HALF_UP)}
    average = as_decimal(report.get("average_order"))
    assert average in accepted, (
        f"The report {key} has average_order {shown(report.get('average_order'))}; expected "
        f"{shown(str(min(accepted)))}: revenue / orders = {revenue} / {len(orders)} = {exact:.6f}, rounded to the cent "
        "(neither truncated nor left with more decimals): (revenue / len(orders)).quantize(Decimal(\"0.01\")), "
        "written as a string."
    )


# --- task 4 ----------------------------------------------------------------------------------------

METRICS_ADVICE = (
    "Create metrics = Metrics() once, at module level (its namespace comes from POWERTOOLS_METRICS_NAMESPACE), "
    "decorate lambda_handler with @metrics.log_metrics, and call metrics.add_metric(name=\"OrdersCounted\", "
    "unit=MetricUnit.Count, value=...) and metrics.add_metric(name=\"Revenue\", unit=MetricUnit.NoUnit, "
    "value=float(revenue)) on every run."
)


def metrics_of(job: Job, output: str, what: str, note: str = "") -> dict[str, Any]:
    """The metrics the run published in the function's namespace, by name; an AssertionError when none."""
    lines, other = json_lines(output)
    metrics = published_metrics(lines)
    namespace = os.environ["POWERTOOLS_METRICS_NAMESPACE"]
    assert metrics, (
        f"For {what}, your code published no metric: no line of its output is an EMF document (the JSON "
        "CloudWatch turns into metrics)"
        + (f"; it printed: {other[:3]}" if other else "")
        + f".\n{note}{METRICS_ADVICE}"
    )
    ours = {metric.name: metric for metric in metrics if metric.namespace == namespace}
    assert ours, (
        f"Your metrics went to the namespace {sorted({m.namespace for m in metrics})}; expected {namespace!r}, the "
        "value of POWERTOOLS_METRICS_NAMESPACE. Create Metrics() without a namespace: the template sets it."
    )
    return ours


def check_metric(metrics: dict, name: str, expected: Decimal, unit: str | None, what: str) -> None:
    metric = metrics.get(name)
    assert metric is not None, (
        f"For {what}, your code published {sorted(metrics)}; expected a metric named {name!r} too. {METRICS_ADVICE}"
    )
    values = [value for value in metric.values if isinstance(value, (int, float)) and not isinstance(value, bool)]
    assert len(values) == 1 and abs(Decimal(str(values[0])) - expected) < Decimal("0.005"), (
        f"For {what}, the metric {name} has the value(s) {list(metric.values)}; expected one value, {expected}. "
        "Add it once per run, after the report is written."
    )
    assert unit is None or metric.unit == unit, (
        f"The metric {name} has the unit {metric.unit!r}; expected {unit!r} (MetricUnit.{unit})."
    )


def test_task4_publishes_the_orders_counted_and_the_revenue_as_metrics(
    hourly_report, load_event, lambda_context, capsys
):
    # GIVEN the orders of seed/orders.json, and the event of the run of 14:00
    job = hourly_report()
    event = load_event("eventbridge_hourly")
    hour = expected_hour(event)
    orders = job.orders_of(hour)
    capsys.readouterr()

    # WHEN it runs
    run(job, event, lambda_context, clock=when(event["time"]), what="events/eventbridge_hourly.json",
        advice=metrics_advice)

    # THEN it published, in the function's namespace, the number of orders and the revenue of the hour
    what = f"the run of {event['time']}"
    metrics = metrics_of(job, capsys.readouterr().out, what)
    check_metric(metrics, "OrdersCounted", Decimal(len(orders)), "Count", what)
    check_metric(metrics, "Revenue", sum((o["total"] for o in orders), Decimal(0)), None, what)


def test_task4_logs_the_run_as_json_with_the_lambda_context(hourly_report, load_event, lambda_context, capsys):
    # GIVEN the orders of seed/orders.json, and the event of the run of 14:00
    job = hourly_report()
    event = load_event("eventbridge_hourly")
    hour = expected_hour(event)
    capsys.readouterr()

    # WHEN it runs
    run(job, event, lambda_context, clock=when(event["time"]), what="events/eventbridge_hourly.json")

    # THEN it logged the run as JSON (Powertools Logger), saying which hour, with the Lambda context
    lines, other = json_lines(capsys.readouterr().out)
    logs = [line for line in lines if "level" in line and not is_emf(line)]
    assert logs, (
        "Your code wrote no JSON log line to stdout"
        + (f"; it printed: {other[:3]}" if other else "")
        + ".\nprint() writes plain text that nobody can search by field. Create logger = Logger() once at module "
        "level and log the run through it: logger.info(\"Report written\", extra={\"key\": key, ...})."
    )
    marks = (f"{hour:%Y-%m-%dT%H}", f"{hour:%Y/%m/%d/%H}")
    about_the_hour = [line for line in logs if any(mark in json.dumps(line, default=str) for mark in marks)]
    assert about_the_hour, (
        f"Your code logged {[line.get('message') for line in logs][:4]}, none of which says which hour it "
        f"reported ({marks[0]}) or where ({job.key(hour)}). Log the report's key, or its hour_start, with the "
        "figures: extra={\"key\": key, **report}."
    )
    line = about_the_hour[0]
    assert line.get("function_name") == lambda_context.function_name, (
        f"The log line {line.get('message')!r} has function_name {line.get('function_name')!r}; expected "
        f"{lambda_context.function_name!r}, from the Lambda context. Decorate lambda_handler with "
        "@logger.inject_lambda_context."
    )


def test_task4_an_hour_without_orders_writes_a_zero_report_and_zero_metrics(
    hourly_report, load_event, lambda_context, capsys
):
    # GIVEN the orders of seed/orders.json, none of them between 04:00 and 05:00
    job = hourly_report()
    event = load_event("eventbridge_quiet_hour")
    hour = expected_hour(event)
    assert not job.orders_of(hour), f"{SEED} should have no order in the hour {hour:%Y-%m-%dT%H}, which this check needs."
    capsys.readouterr()

    # WHEN the run of 05:00 reports that hour
    run(
        job,
        event,
        lambda_context,
        clock=when(event["time"]),
        what="events/eventbridge_quiet_hour.json",
        advice="An hour without orders is a result: a report of zeros, not an error (no division by the number "
        "of orders when there are none).",
    )

    # THEN it wrote the hour's report, with zeros ...
    key = job.written_key(hour)
    assert key, (
        f"After the run for an hour without orders, the report bucket holds {sorted(job.reports()) or 'nothing'}; "
        f"expected {job.key(hour)}, with \"orders\": 0. A missing report looks like a job that did not run."
    )
    report = job.report(key)
    figures = {field: report.get(field) for field in ("orders", "revenue", "average_order")}
    zero = figures["orders"] == 0 and not isinstance(figures["orders"], bool)
    assert zero and all(as_decimal(figures[field]) == 0 for field in ("revenue", "average_order")), (
        f"The report {key} of an hour without orders says {shown(figures)}; expected orders 0, revenue \"0\" and "
        "average_order \"0.00\" (numbers or strings of numbers): an average of no orders is 0.00 by convention, "
        "not a division."
    )
    # ... and published zero metrics, so that a graph shows a quiet hour rather than a gap
    what = "the run of an hour without orders"
    zeros = (
        "Publish the zeros too: a quiet hour without metrics is a gap in the graph, and an alarm cannot tell it "
        "from a job that stopped (Powertools only warns \"No application metrics to publish\"). "
    )
    metrics = metrics_of(job, capsys.readouterr().out, what, note=zeros)
    check_metric(metrics, "OrdersCounted", Decimal(0), "Count", what)
    check_metric(metrics, "Revenue", Decimal(0), None, what)


# --- task 5 ----------------------------------------------------------------------------------------


def schedules_of(cfn: dict, function: str) -> list[tuple[str, dict, str]]:
    """The EventBridge rules and Scheduler schedules that invoke `function`: (name, properties, expression)."""
    found = []
    for name, rule in templates.resources_of_type(cfn, "AWS::Events::Rule"):
        targets = rule.get("Targets") or []
        if "ScheduleExpression" in rule and any(function in templates.references(t.get("Arn")) for t in targets):
            found.append((name, rule, rule["ScheduleExpression"]))
    for name, schedule in templates.resources_of_type(cfn, "AWS::Scheduler::Schedule"):
        if function in templates.references((schedule.get("Target") or {}).get("Arn")):
            found.append((name, schedule, schedule.get("ScheduleExpression")))
    return found


def test_task5_runs_every_hour_on_a_valid_schedule_expression(lab_dir):
    # GIVEN the function and its schedule, as AWS deploys them
    sam, cfn = load_both(lab_dir)
    name, _, _ = function_by_code_uri(sam, cfn, lab_dir, FUNCTION)
    schedules = schedules_of(cfn, name)

    # THEN one schedule invokes it ...
    assert len(schedules) == 1, (
        f"{name} is invoked by {len(schedules)} schedules ({[s[0] for s in schedules]}); expected one: an event "
        "Hourly: {Type: Schedule, Properties: {Schedule: rate(1 hour)}} (or a ScheduleV2)."
    )
    schedule, properties, expression = schedules[0]
    # ... with an expression EventBridge accepts ...
    problem = schedule_problem(expression)
    assert problem is None, (
        f"{schedule}'s schedule: {problem}. AWS refuses it when the stack deploys (sam validate --lint says so "
        "too). Use rate(1 hour), or a cron expression in UTC such as cron(5 * * * ? *)."
    )
    # ... that passes the scheduled time, when it is an EventBridge Scheduler schedule ...
    if cfn["Resources"][schedule]["Type"] == "AWS::Scheduler::Schedule":
        sent = (properties.get("Target") or {}).get("Input")
        assert SCHEDULED_TIME in str(sent), (
            f"{schedule} is an EventBridge Scheduler schedule (ScheduleV2) whose Input is {sent!r}. Scheduler sends "
            "the function that Input (a default payload without one), never a rule's Scheduled Event, so event[\"time\"] "
            f"would be missing: Input: '{{\"time\": \"{SCHEDULED_TIME}\"}}'."
        )
    # ... every hour, and switched on
    assert runs_every_hour(expression), (
        f"{schedule} runs on {expression}; expected once every hour of every day: rate(1 hour), or "
        "cron(M * * * ? *) with M the minute past the hour."
    )
    assert properties.get("State", "ENABLED") != "DISABLED", (
        f"{schedule} is disabled (State: DISABLED): it never runs. Remove Enabled: false / State: DISABLED."
    )


def test_task5_timeout_fits_an_hourly_job(lab_dir):
    # GIVEN the function as AWS deploys it (Globals applied)
    sam, cfn = load_both(lab_dir)
    name, _, function = function_by_code_uri(sam, cfn, lab_dir, FUNCTION)
    timeout = function.get("Timeout", 3)

    # THEN its timeout leaves room for the job, and ends a stuck run well before the next hour's
    assert isinstance(timeout, int) and timeout >= 30, (
        f"{name}'s Timeout is {timeout!r} seconds (3 when it is not set). Reading an hour of a busy shop's orders, "
        "1 MB page after page, and writing the report takes longer than that: choose 30 to 300 (60 to 120 is a "
        "good start)."
    )
    assert timeout <= 300, (
        f"{name}'s Timeout is {timeout} seconds. A run that hangs (a throttled table, a stuck connection) is billed "
        "until then, and Lambda retries a failed scheduled run twice: three runs of "
        f"{timeout // 60} minutes reach into the next hour's run. Choose 30 to 300 seconds (60 to 120 is a good "
        "start)."
    )


# Why a hand-written S3 ARN that is not an ARN at all matches nothing.
NOT_AN_S3_ARN = "it is not an ARN (arn:${AWS::Partition}:s3:::${ReportsBucket}/..., with the bucket's name)"


def test_task5_reads_the_orders_index_and_writes_only_the_reports_prefix(lab_dir):
    # GIVEN the role the function runs with, as AWS deploys it, every ARN resolved as AWS would (with the
    # grader's stand-in names for your account and stack)
    sam, cfn = load_both(lab_dir)
    name, _, function = function_by_code_uri(sam, cfn, lab_dir, FUNCTION)
    role = role_of(cfn, function)
    variables = (function.get("Environment") or {}).get("Variables") or {}
    tables = [n for n, _ in templates.resources_of_type(cfn, "AWS::DynamoDB::Table")]
    buckets = [n for n, _ in templates.resources_of_type(cfn, "AWS::S3::Bucket")]
    table = next(iter(sorted(templates.references(variables.get("TABLE_NAME")) & set(tables))), tables[0] if tables else None)
    bucket = next(iter(sorted(templates.references(variables.get("REPORT_BUCKET")) & set(buckets))), buckets[0] if buckets else None)
    index = variables.get("INDEX_NAME") if isinstance(variables.get("INDEX_NAME"), str) else "by_hour"
    prefix = variables.get("REPORT_PREFIX")
    prefix = prefix if isinstance(prefix, str) and prefix.strip("/") else "reports/"
    # The resources the job may touch: logical id -> (the ARN its statements must stay within, the actions)
    own: dict[str, tuple[str, frozenset]] = {
        queue: (resource_arn(cfn, queue), SEND_ACTIONS) for queue, _ in templates.resources_of_type(cfn, "AWS::SQS::Queue")
    }
    base = {logical_id: arn for logical_id, (arn, _) in own.items()}  # each resource's own ARN
    if table:
        base[table] = resource_arn(cfn, table)
        own[table] = (base[table], READ_ACTIONS)
    if bucket:
        base[bucket] = resource_arn(cfn, bucket)
        own[bucket] = (f"{base[bucket]}/{prefix.strip('/')}", PUT_ACTIONS)

    # THEN no managed policy beyond those SAM attaches itself, and no wildcard action ...
    managed = [arn for arn in role.get("ManagedPolicyArns", []) if not any(p in json.dumps(arn) for p in SAM_MANAGED_POLICIES)]
    assert not managed, (
        f"{name}'s role has the managed policies {managed}, which reach every table or bucket of the account. "
        "Use DynamoDBReadPolicy: {TableName: !Ref OrdersTable} and an inline statement for the reports."
    )
    grants = grants_of(cfn, role)
    wildcards = [a for g in grants for a in g.actions if a == "*" or a.endswith(":*")]
    assert not wildcards, f"{name} may call {wildcards}: name the actions the job needs, no wildcard."

    # ... allowed to query the index and to put a report under the prefix, on the ARNs AWS will check ...
    needs = []
    if table:
        needs.append(("dynamodb:Query", table, f"{base[table]}/index/{index}", f"{table}'s index {index}"))
    if bucket:
        needs.append(("s3:PutObject", bucket, f"{base[bucket]}/{prefix}2026/11/27/13.json", f"a report of {bucket}"))
    missing = [
        f"{action} on {what} ({arn}). {deployed_elsewhere(grants, logical_id, base[logical_id], NOT_AN_S3_ARN)}".rstrip()
        for action, logical_id, arn, what in needs
        if not any(grant.allows(action, arn) for grant in grants)
    ]
    assert table and bucket and not missing, (
        f"{name} may not do what the job needs, on the ARNs AWS will check (the grader's stand-in names for "
        f"your account and stack):\n  - " + "\n  - ".join(missing or ["a table and a bucket in the template"])
        + "\nAdd DynamoDBReadPolicy: {TableName: !Ref OrdersTable} (it grants the table and its indexes: IAM "
        "treats table/<name>/index/<index> as a resource of its own), and an inline statement allowing "
        f"s3:PutObject on !Sub arn:${{AWS::Partition}}:s3:::${{ReportsBucket}}/{prefix}*."
    )
    # ... a statement that names the table or the bucket resolves to its ARN ...
    unmatched = [problem for logical_id, arn in base.items() if (problem := deployed_elsewhere(grants, logical_id, arn, NOT_AN_S3_ARN))]
    assert not unmatched, (
        f"{name}'s policy names a resource by a value that deploys as another ARN.{''.join(unmatched)} "
        "DynamoDBReadPolicy takes TableName: !Ref OrdersTable (a table's !Ref is its name)."
    )
    # ... and nothing beyond the job: the table and its index, the reports prefix, a failure queue
    too_broad, too_much = beyond(grants, own)
    writes = sorted({a for owner, a in too_much if owner == table})
    assert not writes, (
        f"{name} may call {writes} on DynamoDB; a report only reads the orders. Replace the policy with "
        "DynamoDBReadPolicy: {TableName: !Ref OrdersTable}."
    )
    more = sorted({a for owner, a in too_much if owner == bucket})
    assert not more, (
        f"{name} may call {more} on S3 too; the job only writes its report: s3:PutObject, nothing else. SAM's "
        "S3WritePolicy and S3CrudPolicy grant more, on the whole bucket: write an inline statement instead "
        "(Policies: - Statement: [{Effect: Allow, Action: s3:PutObject, Resource: ...}])."
    )
    assert not too_broad, (
        f"{name}'s policy reaches beyond the orders table and its indexes, the reports prefix of the bucket "
        f"(REPORT_PREFIX is {prefix!r}: {own[bucket][0]}/*) and its failure queue: {'; '.join(too_broad)[:600]}. "
        f"Scope the report's s3:PutObject to !Sub arn:${{AWS::Partition}}:s3:::${{ReportsBucket}}/{prefix}*: "
        "S3WritePolicy and S3CrudPolicy grant the whole bucket, deletes included."
    )
    others = sorted({f"{a} on {owner}" for owner, a in too_much if owner not in (table, bucket)})
    assert not others, f"{name} may also do {others}: the job needs none of it."


def test_task5_keeps_lab_1s_settings_configuration_arm64_current_runtime_powertools_layer(lab_dir):
    # GIVEN the function as AWS deploys it (Globals applied)
    sam, cfn = load_both(lab_dir)
    name, _, function = function_by_code_uri(sam, cfn, lab_dir, FUNCTION)
    tables = dict(templates.resources_of_type(cfn, "AWS::DynamoDB::Table"))
    buckets = {n for n, _ in templates.resources_of_type(cfn, "AWS::S3::Bucket")}
    variables = (function.get("Environment") or {}).get("Variables") or {}

    # THEN its settings name the template's table, index and bucket ...
    table = variables.get("TABLE_NAME")
    assert isinstance(table, dict) and table.get("Ref") in tables, (
        f"{name}'s TABLE_NAME is {table!r}; expected !Ref to the template's table ({', '.join(sorted(tables))})."
    )
    indexes = {
        index.get("IndexName"): index
        for index in tables[table["Ref"]].get("GlobalSecondaryIndexes") or []
        if {"AttributeName": "order_hour", "KeyType": "HASH"} in (index.get("KeySchema") or [])
    }
    assert variables.get("INDEX_NAME") in indexes, (
        f"{name}'s INDEX_NAME is {variables.get('INDEX_NAME')!r}; expected the name of the table's index whose "
        f"partition key is order_hour ({sorted(indexes) or 'there is none'})."
    )
    bucket = variables.get("REPORT_BUCKET")
    assert isinstance(bucket, dict) and bucket.get("Ref") in buckets, (
        f"{name}'s REPORT_BUCKET is {bucket!r}; expected !Ref to the template's bucket ({', '.join(sorted(buckets))})."
    )
    prefix = variables.get("REPORT_PREFIX")
    assert isinstance(prefix, str) and prefix.endswith("/") and prefix != "/", (
        f"{name}'s REPORT_PREFIX is {prefix!r}; expected a folder such as reports/."
    )
    assert variables.get("POWERTOOLS_METRICS_NAMESPACE"), (
        f"{name} has no POWERTOOLS_METRICS_NAMESPACE: the grader's sandbox sets one, Lambda does not, and "
        "Powertools Metrics refuses to publish without a namespace."
    )
    # ... and it keeps lab 1's settings: arm64, a current runtime, the Powertools layer, nothing bundled
    assert_keeps_lab_1_settings(name, function, lab_dir / FUNCTION)
