"""Helpers for grader modules: call the learner's code and explain, in plain words, what went wrong.

A grader failure is an AssertionError whose message is written for the learner: what was sent, what
came back, what was expected, and where in their own code to look. The plugin prints that message
alone, never a traceback from the grader's own code.
"""

from __future__ import annotations

import base64
import functools
import json
import linecache
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.batch.exceptions import BaseBatchProcessingError

from workshop import paths
from workshop.lambda_runtime import FunctionError

LEARNER_TREES = (paths.LABS, paths.SOLUTIONS)
MAX_FRAMES = 3

# Errors every lab meets, keyed by (exception type name, a piece of its message), with what they mean.
MISSING_RESOURCE = (
    "Your code asked for an AWS resource that does not exist here. The grader creates its resources "
    "with random names and passes them in environment variables: read names from os.environ, never "
    "hard-code them."
)
KNOWN_ERRORS = [
    ("ResourceNotFoundException", "", MISSING_RESOURCE),
    ("NoSuchBucket", "", MISSING_RESOURCE),
    ("QueueDoesNotExist", "", MISSING_RESOURCE),
    ("NotFoundException", "Topic does not exist", MISSING_RESOURCE),
    ("TypeError", "Float types are not supported", "DynamoDB takes numbers as decimal.Decimal, never float."),
    (
        "ConditionalCheckFailedException",
        "",
        "The conditional write found the item already there: for a duplicate delivery that is success; "
        "catch table.meta.client.exceptions.ConditionalCheckFailedException.",
    ),
    (
        "TypeError",
        "Object of type Decimal is not JSON serializable",
        "json.dumps cannot write a Decimal (DynamoDB returns numbers as Decimal): write str(value), "
        "which stays exact; float(value) loses the exact figure.",
    ),
    (
        "ZeroDivisionError",
        "",
        "A division by a count that can be zero: an hour without orders (or an empty batch) is a "
        "result, not an error.",
    ),
    (
        "IdempotencyPersistenceLayerError",
        "ResourceNotFoundException",
        "Powertools Idempotency could not find its table: give DynamoDBPersistenceLayer "
        'table_name=os.environ["IDEMPOTENCY_TABLE"], the table the grader creates.',
    ),
    (
        "IdempotencyPersistenceLayerError",
        "Missing the key",
        "Powertools Idempotency writes its records under the partition key id: the idempotency "
        "table's key must be id (a string).",
    ),
    (
        "RuntimeError",
        "from keyword arguments",
        'A function decorated with @idempotent_function(data_keyword_argument="record") must be called '
        "with that keyword: notify(record=record), not notify(record).",
    ),
    (
        "ClientError",
        "Missing the key",
        "The item lacks the table's key attribute (named in the error): write each item with the key "
        "the table's KeySchema defines.",
    ),
]


class LearnerCodeError(AssertionError):
    """The learner's code raised; the message already says where and why."""


@functools.lru_cache(maxsize=1024)  # tracebacks name the same few files again and again (a resolve is a few stats)
def in_learner_tree(filename: str) -> bool:
    path = Path(filename).resolve()
    return any(path.is_relative_to(tree) for tree in LEARNER_TREES)


def learner_frames(error: BaseException) -> list[traceback.FrameSummary]:
    """The frames of `error`'s traceback that are in labs/ or solutions/, innermost last."""
    frames = traceback.extract_tb(error.__traceback__)
    if isinstance(error, SyntaxError) and error.filename:
        # The frame of a syntax error is the line that would not parse, not a frame that ran.
        line = linecache.getline(error.filename, error.lineno or 0)
        frames.append(traceback.FrameSummary(error.filename, error.lineno or 0, "<module>", line=line))
    return [frame for frame in frames if in_learner_tree(frame.filename)]


def where(error: BaseException) -> str:
    """Where in the learner's files `error` came from, as indented lines (empty when it did not)."""
    lines = []
    for frame in learner_frames(error)[-MAX_FRAMES:]:
        place = "at import" if frame.name == "<module>" else f"in {frame.name}()"
        lines.append(f"  {paths.relative(Path(frame.filename))}, line {frame.lineno}, {place}")
        if frame.line:
            lines.append(f"      {frame.line.strip()}")
    return "\n".join(lines)


def known_meaning(error: BaseException) -> str:
    kind, text = type(error).__name__, str(error)
    return next((advice for name, part, advice in KNOWN_ERRORS if kind == name and part in text), "")


def describe(error: BaseException) -> str:
    """The error, where in the learner's code it came from, and what it usually means."""
    if isinstance(error, BaseBatchProcessingError):
        return _describe_batch_error(error)
    lines = [f"{type(error).__name__}: {error}".rstrip(": "), where(error), known_meaning(error)]
    return "\n".join(line for line in lines if line)


def _describe_batch_error(error: BaseBatchProcessingError) -> str:
    """Powertools' error when every record of a batch failed, briefly: its own text holds the full
    traceback of every record, library frames included, which is too much and not the learner's."""
    children = [child for _, child, _ in error.child_exceptions or [] if child is not None]
    if not children:
        return f"{type(error).__name__}: {error.msg}"
    kinds = ", ".join(f"{count} {kind}" for kind, count in Counter(type(c).__name__ for c in children).items())
    return (
        f"{type(error).__name__}: every record of the batch failed ({kinds}), so Powertools failed the "
        f"whole invocation. The first record's error:\n{describe(children[0])}"
    )


@contextmanager
def learner_code(action: str, advice: str = "") -> Iterator[None]:
    """Run the learner's code; if it raises, fail with what was being done, the error and where."""
    try:
        yield
    except (AssertionError, FunctionError):
        raise  # already in the learner's words (a missing handler, a function out of memory)
    except Exception as error:
        message = f"{action} raised {describe(error)}"
        if advice:
            message += f"\n{advice}"
        raise LearnerCodeError(message) from error


@dataclass
class ApiResponse:
    """An API Gateway proxy response, checked for shape and with its body decoded."""

    status: int
    headers: dict[str, str]
    body: Any
    raw: dict

    def text(self) -> str:
        return json.dumps(self.body) if not isinstance(self.body, str) else self.body


def parse_api_response(response: object, request: str) -> ApiResponse:
    """Check `response` has the proxy-integration shape API Gateway needs, and decode its body."""
    if not isinstance(response, dict) or not isinstance(response.get("statusCode"), int):
        raise AssertionError(
            f"{request} returned {response!r:.300}\n"
            "API Gateway needs a dict with an integer 'statusCode', 'headers' and a string 'body' "
            "(the Powertools resolver's app.resolve(event, context) builds it for you)."
        )
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", errors="replace")
    try:
        decoded: Any = json.loads(body) if body else None
    except json.JSONDecodeError:
        decoded = body
    headers = {str(k).lower(): str(v) for k, v in (response.get("headers") or {}).items()}
    for key, values in (response.get("multiValueHeaders") or {}).items():
        headers.setdefault(str(key).lower(), ", ".join(map(str, values)))
    return ApiResponse(response["statusCode"], headers, decoded, response)


def call_api(handler: Callable, event: dict, context: object, advice: str = "") -> ApiResponse:
    """Send an API Gateway event to the learner's handler and return the decoded response."""
    request = f"{event.get('httpMethod')} {event.get('path')}"
    with learner_code(f"{request} (your lambda_handler)", advice):
        response = handler(event, context)
    return parse_api_response(response, request)
