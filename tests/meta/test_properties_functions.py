"""Property-based tests (Hypothesis) of the reference functions, run the way Lambda runs them (LocalLab):
whatever a client or an event source sends, the function answers a client error or the event ends where
AWS puts it (a result, the dead-letter queue, the on-failure destination), never in an unhandled crash.

- Lab 1: any method, path, headers and body (not JSON, not UTF-8, broken base64, nested thousands deep,
  wrong types, unknown fields, huge numbers) gets a status below 500, and a 4xx stores nothing.
- Lab 2: any object key and content ends in a result object (a summary or an error document).
- Lab 3: every message sent ends either stored in the table or on the dead-letter queue, counted exactly.
- Lab 4: any window of times, in any time zone, fires every hour in it, and each run writes its report;
  a time the clock cannot take is refused with a message.
- Lab 5: every published message reaches each subscriber whose filter matches, and ends delivered or on
  the on-failure queue, counted exactly.

Each lab's stack is opened once (one class, one LocalLab) and the examples are derandomized with a fixed
budget (EXAMPLES), so `make test` stays fast and CI deterministic. The number of generated cases that ran
is printed at the end of the module.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from workshop import paths
from workshop.local import LocalError, LocalLab

from test_properties_cli import settings_for  # tests/meta is on sys.path (pytest's prepend import mode)

pytestmark = pytest.mark.timeout(300)

# Generated cases per property; the total is what `make test` runs (see also test_properties_cli.py).
EXAMPLES = {"api": 80, "upload": 30, "send": 15, "tick_window": 25, "tick_text": 40, "publish": 15}
RAN: Counter = Counter()


def budget(name: str):
    return settings_for(EXAMPLES[name])


@pytest.fixture(scope="module", autouse=True)
def _count_cases(request):
    """Print how many generated cases ran, past pytest's capture."""
    yield
    line = f"{__name__}: {sum(RAN.values())} generated cases ({', '.join(f'{k} {v}' for k, v in RAN.items())})"
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter and capture:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)


def opened(number: int):
    """A class-scoped fixture: the lab's stack, opened once for the class (moto holds one stack at a time)."""

    @pytest.fixture(scope="class")
    @classmethod
    def lab(cls):
        with LocalLab(number, "solutions") as open_lab:
            yield open_lab

    return lab


# --- strategies shared by the labs ------------------------------------------------------------------

# Text without lone surrogates (not UTF-8) or NUL, which no AWS API here takes.
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00\ufffe\uffff"), max_size=40)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)


def nested(depth: int, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "list" else '{"a":' * depth + "1" + "}" * depth


DEEP = st.builds(nested, st.integers(500, 20_000), st.sampled_from(["list", "dict"]))
HUGE_NUMBER = st.integers(4_000, 12_000).map(lambda digits: '{"name": "Mug", "price": ' + "9" * digits + "}")
ITEMISH = st.fixed_dictionaries(
    {"name": JSON_VALUES | TEXT, "price": JSON_VALUES | st.decimals(allow_nan=False, allow_infinity=False).map(str)},
    optional={"id": JSON_VALUES, "extra": JSON_VALUES},
).map(json.dumps)

# --- lab 1: the items API ---------------------------------------------------------------------------

API_EVENT = json.loads((paths.SOLUTIONS / "lab01_api_gateway/events/api_create_item.json").read_text(encoding="utf-8"))
CONTENT_TYPES = st.sampled_from([
    "application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "text/plain", "",
    "application/x-www-form-urlencoded", "multipart/form-data", "multipart/form-data; boundary=x",
    "application/xml",
]) | TEXT
TEXT_BODIES = st.one_of(
    TEXT, st.text(max_size=60), JSON_VALUES.map(json.dumps), ITEMISH, DEEP, HUGE_NUMBER,
    st.just("name=Mug&price=3"), st.just("--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nMug\r\n--x--"),
)
BODIES = st.none() | TEXT_BODIES


@st.composite
def api_requests(draw) -> dict:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]) | TEXT)
    path = draw(st.sampled_from(["/items", "/items/", "/items/abc", "/items/a%2Fb", "/", "/items/x/y"]) | TEXT.map("/{}".format))
    headers = draw(st.dictionaries(TEXT, TEXT, max_size=3))
    content_type = draw(st.none() | CONTENT_TYPES)
    if content_type is not None:
        headers[draw(st.sampled_from(["Content-Type", "content-type", "CONTENT-TYPE"]))] = content_type
    if draw(st.booleans()):  # API Gateway delivered the body base64-encoded: any bytes, or text that is not base64
        raw = draw(st.binary(max_size=60) | TEXT_BODIES.map(lambda b: b.encode("utf-8", "surrogatepass")))
        body, encoded = (base64.b64encode(raw).decode() if draw(st.booleans()) else draw(TEXT)), True
    else:
        body, encoded = draw(BODIES), False
    return {
        **API_EVENT, "httpMethod": method, "path": path, "resource": path, "body": body, "isBase64Encoded": encoded,
        "headers": headers or draw(st.sampled_from([None, {}])),
        "multiValueHeaders": {name: [value] for name, value in headers.items()} or None,
        "queryStringParameters": draw(st.none() | st.dictionaries(TEXT, TEXT, max_size=2)),
        "requestContext": {**API_EVENT["requestContext"], "httpMethod": method},
        **draw(st.dictionaries(st.sampled_from(["unknownField", "stageVariables"]), JSON_VALUES, max_size=1)),
    }


def api(method: str, body: str | None, content_type: str | None = "application/json", encoded: bool = False) -> dict:
    headers = {"Content-Type": content_type} if content_type else None
    return {**API_EVENT, "httpMethod": method, "body": body, "isBase64Encoded": encoded, "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in (headers or {}).items()} or None}


class TestLab1ItemsApi:
    lab = opened(1)

    @budget("api")
    @given(request=api_requests())
    # Found by these properties (issue 16): each was a 502 before the reference answered it.
    @example(request=api("POST", base64.b64encode(b"\xff\xfe not UTF-8").decode(), encoded=True))
    @example(request=api("POST", nested(5000, "list")))
    @example(request=api("POST", '{"name": "Mug", "price": ' + "9" * 5000 + "}"))
    @example(request=api("POST", "abc", encoded=True))  # base64 with broken padding
    @example(request=api("POST", "x", content_type="multipart/form-data"))  # a form without its boundary
    @example(request=api("POST", '{"name": "Mug", "price": 3}', content_type="text/plain"))
    @example(request=api("POST", "name=Mug&price=3", content_type="application/x-www-form-urlencoded"))
    def test_any_request_gets_an_answer_below_500_and_a_refused_one_stores_nothing(self, lab, request):
        RAN["api"] += 1
        before = len(lab.items("ItemsTable"))
        invocation = lab.invoke_with("items_api", request)
        assert invocation.ok, f"the function crashed (API Gateway answers 502):\n{invocation.result_text()[-2000:]}"
        status = invocation.response["statusCode"]
        assert status < 500, f"{request['httpMethod']} {request['path']} answered {status}: {invocation.response['body'][:300]}"
        if status >= 400:
            document = json.loads(invocation.response["body"])
            assert isinstance(document.get("message"), str) and document["message"], document
            assert len(lab.items("ItemsTable")) == before, f"a {status} stored an item"

    def test_a_body_that_is_not_json_says_so(self, lab):
        """The messages of the cases above, as a learner reads them."""
        answers = {
            name: lab.invoke_with("items_api", event).response
            for name, event in {
                "not UTF-8": api("POST", base64.b64encode(b"\xff").decode(), encoded=True),
                "nested 5,000 deep": api("POST", nested(5000, "list")),
                "a form": api("POST", "name=Mug&price=3", content_type="application/x-www-form-urlencoded"),
                "text/plain": api("POST", '{"name": "Mug", "price": 3}', content_type="text/plain"),
            }.items()
        }
        for name, response in answers.items():
            assert response["statusCode"] == 400, (name, response)
        assert "cannot be read as JSON" in answers["not UTF-8"]["body"]
        assert "cannot be read as JSON" in answers["nested 5,000 deep"]["body"]
        assert "not sent as JSON" in answers["a form"]["body"] and "not sent as JSON" in answers["text/plain"]["body"]


# --- lab 2: CSV summaries ---------------------------------------------------------------------------

CELLS = st.one_of(
    TEXT, st.integers().map(str), st.decimals(allow_nan=True).map(str), st.floats().map(str),
    st.sampled_from(["1e999999", "-1E+5000", "NaN", "Infinity", "sNaN", " 7 ", "", '"', "a,b", "0x1F"]),
)
CSV_TEXT = st.lists(st.lists(CELLS, min_size=1, max_size=4), max_size=6).map(
    lambda rows: "\n".join(",".join(row) for row in rows)
)
CONTENTS = st.one_of(
    CSV_TEXT.map(lambda text: text.encode("utf-8", "surrogatepass")),
    CSV_TEXT.map(lambda text: b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")),  # with a BOM
    st.binary(max_size=200),
)
KEYS = st.one_of(
    TEXT.map("uploads/{}.csv".format),
    st.sampled_from(["uploads/a b+c%2F(1).csv", "uploads/../x.csv", "uploads//.csv", "uploads/\u00e9t\u00e9.csv"]),
    st.integers(900, 1015).map(lambda n: "uploads/" + "k" * (n - 12) + ".csv"),  # up to S3's 1,024 bytes
)


def not_json(constant: str) -> None:
    raise AssertionError(f"the result holds {constant}, which is not JSON")


class TestLab2CsvSummary:
    lab = opened(2)

    @budget("upload")
    @given(key=KEYS, content=CONTENTS)
    # Found by this property (issue 16): a JSON integer of 5,001 digits (json.dumps refuses it), and a float
    # past a double's range (written as Infinity, which is not JSON).
    @example(key="uploads/huge.csv", content=b"n\n1e5000\n")
    @example(key="uploads/long.csv", content=b"n\n1" + b"0" * 400 + b".5\n")
    @example(key="uploads/nul.csv", content=b"a\n\x00\n")
    def test_any_upload_ends_in_a_result_never_a_crash(self, lab, key, content):
        RAN["upload"] += 1
        try:
            delivered = lab.put_object(key, content)
        except LocalError:
            return  # a key S3 refuses: nothing was uploaded
        for delivery in delivered:
            failures = [a.result_text()[-1500:] for a in delivery.attempts if not a.ok]
            assert delivery.outcome == "succeeded", f"{key!r} ended {delivery.outcome}: {failures}"
            result = lab.client("s3").get_object(Bucket=lab.physical("ResultsBucket"), Key=f"results/{key}.json")
            document = json.loads(result["Body"].read(), parse_constant=not_json)
            assert ("error" in document) != ("rows" in document), document


# --- lab 3: the order worker --------------------------------------------------------------------------

SAFE_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)
VALID_ORDERS = st.fixed_dictionaries({
    "order_id": SAFE_TEXT,
    "customer": SAFE_TEXT,
    "items": st.lists(
        st.fixed_dictionaries({
            "sku": SAFE_TEXT,
            "quantity": st.integers(1, 1000),
            "unit_price": st.decimals(0, 10_000, places=2).map(float),
        }),
        min_size=1, max_size=3,
    ),
})
SQS_BODY = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\ufffe\uffff"), min_size=1, max_size=40)
MESSAGES = st.lists(
    st.one_of(
        VALID_ORDERS.map(json.dumps),
        VALID_ORDERS.flatmap(lambda order: st.sampled_from(sorted(order)).flatmap(
            lambda field: JSON_VALUES.map(lambda value: json.dumps({**order, field: value})))),
        JSON_VALUES.map(json.dumps),
        SQS_BODY,
    ),
    min_size=1, max_size=6,
)


def empty(lab: LocalLab) -> None:
    """No orders, nothing on the dead-letter queue: each example starts from a clean state."""
    table = lab.resource("dynamodb").Table(lab.physical("OrdersTable"))
    for item in lab.items("OrdersTable"):
        table.delete_item(Key={"order_id": item["order_id"]})
    sqs, url = lab.client("sqs"), lab.physical("OrdersDeadLetterQueue")
    while received := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in received:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def order_id(body: str) -> object:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document.get("order_id") if isinstance(document, dict) else None


class TestLab3OrderWorker:
    lab = opened(3)

    @budget("send")
    @given(bodies=MESSAGES)
    def test_every_message_ends_stored_or_on_the_dead_letter_queue(self, lab, bodies):
        RAN["send"] += 1
        empty(lab)
        delivery = lab.send_messages(bodies)
        assert delivery.stopped in ("", "the queue is empty"), delivery.stopped
        assert lab.client("sqs").get_queue_attributes(
            QueueUrl=lab.physical("OrdersQueue"), AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"] == "0", "messages were left on the queue"
        dead = Counter(message["Body"] for message in delivery.dead_letters)
        assert not dead - Counter(bodies), f"dead letters that were never sent, or counted twice: {dead}"
        stored = {item["order_id"] for item in lab.items("OrdersTable")}
        alive = list((Counter(bodies) - dead).elements())
        lost = [body for body in alive if order_id(body) not in stored]
        assert not lost, f"neither stored nor on the dead-letter queue: {lost}"


# --- lab 4: the hourly report ------------------------------------------------------------------------

ZONES = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12)), timezone(timedelta(minutes=345))])
MOMENTS = st.datetimes(datetime(1970, 1, 2), datetime(9998, 12, 30)).flatmap(
    lambda moment: ZONES.map(lambda zone: moment.replace(tzinfo=UTC).astimezone(zone))
)


def hours_in(start: datetime, end: datetime) -> list[datetime]:
    """Every whole UTC hour in (start, end]: when rate(1 hour), counted from the epoch, fires."""
    first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return [first + timedelta(hours=n) for n in range(int((end - first) / timedelta(hours=1)) + 1) if first + timedelta(hours=n) <= end]


class TestLab4HourlyReport:
    lab = opened(4)

    @budget("tick_window")
    @given(start=MOMENTS, span=st.timedeltas(timedelta(seconds=1), timedelta(hours=5)))
    @example(start=datetime(1970, 1, 1, tzinfo=UTC), span=timedelta(hours=2))  # the clock's first moment
    @example(start=datetime(9998, 12, 31, 22, 30, tzinfo=UTC), span=timedelta(minutes=90))  # up to its last
    def test_every_hour_of_any_window_fires_once_and_writes_its_report(self, lab, start, span):
        RAN["tick_window"] += 1
        end = start + span
        delivered = lab.tick(end, since=start)
        expected = hours_in(start, end)
        assert len(delivered) == len(expected), (start, end, [d.attempts[0].event["time"] for d in delivered])
        for delivery, moment in zip(delivered, expected):
            assert delivery.outcome == "succeeded", delivery.attempts[-1].result_text()[-1500:]
            assert delivery.attempts[0].event["time"] == f"{moment:%Y-%m-%dT%H:%M:%SZ}"
            assert delivery.attempts[-1].response["key"] == f"reports/{moment - timedelta(hours=1):%Y/%m/%d/%H}.json"

    @budget("tick_text")
    @given(until=TEXT | st.datetimes().map(datetime.isoformat) | st.sampled_from(["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "2026-11-27T14:00", "2026-13-01T00:00:00Z", "2026-11-27T14:00:00+25:00"]))
    def test_a_time_the_clock_cannot_take_is_refused_with_a_message(self, lab, until):
        RAN["tick_text"] += 1
        try:
            moment = datetime.fromisoformat(until.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None and datetime(1970, 1, 1, 1, tzinfo=UTC) < moment <= datetime(9999, 1, 1, tzinfo=UTC):
            since = moment - timedelta(minutes=30)
        else:
            since = datetime(2026, 1, 1, tzinfo=UTC)
        try:
            delivered = lab.tick(until, since=since)
        except LocalError as error:
            assert "\n" not in str(error) and str(error), repr(error)
            return
        assert all(d.outcome == "succeeded" for d in delivered)


# --- lab 5: the fan-out --------------------------------------------------------------------------------

ATTRIBUTE_NAMES = st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,10}[A-Za-z0-9_-]", fullmatch=True)
SNS_TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=60)
ORDERS = st.fixed_dictionaries({"order_id": JSON_VALUES | TEXT, "customer": JSON_VALUES | TEXT, "total": JSON_VALUES})
PUBLICATIONS = st.tuples(
    st.one_of(ORDERS.map(json.dumps), JSON_VALUES.map(json.dumps), SNS_TEXT),
    st.dictionaries(ATTRIBUTE_NAMES, SNS_TEXT, max_size=2).flatmap(
        lambda given: st.sampled_from([None, "large", "small", "LARGE"]).map(lambda size: {**given, **({"size": size} if size else {})})
    ),
    st.none() | st.text(st.characters(min_codepoint=32, exclude_categories=("Cs",)), min_size=1, max_size=20),
)


class TestLab5FanOut:
    lab = opened(5)

    @budget("publish")
    @given(publication=PUBLICATIONS)
    @example(publication=(json.dumps({"order_id": "o-1", "customer": "c-1", "total": 1e308}), {"size": "large"}, None))
    def test_every_message_ends_delivered_or_on_the_failure_queue(self, lab, publication):
        RAN["publish"] += 1
        message, attributes, subject = publication
        sqs, failures = lab.client("sqs"), lab.physical("FailedInvocationsQueue")
        from workshop.grading.sqs_delivery import waiting

        before = waiting(sqs, failures)
        try:
            delivered = lab.publish(message, attributes, subject)
        except LocalError:
            return  # SNS refuses the message: nothing was published
        expected = {"AuditWriterFunction", "AnalyticsCounterFunction"} | ({"NotifierFunction"} if attributes.get("size") == "large" else set())
        assert sorted(d.function for d in delivered) == sorted(expected), [d.function for d in delivered]
        outcomes = Counter(d.outcome for d in delivered)
        assert set(outcomes) <= {"succeeded", "FailedInvocationsQueue"}, outcomes
        assert waiting(sqs, failures) - before == outcomes["FailedInvocationsQueue"], "the failure queue's count is off"
