"""Grader for lab 6: performance and cost, for the workshop's own functions.

Each test_taskN_* checks task N of docs/labs/lab06_performance.md. A failure tells you what the grader
computed, what your cost model or template says, what it expected and where to look.
PYTEST_DONT_REWRITE: the messages below are shown to you exactly as written.

The grader keeps its own copy of the prices and of the rules (it never trusts the module it grades), and
works out every expected answer from the same measurements you have.

Rules and the checks that enforce them (the page's and each TODO(task N)'s):

| Rule | Check |
| --- | --- |
| 1: a month is requests plus GB-seconds at the architecture's price, a megabyte 1/1024 GB | test_task1_prices_the_worked_examples_to_the_cent |
| 1: Decimal throughout, rounded to the cent, half up, once at the end | test_task1_prices_the_worked_examples_to_the_cent (the 20,000-invocation and half-cent examples), test_task1_returns_a_decimal_rounded_to_the_cent |
| 2: the cheapest size whose p95 is at most the target (equal counts), priced at its avg_ms | test_task2_chooses_the_cheapest_size_that_meets_the_target |
| 2: on a tie, the smaller size, whatever the order of the measurements | test_task2_chooses_the_cheapest_size_that_meets_the_target |
| 2: measurements.csv unchanged; the items API's MemorySize is that size (resolved) | test_task2_sets_the_api_memory_to_the_cheapest_size_that_meets_200_ms |
| 3: every function on arm64 | test_task3_every_function_runs_on_arm64 |
| 3: every layer built for the function's architecture | test_task3_every_layer_is_built_for_arm64 |
| 4: each package is its function's folder: code and requirements.txt, within 20,000 bytes | test_task4_every_package_holds_our_code_only_within_the_budget |
| 4: no requirements.txt bundles boto3, botocore, Powertools or pydantic | test_task4_no_package_bundles_boto3_or_powertools |
| 4: Powertools from its public layer, for the function's runtime | test_task4_powertools_comes_from_its_public_layer |
| 5: the API's alias keeps ApiProvisionedConcurrency environments warm | test_task5_the_api_keeps_environments_warm_through_an_alias_when_switched_on |
| 5: ApiProvisionedConcurrency is 0 by default, and nothing is warm then | test_task5_nothing_is_kept_warm_by_default |
| 5: no provisioned concurrency on the queue worker or the hourly report | test_task5_no_provisioned_concurrency_where_nobody_waits |
| 5: the worker's reserved concurrency is set, its pollers (function or alias) within it | test_task5_reserved_concurrency_caps_the_queue_worker |

Not checked offline (the page says so): a package's native code on Graviton, and what warm
environments do to the cold starts and the bill of a deployed stack.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from types import ModuleType

import pytest

from workshop import paths, templates
from workshop.grading.feedback import learner_code
from workshop.grading.performance import (
    NO_VALUE,
    PACKAGE_BUDGET,
    Unresolved,
    aliases_of,
    functions,
    package,
    parameter_values,
    resolve,
    the_function,
)
from workshop.grading.template_checks import POWERTOOLS_LAYER, load_both
from workshop.lambda_runtime import import_fresh

MODULE = "cost_model.py"
MEASUREMENTS = "measurements.csv"
LAB = "lab06_performance"

# The AWS Lambda pricing page, us-east-1, as read on 27 November 2026 (the grader's own copy).
PRICE_PER_GB_SECOND = {"x86_64": Decimal("0.0000166667"), "arm64": Decimal("0.0000133334")}
PRICE_PER_REQUEST = Decimal("0.20") / 1_000_000
CENT = Decimal("0.01")

# The items API's requirement (the page, task 2): its p95 within 200 ms, at 3 million requests a month.
API_P95_TARGET_MS = 200
API_MONTHLY_INVOCATIONS = 3_000_000

OUR_CODE = re.compile(r"(^|/)([A-Za-z_][A-Za-z0-9_]*\.py|requirements\.txt)$")
BUNDLED = re.compile(r"^\s*(boto3|botocore|aws-lambda-powertools|pydantic)\b", re.M | re.I)

# The three functions lab 6 tunes: (lab, function folder), and who waits on them.
ITEMS_API = ("lab01_api_gateway", "items_api")
ORDER_WORKER = ("lab03_sqs_processing", "order_worker")
HOURLY_REPORT = ("lab04_scheduled_tasks", "hourly_report")
NOBODY_WAITS = {ORDER_WORKER: "the queue worker", HOURLY_REPORT: "the hourly report"}


# --- the grader's own reference ---------------------------------------------------------------------


def reference_cost(invocations: int, average_ms: Decimal, memory_mb: int, architecture: str) -> Decimal:
    gb_seconds = Decimal(invocations) * Decimal(average_ms) / 1000 * Decimal(memory_mb) / 1024
    total = gb_seconds * PRICE_PER_GB_SECOND[architecture] + invocations * PRICE_PER_REQUEST
    return total.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Row:
    memory_mb: int
    avg_ms: Decimal
    p95_ms: Decimal


def read_rows(path: Path) -> list[Row]:
    with path.open(encoding="utf-8", newline="") as rows:
        return [
            Row(int(row["memory_mb"]), Decimal(row["avg_ms"]), Decimal(row["p95_ms"]))
            for row in csv.DictReader(rows)
        ]


def reference_choice(rows: list[Row], target_ms: int, invocations: int, architecture: str) -> int:
    fast_enough = [r for r in rows if r.p95_ms <= target_ms]
    return min(
        fast_enough, key=lambda r: (reference_cost(invocations, r.avg_ms, r.memory_mb, architecture), r.memory_mb)
    ).memory_mb


# --- helpers ---------------------------------------------------------------------------------------


@pytest.fixture
def cost_model(lab_dir: Path) -> ModuleType:
    """The learner's cost_model.py, imported afresh."""
    with learner_code(f"Importing {LAB}/{MODULE}"):
        return import_fresh(lab_dir / MODULE)


@pytest.fixture
def deployed(lab_dir: Path):
    """The lab's template as written and as deployed, and the functions it describes."""
    sam, cfn = load_both(lab_dir)
    return sam, cfn, functions(sam, cfn, lab_dir)


def dollars(value: object) -> str:
    return f"${value}" if isinstance(value, Decimal) else repr(value)


# --- task 1 ----------------------------------------------------------------------------------------

# (what the example shows, invocations, average ms, memory MB, architecture, expected dollars)
WORKED_EXAMPLES = [
    ("x86_64, 128 MB", 1_000_000, 100, 128, "x86_64", Decimal("0.41")),
    ("the same on arm64", 1_000_000, 100, 128, "arm64", Decimal("0.37")),
    ("the items API at 1,024 MB", 3_000_000, 95, 1024, "arm64", Decimal("4.40")),
    ("1,769 MB is 1769/1024 GB, not 1.769", 10_000_000, 62, 1769, "x86_64", Decimal("19.85")),
    ("the same on arm64", 10_000_000, 62, 1769, "arm64", Decimal("16.28")),
    ("rounded once, at the end", 20_000, 138, 128, "arm64", Decimal("0.01")),
    ("a fraction of a millisecond counts", 2_000_000, Decimal("12.5"), 512, "arm64", Decimal("0.57")),
    # 15,000,000 GB-seconds = $200.001 exactly, plus $0.004 of requests: $200.005, half a cent
    ("exactly half a cent rounds up", 20_000, 75_000, 10_240, "arm64", Decimal("200.01")),
]


def test_task1_prices_the_worked_examples_to_the_cent(cost_model):
    problems = []
    for case, invocations, average_ms, memory_mb, architecture, expected in WORKED_EXAMPLES:
        # GIVEN a month of a function (a worked example whose answer the grader knows)
        call = f"monthly_cost({invocations:_}, {average_ms!s}, {memory_mb}, {architecture!r})"
        # WHEN the cost model prices it
        with learner_code(call, "Look at monthly_cost in cost_model.py."):
            got = cost_model.monthly_cost(invocations, average_ms, memory_mb, architecture)
        # THEN it comes to the expected dollars and cents
        if got != expected or not isinstance(got, Decimal):
            problems.append(f"{case}: {call} returned {dollars(got)}; expected ${expected}")
    assert not problems, (
        "Your cost model gets these months wrong:\n"
        + "\n".join(f"  - {p}" for p in problems)
        + "\nA month is requests (invocations x $0.20 per million) plus compute: invocations x "
        "(average ms / 1000) x (memory MB / 1024) GB-seconds at the architecture's price per "
        "GB-second. Work in Decimal, and round to the cent (half up) once, at the end."
    )


def test_task1_returns_a_decimal_rounded_to_the_cent(cost_model):
    # GIVEN a month of 1,234,567 invocations of 87.3 ms at 256 MB on arm64
    call = "monthly_cost(1_234_567, Decimal('87.3'), 256, 'arm64')"
    with learner_code(call, "Look at monthly_cost in cost_model.py."):
        got = cost_model.monthly_cost(1_234_567, Decimal("87.3"), 256, "arm64")
    expected = reference_cost(1_234_567, Decimal("87.3"), 256, "arm64")

    # THEN the answer is money: a Decimal with two decimal places
    assert isinstance(got, Decimal) and got.as_tuple().exponent == -2, (
        f"{call} returned {got!r}; expected Decimal('{expected}'). Money is a Decimal rounded to the cent: "
        "total.quantize(Decimal(\"0.01\"), rounding=ROUND_HALF_UP). A float such as 0.1 + 0.2 is not 0.3, "
        "and an unrounded Decimal is not an amount anyone can pay."
    )
    assert got == expected, f"{call} returned ${got}; expected ${expected}."


# --- task 2 ----------------------------------------------------------------------------------------

# A second function's figures (not shipped): a choice that only fits the shipped table fails here.
OTHER_FUNCTION = [
    Row(128, Decimal("2400"), Decimal("3900")),
    Row(512, Decimal("520"), Decimal("880")),
    Row(1024, Decimal("300"), Decimal("520")),
    Row(1536, Decimal("180"), Decimal("300")),
    Row(2048, Decimal("140"), Decimal("230")),
    Row(4096, Decimal("120"), Decimal("190")),
]


# 512 MB for 200 ms and 1,024 MB for 100 ms are the same GB-seconds, the same month: the smaller wins the tie.
TIED = [
    Row(1024, Decimal("100"), Decimal("150")),
    Row(512, Decimal("200"), Decimal("190")),
    Row(256, Decimal("700"), Decimal("900")),
]

# Priced at its average, 512 MB is cheaper (50,000 GB-seconds against 60,000); at its p95, 1,024 MB would be.
SPIKY = [
    Row(128, Decimal("900"), Decimal("1500")),
    Row(512, Decimal("100"), Decimal("190")),
    Row(1024, Decimal("60"), Decimal("80")),
]
# At 1,000,000 invocations: $1.03 each on arm64 (a tie: 512 MB), $1.24 and $1.23 on x86_64 (1,024 MB).
CENT_APART = [
    Row(256, Decimal("400"), Decimal("700")),
    Row(512, Decimal("125"), Decimal("180")),
    Row(1024, Decimal("62"), Decimal("90")),
]


def as_learner_measurements(cost_model: ModuleType, rows: list[Row]) -> list:
    measurement = cost_model.Measurement
    return [measurement(r.memory_mb, r.avg_ms, r.avg_ms, r.p95_ms) for r in rows]


def test_task2_chooses_the_cheapest_size_that_meets_the_target(cost_model, lab_dir):
    # GIVEN the shipped measurements, a second function's, and several latency targets
    shipped = read_rows(paths.SOLUTIONS / LAB / MEASUREMENTS)
    cases = [
        ("measurements.csv", shipped, target, invocations, architecture)
        for target in (API_P95_TARGET_MS, 120, 300, 2000)
        for invocations, architecture in ((API_MONTHLY_INVOCATIONS, "arm64"), (500_000, "x86_64"))
    ] + [("another function", OTHER_FUNCTION, target, 1_000_000, "arm64") for target in (1000, 300, 250, 200)] + [
        ("two sizes that cost the same, the larger listed first", TIED, 200, 1_000_000, "arm64"),
        ("a size fast on average, slow at the 95th percentile", SPIKY, 200, 1_000_000, "arm64"),
    ] + [("two sizes a cent apart on x86_64 only", CENT_APART, 200, 1_000_000, arch) for arch in ("arm64", "x86_64")]
    problems = []
    for data, rows, target, invocations, architecture in cases:
        call = f"cheapest_memory(<{data}>, {target}, {invocations:_}, {architecture!r})"
        # WHEN the learner's code chooses
        with learner_code(call, "Look at cheapest_memory in cost_model.py."):
            with learner_code("cost_model.Measurement(memory_mb, avg_ms, p50_ms, p95_ms)"):
                measurements = (
                    cost_model.read_measurements(lab_dir / MEASUREMENTS)
                    if data == "measurements.csv"
                    else as_learner_measurements(cost_model, rows)
                )
            got = cost_model.cheapest_memory(measurements, target, invocations, architecture)
        # THEN it is the size the grader works out from the same figures
        expected = reference_choice(rows, target, invocations, architecture)
        if got != expected:
            costs = ", ".join(
                f"{r.memory_mb} MB ${reference_cost(invocations, r.avg_ms, r.memory_mb, architecture)}"
                f"{'' if r.p95_ms <= target else ' (too slow)'}"
                for r in rows
            )
            problems.append(f"{call} returned {got!r}; expected {expected}.\n      {costs}")
    assert not problems, (
        f"cheapest_memory chose the wrong size in {len(problems)} of {len(cases)} cases, among them:\n"
        + "\n".join(f"  - {p}" for p in problems[:3])
        + "\nKeep the sizes whose p95_ms is at most the target; among them, the one whose month costs "
        "least (monthly_cost with the size's avg_ms), the smaller size on a tie. More memory is not always "
        "dearer: it buys CPU, and a shorter duration."
    )


def test_task2_sets_the_api_memory_to_the_cheapest_size_that_meets_200_ms(lab_dir, deployed):
    # GIVEN the measurements of the items API, unchanged
    reference = paths.SOLUTIONS / LAB / MEASUREMENTS
    assert (lab_dir / MEASUREMENTS).read_bytes() == reference.read_bytes(), (
        f"{LAB}/{MEASUREMENTS} differs from the one the lab ships. The figures are the evidence for your "
        f"decision: restore them (git checkout labs/{LAB}/{MEASUREMENTS})."
    )
    rows = read_rows(reference)
    expected = reference_choice(rows, API_P95_TARGET_MS, API_MONTHLY_INVOCATIONS, "arm64")
    _, _, all_functions = deployed
    api = the_function(all_functions, *ITEMS_API, lab_dir / "template.yaml")

    # THEN the template gives the items API that memory size
    _, cfn, _ = deployed
    try:  # as deployed with the template's default parameters (a Ref to a parameter, a "1024" string...)
        memory = templates.as_int(resolve(api.cfn.get("MemorySize", 128), cfn, parameter_values(cfn)), None)
    except (Unresolved, ValueError, TypeError):
        memory = api.cfn.get("MemorySize")
    assert memory == expected, (
        f"{api.name} has MemorySize {memory}. At {API_MONTHLY_INVOCATIONS:,} requests a month on arm64, "
        f"with a p95 of at most {API_P95_TARGET_MS} ms, measurements.csv says: "
        + ", ".join(
            f"{r.memory_mb} MB ${reference_cost(API_MONTHLY_INVOCATIONS, r.avg_ms, r.memory_mb, 'arm64')}"
            f"{'' if r.p95_ms <= API_P95_TARGET_MS else ' (too slow)'}"
            for r in rows
        )
        + ". Set the cheapest size that is fast enough (your cheapest_memory tells you which) as the "
        "function's MemorySize in template.yaml."
    )


# --- task 3 ----------------------------------------------------------------------------------------


def test_task3_every_function_runs_on_arm64(lab_dir, deployed):
    # GIVEN every function of the template, as AWS deploys it (Globals applied)
    _, _, all_functions = deployed

    # THEN each runs on Graviton
    on_x86 = [f"{f.name} ({(f.cfn.get('Architectures') or ['x86_64 (the default)'])[0]})"
              for f in all_functions if f.cfn.get("Architectures") != ["arm64"]]
    assert all_functions and not on_x86, (
        f"These functions do not run on arm64: {', '.join(on_x86) or 'there are no functions'}. "
        "Graviton costs 20% less per GB-second ($0.0000133334 instead of $0.0000166667) and our pure-Python "
        "code runs on it unchanged: Architectures: [arm64] in Globals.Function."
    )


def test_task3_every_layer_is_built_for_arm64(lab_dir, deployed):
    # GIVEN the layers of every function
    _, _, all_functions = deployed
    wrong = []
    for function in all_functions:
        architecture = (function.cfn.get("Architectures") or ["x86_64"])[0]
        for layer in function.cfn.get("Layers", []):
            match = POWERTOOLS_LAYER.match(str(layer.get("Fn::Sub") if isinstance(layer, dict) else layer))
            if match and match["arch"] != architecture:
                wrong.append(f"{function.name} runs on {architecture} with a layer built for {match['arch']}")

    # THEN a function on arm64 loads arm64 layers (and the functions run on arm64: see the other check)
    architectures = {(f.cfn.get("Architectures") or ["x86_64"])[0] for f in all_functions}
    assert not wrong and architectures == {"arm64"}, (
        ("; ".join(wrong) + ". " if wrong else f"The functions run on {sorted(architectures)}. ")
        + "Layers hold code for one architecture: on arm64, use the Powertools layer whose name ends in "
        "-python313-arm64."
    )


# --- task 4 ----------------------------------------------------------------------------------------


def test_task4_every_package_holds_our_code_only_within_the_budget(lab_dir, deployed):
    # GIVEN every function's CodeUri folder, zipped as sam build and sam package would
    _, _, all_functions = deployed
    problems = []
    for function in all_functions:
        size, names = package(function.code_folder)
        others = [name for name in names if not OUR_CODE.search(name)]
        # THEN it holds Python code and requirements.txt only, and stays within the budget
        if others:
            problems.append(
                f"{function.name}'s package ({paths.relative(function.code_folder)}/) holds "
                f"{len(others)} file(s) that are not code: {', '.join(others[:6])}"
            )
        if size > PACKAGE_BUDGET:
            problems.append(f"{function.name}'s package zips to {size:,} bytes; the budget is {PACKAGE_BUDGET:,}")
        if function.handler_file.parent != function.code_folder:
            problems.append(
                f"{function.name}'s CodeUri is {function.sam.get('CodeUri')}: the whole lab, not the "
                "function's folder (its Handler has to reach into a subfolder)"
            )
    assert all_functions and not problems, (
        "A deployment package is everything in the function's CodeUri folder:\n"
        + "\n".join(f"  - {p}" for p in problems)
        + "\nPoint each CodeUri at the function's own folder (../<lab>/<function>/, Handler: "
        "app.lambda_handler): events, notebooks, templates and seed data belong to the lab, not to the "
        "package Lambda downloads and unzips on every cold start."
    )


def test_task4_no_package_bundles_boto3_or_powertools(lab_dir, deployed):
    # GIVEN every function's requirements.txt, which sam build installs into the package
    _, _, all_functions = deployed
    bundled = []
    for function in all_functions:
        requirements = function.code_folder / "requirements.txt"
        text = requirements.read_text(encoding="utf-8") if requirements.is_file() else ""
        bundled += [f"{paths.relative(requirements)}: {m.group(1)}" for m in BUNDLED.finditer(text)]

    # THEN none of them lists what the runtime or the Powertools layer already provides
    assert not bundled, (
        f"These requirements bundle what Lambda already provides: {', '.join(bundled)}. boto3 comes with "
        "the runtime, Powertools (with pydantic) with its public layer; bundled, each adds megabytes to "
        "every package and to every cold start."
    )


def test_task4_powertools_comes_from_its_public_layer(lab_dir, deployed):
    # GIVEN every function as AWS deploys it
    _, _, all_functions = deployed
    missing = []
    for function in all_functions:
        layers = [
            str(layer.get("Fn::Sub") if isinstance(layer, dict) else layer) for layer in function.cfn.get("Layers", [])
        ]
        matches = [m for m in map(POWERTOOLS_LAYER.match, layers) if m]
        runtime = str(function.cfn.get("Runtime", "")).replace(".", "")
        if not matches:
            missing.append(f"{function.name} has no Powertools layer (its layers: {layers or 'none'})")
        elif matches[0]["python"] != runtime:
            runs = function.cfn.get("Runtime")
            missing.append(f"{function.name} runs {runs} with a layer for {matches[0]['python']}")

    # THEN each loads Powertools from the public layer built for its runtime
    assert all_functions and not missing, (
        "Our functions import aws_lambda_powertools, which neither the runtime nor the package provides:\n"
        + "\n".join(f"  - {m}" for m in missing)
        + "\nAdd the public layer in Globals.Function.Layers: !Sub "
        "arn:aws:lambda:${AWS::Region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"
    )


# --- task 5 ----------------------------------------------------------------------------------------


def provisioned(cfn: dict, function_name: str, parameters: dict[str, str]) -> int:
    """Environments kept warm for the function with these parameter values (0 when none)."""
    total = 0
    for alias in aliases_of(cfn, function_name):
        config = resolve(alias.get("ProvisionedConcurrencyConfig"), cfn, parameters)
        if isinstance(config, dict):
            total += int(config.get("ProvisionedConcurrentExecutions", 0))
    return total


def test_task5_the_api_keeps_environments_warm_through_an_alias_when_switched_on(lab_dir, deployed):
    # GIVEN the items API as AWS deploys it
    _, cfn, all_functions = deployed
    api = the_function(all_functions, *ITEMS_API, lab_dir / "template.yaml")
    aliases = aliases_of(cfn, api.name)
    assert aliases, (
        f"{api.name} has no alias. Provisioned concurrency applies to a published version, through an "
        "alias: AutoPublishAlias: live publishes one on every deployment."
    )

    # WHEN the stack is deployed with ApiProvisionedConcurrency=1
    parameters = parameter_values(cfn, {"ApiProvisionedConcurrency": "1"})
    try:
        warm = provisioned(cfn, api.name, parameters)
    except (Unresolved, ValueError, TypeError) as error:
        warm, problem = 0, f" (the grader could not work out {error})"
    else:
        problem = ""

    # THEN its alias keeps one environment warm
    assert "ApiProvisionedConcurrency" in (cfn.get("Parameters") or {}) and warm == 1, (
        f"Deployed with ApiProvisionedConcurrency=1, {api.name} keeps {warm} environment(s) warm{problem}. "
        "Add a Number parameter ApiProvisionedConcurrency and use it in the function's "
        "ProvisionedConcurrencyConfig: {ProvisionedConcurrentExecutions: !Ref ApiProvisionedConcurrency}."
    )


def test_task5_nothing_is_kept_warm_by_default(lab_dir, deployed):
    # GIVEN every function, deployed with the template's default parameters
    _, cfn, all_functions = deployed
    parameters = parameter_values(cfn)
    try:
        warm = {f.name: provisioned(cfn, f.name, parameters) for f in all_functions}
    except (Unresolved, ValueError, TypeError) as error:
        pytest.fail(f"The grader could not work out the provisioned concurrency of the default deployment: {error}. "
                    "Use !If on a condition over ApiProvisionedConcurrency, with !Ref AWS::NoValue when it is 0.")
    billed = {name: count for name, count in warm.items() if count}
    switch = (cfn.get("Parameters") or {}).get("ApiProvisionedConcurrency")
    default = "no ApiProvisionedConcurrency parameter" if switch is None else (
        f"ApiProvisionedConcurrency with Default {switch.get('Default', 'none')}"
    )

    # THEN no environment bills while idle until someone switches the API's environments on
    assert not billed and switch is not None and str(switch.get("Default")) == "0", (
        (f"Deployed as it is, the stack keeps {billed} environment(s) warm, billed every hour whether or not a "
         "request comes. " if billed else f"The template has {default}: the API's switch must be off by default. ")
        + "Make the default ApiProvisionedConcurrency 0, and leave ProvisionedConcurrencyConfig "
        "out when it is 0: !If [WarmApi, {ProvisionedConcurrentExecutions: !Ref ApiProvisionedConcurrency}, "
        "!Ref AWS::NoValue], with the condition WarmApi: !Not [!Equals [!Ref ApiProvisionedConcurrency, 0]]."
    )


def test_task5_no_provisioned_concurrency_where_nobody_waits(lab_dir, deployed):
    # GIVEN the queue worker and the hourly report
    _, cfn, all_functions = deployed
    template = lab_dir / "template.yaml"
    offenders = []
    for (lab, folder), role in NOBODY_WAITS.items():
        function = the_function(all_functions, lab, folder, template)
        configured = [a for a in aliases_of(cfn, function.name) if a.get("ProvisionedConcurrencyConfig")]
        if configured or function.sam.get("ProvisionedConcurrencyConfig"):
            offenders.append(f"{function.name} ({role})")

    # THEN neither pays for warm environments
    assert not offenders, (
        f"{' and '.join(offenders)} {'has' if len(offenders) == 1 else 'have'} provisioned concurrency "
        "(ProvisionedConcurrencyConfig). Nobody waits on a queue poller or an hourly job: a "
        "cold start of a few hundred ms costs them nothing, while each warm environment bills every hour. "
        "Remove ProvisionedConcurrencyConfig (and AutoPublishAlias) from them."
    )


def test_task5_reserved_concurrency_caps_the_queue_worker(lab_dir, deployed):
    # GIVEN the queue worker and its SQS event source
    _, cfn, all_functions = deployed
    worker = the_function(all_functions, *ORDER_WORKER, lab_dir / "template.yaml")
    written = worker.cfn.get("ReservedConcurrentExecutions")
    try:  # as deployed with the template's default parameters (the cap may sit in a !If)
        reserved = resolve(written, cfn, parameter_values(cfn))
    except (Unresolved, ValueError, TypeError):
        reserved = written
    if reserved is NO_VALUE:
        reserved = None

    # THEN its concurrency is capped, so a burst of orders cannot flood the table ...
    assert isinstance(reserved, int) and 2 <= reserved <= 100, (
        f"{worker.name} has ReservedConcurrentExecutions {reserved!r}. A burst of messages scales a queue "
        "worker out to hundreds of concurrent writers; cap it (ReservedConcurrentExecutions: 10, say), so the "
        "table downstream sees at most that many."
    )
    # ... and the queue's pollers stay below the cap, so SQS is not throttled into the dead-letter queue
    aliases = {name for name, alias in templates.resources_of_type(cfn, "AWS::Lambda::Alias")
               if alias.get("FunctionName") == {"Ref": worker.name}}
    for name, mapping in templates.resources_of_type(cfn, "AWS::Lambda::EventSourceMapping"):
        # the function itself, or its alias (SAM polls for the alias when the function has AutoPublishAlias)
        if not templates.references(mapping.get("FunctionName")) & ({worker.name} | aliases):
            continue
        maximum = (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")
        assert maximum is None or (isinstance(maximum, int) and maximum <= reserved), (
            f"{name} polls with MaximumConcurrency {maximum}, above {worker.name}'s reserved {reserved}: the extra "
            "batches are throttled, come back, and reach the dead-letter queue after maxReceiveCount. Keep "
            "MaximumConcurrency at or below the reserved concurrency."
        )
