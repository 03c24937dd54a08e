"""workshop/local/schedule.py: when EventBridge fires a scheduled rule, and the event it sends.

Calendar facts the expectations lean on: 2026-11-01 is a Sunday, 2026-11-27 a Friday, 2026-08-01 and
2026-08-15 Saturdays, 2026-11-15 a Sunday, 2026-02-28 and 2026-10-31 Saturdays; 2028 is a leap year.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from workshop.grading.scheduled_jobs import schedule_problem
from workshop.local.schedule import ScheduleError, fire_times, scheduled_event


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def utcs(*texts: str) -> list[datetime]:
    return [utc(text) for text in texts]


# --- rate ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "origin", "after", "until", "expected"),
    [
        pytest.param(
            "rate(1 hour)", "2026-11-27T09:30", "2026-11-27T10:00", "2026-11-27T13:00",
            ["2026-11-27T10:30", "2026-11-27T11:30", "2026-11-27T12:30"], id="1 hour from an earlier origin",
        ),
        pytest.param(
            "rate(5 minutes)", None, "2026-11-27T10:00", "2026-11-27T10:20",
            ["2026-11-27T10:05", "2026-11-27T10:10", "2026-11-27T10:15", "2026-11-27T10:20"], id="5 minutes from after",
        ),
        pytest.param(
            "rate(1 day)", "2026-11-01T06:00", "2026-11-03T00:00", "2026-11-06T00:00",
            ["2026-11-03T06:00", "2026-11-04T06:00", "2026-11-05T06:00"], id="1 day",
        ),
        pytest.param(
            "rate(2 hours)", "2026-11-27T11:00", "2026-11-27T10:00", "2026-11-27T16:00",
            ["2026-11-27T13:00", "2026-11-27T15:00"], id="origin inside the window: first run one period later",
        ),
    ],
)
def test_rate_fires_every_period_from_its_origin(expression, origin, after, until, expected):
    times = fire_times(expression, utc(after), utc(until), origin=utc(origin) if origin else None)
    assert times == utcs(*expected)


# --- cron ----------------------------------------------------------------------------------------


def test_hourly_cron_window_excludes_after_and_includes_until():
    times = fire_times("cron(0 * * * ? *)", utc("2026-11-27T10:00"), utc("2026-11-27T13:00"))
    assert times == utcs("2026-11-27T11:00", "2026-11-27T12:00", "2026-11-27T13:00")
    assert all(moment.tzinfo is not None and moment.utcoffset() == timedelta(0) for moment in times)


def test_cron_seconds_are_zero_and_a_mid_minute_after_skips_that_minute():
    times = fire_times("cron(0 * * * ? *)", utc("2026-11-27T10:00:30"), utc("2026-11-27T11:59:59"))
    assert times == utcs("2026-11-27T11:00")


def test_weekdays_only_skip_the_weekend():
    times = fire_times("cron(0 9 ? * MON-FRI *)", utc("2026-11-21T00:00"), utc("2026-11-30T00:00"))
    assert times == utcs(*(f"2026-11-{day}T09:00" for day in (23, 24, 25, 26, 27)))


@pytest.mark.parametrize(
    ("expression", "after", "until", "expected"),
    [
        pytest.param("cron(15 10 L * ? *)", "2028-02-01", "2028-03-01", ["2028-02-29T10:15"], id="L: leap year"),
        pytest.param("cron(15 10 L * ? *)", "2027-02-01", "2027-03-01", ["2027-02-28T10:15"], id="L: last day"),
        pytest.param("cron(0 0 L-2 * ? *)", "2026-11-01", "2026-12-01", ["2026-11-28T00:00"], id="L-2"),
        pytest.param("cron(0 12 ? * 6L *)", "2026-11-01", "2026-12-01", ["2026-11-27T12:00"], id="6L: last Friday"),
        pytest.param("cron(0 12 ? * FRIL *)", "2026-11-01", "2026-12-01", ["2026-11-27T12:00"], id="FRIL"),
        pytest.param(
            "cron(0 12 ? * L *)", "2026-11-01", "2026-11-15", ["2026-11-07T12:00", "2026-11-14T12:00"], id="L: Saturday"
        ),
        pytest.param("cron(0 8 ? * 3#2 *)", "2026-11-01", "2026-12-01", ["2026-11-10T08:00"], id="3#2: second Tuesday"),
        pytest.param("cron(0 8 ? * SUN#5 *)", "2026-11-01", "2026-12-01", ["2026-11-29T08:00"], id="SUN#5"),
        pytest.param("cron(0 8 ? * TUE#5 *)", "2026-11-01", "2026-12-01", [], id="no fifth Tuesday"),
        pytest.param("cron(0 0 15W * ? *)", "2026-11-01", "2026-12-01", ["2026-11-16T00:00"], id="15W on a Sunday"),
        pytest.param("cron(0 0 15W * ? *)", "2026-08-01", "2026-09-01", ["2026-08-14T00:00"], id="15W on a Saturday"),
        pytest.param("cron(0 0 1W * ? *)", "2026-07-31", "2026-08-31", ["2026-08-03T00:00"], id="1W in the month"),
        pytest.param("cron(0 0 LW * ? *)", "2026-10-01", "2026-11-01", ["2026-10-30T00:00"], id="LW"),
        pytest.param("cron(0 0 LW * ? *)", "2026-02-01", "2026-03-01", ["2026-02-27T00:00"], id="LW in February"),
        pytest.param("cron(0 0 31 * ? *)", "2026-11-01", "2026-12-01", [], id="no 31 November"),
    ],
)
def test_cron_special_days(expression, after, until, expected):
    assert fire_times(expression, utc(after), utc(until)) == utcs(*expected)


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        ("0/15", [15, 30, 45, 60]),
        ("*/20", [20, 40, 60]),
        ("5/20", [5, 25, 45]),
        ("10-40/15", [10, 25, 40]),
        ("7,52", [7, 52]),
    ],
)
def test_minute_steps_lists_and_ranges(minutes, expected):
    start = utc("2026-11-27T10:00")
    times = fire_times(f"cron({minutes} 10 * * ? *)", start, start + timedelta(hours=1))
    assert times == [start + timedelta(minutes=minute) for minute in expected if minute < 60]
    assert len(times) == len([minute for minute in expected if minute < 60])


def test_year_field_limits_the_years():
    times = fire_times("cron(0 0 1 JAN ? 2027-2028)", utc("2026-01-01"), utc("2031-01-01"))
    assert times == utcs("2027-01-01T00:00", "2028-01-01T00:00")


@pytest.mark.parametrize("sunday", ["1", "SUN", "sun"])
def test_day_of_week_1_is_sunday(sunday):
    times = fire_times(f"cron(0 9 ? * {sunday} *)", utc("2026-11-01T00:00"), utc("2026-11-30T00:00"))
    assert times == utcs(*(f"2026-11-{day:02}T09:00" for day in (1, 8, 15, 22, 29)))


def test_aware_datetimes_in_other_zones_are_read_as_utc():
    paris = timezone(timedelta(hours=1))
    after, until = datetime(2026, 11, 27, 11, 0, tzinfo=paris), datetime(2026, 11, 27, 13, 0, tzinfo=paris)
    times = fire_times("cron(0 * * * ? *)", after, until)
    assert times == utcs("2026-11-27T11:00", "2026-11-27T12:00")


def test_a_year_of_an_hourly_schedule_is_quick():
    started = time.perf_counter()
    times = fire_times("cron(0 * * * ? *)", utc("2026-01-01"), utc("2027-01-01"), limit=10_000)
    assert len(times) == 365 * 24
    assert time.perf_counter() - started < 0.5


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression", ["cron(0 * * * *)", "rate(1 hours)", "cron(0 9 * * MON *)", "cron(0 9 ? * 0 *)", "every hour"]
)
def test_invalid_expression_raises_the_validators_message(expression):
    with pytest.raises(ScheduleError) as raised:
        fire_times(expression, utc("2026-11-27T00:00"), utc("2026-11-28T00:00"))
    assert str(raised.value) == schedule_problem(expression)


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("cron(0 22-2 * * ? *)", "low to high"),
        ("cron(0 0 ? * 15W *)", "day-of-month"),
        ("cron(0 0 6L * ? *)", "day-of-week"),
    ],
)
def test_expressions_that_cannot_be_evaluated_say_why(expression, says):
    assert schedule_problem(expression) is None, "the validator accepts it: this module is the one to refuse"
    with pytest.raises(ScheduleError, match=says):
        fire_times(expression, utc("2026-11-27T00:00"), utc("2026-11-28T00:00"))


@pytest.mark.parametrize("naive", ["after", "until", "origin"])
def test_naive_datetimes_are_refused(naive):
    moments = {"after": utc("2026-11-27T00:00"), "until": utc("2026-11-28T00:00"), "origin": utc("2026-11-26T00:00")}
    moments[naive] = moments[naive].replace(tzinfo=None)
    with pytest.raises(ScheduleError, match=rf"^{naive} .*Z.*\+00:00"):
        fire_times("rate(1 hour)", moments["after"], moments["until"], origin=moments["origin"])


def test_a_window_that_ends_before_it_starts_is_refused():
    with pytest.raises(ScheduleError, match="before it starts"):
        fire_times("cron(0 * * * ? *)", utc("2026-11-28T00:00"), utc("2026-11-27T00:00"))


@pytest.mark.parametrize(
    ("expression", "at_least"),
    [("cron(* * * * ? *)", 101), ("rate(1 minute)", 1440)],
)
def test_more_fire_times_than_the_limit_is_an_error_not_a_truncation(expression, at_least):
    with pytest.raises(ScheduleError, match=rf"at least {at_least} times.*limit of 100.*narrow the window"):
        fire_times(expression, utc("2026-11-27T00:00"), utc("2026-11-28T00:00"), limit=100)
    assert len(fire_times(expression, utc("2026-11-27T00:00"), utc("2026-11-27T01:40"), limit=100)) == 100


# --- the event -----------------------------------------------------------------------------------


def test_scheduled_event_has_the_shape_eventbridge_sends():
    arn = "arn:aws:events:eu-west-1:111122223333:rule/nightly-report"
    at = datetime(2026, 11, 27, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    event = scheduled_event(at, arn, account="111122223333", region="eu-west-1")
    assert uuid.UUID(event.pop("id")).version == 4
    assert event == {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "111122223333",
        "time": "2026-11-27T09:00:00Z",
        "region": "eu-west-1",
        "resources": [arn],
        "detail": {},
    }


def test_scheduled_event_defaults_and_fresh_ids():
    arn = "arn:aws:events:us-east-1:123456789012:rule/r"
    first, second = (scheduled_event(utc("2026-11-27T10:00"), arn) for _ in range(2))
    assert (first["account"], first["region"]) == ("123456789012", "us-east-1")
    assert first["id"] != second["id"]
