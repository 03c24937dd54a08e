"""The local runtime's output the docs show is what the commands print today, run for real in fresh processes.

Each file of docs/snippets/local/ is either the output of a command (SHOWN, SCRIPTS, the start-api
SESSION) or a file those commands read (INPUTS). A snippet is what a terminal shows: the command's
stderr (its one-line preface) then its stdout. Everything that changes from run to run (request ids,
durations, timestamps, moto's random names, paths of this checkout and of site-packages) is normalised
before the comparison.

Regenerate every snippet (or the ones named) with:

    .venv/bin/python tests/meta/test_local_docs.py [docs/snippets/local/<file>.txt ...]
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest
from test_cli import (
    workshop,  # tests/meta is on sys.path (pytest's default prepend import mode)
)

from workshop import manifest, paths

# Each run creates a lab's stack in moto (about 2 s in a fresh process).
pytestmark = pytest.mark.timeout(120)

LABS = paths.ROOT / "labs"
LOCAL = "docs/snippets/local"
REGENERATE = ".venv/bin/python tests/meta/test_local_docs.py"

# Snippet -> the `workshop` command whose output it is.
SHOWN: dict[str, list[str]] = {
    f"{LOCAL}/lab02-upload.txt": ["upload", "2", f"{LOCAL}/orders.csv", "--target", "solutions"],
    f"{LOCAL}/lab03-send.txt": ["send", "3", "--event", "sqs_orders_mixed", "--target", "solutions"],
    f"{LOCAL}/lab04-tick.txt": [
        "tick", "4", "2026-11-27T14:00:00Z", "--since", "2026-11-27T12:30:00Z", "--target", "solutions",
    ],
    f"{LOCAL}/lab05-publish.txt": ["publish", "5", "--target", "solutions"],
    f"{LOCAL}/lab06-invoke-repeat.txt": [
        "invoke", "1", "items_api", "--event", "api_list_items", "--repeat", "3", "--target", "solutions",
    ],
    f"{LOCAL}/lab07-invoke.txt": [
        "invoke", "7", "order_workflow", "--event", "eventbridge_order_placed", "--target", "solutions",
    ],
}
# Snippet -> the Python script (also shown in the docs) whose output it is.
SCRIPTS: dict[str, str] = {f"{LOCAL}/python_api.txt": f"{LOCAL}/python_api.py"}
# `workshop start-api 1`: the server's console, and the curl session of a second terminal.
SESSION_CONSOLE = f"{LOCAL}/lab01-start-api.txt"
SESSION_CURL = f"{LOCAL}/lab01-curl.txt"
SESSION_ARGS = ["start-api", "1", "--target", "solutions"]
CURLS = [
    "curl -i http://127.0.0.1:3000/items",
    """curl -s -X POST http://127.0.0.1:3000/items -H 'Content-Type: application/json' -d '{"name": "Espresso cup", "price": 12.5}'""",
    "curl -s http://127.0.0.1:3000/items",
    "curl -s http://127.0.0.1:3000/items/no-such-id",
    "curl -s -X DELETE http://127.0.0.1:3000/items",
]
# Files the commands read, shown to learners as they are.
INPUTS = {f"{LOCAL}/orders.csv", f"{LOCAL}/python_api.py"}
ACCESS = re.compile(r"^\d\d:\d\d:\d\d [A-Z]+ /\S* \d{3} \d+ ms")


# --- normalising what changes from run to run ----------------------------------------------------

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
FRAME = re.compile(r'^(?P<indent>\s*)File "(?P<file>[^"]+)", line \d+, in .*$')
LIBRARY = "<site-packages>"
SUBSTITUTIONS = [
    # Paths of this checkout and of the installed libraries.
    (re.compile(r'(?<=["\s])/[^"\\\s]*?/site-packages/'), f"{LIBRARY}/"),
    (re.compile(r'(?<=["\s])/[^"\\\s]*?/(?=(?:labs|solutions)/lab\d\d_)'), "<repo>/"),
    (re.compile(UUID), "<uuid>"),
    # The REPORT line's figures, and start-api's access lines (time, status, duration).
    (re.compile(r"(Duration|Memory Used): \d+(\.\d+)? (ms|MB)"), r"\1: <n> \3"),
    (re.compile(r"^\d\d:\d\d:\d\d (\S+ \S+ \d{3}) \d+ ms", re.M), r"<time> \1 <n> ms"),
    # Powertools' log timestamps and the metrics' (EMF) timestamp: the wall clock.
    (re.compile(r'"timestamp":"[^"]+"'), '"timestamp":"<time>"'),
    (re.compile(r'"Timestamp":\d+'), '"Timestamp":<ms>'),
    # Wall-clock times a function made with datetime.now() (lab 7's placed_at): they have microseconds,
    # which the fixed times of lab 4's schedule have not (those are compared). And how long a durable
    # execution took.
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,6}(?:[+-]\d\d:\d\d|Z)?"), "<now>"),
    (re.compile(r"^(Execution [A-Z_]+ in )\d+(\.\d+)? s\b", re.M), r"\1<n> s"),
    # Names moto gives the stack's resources, with a random suffix.
    (re.compile(r"(workshop-local-[A-Za-z]+)-[A-Za-z0-9]{12}\b"), r"\1-<suffix>"),
    # API Gateway's response headers, and the port.
    (re.compile(r"^Date: .*$", re.M), "Date: <date>"),
    (re.compile(r"^x-amz-apigw-id: .*$", re.M), "x-amz-apigw-id: <id>"),
    (re.compile(r"^X-Amzn-Trace-Id: .*$", re.M), "X-Amzn-Trace-Id: <trace>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
    # Library versions.
    (re.compile(r"errors\.pydantic\.dev/[\d.]+/"), "errors.pydantic.dev/<version>/"),
    # "What the functions wrote": Powertools Idempotency's expiry times and key hashes, and an id that the
    # 300-character cut ends in the middle of.
    (re.compile(r'"(expiration|in_progress_expiration)": \d+'), r'"\1": <epoch>'),
    (re.compile(r"#[0-9a-f]{6,32}"), "#<hash>"),
    (re.compile(r"[0-9a-f]{1,8}(-[0-9a-f]{0,12}){0,4}\.\.\.$", re.M), "<id>..."),
]


def _traceback(text: str) -> str:
    """A traceback without what depends on the installed versions: each run of library frames becomes one
    line, and the ^^^ markers (which differ between Python versions) go."""
    kept: list[str] = []
    library_indent: str | None = None
    for line in text.split("\n"):
        frame = FRAME.match(line)
        if frame and frame["file"].startswith(LIBRARY):
            if library_indent is None:
                kept.append(f'{frame["indent"]}File "{LIBRARY}/..."')
            library_indent = frame["indent"]
            continue
        if library_indent is not None and line.startswith(library_indent + " "):
            continue  # the library frame's statement
        library_indent = None
        if line.strip() and set(line.strip()) <= {"^", "~"}:
            continue
        kept.append(line)
    return "\n".join(kept)


def _log_record(record: dict) -> dict:
    """A Powertools JSON log line: its traceback and stack frames without the libraries'."""
    if isinstance(record.get("exception"), str):
        record["exception"] = _traceback(_substituted(record["exception"]))
    stack = record.get("stack_trace")
    if isinstance(stack, dict) and isinstance(stack.get("frames"), list):
        frames = []
        for frame in stack["frames"]:
            library = _substituted(str(frame.get("file", ""))).startswith(LIBRARY)
            if not (library and frames and frames[-1] == {"file": LIBRARY}):
                frames.append({"file": LIBRARY} if library else frame)
        stack["frames"] = frames
    return record


def _substituted(text: str) -> str:
    for pattern, replacement in SUBSTITUTIONS:
        text = pattern.sub(replacement, text)
    return text


def normalised(text: str) -> str:
    lines = []
    for line in text.split("\n"):
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                pass
            else:
                if isinstance(record, dict):
                    line = json.dumps(_log_record(record), separators=(",", ":"))
        lines.append(line)
    return _traceback(_substituted("\n".join(lines)))


# --- running the commands --------------------------------------------------------------------------


def terminal(run: subprocess.CompletedProcess) -> str:
    """What a terminal shows: the command's preface (stderr) first, then its output."""
    return run.stderr + run.stdout


def shown_command(snippet: str) -> str:
    return f".venv/bin/workshop {' '.join(SHOWN[snippet])}"


def run_shown(snippet: str) -> str:
    return terminal(workshop(LABS, *SHOWN[snippet], timeout=110))


def run_script(snippet: str) -> str:
    run = subprocess.run(
        [sys.executable, SCRIPTS[snippet]],
        cwd=paths.ROOT,
        env={**os.environ, "WORKSHOP_LABS": str(LABS), "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=110,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return terminal(run)


def run_session(port: int = 0) -> tuple[str, str]:
    """Start lab 1's API, run CURLS against it (on the port it took), stop it: (its console, the curl session)."""
    server = subprocess.Popen(
        [*paths.workshop_command(), *SESSION_ARGS, *(["--port", str(port)] if port != 3000 else [])],
        cwd=paths.ROOT,
        env={**os.environ, "WORKSHOP_LABS": str(LABS), "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    console: list[str] = []
    try:
        assert server.stdout is not None
        for line in server.stdout:
            console.append(line)
            if " is running at http://127.0.0.1:" in line:
                break
        else:
            raise AssertionError("workshop start-api stopped before it served:\n" + "".join(console))
        bound = int(re.search(r"127\.0\.0\.1:(\d+)", console[-1])[1])
        session = []
        for command in CURLS:
            curl = subprocess.run(
                command.replace("127.0.0.1:3000", f"127.0.0.1:{bound}"),
                shell=True, capture_output=True, text=True, timeout=30,
            )
            output = curl.stdout.replace("\r\n", "\n")
            session.append(f"$ {command}\n{output}{'' if output.endswith(chr(10)) else chr(10)}")
        # The server prints a request's access line (and the function's log) after it has answered:
        # wait for the last one before stopping it.
        while sum(bool(ACCESS.match(line)) for line in console) < len(CURLS):
            line = server.stdout.readline()
            if not line:
                raise AssertionError("workshop start-api stopped while serving:\n" + "".join(console))
            console.append(line)
        server.send_signal(signal.SIGTERM)  # what Ctrl-C does, for a process without a terminal
        console.append(server.stdout.read())  # up to the end: the process has exited
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return "".join(console), "".join(session)


# --- the tests -------------------------------------------------------------------------------------


def stale(snippet: str) -> str:
    return f"{snippet} is stale: regenerate it with `{REGENERATE} {snippet}`"


@pytest.mark.parametrize("snippet", SHOWN, ids=list(SHOWN))
def test_the_output_shown_in_the_docs_is_what_the_command_prints(snippet):
    shown = (paths.ROOT / snippet).read_text(encoding="utf-8")
    assert normalised(run_shown(snippet)) == normalised(shown), stale(snippet)


@pytest.mark.parametrize("snippet", SCRIPTS, ids=list(SCRIPTS))
def test_the_python_example_prints_what_the_docs_show(snippet):
    shown = (paths.ROOT / snippet).read_text(encoding="utf-8")
    assert normalised(run_script(snippet)) == normalised(shown), stale(snippet)


def test_the_start_api_session_shown_in_the_docs_is_what_the_server_and_curl_print():
    # Not skipped without curl: a skipped check would let the page go stale unnoticed.
    assert shutil.which("curl"), "curl is not installed: the docs show a curl session, which this test replays"
    console, session = run_session(port=0)  # any free port: the port is normalised
    for snippet, actual in ((SESSION_CONSOLE, console), (SESSION_CURL, session)):
        shown = (paths.ROOT / snippet).read_text(encoding="utf-8")
        assert normalised(actual) == normalised(shown), stale(snippet)


# Every file of docs/snippets/local/ that this module regenerates, runs or feeds to a command.
CHECKED = set(SHOWN) | set(SCRIPTS) | {SESSION_CONSOLE, SESSION_CURL} | INPUTS


def test_every_local_snippet_is_checked():
    checked = CHECKED
    present = {paths.relative(p) for p in (paths.ROOT / LOCAL).iterdir() if p.is_file()}
    assert present - checked == set(), f"{LOCAL} holds files no test checks: {sorted(present - checked)}"
    assert checked - present == set(), f"missing from {LOCAL}: {sorted(checked - present)}; regenerate with `{REGENERATE}`"


@pytest.mark.parametrize("lab", manifest.labs(), ids=lambda lab: lab.id)
def test_every_lab_page_shows_a_local_run(lab):
    page = (paths.DOCS / lab.page).read_text(encoding="utf-8")
    assert "## Run it locally" in page, f"docs/{lab.page} has no 'Run it locally' section"
    included = re.findall(r'--8<-- "([^"]+)"', page.split("## Run it locally", 1)[1])
    local = [path for path in included if path.startswith(f"{LOCAL}/") or path == "docs/snippets/invoke-example.txt"]
    assert local, f"docs/{lab.page}'s 'Run it locally' section includes no output of the local runtime"


def test_the_normalising_keeps_what_matters():
    # A different request id or duration is the same output; a different status code is not.
    a = "REPORT RequestId: 0026e1ae-dc55-4edc-b9af-134198809c3c\tDuration: 22.41 ms\n201"
    b = "REPORT RequestId: 1126e1ae-dc55-4edc-b9af-134198809c3c\tDuration: 3.02 ms\n201"
    assert normalised(a) == normalised(b) and normalised(a) != normalised(b.replace("201", "200"))
    # Lab 7's payment id (a uuid) and order time change from run to run; the order's status does not.
    run1 = '{"placed_at": "2026-12-03T22:41:58.501452+00:00", "payment_id": "pay-b3f84160-e999-4edf-bedc-b9cc70e396fb"}\nExecution SUCCEEDED in 0.42 s'
    run2 = '{"placed_at": "2026-12-04T09:02:11.07+00:00", "payment_id": "pay-0a1b2c3d-e999-4edf-bedc-b9cc70e396fb"}\nExecution SUCCEEDED in 1.3 s'
    assert normalised(run1) == normalised(run2) and normalised(run1) != normalised(run2.replace("SUCCEEDED", "FAILED"))
    # Lab 4's fixed schedule times are compared.
    assert normalised("2026-11-27T13:00:00+00:00") != normalised("2026-11-27T14:00:00+00:00")
    frames = 'Traceback:\n  File "/x/.venv/lib/python3.11/site-packages/p/m.py", line 5, in f\n    g()\n    ^^^\n  File "/x/solutions/lab03_sqs_processing/w/app.py", line 70, in h\n    k()'
    assert normalised(frames) == 'Traceback:\n  File "<site-packages>/..."\n  File "<repo>/solutions/lab03_sqs_processing/w/app.py", line 70, in h\n    k()'


# --- regenerating ----------------------------------------------------------------------------------


def regenerate(snippets: list[str]) -> None:
    everything = [*SHOWN, *SCRIPTS, SESSION_CONSOLE]
    for snippet in snippets or everything:
        snippet = snippet.removeprefix("./")
        if snippet in SHOWN:
            output = run_shown(snippet)
        elif snippet in SCRIPTS:
            output = run_script(snippet)
        elif snippet in (SESSION_CONSOLE, SESSION_CURL):
            console, session = run_session(port=3000)  # the default port, as the docs show it
            (paths.ROOT / SESSION_CURL).write_text(session, encoding="utf-8")
            print(f"wrote {SESSION_CURL}")
            snippet, output = SESSION_CONSOLE, console
        else:
            sys.exit(f"{snippet} is not a snippet of this test; the snippets: {', '.join(everything + [SESSION_CURL])}")
        (paths.ROOT / snippet).write_text(output, encoding="utf-8")
        print(f"wrote {snippet}")


if __name__ == "__main__":
    regenerate(sys.argv[1:])
