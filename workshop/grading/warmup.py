"""What the grading engine's parent loads once, so that every worker it forks starts warm.

Graders import much of their libraries lazily: moto loads a service's backend, and botocore a
service's model, on the first call to that service. A worker would pay that on every run. Instead,
each worker reports what it loaded (library modules and botocore service models), the engine keeps
that list per lab in the cache folder, and loads it in the parent before it forks the next worker:
`watch` then pays it once, and `check --all` once for all labs.
"""

from __future__ import annotations

import importlib
import json
import sys
import types
from functools import cache
from unittest import mock

from workshop import paths

# Only libraries are ever loaded ahead: never the learner's code, nor a grader module.
LIBRARIES = frozenset(
    {"boto3", "botocore", "s3transfer", "moto", "responses", "werkzeug", "xmltodict", "aws_lambda_powertools",
     "pydantic", "pydantic_core", "jmespath", "dateutil", "yaml", "samtranslator", "cfnlint", "jsonschema",
     "cryptography", "jinja2", "workshop"}
)
LEARNED = paths.CACHE / "warm"


@cache
def shared_session():
    """One boto3 session for every grader in this process (and its workers): each new session reads
    botocore's service models again (~40 ms each), and offline every session is the same."""
    import boto3
    import moto  # noqa: F401  (moto first, so that the session's clients can be mocked)

    return boto3.session.Session()


class _EC2BackendsOnFirstUse:
    """Stands for moto.ec2's `ec2_backends` in moto's SSM until SSM needs EC2 (for parameters that
    name machine images, which no lab uses): importing moto's EC2 costs about 0.8 s."""

    def __getitem__(self, account_id: str):
        from moto.ec2 import ec2_backends

        return ec2_backends[account_id]


def import_moto_ssm() -> None:
    """Import moto's Parameter Store without its EC2 models, lending it the shared session (moto's
    EC2 models create three boto3 sessions to list regions when they are imported)."""
    if "moto.ssm.models" in sys.modules:
        return
    stand_in = None
    if "moto.ec2" not in sys.modules:
        stand_in = types.ModuleType("moto.ec2")
        stand_in.ec2_backends = _EC2BackendsOnFirstUse()  # type: ignore[attr-defined]
        sys.modules["moto.ec2"] = stand_in
    try:
        with mock.patch("boto3.Session", lambda *args, **kwargs: shared_session()):
            import moto.ssm.models  # noqa: F401
    finally:
        if stand_in is not None and sys.modules.get("moto.ec2") is stand_in:
            del sys.modules["moto.ec2"]


def _is_library(name: str) -> bool:
    return name.partition(".")[0] in LIBRARIES


def loaded_since(modules_before: set[str]) -> dict[str, list]:
    """What this process loaded since `modules_before`: library modules (in the order they were
    imported) and the botocore service models of the shared session."""
    modules = [name for name in sys.modules if name not in modules_before and _is_library(name)]
    models = []
    if shared_session.cache_info().currsize:
        loader = shared_session()._session.get_component("data_loader")
        models = [list(key[1:]) for key in getattr(loader, "_cache", {}) if key[0] == "load_service_model"]
    return {"modules": modules, "models": models}


def learned(lab_id: str) -> dict[str, list]:
    try:
        found = json.loads((LEARNED / f"{lab_id}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"modules": [], "models": []}
    return found if isinstance(found, dict) else {"modules": [], "models": []}


def remember(lab_id: str, loaded: dict[str, list]) -> None:
    """Add what a worker of `lab_id` loaded to what the next parent loads ahead for it."""
    known = learned(lab_id)
    merged = {key: known.get(key, []) + [item for item in loaded.get(key, []) if item not in known.get(key, [])] for key in ("modules", "models")}
    if merged == known:
        return
    try:
        LEARNED.mkdir(parents=True, exist_ok=True)
        (LEARNED / f"{lab_id}.json").write_text(json.dumps(merged), encoding="utf-8")
    except OSError:
        pass  # a read-only checkout grades, only without this head start


def load_ahead(lab_id: str) -> None:
    """Load what the workers of `lab_id` loaded last time, here, before they are forked."""
    plan = learned(lab_id)
    if "moto.ssm.models" in plan.get("modules", []):
        import_moto_ssm()
    session = shared_session()
    with mock.patch("boto3.Session", lambda *args, **kwargs: session):
        for name in plan.get("modules", []):
            if name in sys.modules or not isinstance(name, str) or not _is_library(name):
                continue
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 (a head start only: the worker imports what it needs anyway)
                continue
    loader = session._session.get_component("data_loader")
    for model in plan.get("models", []):
        try:
            loader.load_service_model(*model)
        except Exception:  # noqa: BLE001 (a model this botocore does not have: the worker does without)
            continue
