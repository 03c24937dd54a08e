"""The CLI verbs of the local runtime: `workshop invoke`, `upload`, `send`, `publish` and `tick`.

Each opens the lab's LocalLab (its stack in moto), does one thing the way AWS would, and prints every
invocation as Lambda logs it (START, the function's lines, END, REPORT), then what happened to the
events. Bad input raises LocalError (exit code 2); a failed function exits with 1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from workshop import paths
from workshop.local.lab import EARLIEST_TICK, AsyncDelivery, LocalError, LocalLab, check_s3_key
from workshop.local.runtime import TIMEOUT_TYPES, Invocation


def _print(*lines: str) -> None:
    print("\n".join(lines))
    sys.stdout.flush()


def _end(invocations: list[Invocation]) -> int:
    """Exit code: 0 when every invocation succeeded. A timed-out run still holds a thread: end the process."""
    failed = any(not i.ok for i in invocations)
    if any(i.error and i.error["errorType"] in TIMEOUT_TYPES for i in invocations):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)  # the function's thread is still running: stop it with the process, as Lambda does
    return 1 if failed else 0


def invoke(
    lab_key: str, function: str, event_name: str | None, target: str, repeat: int = 1, warehouse: str = "confirm"
) -> int:
    if repeat < 1:
        raise LocalError("--repeat takes a number of invocations, 1 or more")
    lab = LocalLab(lab_key, target)
    logical_id = lab.function_id(function)
    label, event = lab.event(event_name, function)
    with lab:
        if lab.is_durable(logical_id):  # lab 7: one durable execution, replays and all
            from workshop.local import workflow

            return workflow.run(lab, logical_id, label, json.loads(json.dumps(event)), warehouse)
        spec = lab.spec(logical_id)
        print(f"Invoking {paths.relative(spec.folder)} ({logical_id}) with {label}", file=sys.stderr)
        mismatch = lab.event_mismatch(logical_id, event)
        if mismatch:
            print(f"Note: {mismatch}.", file=sys.stderr)
        invocations = []
        for _ in range(repeat):
            # As given: a file holding null or a string is that payload, never "the default event" or a name.
            invocation = lab.invoke_with(logical_id, json.loads(json.dumps(event)))
            invocations.append(invocation)
            if invocations[1:]:
                _print("")
            _print(invocation.log_text(), "", invocation.result_text())
            if not invocation.ok:
                break
        return _end(invocations)


SHOWN_PER_STORE = 5
SHOWN_CHARACTERS = 300


def stores(lab: LocalLab) -> dict[str, dict[str, str]]:
    """What the stack holds now: each bucket's objects and each table's items, as text, by store."""
    from workshop import templates
    from workshop.local.runtime import json_default

    held: dict[str, dict[str, str]] = {}
    for bucket, _ in templates.resources_of_type(lab.template, "AWS::S3::Bucket"):
        held[bucket] = {key: body.decode("utf-8", "replace") for key, body in lab.objects(bucket).items()}
    for table, _ in templates.resources_of_type(lab.template, "AWS::DynamoDB::Table"):
        rows = [json.dumps(item, default=json_default, sort_keys=True) for item in lab.items(table)]
        held[table] = {row: row for row in rows}
    return held


def written(lab: LocalLab, before: dict[str, dict[str, str]]) -> None:
    """Print what the functions wrote: new or changed objects and items, store by store."""
    lines = []
    for store, now in stores(lab).items():
        changed = [(name, text) for name, text in now.items() if before.get(store, {}).get(name) != text]
        if not changed:
            continue
        lines.append(f"{store}: {len(changed)} new or changed {'object' if store in lab.buckets() else 'item'}(s)")
        for name, text in changed[:SHOWN_PER_STORE]:
            shown = " ".join(text.split())
            shown = shown if len(shown) <= SHOWN_CHARACTERS else shown[: SHOWN_CHARACTERS - 3] + "..."
            lines.append(f"  {name}: {shown}" if name != text else f"  {shown}")
        if len(changed) > SHOWN_PER_STORE:
            lines.append(f"  ... and {len(changed) - SHOWN_PER_STORE} more")
    _print("What the functions wrote:", *(lines or ["  nothing (no bucket or table of the stack changed)"]), "")


def _report(delivered: list[AsyncDelivery]) -> None:
    """Each asynchronous delivery: every attempt's log, then where the event ended."""
    for delivery in delivered:
        for attempt in delivery.attempts:
            _print(f"--- {delivery.function} ---", attempt.log_text(), "")
        retries = len(delivery.attempts) - 1
        tried = f" after {retries} retr{'y' if retries == 1 else 'ies'}" if retries else ""
        if delivery.outcome == "succeeded":
            _print(f"{delivery.function}: succeeded{tried}.", "")
        elif delivery.outcome == "lost":
            _print(f"{delivery.function}: failed{tried}; the function has no on-failure destination: the event is lost.", "")
        else:
            _print(f"{delivery.function}: failed{tried}; Lambda sent the event to {delivery.outcome}.", "")


def _exit_code(delivered: list[AsyncDelivery]) -> int:
    invocations = [attempt for delivery in delivered for attempt in delivery.attempts]
    code = _end(invocations)
    return 1 if any(d.outcome != "succeeded" for d in delivered) else code


def upload(lab_key: str, file: str, key: str | None, bucket: str | None, target: str) -> int:
    source = Path(file)
    try:
        found = source.is_file()
    except OSError as error:  # a name longer than the file system takes, say
        raise LocalError(f"cannot read {file}: {error.strerror}") from None
    if not found:
        raise LocalError(f"there is no file {file}")
    with LocalLab(lab_key, target) as lab:
        bucket_id = lab.trigger_bucket(bucket)
        filters = lab.s3_filters(bucket_id)
        if key is None:  # under the first filter's prefix, so that the upload invokes the function
            key = f"{filters[0][1].get('prefix', '') if filters else ''}{source.name}"
        check_s3_key(key)
        print(f"Uploading {file} to {bucket_id} as {key}", file=sys.stderr)
        before = stores(lab)
        delivered = lab.put_object(key, source.read_bytes(), bucket=bucket_id)
        if not delivered:
            shown = "; ".join(f"{function}: {json.dumps(rules)}" for function, rules in filters)
            _print(f"No function was invoked: {key} matches no event filter of {bucket_id} ({shown}).")
            return 0
        _report(delivered)
        before[bucket_id] = {**before.get(bucket_id, {}), key: source.read_bytes().decode("utf-8", "replace")}
        written(lab, before)
        return _exit_code(delivered)


def _messages(lab: LocalLab, event_name: str | None, bodies: list[str]) -> list[str]:
    if bodies:
        return bodies
    label, event = lab.event(event_name, lab.queue_function(None))
    records = event.get("Records", []) if isinstance(event, dict) else []
    if not records or not all("body" in r for r in records):
        raise LocalError(f"{label} holds no SQS records with a body to send")
    return [record["body"] for record in records]


def send(lab_key: str, event_name: str | None, bodies: list[str], function: str | None, target: str) -> int:
    with LocalLab(lab_key, target) as lab:
        messages = _messages(lab, event_name, bodies)
        settings = lab.queue_settings(function)
        print(
            f"Sending {len(messages)} message(s) to {settings.queue}: Lambda polls it in batches of up to "
            f"{settings.batch_size}", file=sys.stderr,
        )
        before = stores(lab)
        delivery = lab.send_messages(messages, function=function)
        for number, (batch, invocation) in enumerate(zip(delivery.batches, delivery.invocations), start=1):
            _print(f"--- batch {number}: {len(batch.message_ids)} message(s) ---", invocation.log_text(), "")
            if batch.failed:
                wait = f" (in AWS after its VisibilityTimeout, {settings.visibility_timeout} s; here at once)"
                _print(f"{len(batch.failed)} of {len(batch.message_ids)} failed and went back to the queue{wait}.", "")
            if batch.note:
                _print(batch.note, "")
        written(lab, before)
        from workshop.grading.sqs_delivery import EMPTY, waiting

        left = 0 if delivery.stopped in ("", EMPTY) else waiting(lab.client("sqs"), lab.physical(settings.queue))
        if left:
            _print(
                f"The local poller stopped ({delivery.stopped}), so that a function that never deletes its messages "
                f"cannot run forever: {left} message(s) were still on the queue, not processed.",
                "",
            )
        dead = delivery.dead_letters
        if settings.max_receive_count is not None:
            _print(
                f"{len(dead)} message(s) on the dead-letter queue, each received {settings.max_receive_count} "
                f"time(s) (maxReceiveCount) without success."
            )
            for message in dead:
                _print(f"  {message['MessageId']}: {message['Body'][:120]}")
        else:
            _print("The queue has no dead-letter queue (RedrivePolicy): failed messages come back until they expire.")
        return 1 if dead or left or any(b.failed for b in delivery.batches) else 0


def publish(lab_key: str, event_name: str | None, message: str | None, attributes: list[str], subject: str | None, target: str) -> int:
    with LocalLab(lab_key, target) as lab:
        given = {}
        for pair in attributes:
            name, equals, value = pair.partition("=")
            if not equals or not name:
                raise LocalError(f"--attribute takes NAME=VALUE, not {pair!r}")
            given[name] = value
        if message is not None:
            publications = [(message, given, subject)]
        else:
            label, event = lab.event(event_name, lab.fanout().settings.subscribers[0].function)
            records = event.get("Records", []) if isinstance(event, dict) else []
            if not records or not all("Sns" in r for r in records):
                raise LocalError(f"{label} holds no SNS records to publish again")
            publications = [
                (
                    r["Sns"]["Message"],
                    {**{n: v["Value"] for n, v in (r["Sns"].get("MessageAttributes") or {}).items() if v.get("Type") == "String"}, **given},
                    r["Sns"].get("Subject"),
                )
                for r in records
            ]
        delivered: list[AsyncDelivery] = []
        before = stores(lab)
        for text, message_attributes, message_subject in publications:
            shown = text if len(text) <= 100 else f"{text[:97]}..."
            print(f"Publishing {shown} with attributes {json.dumps(message_attributes)}", file=sys.stderr)
            these = lab.publish(text, message_attributes, message_subject)
            subscribed = {s.function for s in lab.fanout().settings.subscribers}
            skipped = sorted(subscribed - {d.function for d in these})
            _report(these)
            if skipped:
                _print(f"Not delivered (their filter policy does not match): {', '.join(skipped)}.", "")
            delivered += these
        written(lab, before)
        return _exit_code(delivered)


def tick(lab_key: str, until: str, since: str | None, target: str) -> int:
    from datetime import timedelta

    from workshop.local.lab import clock_time, next_fire

    end = clock_time(until)
    start = clock_time(since) if since else max(end - timedelta(minutes=1), clock_time(EARLIEST_TICK))
    with LocalLab(lab_key, target) as lab:
        before = stores(lab)
        delivered = lab.tick(end, since=start)
        if not delivered:
            upcoming = next_fire(lab, end)
            after = f"; the next run is at {upcoming:%Y-%m-%dT%H:%M:%SZ}" if upcoming else ""
            _print(
                f"No schedule fires in ({start:%Y-%m-%dT%H:%M:%SZ}, {end:%Y-%m-%dT%H:%M:%SZ}]{after}. "
                "Give --since an earlier time to fire every run in between."
            )
            return 0
        for _, expression, function, _ in lab.schedules():
            print(f"{function} runs on {expression}", file=sys.stderr)
        _report(delivered)
        written(lab, before)
        return _exit_code(delivered)
