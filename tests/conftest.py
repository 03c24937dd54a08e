"""Fixtures shared by every grader, and the switch between the learner's code and the reference.

    pytest                       grades labs/ (your code)
    pytest --target=solutions    grades solutions/ (the reference); or WORKSHOP_TARGET=solutions
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from workshop import paths, sandbox, templates
from workshop.grading import warmup
from workshop.grading.performance import parameter_values, resolve
from workshop.grading.plugin import grader_lab
from workshop.lambda_runtime import Handler, LambdaContext, load_event as read_event, load_handler as import_handler
from workshop.lambda_runtime import runtime_environment
from workshop.memory import FunctionMemory

# Before anything can create an AWS client: fake credentials and region, no real endpoint, no network.
sandbox.enter()

pytest_plugins = ["workshop.grading.plugin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--target",
        choices=sorted(paths.TARGETS),
        default=os.environ.get("WORKSHOP_TARGET", "labs"),
        help="which tree the graders read: labs (your code, the default) or solutions (the reference)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"grading: {config.getoption('target')}/"


@pytest.fixture
def target(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("target")


@pytest.fixture
def lab_dir(request: pytest.FixtureRequest, target: str) -> Path:
    """The graded lab's folder in the target tree (the grader module's name says which lab)."""
    lab = grader_lab(request.path)
    assert lab, f"{request.path.name} is not a grader module (tests/test_<lab id>.py)"
    return paths.target_root(target) / lab


@pytest.fixture(scope="session")
def boto3_session():
    """One boto3 session for the whole run: each new one re-reads botocore's service models (~40 ms)."""
    return warmup.shared_session()


@pytest.fixture
def aws(boto3_session) -> Iterator[None]:
    """Every AWS call inside the test goes to moto's in-memory AWS, fresh for each test."""
    import boto3

    from workshop.grading.aws import mock_aws

    with mock_aws():
        boto3.DEFAULT_SESSION = boto3_session  # moto resets it to None; it restores the old one on exit
        yield


@pytest.fixture
def lambda_context(request: pytest.FixtureRequest) -> LambdaContext:
    return LambdaContext(function_name=f"{request.node.name}-function")


@pytest.fixture
def load_event(lab_dir: Path) -> Callable[[str], dict]:
    """load_event("api_list_items") -> a fresh copy of the lab's events/api_list_items.json."""
    return lambda name: read_event(lab_dir / "events", name)


@pytest.fixture
def load_handler(aws: None, lab_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Handler]:
    """load_handler("items_api", TABLE_NAME=...) -> the function's handler, imported as a cold start.

    Like Lambda: the environment is set first, moto is already running, then `app.py` is imported
    afresh under a unique name, so its module-level code (where clients are created) runs again. The
    import and every call are held to the function's MemorySize in the lab's template: over it, they
    raise OutOfMemory (Runtime.OutOfMemory), as Lambda stops the function.
    """

    def load(function: str, **environment: str) -> Handler:
        memory_size = _memory_size(lab_dir, function)
        for name, value in {**runtime_environment(function, memory_size or 128), **environment}.items():
            monkeypatch.setenv(name, value)
        if memory_size is None:
            handler = import_handler(lab_dir / function)
        else:
            template = paths.relative(lab_dir / "template.yaml")
            handler = FunctionMemory(function, memory_size, template).cold_start(lambda: import_handler(lab_dir / function))
        _log_to_current_stdout(monkeypatch)
        return handler

    return load


def _memory_size(lab_dir: Path, function: str) -> int | None:
    """The MemorySize the lab's template deploys the function with (the one whose CodeUri is its folder),
    Lambda's 128 when it sets none; None when the template cannot say, which its own tasks report."""
    try:
        cfn = templates.transformed(lab_dir / "template.yaml")
    except templates.TemplateError:
        return None
    for _, properties in templates.resources_of_type(cfn, "AWS::Lambda::Function"):
        if (properties.get("Code") or {}).get("S3Key") == f"{function}.zip":  # SAM's packaged CodeUri
            try:
                value = resolve(properties.get("MemorySize", 128), cfn, parameter_values(cfn))
            except (ValueError, TypeError):  # a Ref it cannot resolve offline (Unresolved), a malformed Fn::If
                return None
            return templates.as_int(value, None)
    return None


def _log_to_current_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point every Powertools logger's handler at this test's stdout, as a new Lambda process would.

    Powertools configures one handler per service name, once per process, on the stdout of that
    moment; a Logger of the same service in a later test reuses it, and would print to a stdout that
    pytest has since replaced, where the grader (capsys) cannot read it.
    """
    for logger in list(logging.Logger.manager.loggerDict.values()):
        handler = getattr(logger, "powertools_handler", None)
        if isinstance(handler, logging.StreamHandler) and handler.stream not in (sys.stderr, sys.__stderr__):
            monkeypatch.setattr(handler, "stream", sys.stdout)
