"""Bad input to the CLI gets a `workshop:` message that says what is wrong and exit code 2, never a
traceback, and nothing is left behind in silence. Each test runs the real CLI in a fresh process, on the
reference solutions (or a broken manifest that WORKSHOP_MANIFEST points to)."""

from __future__ import annotations

import json
import subprocess

import pytest

from workshop import paths

from test_cli import workshop  # tests/meta is on sys.path (pytest's default prepend import mode)

pytestmark = pytest.mark.timeout(180)

SOLUTIONS = paths.SOLUTIONS


def refused(run: subprocess.CompletedProcess, *words: str) -> None:
    """Exit 2, a one-line `workshop:` message holding `words`, and no traceback."""
    output = run.stdout + run.stderr
    assert run.returncode == 2, f"exit {run.returncode}:\n{output[-3000:]}"
    assert "Traceback" not in output, output[-3000:]
    for word in words:
        assert word in output, f"{word!r} not in:\n{output[-3000:]}"


def event_file(tmp_path, name: str, document: object) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def sqs_event(*bodies: str) -> dict:
    return {"Records": [{"messageId": str(n), "body": body, "eventSource": "aws:sqs"} for n, body in enumerate(bodies)]}


# --- the course manifest ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "is missing"),
        (b"", "lists no lab"),
        (b"\xff\xfe[[lab]]\n", "is not UTF-8 text"),
        (b"[[lab]\n", "is not valid TOML"),
    ],
    ids=["missing", "empty", "not-utf8", "not-toml"],
)
def test_a_broken_manifest_is_named_with_how_to_restore_it(tmp_path, content, words):
    manifest = tmp_path / "labs.toml"
    if content is not None:
        manifest.write_bytes(content)
    run = workshop(SOLUTIONS, "status", WORKSHOP_MANIFEST=str(manifest))
    refused(run, words, "git checkout -- labs/labs.toml")
    doctor = workshop(SOLUTIONS, "doctor", WORKSHOP_MANIFEST=str(manifest))
    assert doctor.returncode == 1 and "✘ Course:" in doctor.stdout and "Ready" not in doctor.stdout, doctor.stdout


# --- the event verbs --------------------------------------------------------------------------------


def test_send_refuses_a_body_sqs_refuses_and_sends_none_of_the_batch(tmp_path):
    too_big = event_file(tmp_path, "big", sqs_event('{"a": 1}', "x" * (1024 * 1024 + 1)))
    refused(workshop(SOLUTIONS, "send", "3", "--event", too_big, "--target", "solutions"), "message 2 is 1,048,577 bytes", "1 MiB")
    empty = event_file(tmp_path, "empty", sqs_event(""))
    refused(workshop(SOLUTIONS, "send", "3", "--event", empty, "--target", "solutions"), "the message is empty")
    surrogate = tmp_path / "surrogate.json"
    surrogate.write_text('{"Records": [{"body": "half a character: \\ud800"}]}', encoding="utf-8")
    refused(workshop(SOLUTIONS, "send", "3", "--event", str(surrogate), "--target", "solutions"), "is not valid UTF-8 text")


def test_send_to_a_lab_without_a_queue_names_the_labs_that_have_one():
    refused(workshop(SOLUTIONS, "send", "1", "--body", "{}", "--target", "solutions"), "lab 1 has no function that polls a queue", "lab 3 and 6 have one")


def test_send_says_what_it_left_on_the_queue_when_it_stops(tmp_path):
    """A queue without a dead-letter queue and messages that always fail: the local poller gives up after
    ten receives of each (where AWS would retry until they expire) and says what it left."""
    import shutil

    labs = tmp_path / "labs"
    shutil.copytree(SOLUTIONS / "lab03_sqs_processing", labs / "lab03_sqs_processing")
    template = labs / "lab03_sqs_processing/template.yaml"
    text = template.read_text(encoding="utf-8")
    redrive = "      RedrivePolicy:\n        deadLetterTargetArn: !GetAtt OrdersDeadLetterQueue.Arn\n        maxReceiveCount: 3\n"
    assert redrive in text, "the reference's RedrivePolicy changed: update this test"
    template.write_text(text.replace(redrive, ""), encoding="utf-8")
    run = workshop(labs, "send", "3", "--body", "not an order", "--body", "nor this")
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert "The local poller stopped (2 message(s) had been received 10 times and still failed)" in run.stdout, run.stdout[-2000:]
    assert "2 message(s) were still on the queue, not processed." in run.stdout


def test_publish_refuses_what_sns_refuses(tmp_path):
    refused(workshop(SOLUTIONS, "publish", "5", "--message", "{}", "--attribute", "size=", "--target", "solutions"),
            "attribute 'size' has an empty value")
    large = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "x" * (256 * 1024 + 1), "MessageAttributes": {}}}]}
    refused(workshop(SOLUTIONS, "publish", "5", "--event", event_file(tmp_path, "large", large), "--target", "solutions"),
            "SNS takes at most 262,144")


def test_upload_refuses_an_empty_key():
    refused(workshop(SOLUTIONS, "upload", "2", "README.md", "--key", "", "--target", "solutions"), "an S3 object key is 1 to 1024 bytes")


@pytest.mark.parametrize("port", ["-1", "70000", "http"])
def test_start_api_refuses_a_port_that_is_not_one(port):
    run = workshop(SOLUTIONS, "start-api", "1", "--port", port, "--target", "solutions", timeout=60)
    assert run.returncode == 2 and "argument --port" in run.stderr and "Traceback" not in run.stderr, run.stderr


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_tick_refuses_a_time_outside_the_clock_s_range(moment):
    refused(workshop(SOLUTIONS, "tick", "4", moment, "--target", "solutions"), f"{moment} is outside the clock's range")


# --- invoke: the payload as given, and what does not fit ---------------------------------------------


@pytest.mark.parametrize("payload", [None, "api_create_item"], ids=["null", "a-string"])
def test_invoke_sends_a_file_s_payload_as_it_is(tmp_path, payload):
    """A file holding null or a string is that payload: never the default event, nor the event it names."""
    run = workshop(SOLUTIONS, "invoke", "1", "items_api", "--event", event_file(tmp_path, "payload", payload), "--target", "solutions")
    assert run.returncode == 1 and "Error (the function failed):" in run.stdout, run.stdout[-2000:]
    assert '"statusCode": 201' not in run.stdout


def test_invoke_says_which_event_a_function_expects_and_which_it_got(tmp_path):
    v2 = {"version": "2.0", "rawPath": "/items", "requestContext": {"http": {"method": "GET", "path": "/items"}}}
    run = workshop(SOLUTIONS, "invoke", "1", "items_api", "--event", event_file(tmp_path, "v2", v2), "--target", "solutions")
    assert "API Gateway HTTP API event (payload format 2.0" in run.stderr and "REST API (payload format 1.0" in run.stderr, run.stderr
    stream = {"Records": [{"eventSource": "aws:dynamodb", "dynamodb": {"Keys": {"id": {"S": "1"}}}}]}
    run = workshop(SOLUTIONS, "invoke", "3", "order_worker", "--event", event_file(tmp_path, "ddb", stream), "--target", "solutions")
    assert "this is a DynamoDB stream event, but OrderWorkerFunction is invoked by an SQS queue" in run.stderr, run.stderr


def test_invoke_with_another_bucket_points_at_upload(tmp_path):
    event = json.loads((SOLUTIONS / "lab02_s3_events/events/s3_put_several.json").read_text())
    for record in event["Records"]:
        record["s3"]["bucket"]["name"] = "someone-elses-bucket"
    run = workshop(SOLUTIONS, "invoke", "2", "csv_summary", "--event", event_file(tmp_path, "s3", event), "--target", "solutions")
    assert "the event names bucket someone-elses-bucket, which lab 2's stack does not have" in run.stderr, run.stderr
    assert "`workshop upload 2 FILE`" in run.stderr


# --- output piped to a reader that goes away ---------------------------------------------------------


@pytest.mark.parametrize("arguments", [["doctor"], ["hint", "1", "1", "--tier", "3"]])
def test_a_closed_pipe_ends_the_command_quietly(arguments):
    """`workshop doctor | head -0`: the reader is gone before the first line; no traceback."""
    process = subprocess.Popen(
        [*paths.workshop_command(), *arguments], cwd=paths.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()
    errors = process.stderr.read().decode()
    assert process.wait(timeout=60) == 1 and "Traceback" not in errors and "BrokenPipeError" not in errors, errors


def test_the_poller_s_limit_grows_with_the_messages_sent(monkeypatch):
    """2,050 valid orders used to stop at 200 invocations (2,000 messages), 50 left behind in silence: the
    limit now lets every message be received maxReceiveCount times. (Grading 2,050 orders for real takes
    minutes, and so does sending them: moto's SendMessage counts the whole queue on every message. Here
    the queue holds a few real orders and says it holds 2,050; the poller is stopped at once and the limit
    it was given is read.)"""
    from workshop import sandbox
    from workshop.grading import sqs_delivery
    from workshop.local.lab import LocalLab

    sandbox.enter()
    given, counted = {}, []

    def drain(sqs, queues, handler, settings, **limits):
        given.update(limits)
        return sqs_delivery.Delivery(stopped=sqs_delivery.EMPTY)

    def waiting(sqs, url):
        counted.append(real_waiting(sqs, url))
        return 2050 if url == queue_url else counted[-1]

    real_waiting = sqs_delivery.waiting
    monkeypatch.setattr(sqs_delivery, "drain", drain)
    monkeypatch.setattr(sqs_delivery, "waiting", waiting)
    with LocalLab(3, "solutions") as lab:
        sqs, queue_url = lab.client("sqs"), lab.physical(lab.queue_settings().queue)
        sqs.send_message_batch(QueueUrl=queue_url, Entries=[{"Id": str(n), "MessageBody": "{}"} for n in range(10)])
        lab.poll_queue()
    assert counted[0] == 10, f"the poller counted {counted[0]} messages of the 10 sent"
    batches = -(-2050 // lab.queue_settings().batch_size)  # 205 batches of 10
    assert given["max_invocations"] >= batches * given["max_receives"] > 200, given
