"""`workshop invoke`, run for real in fresh processes: each lab's stack in moto, a cold start, a REPORT line.

Like tests/meta/test_cli.py, tests that change a lab do it in a temporary copy that WORKSHOP_LABS
points the command at, so the repository's labs/ is never touched.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from workshop import paths

from test_cli import workshop  # tests/meta is on sys.path (pytest's default prepend import mode)
from test_start_api import lab1_copy

# Each run creates a stack in moto (about 1.5 s in a fresh process): more than the 6 s default allows
# for the tests that run several.
pytestmark = pytest.mark.timeout(120)

LABS = paths.ROOT / "labs"
REQUEST_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
REPORT = re.compile(
    rf"^REPORT RequestId: {REQUEST_ID}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
    r"Memory Size: (?P<memory>\d+) MB\tMax Memory Used: \d+ MB\tInit Duration: \d+\.\d\d ms$",
    re.M,
)


def response(stdout: str) -> object:
    assert "\nResponse:\n" in stdout, stdout[-2000:]
    return json.loads(stdout.split("\nResponse:\n", 1)[1])


def error(stdout: str) -> dict:
    assert "\nError (the function failed):\n" in stdout, stdout[-2000:]
    return json.loads(stdout.split("\nError (the function failed):\n", 1)[1])


@pytest.mark.parametrize(
    ("lab", "function", "event"),
    [
        ("1", "items_api", "api_list_items"),
        ("3", "order_worker", "sqs_orders_valid"),
        ("4", "hourly_report", "eventbridge_hourly"),
        ("5", "audit_writer", "sns_order_large"),
        ("5", "NotifierFunction", None),  # a logical id works too; the event is the first that fits
    ],
)
def test_a_reference_function_runs_against_its_stack_in_moto(lab, function, event):
    run = workshop(LABS, "invoke", lab, function, *(["--event", event] if event else []), "--target", "solutions")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = REPORT.search(run.stdout)
    assert report and report["memory"] == "256", f"no complete REPORT line:\n{run.stdout[-2000:]}"
    assert "START RequestId: " in run.stdout and "END RequestId: " in run.stdout
    assert response(run.stdout) is None or isinstance(response(run.stdout), dict)


def test_the_environment_names_the_stacks_physical_resources():
    run = workshop(LABS, "invoke", "1", "items_api", "--event", "api_list_items", "--target", "solutions")
    # The grader's starter error shows what a wrong TABLE_NAME does: here the scan finds moto's table.
    assert response(run.stdout)["statusCode"] == 200, run.stdout[-2000:]
    logged = workshop(LABS, "invoke", "3", "order_worker", "--event", "sqs_orders_valid", "--target", "solutions")
    # Powertools logs the context's function name: the physical name moto gave the function.
    assert '"function_name":"workshop-local-OrderWorkerFunction-' in logged.stdout, logged.stdout[-2000:]


def test_lab_2_gets_its_signing_key_from_the_local_setup_but_an_event_file_names_objects_never_uploaded():
    # labs.toml's [lab.local] creates the SecureString; `workshop upload` puts the objects (tests/meta/test_local.py).
    run = workshop(LABS, "invoke", "2", "csv_summary", "--target", "solutions")
    assert run.returncode == 1 and REPORT.search(run.stdout), run.stdout[-2000:]
    assert error(run.stdout)["errorType"] == "NoSuchBucket", run.stdout[-2000:]


def test_repeat_shows_a_cold_start_then_warm_invocations():
    run = workshop(LABS, "invoke", "1", "items_api", "--event", "api_list_items", "--repeat", "3", "--target", "solutions")
    assert run.returncode == 0, run.stdout[-2000:]
    reports = [line for line in run.stdout.splitlines() if line.startswith("REPORT ")]
    assert len(reports) == 3 and len(REPORT.findall(run.stdout)) == 1, reports
    assert all("Init Duration" not in line for line in reports[1:]), reports


def test_the_starter_fails_as_lambda_shows_an_unhandled_error():
    run = workshop(LABS, "invoke", "1", "items_api", "--event", "api_list_items")
    assert run.returncode == 1 and REPORT.search(run.stdout), run.stdout[-2000:]
    document = error(run.stdout)
    assert set(document) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert document["errorType"] == "ResourceNotFoundException", document
    assert document["stackTrace"] and all("labs/lab01_api_gateway/items_api/app.py" in f for f in document["stackTrace"])
    assert "[ERROR] ResourceNotFoundException: " in run.stdout, "the log shows the error too"


@pytest.fixture
def slow_lab(tmp_path: Path) -> Path:
    """Lab 1's reference, with a Timeout of 1 second and a list route that sleeps for 30."""
    return lab1_copy(tmp_path, "def list_items():\n", "def list_items():\n    __import__('time').sleep(30)\n")


def test_a_run_past_its_timeout_is_stopped_and_reported(slow_lab):
    run = workshop(slow_lab, "invoke", "1", "items_api", "--event", "api_list_items", timeout=60)
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert re.search(rf"{REQUEST_ID} Task timed out after 1\.00 seconds", run.stdout), run.stdout[-2000:]
    assert error(run.stdout)["errorType"] == "Sandbox.Timedout"
    assert REPORT.search(run.stdout)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["9", "items_api"], "no single lab matches '9'"),
        (["1", "nope"], "lab 1 has no function 'nope'; its functions: items_api (ItemsApiFunction)"),
        (["1", "items_api", "--event", "nope"], "there is no event labs/lab01_api_gateway/events/nope.json (events here: api_create_item,"),
        (["6", "items_api"], "lab 6 has no functions of its own"),
    ],
)
def test_bad_input_is_explained_with_exit_code_2(arguments, message):
    run = workshop(LABS, "invoke", *arguments)
    assert run.returncode == 2 and message in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr


def test_an_event_file_that_is_not_json_is_refused(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    run = workshop(LABS, "invoke", "1", "items_api", "--event", str(broken))
    assert run.returncode == 2 and "broken.json is not valid JSON" in run.stderr, run.stderr[-2000:]


# --- the output the docs show is real --------------------------------------------------------------

SHOWN = {"docs/snippets/invoke-example.txt": ["invoke", "1", "items_api", "--event", "api_list_items", "--target", "solutions"]}


def normalised(text: str) -> str:
    text = re.sub(REQUEST_ID, "<request-id>", text)
    return re.sub(r"(Duration|Memory Used): \d+(\.\d+)? (ms|MB)", r"\1: <n> \3", text)


@pytest.mark.parametrize("snippet", SHOWN, ids=list(SHOWN))
def test_the_invoke_output_shown_in_the_docs_is_what_the_command_prints(snippet):
    arguments = SHOWN[snippet]
    run = workshop(LABS, *arguments)
    shown = (paths.ROOT / snippet).read_text(encoding="utf-8")
    assert normalised(run.stdout) == normalised(shown), (
        f"{snippet} is stale: regenerate it with `.venv/bin/workshop {' '.join(arguments)} > {snippet}`"
    )


def test_the_event_verbs_print_what_the_functions_wrote(tmp_path):
    """Not only "succeeded": the object, rows and items each function wrote, store by store."""
    csv = tmp_path / "x.csv"
    csv.write_text("sku,quantity,unit_price\nA,1,2.50\n", encoding="utf-8")
    upload = workshop(LABS, "upload", "2", str(csv), "--target", "solutions")
    written = upload.stdout.split("What the functions wrote:\n", 1)[1]
    assert "ResultsBucket: 1 new or changed object(s)" in written and '"rows": 1' in written, upload.stdout[-2000:]
    send = workshop(LABS, "send", "3", "--target", "solutions")
    assert "OrdersTable: 1 new or changed item(s)" in send.stdout and '"order_id": "ord-3001"' in send.stdout, send.stdout[-2000:]
    tick = workshop(LABS, "tick", "4", "2026-11-27T14:00:00Z", "--target", "solutions")
    assert "reports/2026/11/27/13.json" in tick.stdout.split("What the functions wrote:", 1)[1], tick.stdout[-2000:]
