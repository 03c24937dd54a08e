"""`workshop bench` (make bench): the figures the performance lessons quote, measured on this machine.

- grading: wall time of `workshop check <lab>` in a fresh process, as a learner runs it;
- cold and warm starts of each reference function under moto: a cold start is a fresh process importing
  the function and serving its first event; a warm start is one more event in that process. Each is
  measured for the solution and for a variant that creates its clients inside the handler;
- lab 3's write ratio: N orders written one `put_item` at a time versus with a batch writer, in one process;
- the whole `make test`, once, without installation.

Figures are medians over several fresh processes, with their spread (min to max). Under moto there is no
network, so the gap between the variants is the client set-up alone; in AWS each new client also opens
a new TLS connection, which widens it.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from workshop import manifest, paths

WARM_CALLS = 100
BATCH_ORDERS = 200
SNIPPET = paths.DOCS / "snippets" / "bench.md"


@dataclass(frozen=True)
class Scenario:
    """One reference function, the event it serves, how to set up its world, and its module-level clients."""

    lab: str
    function: str
    event: str
    setup: Callable[[dict], dict[str, str]]  # event -> environment, after creating resources in moto
    clients: dict[str, Callable[[], object]]  # module attribute -> how the handler-inside variant re-creates it


def _items_table(event: dict) -> dict[str, str]:
    import boto3

    name = "items-bench"
    table = boto3.resource("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    table.put_item(Item={"id": event["pathParameters"]["id"], "name": "Teapot", "price": 24})
    return {"TABLE_NAME": name, "POWERTOOLS_SERVICE_NAME": "items-api", "POWERTOOLS_LOG_LEVEL": "WARNING"}


def _new_items_table() -> object:
    import boto3

    return boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


SCENARIOS = {
    "lab01_api_gateway": Scenario("lab01_api_gateway", "items_api", "api_get_item", _items_table, {"table": _new_items_table}),
}


# --- the probe: runs in a fresh process and prints its timings as JSON ------------------------------


def probe(lab_id: str, variant: str, warm_calls: int) -> dict:
    from workshop import sandbox

    sandbox.enter()
    from moto import mock_aws

    from workshop.lambda_runtime import LambdaContext, import_fresh, load_event

    scenario = SCENARIOS[lab_id]
    folder = paths.SOLUTIONS / lab_id
    event = load_event(folder / "events", scenario.event)
    with mock_aws():
        os.environ.update(scenario.setup(event))
        started = time.perf_counter()
        module = import_fresh(folder / scenario.function / "app.py")
        imported = time.perf_counter()

        def invoke() -> None:
            if variant == "inside":  # what a handler that creates its clients does on every call
                for attribute, create in scenario.clients.items():
                    setattr(module, attribute, create())
            response = module.lambda_handler(load_event(folder / "events", scenario.event), LambdaContext())
            if not 200 <= response.get("statusCode", 500) < 300:
                raise RuntimeError(f"the bench event failed: {response}")

        invoke()
        first = time.perf_counter()
        warm = []
        for _ in range(warm_calls):
            before = time.perf_counter()
            invoke()
            warm.append(time.perf_counter() - before)
    return {"import_s": imported - started, "first_call_s": first - imported, "warm_s": statistics.median(warm)}


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
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def _probe_in_fresh_process(*arguments: str) -> dict:
    command = [sys.executable, "-m", "workshop.bench", *arguments]
    run = subprocess.run(command, cwd=paths.ROOT, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"the bench probe failed:\n{run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


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


def measure(runs: int, suite: bool) -> list[tuple[str, str, str]]:
    """Rows of (figure, value, how it was measured)."""
    rows = []
    for lab in manifest.labs():
        for target in ("solutions", "labs"):
            command = [sys.executable, "-m", "workshop", "check", lab.id, "--target", target]
            _wall_time(command)  # warm-up: fills the template cache, as a learner's first run does
            times = [_wall_time(command) for _ in range(runs)]
            which = "the reference solution" if target == "solutions" else "the untouched starter"
            rows.append((f"Grading lab {lab.number} ({which})", f"{summary(times)} s", f"fresh process, {runs} runs"))
        if lab.id not in SCENARIOS:
            continue
        for variant, label in (("outside", "clients at import"), ("inside", "clients in the handler")):
            probes = [_probe_in_fresh_process(lab.id, variant, str(WARM_CALLS)) for _ in range(runs)]
            cold = [p["import_s"] + p["first_call_s"] for p in probes]
            warm = [p["warm_s"] for p in probes]
            rows.append((f"Lab {lab.number} cold start, {label}", f"{summary(cold, 1000, 0)} ms", f"import + first event, {runs} fresh processes"))
            rows.append((f"Lab {lab.number} warm invocation, {label}", f"{summary(warm, 1000, 2)} ms", f"median of {WARM_CALLS} events, {runs} processes"))
    if any(lab.id == "lab03_sqs_processing" for lab in manifest.labs()):
        writes = [_probe_in_fresh_process("writes", str(BATCH_ORDERS)) for _ in range(runs)]
        ratios = [w["one_by_one_s"] / w["batched_s"] for w in writes]
        rows.append((
            f"Lab 3: {BATCH_ORDERS} orders, put_item one by one vs batch writer",
            f"{summary(ratios, digits=1)}x",
            f"same process, {runs} processes; one by one {summary([w['one_by_one_s'] for w in writes], 1000, 0)} ms",
        ))
    if suite:
        seconds = _wall_time(["make", "--no-print-directory", "test"])
        rows.append(("make test (whole suite, no installation)", f"{seconds:.1f} s", "1 run"))
    return rows


def as_markdown(rows: list[tuple[str, str, str]]) -> str:
    lines = [
        f"Measured with `make bench` on {date.today():%d %B %Y}, on {machine()}.",
        "Median (min-max) over fresh processes; AWS is emulated by moto, so there is no network in these figures.",
        "",
        "| Figure | Value | Measured over |",
        "| --- | --- | --- |",
        *(f"| {figure} | {value} | {how} |" for figure, value, how in rows),
    ]
    return "\n".join(lines) + "\n"


def main(runs: int = 5, suite: bool = True, write: bool = False) -> int:
    if runs < 1:
        print("workshop bench: --runs must be at least 1", file=sys.stderr)
        return 2
    print(f"Measuring on {machine()} ({runs} runs per figure)...", flush=True)
    rows = measure(runs, suite)
    width = max(len(figure) for figure, _, _ in rows)
    for figure, value, how in rows:
        print(f"  {figure:<{width}}  {value:>22}   {how}")
    if write:
        SNIPPET.write_text(as_markdown(rows), encoding="utf-8")
        print(f"Written to {paths.relative(SNIPPET)} (shown on the lab pages).")
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "writes":
        print(json.dumps(write_ratio(int(sys.argv[2]))))
    else:
        lab_id, variant, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
        print(json.dumps(probe(lab_id, variant, calls)))
