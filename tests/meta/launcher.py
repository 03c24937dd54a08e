"""The `workshop` command for the project's own tests, forked from a warm process instead of started cold.

Most of `make test`'s time went into starting `workshop` again and again: each fresh process imports
boto3, moto (its CloudFormation imports every moto service), pytest, Powertools and samtranslator before
it does anything, 0.5 to 1.6 s of CPU, two hundred times a run. Here, each test process keeps one
launcher: a child that has imported those libraries once, and forks a copy of itself per command. The
copy becomes the command: its own session and process group, the caller's stdin, stdout and stderr
(passed over a Unix socket), environment, working folder and arguments; then it runs the console script
itself (`.venv/bin/workshop`) and ends as that script does (workshop/process_exit.py: threads joined,
atexit, the exit code). The workshop's own modules are never imported by the launcher, so each
command imports them fresh under its own environment (paths.py reads WORKSHOP_LABS when imported).

What a fresh process still does that this one does not: the interpreter's start and the libraries'
imports, both the same for every command. Tests that need them cold, or that change how Python starts
(PYTHON* variables, a start method, a preexec_fn), pass `fresh=True` or fall back to subprocess on their
own; `WORKSHOP_TEST_FRESH=1` makes every run fresh, and the bench (`make bench`) only measures fresh ones.

    run(["check", "--json"], cwd=..., env=..., timeout=...) -> subprocess.CompletedProcess
"""

from __future__ import annotations

import atexit
import contextlib
import json
import locale
import os
import runpy
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

# What every `workshop` command imports before it does anything; a name that fails to import is skipped.
PRELOAD = (
    "boto3", "botocore.session", "botocore.client", "botocore.parsers", "botocore.serialize", "botocore.endpoint",
    "moto", "moto.core.models", "moto.backends", "moto.cloudformation.parsing",  # the last imports every moto service
    "pytest", "_pytest.python", "_pytest.main", "_pytest.runner", "_pytest.fixtures", "_pytest.terminal",
    "_pytest.capture", "_pytest.logging", "_pytest.skipping", "_pytest.monkeypatch", "_pytest.tmpdir",
    "aws_lambda_powertools", "aws_lambda_powertools.logging", "aws_lambda_powertools.tracing",
    "aws_lambda_powertools.metrics", "aws_lambda_powertools.event_handler", "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.idempotency", "aws_lambda_powertools.utilities.parameters",
    "aws_lambda_powertools.utilities.parser", "aws_lambda_powertools.utilities.data_classes",
    "aws_lambda_powertools.utilities.typing", "aws_xray_sdk.core", "pydantic", "yaml",
    "samtranslator.translator.transform", "samtranslator.parser.parser", "samtranslator.model",
    "aws_durable_execution_sdk_python", "aws_durable_execution_sdk_python_testing",
)
# Variables that change how Python starts or imports: a run that sets one of them is started fresh.
STARTUP_VARIABLES = ("PYTHON", "WORKSHOP_START_METHOD")
# The environment the launcher starts with, taken when the tests import this module (before any test
# could change os.environ): the libraries it preloads read nothing else.
_BASE_ENVIRONMENT = dict(os.environ)


def can_fork() -> bool:
    return hasattr(os, "fork") and hasattr(socket, "send_fds") and os.environ.get("WORKSHOP_TEST_FRESH") != "1"


def run(arguments: list[str], *, cwd: Path, env: dict[str, str], timeout: float, stdin: int | None = None,
        fresh: bool = False) -> subprocess.CompletedProcess:
    """`workshop ARGUMENTS` as subprocess.run(..., capture_output=True, text=True) runs it, with `stdin`
    (a file descriptor; default /dev/null). Raises subprocess.TimeoutExpired after `timeout` seconds,
    with the command's process group killed."""
    from workshop import paths  # here, not at the top: the launcher itself imports none of the workshop's modules

    command = [*paths.workshop_command(), *arguments]
    if fresh or not can_fork() or changes_startup(env):
        return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL if stdin is None else stdin)
    return _launcher().run(command, cwd, env, timeout, stdin)


def changes_startup(env: dict[str, str]) -> bool:
    """Whether `env` sets, changes or removes a variable that Python or the engine reads as it starts."""
    changed = {name for name in env if env[name] != _BASE_ENVIRONMENT.get(name)} | (set(_BASE_ENVIRONMENT) - set(env))
    return any(name.startswith(STARTUP_VARIABLES) for name in changed)


# --- the test's side ------------------------------------------------------------------------------------------


class _Launcher:
    """One warm launcher process and the socket to it; one command at a time."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.process = subprocess.Popen(
            [sys.executable, __file__, str(theirs.fileno())], pass_fds=[theirs.fileno()], env=_BASE_ENVIRONMENT,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=Path(__file__).parent,
        )
        theirs.close()
        self.socket = ours
        self.lock = threading.Lock()
        self.broken = False
        atexit.register(self.close)

    def close(self) -> None:
        self.socket.close()  # the launcher ends at the end of its socket (closing twice is harmless)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def run(self, command: list[str], cwd: Path, env: dict[str, str], timeout: float,
            stdin: int | None) -> subprocess.CompletedProcess:
        deadline = time.monotonic() + timeout
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        devnull = os.open(os.devnull, os.O_RDONLY) if stdin is None else None
        request = json.dumps({"argv": command, "cwd": str(cwd), "env": env}).encode()
        with self.lock:
            answered = False  # the launcher's two answers (pid, then exit status) were read: in step for the next
            try:
                try:
                    socket.send_fds(self.socket, [request], [stdin if devnull is None else devnull, out_write, err_write])
                finally:
                    for fd in (out_write, err_write, devnull):
                        if fd is not None:
                            os.close(fd)
                pid = int(self._answer(deadline, command, timeout, None))
                try:
                    out, err = _read_until_closed([out_read, err_read], deadline)
                except TimeoutError:
                    _kill_group(pid)
                    self._answer(time.monotonic() + 30, command, timeout, pid)
                    answered = True
                    raise subprocess.TimeoutExpired(command, timeout) from None
                status = int(self._answer(deadline + 30, command, timeout, pid))  # its output closed: it has ended, or nearly
                answered = True
            finally:
                if not answered:
                    self.broken = True  # out of step: the next command gets a new launcher
                for fd in (out_read, err_read):
                    with contextlib.suppress(OSError):
                        os.close(fd)
        return subprocess.CompletedProcess(command, os.waitstatus_to_exitcode(status), _text(out), _text(err))

    def _answer(self, deadline: float, command: list[str], timeout: float, pid: int | None) -> bytes:
        self.socket.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            answer = self.socket.recv(64)
        except TimeoutError:
            if pid is not None:
                _kill_group(pid)
            raise subprocess.TimeoutExpired(command, timeout) from None
        if not answer:
            raise RuntimeError(f"the tests' launcher ({__file__}) ended: exit code {self.process.poll()}")
        return answer


def _read_until_closed(fds: list[int], deadline: float) -> tuple[bytes, bytes]:
    """Everything written to the two pipes until every writer has closed them, as communicate() reads it."""
    chunks: dict[int, list[bytes]] = {fd: [] for fd in fds}
    with selectors.DefaultSelector() as selector:
        for fd in fds:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            for key, _ in selector.select(left):
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    selector.unregister(key.fd)
    return b"".join(chunks[fds[0]]), b"".join(chunks[fds[1]])


def _text(data: bytes) -> str:
    """As subprocess's text mode decodes it: the locale's encoding, strictly, universal newlines."""
    return data.decode(locale.getpreferredencoding(False)).replace("\r\n", "\n").replace("\r", "\n")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


_launchers: dict[int, _Launcher] = {}


def _launcher() -> _Launcher:
    """This process's launcher, started at its first command (a fork of a test process starts its own)."""
    launcher = _launchers.get(os.getpid())
    if launcher is None or launcher.broken or launcher.process.poll() is not None:
        if launcher is not None:
            launcher.close()
        launcher = _launchers[os.getpid()] = _Launcher()
    return launcher


# --- the launcher's side --------------------------------------------------------------------------------------


def _preload() -> None:
    import importlib

    # templates.without_iri_grammar(), written out: the launcher imports no workshop module, whose paths are
    # read from each command's environment when it is imported.
    sys.modules.setdefault("rfc3987_syntax", None)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 (a head start only: the command imports what it needs anyway)
            continue


def _serve(connection: socket.socket) -> dict | None:
    """Fork a command per request until the tests close the socket. Returns, in the forked command
    only, what to run; the launcher itself returns None when it is done."""
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
        except OSError:
            return None
        if not message:
            return None
        pid = os.fork()
        if pid == 0:
            os.setsid()  # a group of its own: a timeout kills it with everything it started
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
            for fd in fds:
                os.close(fd)
            connection.close()
            return json.loads(message)
        for fd in fds:
            os.close(fd)
        connection.sendall(str(pid).encode())
        _, status = os.waitpid(pid, 0)
        connection.sendall(str(status).encode())


def _become(request: dict) -> None:
    """Turn this fork into the command: the script's view of sys.argv and sys.path, the caller's
    environment and folder. Raises SystemExit like the script, so Python ends as it would."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    argv = request["argv"]
    if Path(argv[0]).name == "workshop":  # the console script (paths.workshop_command())
        sys.argv, sys.path[0] = list(argv), str(Path(argv[0]).parent)  # as Python sets them for a script
        runpy.run_path(argv[0], run_name="__main__")
    else:  # python -m workshop ...
        sys.argv, sys.path[0] = [argv[0], *argv[3:]], request["cwd"]
        runpy.run_module("workshop", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the test's terminal is for the tests
    _preload()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # what each command starts with
    job = _serve(socket.socket(fileno=int(sys.argv[1])))
    if job is None:
        os._exit(0)  # the tests are done with it: no teardown of every library it preloaded (about 1 s)
    _become(job)
