"""`workshop bench` (make bench): the figures the performance lessons quote, measured on this machine.

- the import floor: a fresh process that only imports boto3, moto, pytest and Powertools, which any
  grading pays; the grading figures are also given as a multiple of it, measured in the same run;
- grading: wall time of `workshop check <lab>` in a fresh process, as a learner runs it, on the reference
  solution and on the untouched starter, and of `check --all`, also as a multiple of the slowest lab;
- `workshop watch`: a save graded and shown with the engine warm: one process per lab grades it once,
  as watch does when it starts, then times each save (the file rewritten, then what watch does on a
  change: a snapshot of the folder, the grading, the report), on a copy of the reference solutions;
- cold and warm starts of every reference function of labs 1-5 under moto, each serving an event of its
  own lab: a cold start is a fresh process importing the function and serving its first event; a warm
  start is one more event in that process. Lab 1's is also measured for a variant that creates its
  clients inside the handler;
- lab 3's write ratio: N orders written one `put_item` at a time versus with a batch writer, in one process;
- lab 7's SDK layer, zipped as its Makefile builds it (without dependencies) and as it would be with them;
- the local runtime (workshop/local/): the cold path of `workshop invoke` (a fresh process, the stack
  created in moto from the template, a cold start, the REPORT printed), a warm invocation in a running
  LocalLab (from the call to its REPORT line), and a request to `workshop start-api`'s server;
- the whole `make test`, once, without installation.

`workshop bench --quick` goes through every figure once on the least work (the test suite runs it); its
figures are too rough to quote, so it never writes them.

Figures are medians over several fresh processes, with their spread (min to max). Under moto there is no
network, so the gap between the variants is the client set-up alone; in AWS each new client also opens
a new TLS connection, which widens it.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple, NoReturn
from urllib.parse import unquote_plus

from workshop import docs_snippets, manifest, paths

SNIPPET = paths.DOCS / "snippets" / "bench.md"
# The libraries every grading imports: the least a fresh grading process can cost.
FLOOR_IMPORTS = "import boto3, pytest, aws_lambda_powertools; from moto import mock_aws"
FLOOR_ROW = "Import floor (boto3, moto, pytest, Powertools)"
TARGET_NAMES = {"solutions": "the reference solution", "labs": "the untouched starter"}
ALL_TARGET_NAMES = {"solutions": "reference solutions", "labs": "untouched starters"}


@dataclass(frozen=True)
class Workload:
    """How much work each figure measures. FULL is `make bench`'s. QUICK (`workshop bench --quick`) runs
    every benchmark once, on the least work that still goes through all of its code: it tells that the
    bench works (the test suite runs it), in a third of the time, and its figures are not for quoting."""

    warm_calls: int = 100  # warm invocations per function probe
    durable_warm_runs: int = 10  # whole workflows (lab 7) per probe: each takes a few hundred ms
    batch_orders: int = 200  # lab 3's write ratio
    local_warm_calls: int = 20  # warm invocations in a LocalLab
    api_requests: int = 50  # start-api GET /items, after the cold one
    load_requests: int = 2000  # start-api under load
    watch_saves: int = 0  # saves timed per `workshop watch` process; 0: two per run, plus one
    checks_warmed_up: bool = True  # an unmeasured `workshop check` before the timed ones (the template cache)

    def saves(self, runs: int) -> int:
        return self.watch_saves or 2 * runs + 1


FULL = Workload()
QUICK = Workload(warm_calls=2, durable_warm_runs=1, batch_orders=25, local_warm_calls=2, api_requests=2,
                 load_requests=60, watch_saves=1, checks_warmed_up=False)


class BenchError(RuntimeError):
    """A figure could not be measured: a probe failed, or a grading did not grade (its time would be an error's)."""


@dataclass(frozen=True)
class Scenario:
    """One reference function, the event it serves, how to set up its world, and how to tell success.

    `clients` names the module-level clients that the handler-inside variant re-creates on every call
    (empty: only the reference is measured).
    """

    lab: str
    function: str
    event: str
    setup: Callable[[dict, Path], dict[str, str]]  # (event, lab folder) -> environment, after creating resources
    succeeded: Callable[[object], bool]
    clients: dict[str, Callable[[], object]] = field(default_factory=dict)
    # A durable function (lab 7): one "invocation" is the whole workflow, run to its end by AWS's local
    # runner (its first run and every replay, the waits skipped), as `workshop invoke 7` runs it.
    durable: bool = False


QUIET = {"POWERTOOLS_LOG_LEVEL": "WARNING"}


def _table(name: str, key: str, **extra: object) -> object:
    import boto3

    settings = {
        "TableName": name,
        "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": key, "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
        **extra,
    }
    return boto3.resource("dynamodb").create_table(**settings)


def _items_table(event: dict, folder: Path) -> dict[str, str]:
    _table("items-bench", "id").put_item(Item={"id": event["pathParameters"]["id"], "name": "Teapot", "price": 24})
    return {"TABLE_NAME": "items-bench", "POWERTOOLS_SERVICE_NAME": "items-api", **QUIET}


def _new_items_table() -> object:
    import boto3

    return boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def _csv_buckets(event: dict, folder: Path) -> dict[str, str]:
    import boto3

    s3 = boto3.client("s3")
    for bucket in {record["s3"]["bucket"]["name"] for record in event["Records"]}:
        s3.create_bucket(Bucket=bucket)
    for record in event["Records"]:
        rows = "region,product,units,amount\n" + "".join(f"north,cup-{n},{n},{n * 3}.50\n" for n in range(50))
        s3.put_object(Bucket=record["s3"]["bucket"]["name"], Key=unquote_plus(record["s3"]["object"]["key"]), Body=rows)
    s3.create_bucket(Bucket="results-bench")
    boto3.client("ssm").put_parameter(Name="/bench/signing-key", Value="bench-key", Type="SecureString")
    return {
        "OUTPUT_BUCKET": "results-bench",
        "OUTPUT_PREFIX": "results/",
        "SIGNING_KEY_PARAMETER": "/bench/signing-key",
        "POWERTOOLS_SERVICE_NAME": "csv-summary",
        **QUIET,
    }


def _orders_table(event: dict, folder: Path) -> dict[str, str]:
    _table("orders-bench", "order_id")
    return {"TABLE_NAME": "orders-bench", "POWERTOOLS_SERVICE_NAME": "order-worker", **QUIET}


def _report_world(event: dict, folder: Path) -> dict[str, str]:
    import boto3

    table = _table(
        "report-orders-bench",
        "order_id",
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"} for name in ("order_id", "order_hour", "created_at")
        ],
        GlobalSecondaryIndexes=[{
            "IndexName": "by_hour",
            "KeySchema": [
                {"AttributeName": "order_hour", "KeyType": "HASH"},
                {"AttributeName": "created_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["total"]},
        }],
    )
    with table.batch_writer() as batch:
        for order in json.loads((folder / "seed" / "orders.json").read_text(encoding="utf-8"), parse_float=Decimal):
            batch.put_item(Item=order)
    boto3.client("s3").create_bucket(Bucket="reports-bench")
    return {
        "TABLE_NAME": "report-orders-bench",
        "INDEX_NAME": "by_hour",
        "REPORT_BUCKET": "reports-bench",
        "REPORT_PREFIX": "reports/",
        "POWERTOOLS_SERVICE_NAME": "hourly-report",
        **QUIET,
    }


def _idempotency_table() -> str:
    _table("idempotency-bench", "id")
    return "idempotency-bench"


def _audit_table(event: dict, folder: Path) -> dict[str, str]:
    _table("audit-bench", "message_id")
    return {"AUDIT_TABLE": "audit-bench", "POWERTOOLS_SERVICE_NAME": "audit-writer", **QUIET}


def _notifications(event: dict, folder: Path) -> dict[str, str]:
    import boto3

    url = boto3.client("sqs").create_queue(QueueName="notifications-bench")["QueueUrl"]
    return {
        "NOTIFICATIONS_QUEUE_URL": url,
        "IDEMPOTENCY_TABLE": _idempotency_table(),
        "POWERTOOLS_SERVICE_NAME": "notifier",
        **QUIET,
    }


def _counters(event: dict, folder: Path) -> dict[str, str]:
    _table("counters-bench", "customer")
    return {
        "COUNTERS_TABLE": "counters-bench",
        "IDEMPOTENCY_TABLE": _idempotency_table(),
        "POWERTOOLS_SERVICE_NAME": "analytics-counter",
        **QUIET,
    }


def _api_ok(response: object) -> bool:
    return isinstance(response, dict) and 200 <= response.get("statusCode", 500) < 300


def _order_workflow_world(event: dict, folder: Path) -> dict[str, str]:
    """Lab 7's three tables and the warehouse queue; stock for every run of the bench, not only the first."""
    import boto3

    stock = _table("stock-bench", "sku")
    for item in event["detail"]["items"]:
        stock.put_item(Item={"sku": item["sku"], "available": 1_000_000})
    _table("payments-bench", "payment_id")
    _table("workflow-orders-bench", "order_id")
    queue = boto3.client("sqs").create_queue(QueueName="warehouse-bench")["QueueUrl"]
    return {"STOCK_TABLE": "stock-bench", "PAYMENTS_TABLE": "payments-bench", "ORDERS_TABLE": "workflow-orders-bench",
            "WAREHOUSE_QUEUE_URL": queue, "POWERTOOLS_SERVICE_NAME": "order-workflow", **QUIET}


def _completed(response: object) -> bool:
    return getattr(response, "status", None) == "SUCCEEDED"


def _no_failures(response: object) -> bool:
    return isinstance(response, dict) and not response.get("batchItemFailures")


def _wrote(response: object) -> bool:
    return isinstance(response, dict) and bool(response.get("key") or response.get("results"))


def _returned(response: object) -> bool:
    return response is None  # SNS subscribers return nothing; a failure raises


SCENARIOS = {
    scenario.function: scenario
    for scenario in (
        Scenario("lab01_api_gateway", "items_api", "api_get_item", _items_table, _api_ok, {"table": _new_items_table}),
        Scenario("lab02_s3_events", "csv_summary", "s3_put_several", _csv_buckets, _wrote),
        Scenario("lab03_sqs_processing", "order_worker", "sqs_orders_valid", _orders_table, _no_failures),
        Scenario("lab04_scheduled_tasks", "hourly_report", "eventbridge_hourly", _report_world, _wrote),
        Scenario("lab05_fan_out", "audit_writer", "sns_orders_several", _audit_table, _returned),
        Scenario("lab05_fan_out", "notifier", "sns_order_large", _notifications, _returned),
        Scenario("lab05_fan_out", "analytics_counter", "sns_orders_several", _counters, _returned),
        Scenario("lab07_durable_orders", "order_workflow", "eventbridge_order_placed", _order_workflow_world, _completed,
                 durable=True),
    )
}


# Events a function can serve in a fresh local stack (the graders' events may name things it does not hold).
LOCAL_EVENTS = {"items_api": "api_list_items"}


# --- the probe: runs in a fresh process and prints its timings as JSON ------------------------------


def probe(function: str, variant: str, warm_calls: int) -> dict:
    from workshop import sandbox

    sandbox.enter()
    from moto import mock_aws

    from workshop.lambda_runtime import LambdaContext, import_fresh, load_event

    scenario = SCENARIOS[function]
    folder = paths.SOLUTIONS / scenario.lab
    event = load_event(folder / "events", scenario.event)
    with mock_aws():
        os.environ.update(scenario.setup(event, folder))
        started = time.perf_counter()
        module = import_fresh(folder / scenario.function / "app.py")
        imported = time.perf_counter()

        def invoke() -> None:
            if variant == "inside":  # what a handler that creates its clients does on every call
                for attribute, create in scenario.clients.items():
                    setattr(module, attribute, create())
            if scenario.durable:
                from workshop.grading import durable

                response = durable.run_workflow(module.lambda_handler, load_event(folder / "events", scenario.event))
            else:
                response = module.lambda_handler(load_event(folder / "events", scenario.event), LambdaContext())
            if not scenario.succeeded(response):
                raise BenchError(f"{function}: the bench event failed: {response!r:.500}")

        invoke()
        first = time.perf_counter()
        warm = []
        for _ in range(warm_calls):
            before = time.perf_counter()
            invoke()
            warm.append(time.perf_counter() - before)
    return {"import_s": imported - started, "first_call_s": first - imported, "warm_s": statistics.median(warm)}


def local_probe(function: str, warm_calls: int) -> dict:
    """A LocalLab opened in this process: how long opening takes, then the call-to-REPORT time of a cold
    invocation and the median of `warm_calls` warm ones."""
    started = time.perf_counter()
    from workshop.local import LocalLab

    scenario = SCENARIOS[function]
    with LocalLab(scenario.lab, target="solutions") as lab:
        opened = time.perf_counter()
        event = lab.event(LOCAL_EVENTS.get(function, scenario.event))[1]

        def report() -> float:
            before = time.perf_counter()
            invocation = lab.invoke(function, json.loads(json.dumps(event)))
            invocation.log_text()
            if not invocation.ok:
                raise BenchError(f"{function}: the bench event failed: {invocation.result_text()[:500]}")
            return time.perf_counter() - before

        cold = report()
        warm = [report() for _ in range(warm_calls)]
    return {"open_s": opened - started, "cold_s": cold, "warm_s": statistics.median(warm)}


def api_probe(requests: int) -> dict:
    """Lab 1's start-api server in this process: the median round trip of GET /items over `requests`."""
    import threading
    import urllib.request

    from workshop.local import LocalLab, api

    ports: list[int] = []
    stop = threading.Event()
    with LocalLab("1", target="solutions") as lab:
        server = threading.Thread(target=api.serve, args=(lab,), kwargs={"port": 0, "ready": ports.append, "stop": stop})
        server.start()
        while not ports:
            time.sleep(0.01)
        url = f"http://127.0.0.1:{ports[0]}/items"
        times = []
        for _ in range(requests + 1):  # the first is the cold start
            before = time.perf_counter()
            with urllib.request.urlopen(url) as response:
                response.read()
            times.append(time.perf_counter() - before)
        stop.set()
        server.join()
    return {"cold_s": times[0], "warm_s": statistics.median(times[1:])}


# --- start-api under load: a real `workshop start-api` process, many clients at once ------------------

LOAD_CONNECTIONS = 20
LOAD_KINDS = ("create", "bad_json", "invalid_body", "unknown_route", "get_missing", "get_seeded")
INVALID_BODIES = ({"name": "", "price": -1}, {"name": "Cup", "price": "free"}, {"name": "Cup", "price": 1, "colour": "red"}, [1, 2])


@dataclass
class ApiServer:
    """A `workshop start-api` process: where it listens, its pid, and its console so far (read by a thread)."""

    url: str
    pid: int
    console: list[str]


def ctrl_c_as_in_a_terminal() -> None:
    """For a child process (preexec_fn): Ctrl-C (SIGINT) stops it, as when a learner starts it in a
    terminal, even where this process was started with SIGINT ignored (`command &` in a script)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def start_api_process(lab: str, target: str = "solutions", env: dict[str, str] | None = None):
    """`workshop start-api LAB --port 0` in a fresh process, until it says where it listens; stopped with
    Ctrl-C (SIGINT) after, as a learner stops it."""
    import re
    import signal
    import threading

    process = subprocess.Popen(
        [*paths.workshop_command(), "start-api", lab, "--port", "0", "--target", target],
        cwd=paths.ROOT,
        env={**(env or os.environ), "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        preexec_fn=ctrl_c_as_in_a_terminal if os.name == "posix" else None,
    )
    console: list[str] = []
    listening = threading.Event()

    def read() -> None:  # drained all along: a full pipe would block the server's prints
        for line in process.stdout:
            console.append(line.rstrip("\n"))
            if "running at http://" in line:
                listening.set()
        listening.set()

    reader = threading.Thread(target=read, name="start-api-console", daemon=True)
    reader.start()
    try:
        listening.wait(60)
        found = next((re.search(r"running at (http://127\.0\.0\.1:\d+)", line) for line in console if "running at" in line), None)
        if found is None:
            raise BenchError("`workshop start-api " + lab + "` did not start:\n" + "\n".join(console[-40:]))
        yield ApiServer(found[1], process.pid, console)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(5)


def process_cpu_s(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss_kib(pid: int) -> int:
    """A process's resident memory (VmRSS), in KiB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise OSError(f"no VmRSS for process {pid}")


def _exchange(url: str, method: str, path: str, body: bytes | None) -> tuple[int, bytes, float]:
    """One request on a new connection (so that every request is also a connection accepted):
    (status, body, seconds the connection took to open). The kernel opens a connection without the
    server's help while its listen backlog has room; when it has none, the client's SYN is dropped and
    sent again 1 s later (or the connection is reset)."""
    import http.client
    import urllib.parse

    where = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
    try:
        before = time.perf_counter()
        connection.connect()
        connected = time.perf_counter() - before
        headers = {"Content-Type": "application/json", "Connection": "close"}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(), connected
    finally:
        connection.close()


def _load_request(index: int, seeded: dict) -> tuple[str, str, str, bytes | None, Callable[[int, bytes], str | None]]:
    """The `index`th request of the mix: (kind, method, path, body, check); check says what is wrong, or None."""

    def expect(status: int, wanted: Callable[[object], bool]) -> Callable[[int, bytes], str | None]:
        def check(got: int, body: bytes) -> str | None:
            try:
                document = json.loads(body)
            except ValueError:
                document = None
            return None if got == status and wanted(document) else f"expected {status}, got {got} {body[:200]!r}"

        return check

    kind = LOAD_KINDS[index % len(LOAD_KINDS)]
    if kind == "create":
        new = {"name": f"Cup {index}", "price": index % 100 + 0.5}
        made = lambda d: isinstance(d, dict) and set(d) == {"id", "name", "price"} and d["name"] == new["name"] and d["price"] == new["price"]  # noqa: E731
        return kind, "POST", "/items", json.dumps(new).encode(), expect(201, made)
    if kind == "bad_json":
        return kind, "POST", "/items", b'{"name": "Cup", "price":', expect(400, lambda d: d == {"message": "The request body is not valid JSON."})
    if kind == "invalid_body":
        body = INVALID_BODIES[index // len(LOAD_KINDS) % len(INVALID_BODIES)]
        refused = lambda d: isinstance(d, dict) and str(d.get("message", "")).startswith("Invalid request body") and d.get("errors")  # noqa: E731
        return kind, "POST", "/items", json.dumps(body).encode(), expect(422, refused)
    if kind == "unknown_route":
        method, path = (("GET", f"/orders/{index}"), ("DELETE", "/items/x"), ("PUT", "/items"))[index // len(LOAD_KINDS) % 3]
        return kind, method, path, None, expect(403, lambda d: d == {"message": "Missing Authentication Token"})
    if kind == "get_missing":
        missing = f"missing-{index}"
        return kind, "GET", f"/items/{missing}", None, expect(404, lambda d: isinstance(d, dict) and d.get("message") == f"Item {missing} not found")
    return kind, "GET", f"/items/{seeded['id']}", None, expect(200, lambda d: d == seeded)


def api_load(server: ApiServer, requests: int, connections: int) -> dict:
    """`requests` requests to lab 1's API from `connections` clients at once, in a fixed mix of valid
    and invalid ones (LOAD_KINDS), each on a new connection, each answer checked for its kind; then the
    table is listed, to see that it holds the valid creates and nothing else. Returns the figures and
    what went wrong (connection errors, wrong answers: the first few of each)."""
    import threading

    status, body, _ = _exchange(server.url, "POST", "/items", json.dumps({"name": "Seed cup", "price": 2.5}).encode())
    if status != 201:
        raise BenchError(f"the seed item was not created: {status} {body[:500]!r}")
    seeded = json.loads(body)
    for index in range(len(LOAD_KINDS)):  # every route warm, the validation models built
        if index % len(LOAD_KINDS):
            _exchange(server.url, *_load_request(index, seeded)[1:4])
    rss_before = process_rss_kib(server.pid)
    latencies: list[float] = []
    connects: list[float] = []
    created: set[str] = set()
    failures: dict[str, list[str]] = {"connection": [], "answer": []}
    counts = {"connection": 0, "answer": 0}
    lock = threading.Lock()
    next_index = iter(range(requests))

    def client() -> None:
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                return
            kind, method, path, body, check = _load_request(index, seeded)
            before = time.perf_counter()
            try:
                status, answer, connected = _exchange(server.url, method, path, body)
            except OSError as error:  # ConnectionResetError, a refused or timed-out connection
                with lock:
                    counts["connection"] += 1
                    failures["connection"][5:] = []
                    failures["connection"].append(f"{kind} {method} {path}: {error!r}")
                continue
            elapsed = time.perf_counter() - before
            wrong = check(status, answer)
            with lock:
                latencies.append(elapsed)
                connects.append(connected)
                if wrong:
                    counts["answer"] += 1
                    if len(failures["answer"]) < 5:
                        failures["answer"].append(f"{kind} {method} {path}: {wrong}")
                elif kind == "create":
                    created.add(json.loads(answer)["id"])

    started = time.perf_counter()
    threads = [threading.Thread(target=client, name=f"load-client-{n}") for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    rss_after = process_rss_kib(server.pid)
    status, listed, _ = _exchange(server.url, "GET", "/items", None)
    items = {item["id"] for item in json.loads(listed)["items"]} if status == 200 else set()
    ordered = sorted(latencies)
    return {
        "requests": requests,
        "answered": len(latencies),
        "seconds": seconds,
        "p50_ms": statistics.median(ordered) * 1000 if ordered else 0.0,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000 if ordered else 0.0,
        "slowest_connect_ms": max(connects, default=0.0) * 1000,
        "connection_errors": counts["connection"],
        "wrong_answers": counts["answer"],
        "failures": failures["connection"] + failures["answer"],
        "created": len(created),
        "table_ok": items == created | {seeded["id"]},
        "table_items": len(items),
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
    }


def load_probe(requests: int, connections: int) -> dict:
    """Lab 1's reference served by `workshop start-api` in a fresh process, under `api_load`."""
    with start_api_process("1") as server:
        return api_load(server, requests, connections)


def load_rows(runs: int, requests: int) -> list[tuple[str, str, str]]:
    """start-api under load: latency, throughput, errors and the server's memory, over `runs` fresh servers."""
    loads = [load_probe(requests, LOAD_CONNECTIONS) for _ in range(runs)]
    how = f"{requests:,} requests, {LOAD_CONNECTIONS} at once, each on a new connection, valid and invalid mixed; {runs} fresh server{'s' if runs > 1 else ''}"
    growth = [(load["rss_after_kib"] - load["rss_before_kib"]) / 1024 for load in loads]
    errors = [load["connection_errors"] + load["wrong_answers"] + (not load["table_ok"]) for load in loads]
    return [
        ("`workshop start-api` under load: latency p50", f"{summary([x['p50_ms'] for x in loads], digits=1)} ms", how),
        ("`workshop start-api` under load: latency p99", f"{summary([x['p99_ms'] for x in loads], digits=1)} ms", how),
        ("`workshop start-api` under load: requests/s", f"{summary([x['requests'] / x['seconds'] for x in loads], digits=0)}", how),
        (
            "`workshop start-api` under load: errors",
            f"{sum(errors)}",
            "connections reset or refused, wrong answers (status or body for the request's kind), a table holding more than "
            f"the valid creates, all runs; slowest connection to open {max(x['slowest_connect_ms'] for x in loads):.1f} ms",
        ),
        ("`workshop start-api` under load: RSS growth", f"{summary(growth, digits=1)} MB", "the server's resident memory after the load less before it (warm); " + how),
    ]


# Between two saves in the watch probe: no learner saves twice in less, and watch's workers for the next
# save are forked ahead in it (as they are while a learner reads the last grading and types).
SAVE_PAUSE_SECONDS = 0.5


def watch_probe(lab_id: str, saves: int) -> dict:
    """`workshop watch LAB` in this process, on the tree WORKSHOP_LABS names (a copy of the reference
    solutions): the first grading (the engine warms up), then `saves` saves, each timed from the change
    to the report watch prints (the time until watch's next poll notices the change is not included).
    Each grading is watch.render's own steps, so that its results can be checked: it must pass."""
    from workshop import watch
    from workshop.grading import report, runner
    from workshop.starters import IGNORED_PARTS

    lab = manifest.find(lab_id)
    folder = lab.folder("labs")
    saved = next(path for path in sorted(folder.rglob("*.py")) if not IGNORED_PARTS & set(path.parts))

    def graded() -> float:
        """What watch does when a file changed: snapshot the folder, then watch.render (grade, report)."""
        before = time.perf_counter()
        watch.snapshot(folder)
        results = runner.grade([lab], "labs", long_lived=True)  # as watch grades
        report.render(list(manifest.labs()), results, "labs")
        seconds = time.perf_counter() - before
        result = results[0]
        if not result.done:
            failing = result.next_task.first_failure if result.next_task else None
            failure = result.error or (failing.message if failing else "a task ran no test")
            raise BenchError(f"watch graded {lab.id}'s reference solution as not done: {failure[:1500]}")
        return seconds

    first = graded()
    times = []
    for _ in range(saves):
        watch.ready_next(lab)  # as watch does after showing a grading
        time.sleep(SAVE_PAUSE_SECONDS)  # the learner reads, and types, before the next save
        saved.write_bytes(saved.read_bytes())  # a save: same code, a new modification time
        times.append(graded())
    return {"first_s": first, "saves_s": times, "saved": saved.relative_to(folder).as_posix()}


def write_ratio(orders: int = 200) -> dict:
    """Lab 3's lesson in numbers: N orders written one put_item at a time, then with a batch writer."""
    from workshop import sandbox

    sandbox.enter()
    import boto3
    from moto import mock_aws

    items = [{"order_id": f"o-{n}", "customer": f"c-{n % 7}", "total": n} for n in range(orders)]
    with mock_aws():
        table = boto3.resource("dynamodb").create_table(
            TableName="orders-bench",
            KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        started = time.perf_counter()
        for item in items:
            table.put_item(Item=item)
        one_by_one = time.perf_counter() - started
        started = time.perf_counter()
        with table.batch_writer() as batch:  # BatchWriteItem, 25 items a request
            for item in items:
                batch.put_item(Item=item)
        batched = time.perf_counter() - started
    return {"one_by_one_s": one_by_one, "batched_s": batched}


# --- the runner ------------------------------------------------------------------------------------


def _wall_time(command: list[str], cwd: Path = paths.ROOT) -> float:
    return _timed_run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)[0].wall


class Timed(NamedTuple):
    wall: float
    processor: float  # user + system time of the command and every process it waited for (its workers)


def _timed_run(command: list[str], cwd: Path = paths.ROOT, **options) -> tuple[Timed, subprocess.CompletedProcess]:
    started, processor = time.perf_counter(), processor_seconds()
    run = subprocess.run(command, cwd=cwd, check=False, **options)
    return Timed(time.perf_counter() - started, processor_seconds() - processor), run


def processor_seconds() -> float:
    """User + system time of this process's children that have ended (a command's own, once it has)."""
    import resource  # Unix only, as the grading engine's fork is

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


# A probe's process imports this module, as the `workshop` console script imports the CLI, rather than
# running it with `python -m`: run so, the same watch save of lab 4 measured 15-40% slower in alternating
# runs on this project's 2-core machine (0.76-0.81 s against 0.62-0.71 s; cause not found), which no
# learner ever sees.
PROBE_MAIN = "import sys; from workshop.bench import probe_main; probe_main(sys.argv[1:])"


def _probe_in_fresh_process(*arguments: str, env: dict[str, str] | None = None) -> dict:
    command = [sys.executable, "-c", PROBE_MAIN, *arguments]
    run = subprocess.run(command, cwd=paths.ROOT, capture_output=True, text=True, check=False, env=env)
    if run.returncode != 0:
        raise BenchError(f"the bench probe {' '.join(arguments)} failed:\n{run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def floor_times(runs: int) -> list[float]:
    """Wall times of a fresh process that imports only the libraries every grading imports."""
    command = [sys.executable, "-c", FLOOR_IMPORTS]
    _wall_time(command)  # warm-up, as for the gradings: the files are in the page cache for every run
    return [_wall_time(command) for _ in range(runs)]


def check_times(arguments: list[str], target: str, runs: int, warmed_up: bool = True) -> list[Timed]:
    """Wall and processor times of `workshop check ARGUMENTS --target TARGET` in fresh processes, after
    one unmeasured run (it fills the template cache, as a learner's first run does) that must have graded:
    the reference solutions all pass, the starters grade without an error. Timed runs must exit as it did.
    Not `warmed_up` (a quick run): that first run is timed too, and one run fewer follows it."""
    command = [*paths.workshop_command(), "check", *arguments, "--target", target]
    name = f"`workshop check {' '.join(arguments)} --target {target}`"
    first, warm_up = _timed_run([*command, "--json"], capture_output=True, text=True)
    try:
        graded = json.loads(warm_up.stdout)["labs"]
    except (ValueError, KeyError):
        raise BenchError(f"{name} failed:\n{warm_up.stderr[-2000:]}") from None
    wrong = [lab for lab in graded if lab["status"] == "error" or (target == "solutions" and lab["status"] != "pass")]
    if wrong:
        problems = "\n".join(f"  lab {lab['number']}: {lab['status']}: {lab['message'] or 'some tests fail'}" for lab in wrong)
        raise BenchError(f"{name} did not grade as it should, so its time would not be grading's:\n{problems}")
    times = [] if warmed_up else [first]
    for _ in range(runs - len(times)):
        timed, run = _timed_run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(timed)
        if run.returncode != warm_up.returncode:
            raise BenchError(f"{name} exited with {run.returncode}, its first run with {warm_up.returncode}")
    return times


def watch_rows(labs: list[manifest.Lab], saves: int) -> dict[str, tuple[str, str, str]]:
    """Per lab, the row of a save graded by `workshop watch` with its engine warm (a process per lab, as
    `workshop watch LAB` is), on a copy of the reference solutions that WORKSHOP_LABS points to."""
    rows = {}
    with tempfile.TemporaryDirectory(prefix="workshop-bench-") as scratch:
        copy = Path(scratch) / "labs"
        shutil.copytree(paths.SOLUTIONS, copy, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", ".aws-sam"))
        env = {**os.environ, "WORKSHOP_LABS": str(copy)}
        for lab in labs:
            probe = _probe_in_fresh_process("watch", lab.id, str(saves), env=env)
            rows[lab.id] = (
                f"watch: a save of lab {lab.number} graded and shown (warm engine)",
                f"{summary(probe['saves_s'])} s",
                f"{saves} saves of {probe['saved']} in one process, reference solution; "
                f"watch's first grading {probe['first_s']:.2f} s",
            )
    return rows


def summary(values: list[float], unit: float = 1.0, digits: int = 2) -> str:
    """'median (min-max)' of `values`, scaled by `unit`."""
    scaled = [v * unit for v in values]
    if len(scaled) == 1:
        return f"{scaled[0]:.{digits}f}"
    return f"{statistics.median(scaled):.{digits}f} ({min(scaled):.{digits}f}-{max(scaled):.{digits}f})"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):  # /proc/cpuinfo is Linux's
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}"


VARIANTS = {"outside": "clients at import", "inside": "clients in the handler"}


def function_rows(number: int, scenario: Scenario, runs: int, workload: Workload) -> list[tuple[str, str, str]]:
    """Cold and warm figures of one function: the reference, and the handler-inside variant if any."""
    rows = []
    calls = workload.durable_warm_runs if scenario.durable else workload.warm_calls
    what = ("the whole workflow (first run and replays; its 3-day callback timeout set, the warehouse "
            "confirming at once; waits skipped)" if scenario.durable else "")
    for variant in ("outside", "inside") if scenario.clients else ("outside",):
        which = f", {VARIANTS[variant]}" if scenario.clients else ""
        probes = [_probe_in_fresh_process(scenario.function, variant, str(calls)) for _ in range(runs)]
        cold = [p["import_s"] + p["first_call_s"] for p in probes]
        warm = [p["warm_s"] for p in probes]
        rows.append((
            f"Lab {number} {scenario.function} cold start{which}",
            f"{summary(cold, 1000, 0)} ms",
            f"import + first event{': ' + what if what else ''}, {runs} fresh processes",
        ))
        rows.append((
            f"Lab {number} {scenario.function} warm invocation{which}",
            f"{summary(warm, 1000, 2)} ms",
            f"median of {calls} {'workflows' if scenario.durable else 'events'}, {runs} processes",
        ))
    return rows


SDK_DISTRIBUTION = "aws-durable-execution-sdk-python"


def zipped_distributions(names: tuple[str, ...]) -> tuple[int, int]:
    """Zipped and unzipped bytes of these installed distributions laid out as a layer (python/...), without
    bytecode (the layer is built --no-compile): the versions of this environment, not PyPI's newest."""
    import io
    import zipfile
    from importlib import metadata

    buffer, unzipped = io.BytesIO(), 0
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            distribution = metadata.distribution(name)
            for file in distribution.files or []:
                path = Path(str(distribution.locate_file(file)))
                if file.suffix == ".pyc" or ".." in file.parts or not path.is_file():
                    continue  # bytecode, and the scripts pip puts outside site-packages
                archive.write(path, f"python/{file}")
                unzipped += path.stat().st_size
    return len(buffer.getvalue()), unzipped


def layer_rows() -> list[tuple[str, str, str]]:
    """Lab 7's SDK layer as its Makefile builds it (--no-deps), and as it would be with its dependencies."""
    sdk, sdk_unzipped = zipped_distributions((SDK_DISTRIBUTION,))
    # What pip installs with the SDK when it may: boto3's whole tree, all of which the runtime already has.
    from workshop.grading.template_checks import RUNTIME_PACKAGES

    whole, whole_unzipped = zipped_distributions((SDK_DISTRIBUTION, *RUNTIME_PACKAGES))
    return [
        (f"Lab 7 SDK layer, zipped ({SDK_DISTRIBUTION} --no-deps)", f"{sdk / 1e6:.2f} MB",
         f"{sdk_unzipped / 1e6:.2f} MB unzipped; the installed distribution, without bytecode"),
        ("Lab 7 SDK layer with its dependencies, zipped", f"{whole / 1e6:.1f} MB",
         f"{whole_unzipped / 1e6:.1f} MB unzipped; with {', '.join(RUNTIME_PACKAGES)}: what a requirements.txt "
         f"listing the SDK adds to a package ({whole / sdk:.0f}x)"),
    ]


def measure(runs: int, suite: bool, workload: Workload = FULL) -> list[tuple[str, str, str]]:
    """Rows of (figure, value, how it was measured)."""
    labs = list(manifest.labs())
    floor = statistics.median(times := floor_times(runs))
    rows = [(FLOOR_ROW, f"{summary(times)} s", f"fresh process, {runs} runs: `{FLOOR_IMPORTS}`")]
    watched = watch_rows(labs, workload.saves(runs))
    slowest: dict[str, tuple[float, int]] = {}  # target -> (median, lab number) of its slowest lab
    for lab in labs:
        for target, which in TARGET_NAMES.items():
            times = [run.wall for run in check_times([lab.id], target, runs, workload.checks_warmed_up)]
            median = statistics.median(times)
            slowest[target] = max(slowest.get(target, (0.0, 0)), (median, lab.number))
            rows.append((
                f"Grading lab {lab.number} ({which})",
                f"{summary(times)} s",
                f"fresh process, {runs} runs; {median / floor:.1f}x the import floor",
            ))
        rows.append(watched[lab.id])
        for scenario in (s for s in SCENARIOS.values() if s.lab == lab.id):
            rows += function_rows(lab.number, scenario, runs, workload)
        if lab.id == "lab07_durable_orders":
            rows += layer_rows()
    for target, which in ALL_TARGET_NAMES.items():
        timed = check_times(["--all"], target, runs, workload.checks_warmed_up)
        median = statistics.median(times := [run.wall for run in timed])
        rows.append((
            f"Grading every lab, check --all ({which})",
            f"{summary(times)} s",
            f"fresh process, {runs} runs; {median / floor:.1f}x the import floor",
        ))
        lab_median, number = slowest[target]
        rows.append((
            f"check --all ÷ slowest lab ({which})",
            f"{median / lab_median:.1f}x",
            f"medians: check --all over lab {number}'s {lab_median:.2f} s, the slowest single lab",
        ))
        # Wall time can never be less than the processor time spread over every core: this says how much
        # of the ratio above is the machine's (its cores) and how much the engine's (idle cores, waiting).
        processor = statistics.median(used := [run.processor for run in timed])
        cores = os.cpu_count() or 1
        rows.append((
            f"check --all, processor time ({which})",
            f"{summary(used)} CPU-s",
            f"user + system, the parent and every worker, {runs} runs; spread over this machine's {cores} "
            f"cores at best {processor / cores:.2f} s, {processor / cores / lab_median:.1f}x lab {number}",
        ))
    if any(lab.id == "lab03_sqs_processing" for lab in manifest.labs()):
        writes = [_probe_in_fresh_process("writes", str(workload.batch_orders)) for _ in range(runs)]
        ratios = [w["one_by_one_s"] / w["batched_s"] for w in writes]
        rows.append((
            f"Lab 3: {workload.batch_orders} orders, put_item one by one vs batch writer",
            f"{summary(ratios, digits=1)}x",
            f"same process, {runs} processes; one by one {summary([w['one_by_one_s'] for w in writes], 1000, 0)} ms",
        ))
    rows += local_rows(runs, workload)
    if suite:
        seconds = _wall_time(["make", "--no-print-directory", "test"])
        rows.append(("make test (whole suite, no installation)", f"{seconds:.1f} s", "1 run"))
    return rows


def local_rows(runs: int, workload: Workload) -> list[tuple[str, str, str]]:
    """The local runtime's figures: `workshop invoke`'s cold path, warm invocations, start-api requests."""
    rows = []
    local_probes: dict[str, list[dict]] = {}
    for function, scenario in SCENARIOS.items():
        if scenario.lab == "lab02_s3_events":
            continue  # its events name objects a fresh stack does not hold: `workshop upload` below
        event = LOCAL_EVENTS.get(function, scenario.event)
        command = [*paths.workshop_command(), "invoke", scenario.lab, function, "--event", event, "--target", "solutions"]
        times = [_wall_time(command) for _ in range(runs)]
        rows.append((f"`workshop invoke` {function}, cold path", f"{summary(times)} s", f"process start to exit, {runs} runs"))
        if scenario.durable:
            continue  # a workflow has no REPORT line: its whole run is measured with the functions
        calls = workload.local_warm_calls
        probes = local_probes[function] = [_probe_in_fresh_process("local", function, str(calls)) for _ in range(runs)]
        rows.append((
            f"Local {function}: warm invocation, call to REPORT",
            f"{summary([p['warm_s'] for p in probes], 1000, 2)} ms",
            f"median of {calls}, {runs} processes; cold {summary([p['cold_s'] for p in probes], 1000, 0)} ms",
        ))
    csv = paths.WORKSHOP_STATE / "bench-orders.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    csv.write_text("sku,quantity,unit_price\nMUG,2,19.99\nTEA,1,4.50\n", encoding="utf-8")
    command = [*paths.workshop_command(), "upload", "2", str(csv), "--target", "solutions"]
    rows.append((
        "`workshop upload` to lab 2, cold path", f"{summary([_wall_time(command) for _ in range(runs)])} s",
        f"process start to exit, {runs} runs",
    ))
    opened = [probe["open_s"] for probe in local_probes["order_worker"]]  # the local probes above opened it
    rows.append(("Opening a LocalLab (lab 3's stack in moto)", f"{summary(opened)} s", f"imports included, {runs} processes"))
    requests = [_probe_in_fresh_process("api", str(workload.api_requests)) for _ in range(runs)]
    rows.append((
        "`workshop start-api` GET /items, warm", f"{summary([r['warm_s'] for r in requests], 1000, 2)} ms",
        f"median of {workload.api_requests} requests, {runs} processes; the first (cold) {summary([r['cold_s'] for r in requests], 1000, 0)} ms",
    ))
    rows += load_rows(runs, workload.load_requests)
    return rows


def as_markdown(rows: list[tuple[str, str, str]]) -> str:
    lines = [
        f"Measured with `make bench` on {date.today():%d %B %Y}, on {machine()}.",
        "Median (min-max) over fresh processes; AWS is emulated by moto, so there is no network in these figures.",
        "A cold start here is the function's own imports and first event: boto3 is already loaded by the set-up",
        "(about 0.15 s more in a real cold start), and Lambda's own start-up (about 0.1-0.3 s) is not included.",
        "",
        "| Figure | Value | Measured over |",
        "| --- | --- | --- |",
        *(f"| {figure} | {value} | {how} |" for figure, value, how in rows),
    ]
    return "\n".join(lines) + "\n"


def main(runs: int | None = None, suite: bool = True, write: bool = False, quick: bool = False) -> int:
    runs = runs if runs is not None else 1 if quick else 5
    if runs < 1:
        print("workshop bench: --runs must be at least 1", file=sys.stderr)
        return 2
    if quick and write:
        print("workshop bench: --quick measures too little to publish; run `make bench` to write the figures",
              file=sys.stderr)
        return 2
    how = "a quick run: every figure once, on the least work, to check the bench; not figures to quote" if quick else ""
    print(f"Measuring on {machine()} ({how or f'{runs} runs per figure'})...", flush=True)
    try:
        rows = measure(runs, suite, QUICK if quick else FULL)
    except BenchError as error:
        print(f"workshop bench: stopped, no figure printed or written: {error}", file=sys.stderr)
        return 1
    width = max(len(figure) for figure, _, _ in rows)
    for figure, value, how in rows:
        print(f"  {figure:<{width}}  {value:>22}   {how}")
    if write:
        SNIPPET.write_text(as_markdown(rows), encoding="utf-8")
        print(f"Written to {paths.relative(SNIPPET)} (shown whole on the performance page).")
        # Each lab page shows its own rows: the cuts under docs/snippets/generated/figures/ follow the table.
        docs_snippets.main(["--write"])
    return 0


def probe_main(arguments: list[str]) -> NoReturn:
    """One probe, in the fresh process `_probe_in_fresh_process` started: its figures as JSON; then the
    process ends as `workshop` does (process_exit.py), not through Python's teardown."""
    from workshop.process_exit import exit_now

    if arguments[0] == "writes":
        print(json.dumps(write_ratio(int(arguments[1]))))
    elif arguments[0] == "local":
        print(json.dumps(local_probe(arguments[1], int(arguments[2]))))
    elif arguments[0] == "api":
        print(json.dumps(api_probe(int(arguments[1]))))
    elif arguments[0] == "load":  # python -m workshop.bench load [REQUESTS [CONNECTIONS]]
        numbers = [int(a) for a in arguments[1:3]]
        print(json.dumps(load_probe(*numbers) if numbers else load_probe(FULL.load_requests, LOAD_CONNECTIONS)))
    elif arguments[0] == "watch":
        print(json.dumps(watch_probe(arguments[1], int(arguments[2]))))
    else:
        function, variant, calls = arguments[0], arguments[1], int(arguments[2])
        print(json.dumps(probe(function, variant, calls)))
    exit_now(0)


if __name__ == "__main__":
    probe_main(sys.argv[1:])
