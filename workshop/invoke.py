"""`workshop invoke LAB FUNCTION`: run one function of a lab the way Lambda would, offline.

1. The lab's template (transformed by SAM, cached) is created in moto's CloudFormation
   (workshop/local_stack.py), inside the sandbox: fake credentials, no network.
2. The function's environment is the one moto's Lambda holds for it once the stack exists, so `!Ref`
   and friends are the stack's physical names; the Lambda runtime's own variables come on top.
3. Init: `app.py` is imported afresh (a cold start), within Lambda's 10-second init limit.
4. Invoke: the handler gets the event and a context carrying the function's physical name, its
   MemorySize and a remaining time counting down from its Timeout.
5. Output as Lambda writes it to CloudWatch (START, the function's log lines, END, REPORT), then the
   response, or the error document Lambda returns for an unhandled error or a timeout.

Timeouts: init and invoke each run in a daemon thread that the main thread waits for with a time
limit. A thread cannot be killed, so when the limit passes the command reports the timeout and ends
the whole process (`os._exit`), as Lambda stops the execution environment. Unlike a SIGALRM-raised
exception, nothing the function does (a broad `except`, a long C call, a non-main thread) can catch
or delay it, and it works on every platform.

Max Memory Used is what the function added to this process's peak resident memory while it
initialised and ran: on Linux the peak (VmHWM, reset through /proc/self/clear_refs just before the
import) less the resident size at that moment; elsewhere `resource.getrusage`'s peak of the whole
process. Resident memory, as Lambda measures it, and free to read. The whole process's peak is no
use here: it is reached while moto creates the stack (about 236 MB for every function). tracemalloc
was tried and dropped: it slowed the Duration beside it three- to fivefold. Lambda's own figure also
counts the interpreter and its runtime (some 30 to 40 MB), which this one leaves out.
"""

from __future__ import annotations

import contextlib
import decimal
import io
import json
import math
import os
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workshop import manifest, paths, sandbox, templates
from workshop.lambda_runtime import FunctionError, LambdaContext, load_event, load_handler, runtime_environment

INIT_LIMIT_SECONDS = 10.0  # Lambda's limit on the init phase of on-demand functions
STACK_NAME = "workshop-local"

# Which event files (events/<source>_<scenario>.json) fit a function, from what invokes it.
_PRINCIPAL_SOURCES = {
    "apigateway.amazonaws.com": "api",
    "s3.amazonaws.com": "s3",
    "sns.amazonaws.com": "sns",
    "events.amazonaws.com": "eventbridge",
}


class InvokeError(LookupError):
    """Bad input to `workshop invoke` (exit code 2); the message says what and what exists."""


@dataclass(frozen=True)
class Function:
    logical_id: str
    folder: Path
    handler: str
    memory_mb: int
    timeout_seconds: float
    sources: frozenset[str]


def find_function(lab: manifest.Lab, target: str, name: str) -> tuple[Function, dict[str, Any]]:
    """The function `name` (its folder, as in labs.toml, or its logical id) and the lab's transformed template."""
    if not lab.functions:
        raise InvokeError(
            f"lab {lab.number} has no functions of its own (its template reuses other labs' code): "
            "invoke them in their own labs"
        )
    folder = lab.folder(target)
    try:
        template = templates.transformed(folder / "template.yaml")
    except templates.TemplateError as error:
        raise InvokeError(str(error)) from None
    functions = dict(templates.resources_of_type(template, "AWS::Lambda::Function"))
    by_folder = {p["Code"]["S3Key"].removesuffix(".zip"): logical for logical, p in functions.items() if "Code" in p}
    logical_id = by_folder.get(name) or (name if name in functions else None)
    if logical_id is None:
        known = ", ".join(f"{f} ({by_folder[f]})" for f in sorted(by_folder)) or "none"
        raise InvokeError(f"lab {lab.number} has no function {name!r}; its functions: {known}")
    properties = functions[logical_id]
    module = properties.get("Handler", "app.lambda_handler")
    code_folder = next(f for f, logical in by_folder.items() if logical == logical_id)
    return (
        Function(
            logical_id=logical_id,
            folder=folder / code_folder,
            handler=module,
            memory_mb=int(properties.get("MemorySize", 128)),
            timeout_seconds=float(properties.get("Timeout", 3)),
            sources=frozenset(_sources(template, logical_id)),
        ),
        template,
    )


def _sources(template: dict[str, Any], logical_id: str) -> set[str]:
    found = set()
    for kind, prefix in (("AWS::Lambda::EventSourceMapping", "sqs"), ("AWS::Scheduler::Schedule", "eventbridge")):
        for _, properties in templates.resources_of_type(template, kind):
            if logical_id in templates.references(properties):
                found.add(prefix)
    for _, properties in templates.resources_of_type(template, "AWS::Lambda::Permission"):
        if logical_id in templates.references(properties.get("FunctionName")):
            found.add(_PRINCIPAL_SOURCES.get(properties.get("Principal"), "other"))
    return found


def choose_event(lab: manifest.Lab, target: str, function: Function, wanted: str | None) -> tuple[str, dict]:
    """The event to send: a file path, a name in the lab's events/, or the first that fits the function."""
    events_dir = lab.folder(target) / "events"
    available = sorted(p.stem for p in events_dir.glob("*.json"))
    if wanted is None:
        fitting = [name for name in available if name.split("_", 1)[0] in function.sources]
        if not fitting:
            raise InvokeError(
                f"no event in {paths.relative(events_dir)} fits {function.logical_id} "
                f"(invoked by {', '.join(sorted(function.sources)) or 'nothing'}): "
                f"name one with --event (events here: {', '.join(available) or 'none'})"
            )
        wanted = fitting[0]
    as_file = Path(wanted)
    if as_file.suffix == ".json" and as_file.is_file():
        try:
            return str(as_file), json.loads(as_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InvokeError(f"{wanted} is not valid JSON: {error}") from None
    try:
        return paths.relative(events_dir / f"{wanted.removesuffix('.json')}.json"), load_event(events_dir, wanted)
    except FunctionError as error:
        raise InvokeError(str(error)) from None


def _run_limited(work, limit: float) -> tuple[bool, Any, BaseException | None]:
    """Run `work()` in a daemon thread for at most `limit` seconds: (finished, result, error)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = work()
        except BaseException as error:  # reported as Lambda reports it, whatever it is
            outcome["error"] = error

    thread = threading.Thread(target=target, name="lambda-invocation", daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        return False, None, None
    return True, outcome.get("result"), outcome.get("error")


def error_document(error: BaseException, code_folder: Path, request_id: str) -> dict[str, Any]:
    """What Lambda's Python runtime returns for an unhandled error: the stack trace of the function's own frames."""
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if Path(frame.filename).resolve().is_relative_to(code_folder.resolve())
    ]
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(frames),
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):  # as Lambda's Python runtime serialises Decimal
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _start_memory_peak() -> int | None:
    """Reset the process's peak resident size (Linux); the resident size now, in KiB, or None elsewhere."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_kib("VmRSS")
    except OSError:
        return None


def _peak_memory_mb(baseline_kib: int | None) -> int:
    if baseline_kib is not None:
        with contextlib.suppress(OSError):
            return max(1, math.ceil((_status_kib("VmHWM") - baseline_kib) / 1024))
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return math.ceil(peak / (1024 * 1024 if sys.platform == "darwin" else 1024))


def invoke(lab_key: str, function_name: str, event_name: str | None = None, target: str = "labs") -> int:
    lab = manifest.find(lab_key)
    function, template = find_function(lab, target, function_name)
    event_label, event = choose_event(lab, target, function, event_name)

    sandbox.enter()
    from moto import mock_aws

    import boto3

    from workshop import local_stack

    mock = mock_aws()
    mock.start()  # never stopped: the process ends with the invocation, as an execution environment does
    stack = local_stack.deploy_lab(template, STACK_NAME)
    if stack.status != "CREATE_COMPLETE":
        raise InvokeError(f"moto could not create lab {lab.number}'s stack: {stack.reason}")
    physical_name = stack.physical[function.logical_id]
    configuration = boto3.client("lambda").get_function_configuration(FunctionName=physical_name)
    os.environ.update(configuration.get("Environment", {}).get("Variables", {}))
    os.environ.update(runtime_environment(physical_name, function.memory_mb))
    os.environ["AWS_LAMBDA_FUNCTION_TIMEOUT"] = str(int(function.timeout_seconds))

    request_id = str(uuid.uuid4())
    print(f"Invoking {paths.relative(function.folder)} ({function.logical_id}) with {event_label}", file=sys.stderr)
    logs = io.StringIO()
    with contextlib.redirect_stdout(logs), contextlib.redirect_stderr(logs):
        baseline_kib = _start_memory_peak()
        init_started = time.perf_counter()
        init_done, handler, init_error = _run_limited(lambda: load_handler(function.folder, function.handler), INIT_LIMIT_SECONDS)
        init_ms = (time.perf_counter() - init_started) * 1000
        context = LambdaContext(
            function_name=physical_name,
            memory_limit_in_mb=function.memory_mb,
            timeout_seconds=function.timeout_seconds,
            aws_request_id=request_id,
        )
        started = time.perf_counter()
        if init_done and init_error is None:
            done, response, error = _run_limited(lambda: handler(event, context), function.timeout_seconds)
        else:
            done, response, error = init_done, None, init_error
        duration_ms = (time.perf_counter() - started) * 1000
        peak_mb = _peak_memory_mb(baseline_kib)

    if not init_done:
        document: dict[str, Any] = {
            "errorMessage": f"Init phase timed out after {INIT_LIMIT_SECONDS:.2f} seconds",
            "errorType": "Runtime.InitTimeout",
        }
        duration_ms = init_ms
    elif not done:
        document = {
            "errorMessage": f"{request_id} Task timed out after {function.timeout_seconds:.2f} seconds",
            "errorType": "Sandbox.Timedout",
        }
    elif isinstance(error, FunctionError):
        document = {"errorMessage": str(error), "errorType": "Runtime.HandlerNotFound", "requestId": request_id, "stackTrace": []}
    elif isinstance(error, (ImportError, SyntaxError)) and error is init_error:
        # What Lambda's Python runtime reports when the handler's module cannot be imported.
        module = function.handler.rpartition(".")[0]
        document = error_document(error, function.folder, request_id)
        if isinstance(error, SyntaxError):
            document.update(errorType="Runtime.UserCodeSyntaxError", errorMessage=f"Syntax error in module '{module}': {error}")
        else:
            document.update(errorType="Runtime.ImportModuleError", errorMessage=f"Unable to import module '{module}': {error}")
    elif error is not None:
        document = error_document(error, function.folder, request_id)
    else:
        document = None
    body = None
    if document is None:
        try:
            body = json.dumps(response, indent=2, default=_json_default)
        except (TypeError, ValueError) as marshal:
            document = {"errorMessage": f"Unable to marshal response: {marshal}", "errorType": "Runtime.MarshalError", "requestId": request_id, "stackTrace": []}

    # Every invoke is a cold start; since August 2025 Lambda bills the init phase of managed runtimes too.
    billed = math.ceil(duration_ms + (init_ms if init_done else 0))
    lines = [f"START RequestId: {request_id} Version: $LATEST"]
    lines += logs.getvalue().splitlines()
    if document is not None and document["errorType"] in ("Sandbox.Timedout", "Runtime.InitTimeout"):
        lines.append(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())}Z {request_id} {document['errorMessage'].removeprefix(request_id + ' ')}")
    elif document is not None:
        lines.append(f"[ERROR] {document['errorType']}: {document['errorMessage']}")
    lines.append(f"END RequestId: {request_id}")
    report = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {billed} ms\t"
        f"Memory Size: {function.memory_mb} MB\tMax Memory Used: {peak_mb} MB"
    )
    if init_done:
        report += f"\tInit Duration: {init_ms:.2f} ms"
    lines.append(report)
    print("\n".join(lines))
    print()
    print("Response:" if document is None else "Error (the function failed):")
    print(body if document is None else json.dumps(document, indent=2))
    sys.stdout.flush()
    sys.stderr.flush()
    if not (init_done and done):
        os._exit(1)  # the function's thread is still running: stop it with the process, as Lambda does
    return 0 if document is None else 1
