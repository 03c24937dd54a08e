"""Run a durable function as Lambda would, offline: AWS's own local runner (the durable execution testing
SDK), with its waits skipped, and the warehouse's answer (or its silence) played by the caller.

The runner replays the handler after every wait, retry and callback, as Lambda does; `Run` keeps what a
learner needs to see: each operation with its result (like Lambda's execution history), how many times
the handler ran, and the timeout the workflow gave its callback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_durable_execution_sdk_python import state as sdk_state
from aws_durable_execution_sdk_python.exceptions import SerDesError
from aws_durable_execution_sdk_python.lambda_service import ErrorObject, OperationType
from aws_durable_execution_sdk_python.serdes import EXTENDED_TYPES_SERDES
# The runner's own helpers: the callback a history is waiting on, and its operations as a tree.
from aws_durable_execution_sdk_python_testing.runner import (
    DurableFunctionTestRunner,
    _get_callback_id_from_events,
    create_operation,
)

# What the warehouse does once the workflow asks it to ship: confirm (with a tracking number), refuse, or
# never answer (the runner then fires the callback's timeout at once, as Lambda would after it elapsed).
CONFIRM, REFUSE, SILENCE = "confirm", "refuse", "silence"
POLL_SECONDS = 0.0005
RUN_SECONDS = 20  # real seconds: a workflow that has not finished by then retries without end, or hangs

# The SDK's checkpoint thread sees that an invocation has ended only at its next look at an empty queue,
# every 0.1 s: about 100 ms of nothing per invocation, most of a local workflow's time (a one-step
# workflow took 112 ms, 16 ms with a 5 ms look). Locally it looks as often as the runner polls. Only how
# soon it stops, and how long it lets a batch of checkpoints gather, change: every operation is still
# checkpointed. At 0.5 ms rather than 5, lab 7's eleven workflow tests take 1.06 s instead of 1.23 s
# in one process (medians of 3), for 5% more CPU: the time went to waiting, not to work.
# And a step that waits for its checkpoint waits 1 ms more for other threads' checkpoints to join the same
# request: a sleep of a millisecond or more for every step, start and end, of every invocation. Locally a
# request costs no more than a wait, so it goes at once (a late sibling goes in the next one): a warm
# workflow of lab 7 takes 16 ms instead of 21 (medians of 20, four processes each way).
# (Private settings: tests/meta/test_lab07_invoke.py fails if a new SDK drops one.)
STOP_POLL_SETTING = "_STOP_SIGNAL_POLL_SECONDS"
BATCH_WAIT_SETTING = "_BLOCKED_CALLER_WAIT_SECONDS"
LOCAL_SETTINGS = {STOP_POLL_SETTING: POLL_SECONDS, BATCH_WAIT_SETTING: 0.0}
for setting, value in LOCAL_SETTINGS.items():
    setattr(sdk_state, setting, value)


@dataclass(frozen=True)
class Step:
    """One operation of the execution history, in the order it started."""

    kind: str  # step, wait, callback, context
    name: str
    status: str
    result: Any = None
    error: str | None = None
    attempts: int = 0
    depth: int = 0


@dataclass
class Run:
    status: str  # the execution's: SUCCEEDED, FAILED, TIMED_OUT, or RUNNING when it never finished
    result: Any = None  # what the handler returned, decoded
    error: str | None = None  # why the execution failed, when it did
    history: list[Step] = field(default_factory=list)
    invocations: int = 0  # how many times Lambda ran the handler: 1 + the replays
    callback_id: str | None = None
    callback_timeout: int | None = None  # seconds; 0 means none
    seconds: float = 0.0  # real time the run took

    def outcome(self) -> tuple[str, str]:
        """The order's status and reason, from the handler's answer or, when it raised, from the error."""
        if isinstance(self.result, dict):
            return str(self.result.get("status", "")), str(self.result.get("reason", ""))
        if self.status == "FAILED":
            return "FAILED", self.error or ""
        return self.status, ""


def decode(payload: Any) -> Any:
    """A checkpointed value as the workflow saw it (the SDK wraps dicts and Decimals in a typed envelope)."""
    if not isinstance(payload, str):
        return payload
    try:
        return EXTENDED_TYPES_SERDES.deserialize(payload)
    except (ValueError, SerDesError):
        pass
    try:
        return json.loads(payload)
    except ValueError:
        return payload


def describe_error(error: ErrorObject | None) -> str | None:
    if error is None:
        return None
    return ": ".join(part for part in (error.type, error.message) if part)


def flatten(operations: list, depth: int = 0) -> list[Step]:
    steps = []
    for operation in sorted(operations, key=lambda o: (o.start_timestamp is None, o.start_timestamp, o.operation_id)):
        steps.append(
            Step(
                kind=OperationType(operation.operation_type).value.lower(),
                name=operation.name or "",
                status=operation.status.value if hasattr(operation.status, "value") else str(operation.status),
                result=decode(getattr(operation, "result", None)),
                error=describe_error(getattr(operation, "error", None)),
                attempts=getattr(operation, "attempt", 0) or 0,
                depth=depth,
            )
        )
        steps += flatten(getattr(operation, "child_operations", None) or [], depth + 1)
    return steps


def callback_timeout_of(runner: DurableFunctionTestRunner, arn: str) -> int | None:
    execution = runner._store.load(arn)
    for update in execution.updates:
        if update.callback_options is not None:
            return update.callback_options.timeout_seconds
    return None


def run_workflow(
    handler: Callable,
    order: dict,
    *,
    warehouse: str = CONFIRM,
    tracking: str = "TRACK-0001",
    seconds: float = RUN_SECONDS,
    execution_timeout: int = 366 * 24 * 3600,
    on_invocation: Callable[[int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> Run:
    """Start the workflow with `order`, let the warehouse answer as `warehouse` says, and wait for the end
    (or until `stop()` says to give up on a workflow that retries without end)."""
    invocations = 0

    def counted(event, context):
        nonlocal invocations
        invocations += 1
        if on_invocation is not None:
            on_invocation(invocations)
        return handler(event, context)

    started = time.perf_counter()
    run = Run(status="RUNNING")
    with DurableFunctionTestRunner(handler=counted, poll_interval=POLL_SECONDS) as runner:
        arn = runner.run_async(input=json.dumps(order), execution_timeout=execution_timeout)
        executor = runner._executor
        deadline = time.monotonic() + seconds
        answered = False
        while time.monotonic() < deadline:
            if runner._store.load(arn).result is not None:
                break
            if stop is not None and stop():
                runner.pause_execution(arn, timeout=5)
                break
            time.sleep(POLL_SECONDS)
            if answered:
                continue
            callback_id = _get_callback_id_from_events(executor.get_execution_history(arn).events)
            if callback_id is None:
                continue
            answered = True
            run.callback_id = callback_id
            run.callback_timeout = callback_timeout_of(runner, arn)
            if warehouse == CONFIRM:
                runner.send_callback_success(callback_id, json.dumps({"tracking": tracking}).encode())
            elif warehouse == REFUSE:
                runner.send_callback_failure(
                    callback_id, ErrorObject(message="cannot ship: warehouse refused", type="WarehouseRefused",
                                             data=None, stack_trace=None)
                )
            else:
                executor._on_callback_timeout(arn, callback_id)  # what Lambda does when the timeout elapses
        else:
            runner.pause_execution(arn, timeout=5)
        execution = runner._store.load(arn)
        run.history = flatten(
            [op for op in _top_level(runner, arn) if op.operation_type != OperationType.EXECUTION]
        )
        if execution.result is not None:
            run.status = execution.close_status.value if execution.close_status else "RUNNING"
            run.result = decode(execution.result.result)
            run.error = describe_error(execution.result.error)
    run.invocations = invocations
    run.seconds = time.perf_counter() - started
    return run


def _top_level(runner: DurableFunctionTestRunner, arn: str) -> list:
    operations = runner._store.load(arn).operations
    return [create_operation(op, operations) for op in operations if op.parent_id is None]


def history_table(run: Run, *, results: bool = True) -> str:
    """The execution history as Lambda's console lists it: one operation a line, with its result (or
    without: an id or a time differs from run to run)."""
    lines = []
    for step in run.history:
        outcome = step.error if step.error else json.dumps(step.result, default=str) if step.result is not None else ""
        outcome = outcome if results or step.error else ""
        attempts = f" (attempt {step.attempts})" if step.attempts > 1 else ""
        lines.append(f"{'  ' * step.depth}{step.kind:<8} {step.name:<28} {step.status:<10}{attempts} {outcome}"[:160].rstrip())
    return "\n".join(lines)
