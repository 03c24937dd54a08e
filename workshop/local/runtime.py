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
  environment is discarded, as Lambda discards it. The function runs in a thread of this process (its
  AWS calls go to moto here, in memory: a separate process would lose its writes), and a thread cannot
  be killed: it is stopped instead by raising `Stopped` in it (PyThreadState_SetAsyncExc), again and
  again until it ends, which ends a Python-level loop at once and a blocking call (a sleep, a read)
  when that call returns; meanwhile its output is dropped. Code that never returns to Python (one
  C call that runs for ever) cannot be stopped: `workshop invoke` ends the process there too, as Lambda
  stops the environment.
- Logs: what the function prints or logs from its own threads is captured (`ThreadRoutedStream`);
  everything else in the process still reaches the console.
- Memory: Max Memory Used is what Lambda would count, as `workshop.memory` measures it: the Python
  runtime's share, what the init left resident and the peak the invocation added on top (on a cold
  start, the init's own peak if higher). Over the function's MemorySize, or when Python raises
  MemoryError in it, the invocation fails as Lambda's does (Runtime.OutOfMemory, Max Memory Used at
  the limit) and the environment is discarded. tracemalloc was tried and dropped: it slowed the
  Duration three- to fivefold.
"""

from __future__ import annotations

import contextlib
import ctypes
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workshop import paths
from workshop.lambda_runtime import FunctionError, LambdaContext, load_handler, runtime_environment
from workshop.memory import FunctionMemory, PhaseMeter, guarded

INIT_LIMIT_SECONDS = 10.0  # Lambda's limit on the init phase of on-demand functions
TIMEOUT_TYPES = ("Sandbox.Timedout", "Runtime.InitTimeout")
OUT_OF_MEMORY = "Runtime.OutOfMemory"
STOP_GRACE_SECONDS = 0.2  # how long a timed-out invocation waits for its thread to stop before moving on


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
    note: str = ""  # the workshop's explanation of an error whose document says little (out of memory)

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
        error_type = self.error["errorType"] if self.error is not None else None
        if error_type in TIMEOUT_TYPES:
            message = self.error["errorMessage"].removeprefix(f"{self.request_id} ")
            lines.append(f"{self.timestamp} {self.request_id} {message}")
        elif error_type is not None and error_type != OUT_OF_MEMORY:
            lines.append(f"[ERROR] {error_type}: {self.error['errorMessage']}")
        lines += [f"END RequestId: {self.request_id}", self.report]
        if error_type == OUT_OF_MEMORY:  # the runtime was stopped: Lambda says so after its REPORT
            lines += [self.error["errorMessage"], OUT_OF_MEMORY]
        return "\n".join(lines)

    def result_text(self) -> str:
        """The response as JSON, or the error document, under a heading that says which."""
        if self.error is not None:
            text = "Error (the function failed):\n" + json.dumps(self.error, indent=2)
            return f"{text}\n{self.note}" if self.note else text
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
    def route(self, thread: threading.Thread, log: Any) -> Iterator[None]:
        key = thread.ident or 0
        self._routes[key] = log
        try:
            yield
        finally:
            if self._routes.get(key) is log:  # not when drop_output took the thread over
                del self._routes[key]

    def drop_output(self, thread: threading.Thread) -> Callable[[], None]:
        """From now on the thread's output is dropped (a timed-out run): returns what ends that, once it has ended."""
        key, sink = thread.ident or 0, _Discard()
        self._routes[key] = sink

        def done() -> None:
            if self._routes.get(key) is sink:
                del self._routes[key]

        return done

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


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)

    def writable(self) -> bool:
        return True


@contextlib.contextmanager
def routed_output() -> Iterator[tuple[ThreadRoutedStream, ThreadRoutedStream]]:
    """Install the thread-routed stdout and stderr for as long as functions may run."""
    out, err = ThreadRoutedStream(sys.stdout), ThreadRoutedStream(sys.stderr)
    sys.stdout, sys.stderr = out, err
    try:
        yield out, err
    finally:
        sys.stdout, sys.stderr = out.console, err.console


# --- running -------------------------------------------------------------------------------------


class ProcessExit(BaseException):
    """The function called os._exit: here that would end the whole local runtime, so it is refused
    while the function runs and reported as Lambda reports an exit (Runtime.ExitError)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"os._exit({status})")
        self.status = status


@contextlib.contextmanager
def exits_refused() -> Iterator[None]:
    original = os._exit

    def refuse(status: int) -> None:
        raise ProcessExit(status)

    os._exit = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        os._exit = original


def exit_status(error: BaseException | None) -> int | None:
    """The exit status of a function that exited (os._exit, sys.exit) instead of returning; else None."""
    if isinstance(error, ProcessExit):
        return error.status
    if isinstance(error, SystemExit):
        return error.code if isinstance(error.code, int) else (0 if error.code is None else 1)
    return None


class Stopped(BaseException):
    """Raised in a function's thread that ran past its time: Lambda ends the execution environment there.

    A BaseException, so that the function's `except Exception` does not catch it (a bare `except`
    would: it is raised again until the thread ends)."""


# PyThreadState_SetAsyncExc(thread id, exception): the exception is raised in that thread at its next
# Python instruction; NULL instead of an exception takes a pending one back.
_raise_in = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(("PyThreadState_SetAsyncExc", ctypes.pythonapi))
_take_back = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(("PyThreadState_SetAsyncExc", ctypes.pythonapi))


class FunctionThread:
    """A daemon thread that runs `work()` once started, leaving its result or error in `outcome`;
    `stop()` ends it early (see the module)."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self.outcome: dict[str, Any] = {}
        self._go = threading.Event()
        self._guard = threading.Lock()  # `stop` raises Stopped only while the work has not finished
        self.finished = False
        self.thread = threading.Thread(target=self._run, args=(work,), name="lambda-invocation", daemon=True)
        self.thread.start()

    def start(self) -> None:
        self._go.set()

    def _run(self, work: Callable[[], Any]) -> None:
        try:
            self._go.wait()
            try:
                self.outcome["result"] = work()
            except BaseException as error:  # reported as Lambda reports it, whatever it is
                self.outcome["error"] = error
        except Stopped:  # raised again while the first was being handled
            pass
        while not self.finished:
            try:
                with self._guard:
                    self.finished = True
                    _take_back(threading.get_ident(), None)  # a Stopped raised but not yet delivered
            except Stopped:
                continue

    def stop(self, grace: float = math.inf) -> bool:
        """Raise Stopped in the thread until it ends, for at most `grace` seconds: whether it ended."""
        deadline, pause = time.monotonic() + grace, 0.001
        while True:
            with self._guard:
                if self.finished or not self.thread.is_alive():
                    break
                _raise_in(self.thread.ident, Stopped)
            self.thread.join(min(pause, max(0.0, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                return self.finished
            pause = min(pause * 2, 0.1)  # a blocking call: it takes the exception when it returns
        self.thread.join()
        return True


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


def _stop_then(runner: FunctionThread, ends: list[Callable[[], None]]) -> None:
    runner.stop()
    for end in ends:
        end()


class ExecutionEnvironment:
    """One function's execution environment: created by the first invocation, reused by the next."""

    def __init__(self, spec: FunctionSpec, stdout: ThreadRoutedStream, stderr: ThreadRoutedStream) -> None:
        self.spec = spec
        self._stdout, self._stderr = stdout, stderr
        self._handler: Any = None
        self._memory = FunctionMemory(spec.code, spec.memory_mb, paths.relative(spec.folder.parent / "template.yaml"))
        self.invocations = 0

    @property
    def warm(self) -> bool:
        return self._handler is not None

    def discard(self) -> None:
        """Lambda starts a new environment for the next invocation (after a timeout, running out of memory,
        or a failed init)."""
        self._handler = None
        self._memory.held_kib = 0

    def _in_function_thread(self, work, limit: float, log: io.StringIO) -> tuple[bool, Any, BaseException | None, float]:
        """Run `work()` for at most `limit` seconds, its output into `log`: (finished, result, error, seconds).

        Past `limit` the thread is stopped (see the module): a run that does not stop within
        STOP_GRACE_SECONDS goes on being stopped in the background, its output dropped."""
        runner = FunctionThread(work)
        thread = runner.thread
        with self._stdout.route(thread, log), self._stderr.route(thread, log), guarded(self.spec.memory_mb), exits_refused():
            started = time.perf_counter()
            runner.start()
            thread.join(limit)
            seconds = time.perf_counter() - started  # what Lambda reports: not the time taken to stop it
            if not runner.finished:
                if not runner.stop(STOP_GRACE_SECONDS):
                    ends = [self._stdout.drop_output(thread), self._stderr.drop_output(thread)]
                    threading.Thread(target=_stop_then, args=(runner, ends), name="lambda-timed-out", daemon=True).start()
                return False, None, None, seconds
        thread.join()
        return True, runner.outcome.get("result"), runner.outcome.get("error"), seconds

    def invoke(self, event: Any, request_id: str | None = None) -> Invocation:
        spec = self.spec
        invocation = Invocation(spec.logical_id, request_id or str(uuid.uuid4()), event, memory_mb=spec.memory_mb)
        log = io.StringIO()
        with environment_of(spec):
            init_done, init_error, used_mb = True, None, 0
            if not self.warm:
                _reset_powertools_cold_start((self._stdout, self._stderr))
                meter = PhaseMeter()
                init_done, handler, init_error, seconds = self._in_function_thread(
                    lambda: load_handler(spec.folder, spec.handler), INIT_LIMIT_SECONDS, log
                )
                invocation.init_ms = seconds * 1000
                used_mb = self._memory.after_init(meter.result())
                if init_done and init_error is None and used_mb <= spec.memory_mb:
                    self._handler = handler
            context = LambdaContext(
                function_name=spec.physical_name,
                memory_limit_in_mb=spec.memory_mb,
                timeout_seconds=spec.timeout_seconds,
                aws_request_id=invocation.request_id,
            )
            if self.warm:
                handler = self._handler
                meter = PhaseMeter()
                done, response, error, seconds = self._in_function_thread(lambda: handler(event, context), spec.timeout_seconds, log)
                invocation.duration_ms = seconds * 1000
                used_mb = max(used_mb, self._memory.after_invocation(meter.result()))
            else:
                done, response, error = init_done, None, init_error
        invocation.max_memory_used_mb = used_mb
        invocation.timestamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        invocation.log_lines = log.getvalue().splitlines()
        self.invocations += 1

        exited = exit_status(init_error or error)
        # Lambda stops a function the moment it goes over its memory: before it can fail any other way.
        if used_mb > spec.memory_mb or isinstance(error, MemoryError):
            ran_out = self._memory.out_of_memory(
                used_mb if used_mb > spec.memory_mb else None, at_import=not self.warm
            )
            invocation.error = {
                "errorMessage": f"RequestId: {invocation.request_id} Error: Runtime exited with error: signal: killed",
                "errorType": OUT_OF_MEMORY,
            }
            invocation.note = str(ran_out).removeprefix(f"{OUT_OF_MEMORY}: ")
            invocation.max_memory_used_mb = spec.memory_mb  # as Lambda shows it: the limit, reached
            self.discard()
        elif exited is not None:
            invocation.error = {
                "errorMessage": f"RequestId: {invocation.request_id} Error: Runtime exited with error: exit status {exited}",
                "errorType": "Runtime.ExitError",
            }
            self.discard()
        elif not init_done:
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
