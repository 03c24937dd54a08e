"""One function's execution environment, as Lambda runs it: a cold start, then warm invocations.

`ExecutionEnvironment.invoke(event)` runs the function in this process and returns an `Invocation`:
the response (or the error document Lambda returns), the function's log lines, and the figures of
Lambda's REPORT line.

- Init: on the first invocation (and after a timeout or a failed init, when Lambda starts a new
  environment) `app.py` is imported afresh, within Lambda's 10-second init limit.
- Environment: while the function initialises and runs, os.environ holds the template's variables
  (with the stack's physical names) and the Lambda runtime's own; the process's are put back after.
- Context: the function's physical name, its MemorySize, and a remaining time that counts down from
  its Timeout. A run past its Timeout is reported as Lambda reports it (Sandbox.Timedout) and the
  environment is discarded. A thread cannot be killed: the late run goes on in a daemon thread, its
  output dropped; `workshop invoke` ends the process there instead, as Lambda stops the environment.
- Logs: what the function prints or logs from its own threads is captured (`ThreadRoutedStream`);
  everything else in the process still reaches the console.
- Max Memory Used: what the function holds (resident memory its init added) plus the peak its
  invocation added on top, on Linux from /proc (VmHWM, reset just before); elsewhere the whole
  process's peak. tracemalloc was tried and dropped: it slowed the Duration three- to fivefold.
  Lambda's own figure also counts the interpreter and its runtime (some 30 to 40 MB).
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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workshop.lambda_runtime import FunctionError, LambdaContext, load_handler, runtime_environment

INIT_LIMIT_SECONDS = 10.0  # Lambda's limit on the init phase of on-demand functions
TIMEOUT_TYPES = ("Sandbox.Timedout", "Runtime.InitTimeout")


@dataclass(frozen=True)
class FunctionSpec:
    """What the template and the stack say about one function."""

    logical_id: str
    physical_name: str
    folder: Path  # its CodeUri
    handler: str  # module.function
    memory_mb: int
    timeout_seconds: float
    environment: dict[str, str]  # the template's variables, resolved to the stack's physical names

    @property
    def code(self) -> str:
        """The function's folder name, as labs.toml and the CLI name it."""
        return self.folder.name


@dataclass
class Invocation:
    """One invocation: what the function returned or raised, what it logged, and the REPORT figures."""

    function: str  # logical id
    request_id: str
    event: Any
    response: Any = None
    error: dict[str, Any] | None = None  # Lambda's error document; None when the function succeeded
    log_lines: list[str] = field(default_factory=list)
    duration_ms: float = 0.0
    init_ms: float | None = None  # None for a warm invocation
    memory_mb: int = 128
    max_memory_used_mb: int = 0
    timestamp: str = ""  # when the invocation ended, as CloudWatch stamps the timeout line

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def cold(self) -> bool:
        return self.init_ms is not None

    @property
    def billed_ms(self) -> int:
        # Since August 2025 Lambda bills the init phase of managed runtimes too.
        return math.ceil(self.duration_ms + (self.init_ms or 0))

    @property
    def report(self) -> str:
        line = (
            f"REPORT RequestId: {self.request_id}\tDuration: {self.duration_ms:.2f} ms\t"
            f"Billed Duration: {self.billed_ms} ms\tMemory Size: {self.memory_mb} MB\t"
            f"Max Memory Used: {self.max_memory_used_mb} MB"
        )
        if self.init_ms is not None:
            line += f"\tInit Duration: {self.init_ms:.2f} ms"
        return line

    def log_text(self) -> str:
        """The invocation's log, as Lambda writes it to CloudWatch: START, the function's lines, END, REPORT."""
        lines = [f"START RequestId: {self.request_id} Version: $LATEST", *self.log_lines]
        if self.error is not None and self.error["errorType"] in TIMEOUT_TYPES:
            message = self.error["errorMessage"].removeprefix(f"{self.request_id} ")
            lines.append(f"{self.timestamp} {self.request_id} {message}")
        elif self.error is not None:
            lines.append(f"[ERROR] {self.error['errorType']}: {self.error['errorMessage']}")
        lines += [f"END RequestId: {self.request_id}", self.report]
        return "\n".join(lines)

    def result_text(self) -> str:
        """The response as JSON, or the error document, under a heading that says which."""
        if self.error is not None:
            return "Error (the function failed):\n" + json.dumps(self.error, indent=2)
        return "Response:\n" + json.dumps(self.response, indent=2, default=json_default)


def json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):  # as Lambda's Python runtime serialises Decimal
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# --- logs ----------------------------------------------------------------------------------------


class ThreadRoutedStream(io.TextIOBase):
    """A sys.stdout/sys.stderr stand-in: what an invocation thread writes goes to its function's log;
    what any other thread writes goes to the stream it replaced.

    Loggers keep the stream they were given at init (Powertools' Logger does): being the same object
    for the whole process, this one still routes their lines to the right invocation when warm.
    """

    def __init__(self, console: Any) -> None:
        self.console = console
        self._routes: dict[int, io.StringIO] = {}

    @contextlib.contextmanager
    def route(self, thread: threading.Thread, log: io.StringIO) -> Iterator[None]:
        self._routes[thread.ident or 0] = log
        try:
            yield
        finally:
            self._routes.pop(thread.ident or 0, None)

    def _target(self) -> Any:
        return self._routes.get(threading.get_ident(), self.console)

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False  # Lambda's log streams are not terminals: no colours

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def __getattr__(self, name: str) -> Any:
        # Anything else is the console's: Jupyter re-targets its stream for every cell (set_parent...).
        return getattr(self.console, name)


@contextlib.contextmanager
def routed_output() -> Iterator[tuple[ThreadRoutedStream, ThreadRoutedStream]]:
    """Install the thread-routed stdout and stderr for as long as functions may run."""
    out, err = ThreadRoutedStream(sys.stdout), ThreadRoutedStream(sys.stderr)
    sys.stdout, sys.stderr = out, err
    try:
        yield out, err
    finally:
        sys.stdout, sys.stderr = out.console, err.console


# --- memory --------------------------------------------------------------------------------------


def _status_kib(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    raise OSError(f"no {field_name} in /proc/self/status")


def _reset_peak() -> int | None:
    """Reset the process's peak resident size (Linux); the resident size now, in KiB, or None elsewhere."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_kib("VmRSS")
    except OSError:
        return None


def _rise_kib(baseline_kib: int | None, field_name: str) -> int | None:
    if baseline_kib is None:
        return None
    with contextlib.suppress(OSError):
        return max(0, _status_kib(field_name) - baseline_kib)
    return None


def _process_peak_mb() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return math.ceil(peak / (1024 * 1024 if sys.platform == "darwin" else 1024))


# --- running -------------------------------------------------------------------------------------


def start_in_thread(work) -> tuple[threading.Thread, threading.Event, dict[str, Any]]:
    """A daemon thread that runs `work()` once `go` is set, leaving its result or error in `outcome`."""
    outcome: dict[str, Any] = {}
    go = threading.Event()

    def target() -> None:
        go.wait()
        try:
            outcome["result"] = work()
        except BaseException as error:  # reported as Lambda reports it, whatever it is
            outcome["error"] = error

    thread = threading.Thread(target=target, name="lambda-invocation", daemon=True)
    thread.start()
    return thread, go, outcome


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


def init_error_document(error: BaseException, spec: FunctionSpec, request_id: str) -> dict[str, Any]:
    """What Lambda reports when the function's module cannot be loaded, or its init raised."""
    module = spec.handler.rpartition(".")[0]
    if isinstance(error, FunctionError):
        return {"errorMessage": str(error), "errorType": "Runtime.HandlerNotFound", "requestId": request_id, "stackTrace": []}
    document = error_document(error, spec.folder, request_id)
    if isinstance(error, SyntaxError):
        document.update(errorType="Runtime.UserCodeSyntaxError", errorMessage=f"Syntax error in module '{module}': {error}")
    elif isinstance(error, ImportError):
        document.update(errorType="Runtime.ImportModuleError", errorMessage=f"Unable to import module '{module}': {error}")
    return document


def _reset_powertools_cold_start(streams: tuple[Any, ...]) -> None:
    """A new execution environment: Powertools' process-wide state is as a new process would have it.

    - the cold-start flags say so again;
    - cached parameters are forgotten (a new environment fetches them afresh);
    - a logger Powertools configured for an earlier LocalLab (or the learner's notebook) is configured
      afresh: its handler would write to a stream that is not this lab's (`streams`), and its lines
      would miss the invocation's log. Loggers writing to this lab's streams belong to warm functions.
    """
    import logging

    for logger in list(logging.Logger.manager.loggerDict.values()):
        if not getattr(logger, "init", False):
            continue
        handlers = getattr(logger, "handlers", [])
        if any(getattr(handler, "stream", None) not in streams for handler in handlers):
            for handler in handlers[:]:
                logger.removeHandler(handler)
            for attribute in ("init", "powertools_handler"):
                with contextlib.suppress(AttributeError):
                    delattr(logger, attribute)
    if "aws_lambda_powertools.utilities.parameters" in sys.modules:
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()
    for module_name in ("aws_lambda_powertools.logging.logger", "aws_lambda_powertools.tracing.tracer"):
        module = sys.modules.get(module_name)
        if module is not None:
            module.is_cold_start = True
    if "aws_lambda_powertools.metrics.provider.cold_start" in sys.modules:
        from workshop.grading.scheduled_jobs import reset_powertools_metrics

        reset_powertools_metrics()


@contextlib.contextmanager
def environment_of(spec: FunctionSpec) -> Iterator[None]:
    """os.environ as the function sees it in Lambda, for as long as it runs."""
    saved = dict(os.environ)
    os.environ.update(spec.environment)
    os.environ.update(runtime_environment(spec.physical_name, spec.memory_mb))
    os.environ["AWS_LAMBDA_FUNCTION_TIMEOUT"] = str(int(spec.timeout_seconds))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class ExecutionEnvironment:
    """One function's execution environment: created by the first invocation, reused by the next."""

    def __init__(self, spec: FunctionSpec, stdout: ThreadRoutedStream, stderr: ThreadRoutedStream) -> None:
        self.spec = spec
        self._stdout, self._stderr = stdout, stderr
        self._handler: Any = None
        self._footprint_kib: int | None = None  # resident memory the function's init added
        self.invocations = 0

    @property
    def warm(self) -> bool:
        return self._handler is not None

    def discard(self) -> None:
        """Lambda starts a new environment for the next invocation (after a timeout, or a failed init)."""
        self._handler = None
        self._footprint_kib = None

    def _in_function_thread(self, work, limit: float, log: io.StringIO) -> tuple[bool, Any, BaseException | None]:
        """Run `work()` for at most `limit` seconds, its output into `log`: (finished, result, error)."""
        thread, go, outcome = start_in_thread(work)
        with self._stdout.route(thread, log), self._stderr.route(thread, log):
            go.set()
            thread.join(limit)
            if thread.is_alive():
                return False, None, None
        return True, outcome.get("result"), outcome.get("error")

    def invoke(self, event: Any, request_id: str | None = None) -> Invocation:
        spec = self.spec
        invocation = Invocation(spec.logical_id, request_id or str(uuid.uuid4()), event, memory_mb=spec.memory_mb)
        log = io.StringIO()
        with environment_of(spec):
            baseline_kib = _reset_peak()
            init_done, init_error = True, None
            if not self.warm:
                _reset_powertools_cold_start((self._stdout, self._stderr))
                started = time.perf_counter()
                init_done, handler, init_error = self._in_function_thread(
                    lambda: load_handler(spec.folder, spec.handler), INIT_LIMIT_SECONDS, log
                )
                invocation.init_ms = (time.perf_counter() - started) * 1000
                if init_done and init_error is None:
                    self._handler = handler
                    self._footprint_kib = _rise_kib(baseline_kib, "VmRSS")
            context = LambdaContext(
                function_name=spec.physical_name,
                memory_limit_in_mb=spec.memory_mb,
                timeout_seconds=spec.timeout_seconds,
                aws_request_id=invocation.request_id,
            )
            started = time.perf_counter()
            if self.warm:
                handler = self._handler
                done, response, error = self._in_function_thread(lambda: handler(event, context), spec.timeout_seconds, log)
                invocation.duration_ms = (time.perf_counter() - started) * 1000
            else:
                done, response, error = init_done, None, init_error
            peak_kib = _rise_kib(baseline_kib, "VmHWM")  # cold: the init and the invocation together
            if peak_kib is not None and not invocation.cold:
                peak_kib += self._footprint_kib or 0
        invocation.max_memory_used_mb = max(1, math.ceil(peak_kib / 1024)) if peak_kib is not None else _process_peak_mb()
        invocation.timestamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        invocation.log_lines = log.getvalue().splitlines()
        self.invocations += 1

        if not init_done:
            invocation.error = {"errorMessage": f"Init phase timed out after {INIT_LIMIT_SECONDS:.2f} seconds", "errorType": "Runtime.InitTimeout"}
            invocation.duration_ms = invocation.init_ms or 0.0
            invocation.init_ms = None  # Lambda reports a timed-out init in Duration
            self.discard()
        elif init_error is not None:
            invocation.error = init_error_document(init_error, spec, invocation.request_id)
            self.discard()
        elif not done:
            invocation.error = {
                "errorMessage": f"{invocation.request_id} Task timed out after {spec.timeout_seconds:.2f} seconds",
                "errorType": "Sandbox.Timedout",
            }
            self.discard()
        elif error is not None:
            invocation.error = error_document(error, spec.folder, invocation.request_id)
        else:
            try:
                invocation.response = json.loads(json.dumps(response, default=json_default))
            except (TypeError, ValueError) as marshal:
                invocation.error = {
                    "errorMessage": f"Unable to marshal response: {marshal}",
                    "errorType": "Runtime.MarshalError",
                    "requestId": invocation.request_id,
                    "stackTrace": [],
                }
        return invocation
