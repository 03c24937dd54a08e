"""Load and call a function the way Lambda does, without Lambda.

Used by the graders (through tests/conftest.py), the notebooks and the benchmarks, so that all three
see the same thing: a fresh import of the function's `app.py` (a cold start), a context object shaped
like Lambda's, and events read from the lab's `events/` folder.
"""

from __future__ import annotations

import copy
import importlib.util
import itertools
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from workshop import paths
from workshop.sandbox import REGION

Handler = Callable[[dict, Any], Any]

_import_counter = itertools.count()


class FunctionError(Exception):
    """The function could not be loaded as Lambda would load it; the message says why, for the learner."""


@dataclass
class LambdaContext:
    """The attributes and method of Lambda's context object that functions and Powertools use."""

    function_name: str = "workshop-function"
    memory_limit_in_mb: int = 128
    timeout_seconds: float = 10.0
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic, repr=False)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:123456789012:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"2026/01/01/[$LATEST]{self.aws_request_id.replace('-', '')}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


def runtime_environment(function_name: str, memory_mb: int = 128) -> dict[str, str]:
    """Variables the Lambda runtime sets for every function (the template's own come on top)."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
    }


def load_event(events_dir: Path, name: str) -> dict:
    """A fresh copy of `events/<name>.json`, so one test's changes never leak into another's."""
    path = events_dir / f"{name.removesuffix('.json')}.json"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in events_dir.glob("*.json"))) or "none"
        raise FunctionError(f"there is no event {paths.relative(path)} (events here: {available})")
    try:
        return copy.deepcopy(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as error:
        raise FunctionError(f"{paths.relative(path)} is not valid JSON: {error}") from None


def import_fresh(app_file: Path) -> ModuleType:
    """Import `app_file` as a brand-new module, as a new Lambda execution environment would.

    Every function is called `app.py`, so each import gets a unique module name. The function's folder
    is on sys.path while it imports (Lambda puts the CodeUri root there), and sibling modules it
    imported are forgotten afterwards so the next cold start imports them afresh too.
    """
    if not app_file.is_file():
        raise FunctionError(f"{paths.relative(app_file)} does not exist")
    folder = str(app_file.parent)
    name = f"workshop_function_{app_file.parent.name}_{next(_import_counter)}"
    spec = importlib.util.spec_from_file_location(name, app_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    before = set(sys.modules)
    sys.modules[name] = module
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        sys.path.remove(folder)
        for added in set(sys.modules) - before - {name}:
            if str(getattr(sys.modules[added], "__file__", "") or "").startswith(folder):
                del sys.modules[added]
    return module


def load_handler(function_dir: Path, handler: str = "app.lambda_handler") -> Handler:
    """Import the function in `function_dir` afresh and return its handler (a cold start).

    Set the function's environment and start moto before calling this: like Lambda, the module's
    top level runs now, and that is where clients are created.
    """
    module_name, _, attribute = handler.rpartition(".")
    module = import_fresh(function_dir / f"{module_name}.py")
    found = getattr(module, attribute, None)
    if not callable(found):
        raise FunctionError(
            f"{paths.relative(function_dir / (module_name + '.py'))} has no function named {attribute!r}; "
            f"the template's Handler ({handler}) tells Lambda to call it"
        )
    return found
