"""EventBridge scheduled rules, offline: when a schedule expression fires, and the event it sends.

`workshop tick LAB TIME` asks `fire_times` for the moments in a simulated window and invokes the
function with `scheduled_event(moment, rule_arn)` for each. Expressions are first checked by the
grader's `schedule_problem`, so a learner sees the same message here as from `workshop check`.

Semantics follow the EventBridge user guide, "Using cron and rate expressions to schedule rules"
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html): UTC,
one-minute precision, six cron fields, day-of-week 1-7 counted from SUN.
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from workshop.grading.scheduled_jobs import CRON, CRON_FIELDS, RATE, RATE_MINUTES, schedule_problem

DayRule = Callable[[int, int, int], set[int]]  # (year, month, days in month) -> days of month
SUNDAY, SATURDAY = 1, 7
STAMP = "%Y-%m-%dT%H:%M:%SZ"  # as EventBridge writes an event's time


class ScheduleError(ValueError):
    """An expression that cannot be evaluated: the message says why."""


def fire_times(
    expression: str,
    after: datetime,
    until: datetime,
    *,
    origin: datetime | None = None,
    limit: int = 1000,
) -> list[datetime]:
    """The moments in (after, until] at which EventBridge fires a rule with this schedule expression,
    in order (UTC, aware datetimes). `origin` is when a rate rule was created (default: `after`)."""
    problem = schedule_problem(expression)
    if problem:
        raise ScheduleError(problem)
    after, until = _utc(after, "after"), _utc(until, "until")
    if until < after:
        raise ScheduleError(f"the window ends ({until:{STAMP}}) before it starts ({after:{STAMP}})")
    text = expression.strip()
    if rate := RATE.match(text):
        period = timedelta(minutes=int(rate["value"]) * RATE_MINUTES[rate["unit"].rstrip("s")])
        start = after if origin is None else _utc(origin, "origin")
        return _rate_times(text, period, start, after, until, limit)
    try:
        return _cron_times(text, CRON.match(text)["fields"].split(), after, until, limit)  # type: ignore[index]
    except ScheduleError as error:
        raise ScheduleError(f"{text}: {error}") from None


def scheduled_event(at: datetime, rule_arn: str, *, account: str = "123456789012", region: str = "us-east-1") -> dict:
    """The event EventBridge sends a target of a scheduled rule fired at `at`."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": f"{_utc(at, 'at'):{STAMP}}",
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ScheduleError(
            f"{name} ({moment.isoformat()}) has no time zone: EventBridge schedules run in UTC, "
            "so give it one, e.g. 2026-11-27T09:00Z or 2026-11-27T09:00+00:00"
        )
    return moment.astimezone(UTC)


def _too_many(expression: str, at_least: int, after: datetime, until: datetime, limit: int) -> ScheduleError:
    return ScheduleError(
        f"{expression} fires at least {at_least} times between {after:{STAMP}} and {until:{STAMP}}, "
        f"more than the limit of {limit}: narrow the window"
    )


# --- rate(value unit) ----------------------------------------------------------------------------


def _rate_times(
    expression: str, period: timedelta, origin: datetime, after: datetime, until: datetime, limit: int
) -> list[datetime]:
    """origin + k×period for k >= 1: "A rate expression starts when you create the scheduled event
    rule, and then runs on its defined schedule", so the first run is one period after creation."""
    first = max(1, (after - origin) // period + 1)  # the first k whose moment is after `after`
    last = (until - origin) // period
    count = max(0, last - first + 1)
    if count > limit:
        raise _too_many(expression, count, after, until, limit)
    return [origin + k * period for k in range(first, first + count)]


# --- cron(minutes hours day-of-month month day-of-week year) -------------------------------------


def _cron_times(expression: str, fields: list[str], after: datetime, until: datetime, limit: int) -> list[datetime]:
    """Walk the matching years, months and days, and within each day only the matching hours and
    minutes: a year of an hourly schedule is 12 months × ~30 days × 24 moments, never 525,600 minutes."""
    minutes_field, hours_field, day_of_month, month_field, day_of_week, year_field = fields
    minutes = sorted(_field_values(minutes_field, CRON_FIELDS[0]))
    hours = sorted(_field_values(hours_field, CRON_FIELDS[1]))
    months = sorted(_field_values(month_field, CRON_FIELDS[3]))
    years = sorted(_field_values(year_field, CRON_FIELDS[5]))
    # EventBridge wants ? in exactly one day field (schedule_problem checked it): the other picks the days.
    if day_of_month != "?":
        rules = [_day_of_month_rule(part) for part in day_of_month.split(",")]
    else:
        rules = [_day_of_week_rule(part) for part in day_of_week.split(",")]
    found: list[datetime] = []
    for year in (y for y in years if after.year <= y <= until.year):
        for month in months:
            if (year, month) < (after.year, after.month) or (year, month) > (until.year, until.month):
                continue
            days_in_month = calendar.monthrange(year, month)[1]
            picked = {day for rule in rules for day in rule(year, month, days_in_month)}
            days = sorted(day for day in picked if 1 <= day <= days_in_month)
            for day in days:
                if (year, month, day) < (after.year, after.month, after.day):
                    continue
                for hour in hours:
                    for minute in minutes:
                        moment = datetime(year, month, day, hour, minute, tzinfo=UTC)  # seconds are always 0
                        if moment <= after:
                            continue
                        if moment > until:
                            return found
                        found.append(moment)
                        if len(found) > limit:
                            raise _too_many(expression, len(found), after, until, limit)
    return found


def _number(text: str, field: tuple) -> int:
    name, low, high, names, _ = field
    if text.upper() in names:
        return names.index(text.upper()) + 1  # JAN = 1, SUN = 1 (EventBridge counts days 1-7 from Sunday)
    if not text.isdigit() or not low <= int(text) <= high:
        raise ScheduleError(f"{text!r} is not a value of {name} ({low}-{high})")
    return int(text)


def _field_values(text: str, field: tuple) -> set[int]:
    """The values a field of plain parts selects: * ? n a-b and steps */s a/s a-b/s, comma-separated."""
    values: set[int] = set()
    for part in text.split(","):
        values |= _part_values(part, field)
    return values


def _part_values(part: str, field: tuple) -> set[int]:
    name, low, high, _, _ = field
    base, slash, step = part.partition("/")
    if slash and not step.isdigit():
        raise ScheduleError(f"{part!r} in {name}: the step after / must be a positive number")
    if base in ("*", "?"):
        start, end = low, high
    elif "-" in base:
        first, _, last = base.partition("-")
        start, end = _number(first, field), _number(last, field)
        if start > end:
            # Quartz wraps such a range around; the EventBridge guide does not say it does, so no guessing.
            raise ScheduleError(f"{part!r} in {name}: a range goes from low to high; split a wrapping one in two")
    else:
        start = _number(base, field)
        end = high if slash else start  # a/s: from a to the end of the field, every s
    return set(range(start, end + 1, int(step) if step else 1))


def _weekday(year: int, month: int, day: int) -> int:
    """EventBridge's day-of-week: 1 = SUN ... 7 = SAT."""
    return (calendar.weekday(year, month, day) + 1) % 7 + 1  # Python counts 0 = MON ... 6 = SUN


def _nearest_weekday(year: int, month: int, day: int, days_in_month: int) -> int:
    """Day `W`: the weekday nearest `day`, without leaving the month (1W on a Saturday is Monday the 3rd)."""
    weekday = _weekday(year, month, day)
    if weekday == SATURDAY:
        return day - 1 if day > 1 else day + 2
    if weekday == SUNDAY:
        return day + 1 if day < days_in_month else day - 2
    return day


def _first(year: int, month: int, weekday: int) -> int:
    return next(day for day in range(1, 8) if _weekday(year, month, day) == weekday)


def _last(year: int, month: int, weekday: int, days_in_month: int) -> int:
    return next(day for day in range(days_in_month, days_in_month - 7, -1) if _weekday(year, month, day) == weekday)


def _day_of_month_rule(part: str) -> DayRule:
    """L (last day), L-n (n days before it), LW (last weekday), nW (weekday nearest the nth), or plain days."""
    special = part.upper()
    if special == "L":
        return lambda year, month, last: {last}
    if special.startswith("L-"):
        return lambda year, month, last: {last - int(special[2:])}
    if special == "LW":
        return lambda year, month, last: {_nearest_weekday(year, month, last, last)}
    if special.endswith("W"):
        day = _number(special[:-1], CRON_FIELDS[2])
        # A day the month does not have (31W in April) has no nearest weekday: no run that month.
        return lambda year, month, last: {_nearest_weekday(year, month, day, last)} if day <= last else set()
    if special.endswith("L"):
        raise ScheduleError(f"{part!r}: nL (the month's last weekday n) belongs in day-of-week, not day-of-month")
    days = _part_values(part, CRON_FIELDS[2])
    return lambda year, month, last: days


def _day_of_week_rule(part: str) -> DayRule:
    """L (= 7, SAT), nL (the last weekday n of the month), n#k (the kth weekday n), or plain weekdays."""
    field = CRON_FIELDS[4]
    special = part.upper()
    if special.endswith("W") or special.startswith("L-"):
        raise ScheduleError(f"{part!r}: W and L-n belong in day-of-month, not day-of-week")
    if special == "L":
        special = str(SATURDAY)
    if special.endswith("L"):
        weekday = _number(special[:-1], field)
        return lambda year, month, last: {_last(year, month, weekday, last)}
    if "#" in special:
        weekday_text, _, nth = special.partition("#")
        weekday, n = _number(weekday_text, field), int(nth)
        # The 5th of a weekday the month holds only four of falls past its end: no run that month.
        return lambda year, month, last: {_first(year, month, weekday) + 7 * (n - 1)}
    weekdays = _part_values(special, field)
    return lambda year, month, last: {d for d in range(1, last + 1) if _weekday(year, month, d) in weekdays}

