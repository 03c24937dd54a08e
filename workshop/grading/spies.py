"""Watch what the learner's code creates, to grade "initialise outside the handler" in any lab."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import botocore.session
import pytest

from workshop import paths
from workshop.grading.feedback import in_learner_tree


def innermost_learner_line() -> str:
    """Where, in the learner's files, the current call comes from."""
    for frame in reversed(traceback.extract_stack()):
        if in_learner_tree(frame.filename):
            where = f"{paths.relative(Path(frame.filename))}, line {frame.lineno}"
            return f"at {where}: {(frame.line or '').strip()}"
    return "(outside your code)"


class CreationSpy:
    """Records every AWS client (each boto3 client or resource makes one), boto3 session and any
    extra class given (a Powertools resolver, say) created while it is installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *also: type) -> None:
        self.created: list[str] = []
        self._watch(monkeypatch, botocore.session.Session, "create_client", "AWS client")
        self._watch(monkeypatch, boto3.session.Session, "__init__", "boto3 session")
        for kind in also:
            self._watch(monkeypatch, kind, "__init__", kind.__name__)

    def _watch(self, monkeypatch: pytest.MonkeyPatch, owner: type, method: str, label: str) -> None:
        original = getattr(owner, method)

        def spy(*args, **kwargs):
            self.created.append(f"{label} {innermost_learner_line()}")
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, method, spy)

    @contextmanager
    def counting(self) -> Iterator[list[str]]:
        """The creations that happen inside the `with` block."""
        start = len(self.created)
        during: list[str] = []
        yield during
        during.extend(self.created[start:])
