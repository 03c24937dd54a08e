"""Property-based tests (Hypothesis) of the `workshop` command: whatever arguments, event files, bodies,
keys, attributes and times it is given, it never prints a traceback. It exits 0 or 1 after a normal
run, or 2 with a one-line `workshop: ...` message (or argparse's usage error).

The command runs in this process (`workshop.cli.main`) with stdout and stderr encoded as a UTF-8
terminal encodes them (stdout strict, stderr backslashreplace): an exception escaping main(), other
than argparse's SystemExit, is a failure. So that hundreds of cases stay fast, each test opens its lab's
stack once and every run of a verb reuses it (`shared`, in place of LocalLab in workshop/local/commands.py);
test_bad_input.py runs the real command in fresh processes. Examples are derandomized with a fixed budget
(EXAMPLES); the number of generated cases that ran is printed at the end of the module.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from workshop import cli, manifest, paths
from workshop.local import LocalLab, commands

pytestmark = pytest.mark.timeout(300)

EXAMPLES = {
    "invoke": 20, "upload": 25, "send": 20, "tick": 30, "publish": 20,
    "hint": 40, "check": 30, "start-api": 30, "anything": 60,
}
RAN: Counter = Counter()
CODES: Counter = Counter()  # exit codes of the runs, for the summary line


def budget(name: str):
    return settings_for(EXAMPLES[name])


def settings_for(examples: int):
    """A fixed budget of generated cases, the same on every run (both property test files use it)."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,  # the same cases on every run: CI is deterministic
        database=None,  # no example database: every run is the budgeted, derandomized cases
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


@pytest.fixture(scope="module", autouse=True)
def _count_cases(request):
    """Print how many generated cases ran, past pytest's capture."""
    yield
    line = (
        f"{__name__}: {sum(RAN.values())} generated cases ({', '.join(f'{k} {v}' for k, v in RAN.items())}); "
        f"exit codes: {', '.join(f'{code}: {n}' for code, n in sorted(CODES.items()))}"
    )
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter and capture:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)


# --- running the command as a terminal would -----------------------------------------------------------


class Terminal(io.TextIOBase):
    """sys.stdout or sys.stderr of a UTF-8 terminal: what cannot be encoded fails (stdout) or is escaped (stderr)."""

    def __init__(self, errors: str) -> None:
        self._errors = errors
        self._buffer = io.BytesIO()

    @property
    def encoding(self) -> str:
        return "utf-8"

    @property
    def errors(self) -> str:
        return self._errors

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer.write(text.encode("utf-8", self._errors))
        return len(text)

    def take(self) -> str:
        text = self._buffer.getvalue().decode("utf-8", "replace")
        self._buffer = io.BytesIO()
        return text


class Exited(Exception):
    """os._exit, called by the command after a timed-out function: here it would end the test run."""


@contextlib.contextmanager
def terminal():
    """Install the terminal's streams for the test (opened labs route their functions' output inside them)."""
    saved = sys.stdout, sys.stderr, os._exit
    out, err = Terminal("strict"), Terminal("backslashreplace")

    def exit_(status: int) -> None:
        raise Exited(status)

    sys.stdout, sys.stderr, os._exit = out, err, exit_
    try:
        yield out, err
    finally:
        sys.stdout, sys.stderr, os._exit = saved


def run(argv: list[str]) -> tuple[int, str, str]:
    """`workshop ARGV` in this process: its exit code, stdout and stderr."""
    out, err = sys.stdout, sys.stderr
    while hasattr(out, "console"):  # an open lab's thread-routed streams, around the terminal's
        out, err = out.console, err.console
    out.take(), err.take()
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse: a usage error (2) or --help (0)
        code = exit_.code
    except Exited as exited:
        code = exited.args[0]
    sys.stdout.flush()
    CODES[code] += 1
    return code, out.take(), err.take()


def assert_answered(argv: list[str], code: int, out: str, err: str) -> None:
    """A normal run (0, 1), or 2 and one line that says what is wrong; never a traceback."""
    shown = f"workshop {' '.join(repr(a) for a in argv)[:500]}\nexit {code}\nstdout: {out[-1500:]}\nstderr: {err[-1500:]}"
    assert "Traceback (most recent call last)" not in out + err, shown
    assert code in (0, 1, 2), shown
    if code == 2:  # one `workshop: ` message, or argparse's usage error: `usage: ...`, `workshop VERB: error: ...`
        refusals = [line for line in err.split("\n") if line.startswith("workshop: ")]
        assert len(refusals) == 1 or (err.startswith("usage: ") and ": error: " in err), shown


class Shared:
    """The lab the test opened, handed to a verb in place of a new LocalLab: `with` neither opens nor closes it."""

    def __init__(self, lab: LocalLab) -> None:
        self._lab = lab

    def __getattr__(self, name: str):
        return getattr(self._lab, name)

    def __enter__(self) -> LocalLab:
        return self._lab

    def __exit__(self, *exc_info: object) -> None:
        return None


@contextlib.contextmanager
def shared(number: int, monkeypatch: pytest.MonkeyPatch):
    """Open lab `number` once; every verb that names it (by any key, either target) gets that one."""
    with terminal(), LocalLab(number, "solutions") as lab:

        def local_lab(key: str | int, target: str = "labs"):
            if manifest.find(str(key)).number == number:
                return Shared(lab)
            return LocalLab(key, target)  # lab 6 (no functions) is refused here, before anything opens

        monkeypatch.setattr(commands, "LocalLab", local_lab)
        yield lab


# --- what a learner may type -----------------------------------------------------------------------------

# An argument as a shell hands it over: any text but NUL; bytes that are not UTF-8 arrive as lone
# surrogates (U+DC80..U+DCFF, Python's surrogateescape).
ARG = st.text(
    st.characters(exclude_characters="\x00", exclude_categories=("Cs",)) | st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF),
    max_size=30,
)
LONG = st.integers(200, 5000).map(lambda n: "a" * n)  # longer than a file name may be
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)


def resolves(key: str) -> bool:
    try:
        manifest.find(key)
    except LookupError:
        return False
    return True


def mostly(usual, odd):
    """Three draws in four from `usual`, so that most runs get past the first check to the next one."""
    return st.one_of(usual, usual, usual, odd)


def lab_keys(number: int):
    """Ways to name the lab a test opened, lab 6 (no functions of its own), and names of no lab."""
    lab = manifest.find(str(number))
    return mostly(st.sampled_from([str(number), f"0{number}", lab.id[:5], lab.id]), st.just("6") | ARG.filter(lambda key: not resolves(key)))


def options(*pairs):
    """Each option given or left out, in any order (argparse takes them so)."""
    return st.tuples(*(st.none() | value.map(lambda v, flag=flag: [flag, v]) for flag, value in pairs)).flatmap(
        lambda chosen: st.permutations([c for c in chosen if c is not None])
    ).map(lambda chosen: [token for pair in chosen for token in pair])


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def file_contents(events: list[dict]):
    """What a file given as --event may hold: any JSON value, the lab's events with a field changed, JSON
    nested deeper than Python's recursion limit, a number of more than 4,300 digits, a huge string, bytes
    that are not UTF-8."""
    changed = st.sampled_from(events).flatmap(
        lambda event: st.sampled_from(sorted(event)).flatmap(lambda key: JSON_VALUES.map(lambda value: {**event, key: value}))
    )
    texts = st.one_of(
        JSON_VALUES.map(json.dumps), changed.map(json.dumps),
        st.integers(500, 50_000).map(nested), st.integers(4_400, 10_000).map(lambda n: "9" * n),
        st.integers(1, 300_000).map(lambda n: json.dumps("x" * n)),
        st.just('{"Records": [{"body": "half a character: \\ud800"}]}'),
    )
    return texts.map(lambda text: text.encode("utf-8", "surrogatepass")) | st.binary(max_size=100)


def lab_events(number: int) -> list[dict]:
    folder = manifest.find(str(number)).folder("solutions") / "events"
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))]


class File(bytes):
    """A file to write before the command runs (strategies only describe it: drawing has no side effect)."""

    suffix = ".json"


def file_of(content: bytes, suffix: str = ".json") -> File:
    file = File(content)
    file.suffix = suffix
    return file


class Files:
    """The examples' files, each written under a new name just before its run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def write(self, content: bytes, suffix: str = ".json") -> str:
        self.count += 1
        path = self.folder / f"file{self.count}{suffix}"
        path.write_bytes(content)
        return str(path)

    def argv(self, tokens: list) -> list[str]:
        """The arguments, each File written and replaced by its path."""
        return [self.write(token, token.suffix) if isinstance(token, File) else token for token in tokens]


def event_argument(number: int):
    """--event: an event of the lab by name, any text, a name too long for the file system, or a file."""
    names = sorted(p.stem for p in (manifest.find(str(number)).folder("solutions") / "events").glob("*.json"))
    written = st.builds(file_of, file_contents(lab_events(number)), st.sampled_from([".json", ".json", ".txt"]))
    return mostly(st.sampled_from(names) | written, ARG | LONG.map("{}.json".format))


# --- the verbs that drive a lab's functions ---------------------------------------------------------------


def invoke_any(number: int, functions: list[str], files: Files):
    """`workshop invoke` of the open lab with any function, event (by name or file) and --repeat."""

    @budget("invoke")
    @given(
        lab=lab_keys(number),
        function=mostly(st.sampled_from(functions), ARG),
        rest=options(("--event", event_argument(number)), ("--repeat", mostly(st.integers(1, 2).map(str), st.integers(-1, 0).map(str) | ARG))),
    )
    @example(lab="6", function=functions[0], rest=[])
    # Found by this property (issue 16): each of these files or names was a traceback.
    @example(lab=str(number), function=functions[0], rest=["--event", file_of(nested(100_000).encode())])
    @example(lab=str(number), function=functions[0], rest=["--event", file_of(b"9" * 5000)])
    @example(lab=str(number), function=functions[0], rest=["--event", "a" * 300 + ".json"])
    @example(lab=str(number), function=functions[0], rest=["--event", "a" * 300])
    def invoke(lab, function, rest):
        RAN["invoke"] += 1
        argv = files.argv(["invoke", lab, function, *rest])
        assert_answered(argv, *run(argv))

    return invoke


def test_invoke_and_upload_answer_any_arguments(monkeypatch, tmp_path):
    files = Files(tmp_path)
    with shared(2, monkeypatch):

        @budget("upload")
        @given(
            lab=lab_keys(2),
            file=mostly(st.binary(max_size=300).map(lambda content: file_of(content, ".csv")), ARG | LONG),
            rest=options(
                ("--key", mostly(ARG.map("uploads/{}.csv".format), ARG | st.integers(1000, 1100).map(lambda n: "uploads/" + "k" * n))),
                ("--bucket", mostly(st.just("UploadsBucket"), st.just("ResultsBucket") | ARG)),
            ),
        )
        # Found by this property (issue 16): a name longer than the file system takes was a traceback (OSError).
        @example(lab="2", file="a" * 300, rest=[])
        def upload(lab, file, rest):
            RAN["upload"] += 1
            argv = files.argv(["upload", lab, file, *rest])
            assert_answered(argv, *run(argv))

        upload()

        invoke_any(2, ["csv_summary", "CsvSummaryFunction"], files)()


def test_send_and_invoke_answer_any_bodies_and_events(monkeypatch, tmp_path):
    files = Files(tmp_path)
    order = {"order_id": "o-1", "customer": "c-1", "items": [{"sku": "MUG", "quantity": 1, "unit_price": 3.5}]}
    body = ARG | JSON_VALUES.map(json.dumps) | st.sampled_from(sorted(order)).flatmap(
        lambda key: JSON_VALUES.map(lambda value: json.dumps({**order, key: value}))
    )
    with shared(3, monkeypatch):

        @budget("send")
        @given(
            lab=lab_keys(3),
            bodies=st.lists(body, max_size=4),
            rest=options(("--event", event_argument(3)), ("--function", mostly(st.sampled_from(["order_worker", "OrderWorkerFunction"]), ARG))),
        )
        def send(lab, bodies, rest):
            RAN["send"] += 1
            argv = files.argv(["send", lab, *[token for text in bodies for token in ("--body", text)], *rest])
            assert_answered(argv, *run(argv))

        send()
        invoke_any(3, ["order_worker", "OrderWorkerFunction"], files)()


def test_publish_and_invoke_answer_any_message_attributes_and_subject(monkeypatch, tmp_path):
    files = Files(tmp_path)
    with shared(5, monkeypatch):

        @budget("publish")
        @given(
            lab=lab_keys(5),
            attributes=st.lists(
                mostly(
                    st.just("size=large") | st.tuples(st.from_regex(r"[A-Za-z][\w.-]{0,8}", fullmatch=True), ARG).map("=".join),
                    ARG | st.sampled_from(["size=", "=x", "AWS.x=1"]),
                ),
                max_size=3,
            ),
            rest=options(
                ("--message", ARG | JSON_VALUES.map(json.dumps)),
                ("--subject", ARG),
                ("--event", event_argument(5)),
            ),
        )
        def publish(lab, attributes, rest):
            RAN["publish"] += 1
            argv = files.argv(["publish", lab, *[token for pair in attributes for token in ("--attribute", pair)], *rest])
            assert_answered(argv, *run(argv))

        publish()
        invoke_any(5, ["audit_writer", "analytics_counter", "notifier", "NotifierFunction"], files)()


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


MOMENTS = st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31), timezones=st.none() | st.just(UTC))


def test_tick_answers_any_times(monkeypatch):
    with shared(4, monkeypatch):

        @budget("tick")
        @given(
            lab=lab_keys(4),
            until=st.one_of(ARG, MOMENTS.map(stamp), st.sampled_from(["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-27T14:00:00+25:00"])),
            since=st.none() | ARG | st.timedeltas(timedelta(hours=-1), timedelta(hours=3)),
        )
        @example(lab="4", until="1970-01-01T00:00:00Z", since=None)  # the clock's first moment
        @example(lab="4", until="9999-01-01T00:00:00Z", since=timedelta(hours=2))  # its last
        def tick(lab, until, since):
            RAN["tick"] += 1
            argv = ["tick", lab, until]
            if isinstance(since, timedelta):  # a window of up to three hours before `until`, when it is a time
                try:
                    argv += ["--since", stamp(datetime.fromisoformat(until.replace("Z", "+00:00")) - since)]
                except (ValueError, OverflowError):
                    argv += ["--since", until]
            elif since is not None:
                argv += ["--since", since]
            assert_answered(argv, *run(argv))

        tick()


# --- the verbs that read the course ------------------------------------------------------------------------


def grades(argv: list[str]) -> bool:
    """Whether the command would grade (minutes of pytest): those runs are left to test_cli.py."""
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            args = cli.build_parser().parse_args(argv)
    except SystemExit:
        return False
    if args.command == "hint":  # without a task, hint grades the lab to find the first failing one
        return args.task is None and resolves(args.lab)
    lab = getattr(args, "lab", None)
    return args.command in ("check", "status") and (not lab or resolves(lab))  # `check ""` is `check`


def test_hint_answers_any_lab_task_and_tier():
    with terminal():

        @budget("hint")
        @given(
            lab=st.sampled_from(["1", "lab03", "6", "06", "0", "7"]) | ARG,
            task=st.integers(-3, 12).map(str) | ARG | st.just("9" * 5000),
            tier=st.none() | st.integers(-1, 5).map(str) | ARG,
        )
        def hint(lab, task, tier):
            RAN["hint"] += 1
            argv = ["hint", lab, task, *(["--tier", tier] if tier is not None else [])]
            if grades(argv):  # the task was read as an option (`--tier=2`)
                return
            assert_answered(argv, *run(argv))

        hint()


def test_check_and_status_answer_odd_arguments():
    flags = st.lists(st.sampled_from(["--all", "--json", "-v", "--verbose", "--target", "solutions", "labs", "--nope"]) | ARG, max_size=3)
    with terminal():

        @budget("check")
        @given(command=st.sampled_from(["check", "status"]), lab=st.none() | ARG | st.just("9" * 5000), rest=flags)
        # Found by this property (issue 16): `workshop check ²` (a digit int() cannot read) was a traceback.
        @example(command="check", lab="\u00b2", rest=[])
        @example(command="check", lab="0" * 5000 + "1", rest=[])
        def check(command, lab, rest):
            RAN["check"] += 1
            argv = [command, *([lab] if lab is not None else []), *rest]
            if grades(argv):
                return
            assert_answered(argv, *run(argv))

        check()


def test_start_api_refuses_odd_arguments_before_it_serves():
    with terminal():

        @budget("start-api")
        @given(
            lab=st.sampled_from(["1", "2", "lab06", "6"]) | ARG,
            rest=options(("--port", st.integers(-70_000, 70_000).map(str) | ARG), ("--target", st.sampled_from(["solutions", "labs"]) | ARG)),
        )
        def start_api(lab, rest):
            RAN["start-api"] += 1
            argv = ["start-api", lab, *rest]
            try:
                with contextlib.redirect_stderr(io.StringIO()):
                    args = cli.build_parser().parse_args(argv)
            except SystemExit:
                args = None
            if args is not None and resolves(lab) and manifest.find(lab).number == 1:
                assert 0 <= args.port <= 65535  # lab 1 has routes: it would serve, which test_start_api.py runs
                return
            assert_answered(argv, *run(argv))

        start_api()


# Verbs whose valid runs are slow or change files (grading, watch, reset, verify, bench, doctor): only
# what argparse makes of any tokens is run here.
SAFE = {"invoke", "upload", "send", "publish", "tick", "hint", "start-api"}


def test_any_tokens_get_a_usage_error_or_a_known_command():
    words = st.sampled_from(sorted(SAFE | {"check", "status", "reset", "watch", "solution", "doctor", "verify", "bench", "--help", "-h", "--json"}))
    with terminal():

        @budget("anything")
        @given(argv=st.lists(words | ARG, max_size=5))
        def anything(argv):
            RAN["anything"] += 1
            try:
                with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
                    args = cli.build_parser().parse_args(argv or ["check"])
            except SystemExit as exit_:
                assert exit_.code in (0, 2), (argv, exit_.code)
                code, out, err = run(argv)
                assert_answered(argv, code, out, err)
                return
            if args.command in SAFE and not resolves(args.lab):
                assert_answered(argv, *run(argv))  # a lab that does not exist: refused before anything opens

        anything()


# --- one real process ----------------------------------------------------------------------------------------


def test_the_real_command_answers_a_file_it_cannot_read(tmp_path):
    """The cases above in a fresh process, as a shell runs it: exit 2 and one line, no traceback."""
    deep = tmp_path / "deep.json"
    deep.write_text(nested(100_000), encoding="utf-8")
    for event in (str(deep), "e" * 300 + ".json"):
        result = subprocess.run(
            [*paths.workshop_command(), "invoke", "1", "items_api", "--event", event, "--target", "solutions"],
            cwd=paths.ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
            env={**os.environ, "NO_COLOR": "1"},
        )
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert result.stderr.strip().splitlines()[-1].startswith("workshop: "), result.stderr[-2000:]
