"""The local runtime (workshop/local/): each event source with the semantics AWS documents, read from the
lab's template, and the execution environment's cold and warm starts. Against the reference solutions,
in this process through the Python API, and through the CLI in fresh processes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from workshop import manifest, paths, starters
from workshop.local import LocalError, LocalLab

from test_cli import workshop  # tests/meta is on sys.path (pytest's default prepend import mode)
from test_invoke import LABS, REQUEST_ID

pytestmark = pytest.mark.timeout(120)

ORDER = {"order_id": "ord-1", "customer": "cust-1", "items": [{"sku": "MUG", "quantity": 2, "unit_price": 19.99}]}


def copy_of(lab_key: str, tmp_path: Path, edit: dict[str, tuple[str, str]]) -> Path:
    """A labs/ tree holding one reference solution, its files edited ({file: (old, new)})."""
    labs = tmp_path / "labs"
    lab = manifest.find(lab_key)
    starters.write_files(labs / lab.id, starters.files_in(lab.folder("solutions")))
    for file, (old, new) in edit.items():
        path = labs / lab.id / file
        assert old in path.read_text(), f"{file} no longer holds {old!r}"
        path.write_text(path.read_text().replace(old, new))
    return labs


# --- the execution environment -------------------------------------------------------------------


def test_the_first_invocation_is_a_cold_start_and_the_next_ones_reuse_the_environment():
    with LocalLab("1", target="solutions") as lab:
        created = lab.invoke("items_api", "api_create_item")
        listed = lab.invoke("ItemsApiFunction", "api_list_items")
    assert created.cold and "Init Duration" in created.report, created.report
    assert not listed.cold and "Init Duration" not in listed.report, listed.report
    item = json.loads(created.response["body"])
    assert json.loads(listed.response["body"])["items"] == [item], "state lives as long as the lab is open"


def test_a_lab_its_functions_and_moto_read_botocores_data_through_one_session():
    """botocore's endpoints (0.1 s to read) and each service's model are read once a process: moto's import,
    the lab's clients and its functions' clients share the graders' session, and closing the lab gives
    boto3 back the default session it had."""
    import boto3

    from workshop.grading import warmup

    before = boto3.DEFAULT_SESSION
    with LocalLab("1", target="solutions") as lab:
        assert boto3.DEFAULT_SESSION is warmup.shared_session(), "the lab's clients make a session of their own"
        assert lab.invoke("items_api", "api_list_items").ok
        assert boto3.DEFAULT_SESSION is warmup.shared_session()
    assert boto3.DEFAULT_SESSION is before


def test_the_function_sees_the_stacks_physical_names_and_its_logs_are_its_own(capsys):
    with LocalLab("3", target="solutions") as lab:
        invocation = lab.invoke("order_worker", "sqs_orders_valid")
        physical = lab.physical("OrderWorkerFunction")
    assert invocation.ok, invocation.result_text()
    assert any(f'"function_name":"{physical}"' in line for line in invocation.log_lines), invocation.log_lines[:2]
    assert physical not in capsys.readouterr().out, "the function's log lines went to the console, not its log"


def test_a_run_past_its_timeout_is_reported_and_the_next_invocation_starts_a_new_environment(tmp_path, monkeypatch):
    slow = copy_of("1", tmp_path, {
        "template.yaml": ("    Timeout: 10\n", "    Timeout: 1\n"),
        "items_api/app.py": ("def list_items():\n", "def list_items():\n    __import__('time').sleep(5)\n"),
    })
    monkeypatch.setitem(paths.TARGETS, "labs", slow)
    with LocalLab("1") as lab:
        timed_out = lab.invoke("items_api", "api_list_items")
        after = lab.invoke("items_api", "api_get_item_missing")
    assert timed_out.error["errorType"] == "Sandbox.Timedout", timed_out.error
    assert re.search(rf"{REQUEST_ID} Task timed out after 1\.00 seconds", timed_out.log_text())
    assert after.cold and after.response["statusCode"] == 404, after.result_text()


def test_bad_input_names_what_exists():
    with pytest.raises(LocalError, match="lab 1 has no function 'nope'; its functions: items_api"):
        LocalLab("1", target="solutions").function_id("nope")
    with pytest.raises(LocalError, match="no functions of its own"):
        LocalLab("6", target="solutions")


# --- S3 ---------------------------------------------------------------------------------------


def test_s3_invokes_the_function_for_keys_its_filter_matches_only_with_the_key_url_encoded():
    with LocalLab("2", target="solutions") as lab:
        [delivery] = lab.put_object("uploads/Q3 sales(final)+café.csv", "sku,quantity,unit_price\nMUG,2,19.99\n")
        outside_prefix = lab.put_object("elsewhere/orders.csv", "sku,quantity,unit_price\n")
        wrong_suffix = lab.put_object("uploads/orders.txt", "sku,quantity,unit_price\n")
        results = lab.objects("ResultsBucket")
    assert delivery.outcome == "succeeded", delivery.attempts[-1].result_text()
    record = delivery.attempts[0].event["Records"][0]
    assert record["eventSource"] == "aws:s3" and record["eventName"] == "ObjectCreated:Put"
    # As S3 encodes it: a form value, spaces as +, slashes kept (AWS's documented "red+flower.jpg").
    assert record["s3"]["object"]["key"] == "uploads/Q3+sales%28final%29%2Bcaf%C3%A9.csv"
    assert outside_prefix == [] and wrong_suffix == []
    assert list(results) == ["results/uploads/Q3 sales(final)+café.csv.json"]


# --- SQS --------------------------------------------------------------------------------------


def test_sqs_delivers_in_batches_of_the_templates_batch_size(tmp_path, monkeypatch):
    with LocalLab("3", target="solutions") as lab:
        delivery = lab.send_messages([{**ORDER, "order_id": f"ord-{n}"} for n in range(25)])
    assert [len(batch.message_ids) for batch in delivery.batches] == [10, 10, 5]
    assert delivery.stopped == "the queue is empty" and delivery.dead_letters == []

    monkeypatch.setitem(paths.TARGETS, "labs", copy_of("3", tmp_path, {"template.yaml": ("BatchSize: 10", "BatchSize: 4")}))
    with LocalLab("3") as lab:
        delivery = lab.send_messages([{**ORDER, "order_id": f"ord-{n}"} for n in range(9)])
    assert [len(batch.message_ids) for batch in delivery.batches] == [4, 4, 1]


def test_only_the_reported_failures_return_and_a_poison_message_moves_to_the_dlq_after_max_receive_count():
    poison = json.dumps({**ORDER, "items": [{"sku": "MUG", "quantity": -2, "unit_price": 19.99}]})
    with LocalLab("3", target="solutions") as lab:
        settings = lab.queue_settings()
        delivery = lab.send_messages([ORDER, {**ORDER, "order_id": "ord-2"}, poison])
        processed = lab.items("OrdersTable")
    first, *retries = delivery.batches
    assert len(first.message_ids) == 3 and len(first.failed) == 1, first
    [poison_id] = first.failed
    assert all(batch.message_ids == [poison_id] for batch in retries), "only the failed message came back"
    assert settings.max_receive_count == 3 and len(delivery.batches) == 3, "received maxReceiveCount times"
    [dead] = delivery.dead_letters
    assert dead["MessageId"] == poison_id and dead["Body"] == poison
    assert sorted(item["order_id"] for item in processed) == ["ord-1", "ord-2"]


# --- SNS --------------------------------------------------------------------------------------


def test_sns_delivers_to_each_subscriber_whose_filter_policy_matches():
    order = {"order_id": "ord-9", "customer": "cust-9", "items": [{"sku": "LAMP", "quantity": 1, "unit_price": 900.0}], "total": 900.0}
    with LocalLab("5", target="solutions") as lab:
        large = lab.publish(order, {"size": "large"})
        small = lab.publish({**order, "order_id": "ord-10"}, {"size": "small"})
    assert sorted(d.function for d in large) == ["AnalyticsCounterFunction", "AuditWriterFunction", "NotifierFunction"]
    assert sorted(d.function for d in small) == ["AnalyticsCounterFunction", "AuditWriterFunction"], "size = large only"
    assert all(d.outcome == "succeeded" for d in large + small), [d.attempts[-1].result_text() for d in large + small]


def test_a_failing_subscriber_is_retried_then_sent_to_its_destination_without_touching_the_others():
    broken = {"order_id": "ord-11", "customer": "cust-1", "items": []}  # no total: only the counter reads it
    with LocalLab("5", target="solutions") as lab:
        deliveries = {d.function: d for d in lab.publish(broken, {"size": "small"})}
        failed = lab.client("sqs").receive_message(QueueUrl=lab.physical("FailedInvocationsQueue"), MaxNumberOfMessages=10)
    counter = deliveries.pop("AnalyticsCounterFunction")
    assert counter.outcome == "FailedInvocationsQueue" and len(counter.attempts) == 3, "2 retries (MaximumRetryAttempts)"
    assert [d.outcome for d in deliveries.values()] == ["succeeded"], deliveries
    [record] = [json.loads(m["Body"]) for m in failed["Messages"]]
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert json.loads(record["requestPayload"]["Records"][0]["Sns"]["Message"]) == broken


# --- schedules --------------------------------------------------------------------------------


def test_tick_fires_the_schedule_at_each_moment_in_the_window_with_eventbridges_event():
    with LocalLab("4", target="solutions") as lab:
        deliveries = lab.tick("2026-11-27T14:00:00Z", since="2026-11-27T12:30:00Z")
        reports = lab.objects("ReportsBucket")
        assert lab.tick("2026-11-27T14:59:00Z") == [], "rate(1 hour) fires on the hour"
        with pytest.raises(LocalError, match="tick to a later time"):
            lab.tick("2026-11-27T13:00:00Z")
    events = [d.attempts[0].event for d in deliveries]
    assert [e["time"] for e in events] == ["2026-11-27T13:00:00Z", "2026-11-27T14:00:00Z"]
    assert all(e["detail-type"] == "Scheduled Event" and e["source"] == "aws.events" for e in events)
    assert sorted(reports) == ["reports/2026/11/27/12.json", "reports/2026/11/27/13.json"]
    assert json.loads(reports["reports/2026/11/27/13.json"])["orders"] == 12, "seed/orders.json was loaded"


def test_a_time_without_a_zone_is_refused():
    with LocalLab("4", target="solutions") as lab, pytest.raises(LocalError, match="has no time zone: add Z"):
        lab.tick("2026-11-27T14:00:00")


# --- the CLI ----------------------------------------------------------------------------------


def test_send_shows_each_batch_and_the_dead_letter_queue():
    run = workshop(LABS, "send", "3", "--event", "sqs_orders_mixed", "--target", "solutions")
    assert run.returncode == 1, run.stderr[-2000:]  # messages failed: not a clean run
    assert run.stdout.count("--- batch ") == 3 and "3 of 5 failed and went back to the queue" in run.stdout
    assert "3 message(s) on the dead-letter queue, each received 3 time(s) (maxReceiveCount)" in run.stdout


def test_upload_publish_and_tick_run_their_functions(tmp_path):
    csv = tmp_path / "orders.csv"
    csv.write_text("sku,quantity,unit_price\nMUG,2,19.99\n")
    uploaded = workshop(LABS, "upload", "2", str(csv), "--target", "solutions")
    assert uploaded.returncode == 0 and "CsvSummaryFunction: succeeded." in uploaded.stdout, uploaded.stdout[-2000:]
    assert "as uploads/orders.csv" in uploaded.stderr, "the key defaults to the filter's prefix"
    published = workshop(LABS, "publish", "5", "--event", "sns_order_large", "--target", "solutions")
    assert published.returncode == 0 and published.stdout.count(": succeeded.") == 3, published.stdout[-2000:]
    ticked = workshop(LABS, "tick", "4", "2026-11-27T14:30:00Z", "--target", "solutions")
    assert ticked.returncode == 0 and "the next run is at 2026-11-27T15:00:00Z" in ticked.stdout, ticked.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["upload", "2", "no-such-file.csv"], "there is no file no-such-file.csv"),
        (["send", "1"], "lab 1 has no function that polls a queue"),
        (["publish", "3"], "lab 3 has no topic to publish to"),
        (["publish", "5", "--message", "{}", "--attribute", "size"], "--attribute takes NAME=VALUE"),
        (["tick", "4", "tomorrow"], "'tomorrow' is not a time"),
        (["tick", "1", "2026-11-27T14:00:00Z"], "lab 1 has no scheduled function"),
        (["invoke", "1", "items_api", "--repeat", "0"], "--repeat takes a number of invocations"),
    ],
)
def test_bad_input_to_the_verbs_is_explained_with_exit_code_2(arguments, message):
    run = workshop(LABS, *arguments, "--target", "solutions")
    assert run.returncode == 2 and message in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
