"""Grading helpers for scheduled functions: a wall clock the learner's code cannot escape,
DynamoDB reads watched (and their pages made small), CloudWatch metrics read back from the
EMF lines Powertools prints, and EventBridge schedule expressions checked as AWS would.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import botocore.client

if TYPE_CHECKING:
    import pytest

# --- the wall clock ------------------------------------------------------------------------------


def _frozen_datetime(at: dt.datetime) -> type[dt.datetime]:
    class FrozenDatetime(dt.datetime):
        """datetime, whose now() is `at` (Lambda's local time zone is UTC)."""

        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:
            return at.astimezone(tz) if tz else at.replace(tzinfo=None)

        @classmethod
        def utcnow(cls) -> dt.datetime:
            return at.replace(tzinfo=None)

        @classmethod
        def today(cls) -> dt.datetime:
            return at.replace(tzinfo=None)

    return FrozenDatetime


def _frozen_date(at: dt.datetime) -> type[dt.date]:
    class FrozenDate(dt.date):
        @classmethod
        def today(cls) -> dt.date:
            return at.date()

    return FrozenDate


def _frozen_time_functions(at: dt.datetime) -> dict[str, Any]:
    stamp = at.timestamp()
    return {
        "time": lambda: stamp,
        "time_ns": lambda: int(stamp * 1_000_000_000),
        "gmtime": lambda secs=None: time.gmtime(stamp if secs is None else secs),
        "localtime": lambda secs=None: time.gmtime(stamp if secs is None else secs),
        "strftime": lambda fmt, t=None: time.strftime(fmt, time.gmtime(stamp) if t is None else t),
        "ctime": lambda secs=None: time.asctime(time.gmtime(stamp if secs is None else secs)),
    }


def _module_like(original: types.ModuleType, **overrides: Any) -> types.ModuleType:
    copy = types.ModuleType(original.__name__)
    copy.__dict__.update(vars(original))
    copy.__dict__.update(overrides)
    return copy


def _frozen_globals(module: types.ModuleType, at: dt.datetime) -> dict[str, Any]:
    """What to put in place of each name of `module` that reads the wall clock."""
    clock_datetime, clock_date = _frozen_datetime(at), _frozen_date(at)
    time_functions = _frozen_time_functions(at)
    originals = [(getattr(time, name), frozen) for name, frozen in time_functions.items()]
    replacements: dict[str, Any] = {}
    for name, value in vars(module).items():
        if value is dt.datetime:
            replacements[name] = clock_datetime
        elif value is dt.date:
            replacements[name] = clock_date
        elif value is dt:
            replacements[name] = _module_like(dt, datetime=clock_datetime, date=clock_date)
        elif value is time:
            replacements[name] = _module_like(time, **time_functions)
        else:
            frozen = next((f for original, f in originals if value is original), None)
            if frozen is not None:
                replacements[name] = frozen
    return replacements


def _own_modules(module: types.ModuleType) -> list[types.ModuleType]:
    """`module` and the modules it imported from its own folder (a helper module of the function)."""
    folder = Path(str(getattr(module, "__file__", "") or ".")).parent
    siblings = [
        value
        for value in vars(module).values()
        if isinstance(value, types.ModuleType)
        and getattr(value, "__file__", None)
        and Path(value.__file__).parent == folder
    ]
    return [module, *siblings]


@contextmanager
def frozen_clock(module: types.ModuleType, at: dt.datetime) -> Iterator[None]:
    """While inside, the wall clock as the learner's module (and its helper modules) sees it says `at`.

    datetime.now()/utcnow()/today(), date.today(), time.time() and friends, however imported; the
    libraries (boto3, moto, Powertools) keep the real clock. Lambda's local time zone is UTC.
    """
    saved: list[tuple[types.ModuleType, str, Any]] = []
    for owner in _own_modules(module):
        for name, replacement in _frozen_globals(owner, at).items():
            saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, replacement)
    try:
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


# --- DynamoDB reads ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    operation: str
    table: str | None
    index: str | None


class DynamoDBReads:
    """Records every DynamoDB Query, Scan and PartiQL statement made while installed; with
    `page_size`, DynamoDB returns at most that many items per page, as its 1 MB pages would
    for a larger table (a Limit the code sets itself is kept when it is smaller)."""

    OPERATIONS = ("Query", "Scan", "ExecuteStatement")

    def __init__(self, monkeypatch: pytest.MonkeyPatch, page_size: int | None = None) -> None:
        self.reads: list[Read] = []
        original = botocore.client.BaseClient._make_api_call
        reads = self.reads

        def watching(client, operation_name, api_params):
            if client.meta.service_model.service_name == "dynamodb" and operation_name in self.OPERATIONS:
                reads.append(Read(operation_name, api_params.get("TableName"), api_params.get("IndexName")))
                if page_size and operation_name != "ExecuteStatement":
                    api_params = {**api_params, "Limit": min(api_params.get("Limit") or page_size, page_size)}
            return original(client, operation_name, api_params)

        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", watching)

    def of(self, operation: str) -> list[Read]:
        return [read for read in self.reads if read.operation == operation]


# --- logs and metrics ----------------------------------------------------------------------------


def is_emf(line: dict) -> bool:
    """An Embedded Metric Format document: CloudWatch turns it into metrics."""
    aws = line.get("_aws")
    return isinstance(aws, dict) and isinstance(aws.get("CloudWatchMetrics"), list)


@dataclass(frozen=True)
class PublishedMetric:
    namespace: str
    name: str
    unit: str | None
    values: tuple[Any, ...]


def published_metrics(lines: list[dict]) -> list[PublishedMetric]:
    """Every metric the EMF lines among `lines` publish, in order."""
    found = []
    for line in filter(is_emf, lines):
        for directive in line["_aws"]["CloudWatchMetrics"]:
            if not isinstance(directive, dict):
                continue
            for metric in directive.get("Metrics") or []:
                name = metric.get("Name") if isinstance(metric, dict) else None
                if name is None:
                    continue
                value = line.get(name)
                values = tuple(value) if isinstance(value, list) else (value,)
                found.append(PublishedMetric(str(directive.get("Namespace")), name, metric.get("Unit"), values))
    return found


def reset_powertools_metrics() -> None:
    """Forget the metrics Powertools holds for the whole process, as a new Lambda sandbox would.

    Every Metrics() instance shares one class-level set: a metric added by an earlier test whose
    handler raised before flushing would otherwise be published by the next one.
    """
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics.provider.base import (
        reset_cold_start_flag_provider,
    )

    for name in ("_metrics", "_dimensions", "_metadata", "_default_dimensions"):
        getattr(Metrics, name, {}).clear()
    reset_cold_start_flag_provider()


# --- schedule expressions ------------------------------------------------------------------------

RATE = re.compile(r"^rate\((?P<value>[^ )]+) (?P<unit>[^ )]+)\)$")
CRON = re.compile(r"^cron\((?P<fields>[^)]*)\)$")
RATE_MINUTES = {"minute": 1, "hour": 60, "day": 24 * 60}
MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
DAYS = "SUN MON TUE WED THU FRI SAT".split()
# (name, lowest, highest, names, special characters allowed besides , - * /)
CRON_FIELDS = (
    ("minutes", 0, 59, (), ""),
    ("hours", 0, 23, (), ""),
    ("day-of-month", 1, 31, (), "?LW"),
    ("month", 1, 12, MONTHS, ""),
    ("day-of-week", 1, 7, DAYS, "?L#"),
    ("year", 1970, 2199, (), ""),
)
CRON_SHAPE = "cron(minutes hours day-of-month month day-of-week year)"


def _cron_value(text: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    if text.upper() in names:
        return True
    return text.isdigit() and low <= int(text) <= high


def _cron_part_problem(part: str, field: tuple) -> str | None:
    name, low, high, names, special = field
    if part in ("*", "?"):
        return None if part == "*" or "?" in special else f"? is only allowed in day-of-month or day-of-week, not in {name}"
    if "L" in special and re.fullmatch(r"L(-\d{1,2})?|\d{1,2}W|LW|[1-7A-Z]{1,3}L", part, re.I):
        return None
    if "#" in special and re.fullmatch(r"([1-7]|[A-Z]{3})#[1-5]", part, re.I):
        if _cron_value(part.split("#")[0], low, high, names):
            return None
    base, _, step = part.partition("/")
    if step and not (step.isdigit() and int(step) > 0):
        return f"{part!r} in {name}: the step after / must be a positive number"
    bounds = [base] if base == "*" else base.split("-") if "-" in base else [base]
    if len(bounds) > 2 or not all(b == "*" or _cron_value(b, low, high, names) for b in bounds):
        allowed = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
        hint = " (day-of-week counts 1-7 from SUN, not Unix's 0-6)" if name == "day-of-week" and "0" in bounds else ""
        return f"{part!r} is not a valid {name} (allowed: {allowed}, with , - * /){hint}"
    return None


def schedule_problem(expression: object) -> str | None:
    """Why `expression` is not a schedule expression EventBridge accepts, or None when it is one."""
    text = str(expression).strip()
    if rate := RATE.match(text):
        value, unit = rate["value"], rate["unit"]
        if not value.isdigit() or int(value) < 1:
            return f"{text}: the value of a rate must be a positive whole number"
        singular = unit.rstrip("s") if unit.endswith("s") else unit
        if singular not in RATE_MINUTES:
            return f"{text}: the unit of a rate is minute(s), hour(s) or day(s)"
        expected = singular if int(value) == 1 else f"{singular}s"
        if unit != expected:
            return f"{text}: EventBridge wants rate({value} {expected}): singular for 1, plural above"
        return None
    if cron := CRON.match(text):
        fields = cron["fields"].split()
        if len(fields) != 6:
            return (
                f"{text} has {len(fields)} fields; EventBridge cron expressions have six: {CRON_SHAPE}"
                + (" (a Unix crontab has five: EventBridge adds the year)" if len(fields) == 5 else "")
            )
        for value, field in zip(fields, CRON_FIELDS):
            for part in value.split(","):
                problem = _cron_part_problem(part, field)
                if problem:
                    return f"{text}: {problem}"
        day_of_month, day_of_week = fields[2], fields[4]
        if (day_of_month == "?") == (day_of_week == "?"):
            return (
                f"{text}: exactly one of day-of-month ({day_of_month}) and day-of-week ({day_of_week}) "
                "must be ?, the other says which days: cron(0 * * * ? *) runs every hour of every day"
            )
        return None
    if text.startswith("at("):
        return f"{text} is a one-time schedule (EventBridge Scheduler's at()): it runs once"
    return f"{text!r} is neither rate(value unit) nor {CRON_SHAPE}"


def runs_every_hour(expression: object) -> bool:
    """True when a valid `expression` fires once an hour, every hour of every day."""
    text = str(expression).strip()
    if rate := RATE.match(text):
        return int(rate["value"]) * RATE_MINUTES[rate["unit"].rstrip("s")] == 60
    fields = CRON.match(text)["fields"].split()  # type: ignore[index]
    minutes, hours, day_of_month, month, day_of_week, year = fields
    return (
        minutes.isdigit()
        and hours in ("*", "*/1", "0/1", "0-23")
        and day_of_month in ("*", "?")
        and month == "*"
        and day_of_week in ("*", "?")
        and year == "*"
    )
