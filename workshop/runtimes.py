"""Lambda's Python runtimes: when Lambda deprecates each, and which runtime follows it.

The dates come from the lifecycle data cfn-lint ships (cfnlint/data/AdditionalSpecs/
LmbdRuntimeLifecycle.json), which its maintainers keep in step with the AWS Lambda Developer Guide's
"Lambda runtimes" page; a cfn-lint upgrade brings new dates. Where the two ever disagree, the workshop
follows cfn-lint's data (docs/deploy.md says so). The template checks fail once a chosen runtime is
within a year of its deprecation, which is the point.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from functools import cache
import importlib.util
from pathlib import Path
from typing import NamedTuple

NOTICE = timedelta(days=365)
LIFECYCLE = "data/AdditionalSpecs/LmbdRuntimeLifecycle.json"  # inside the cfnlint package


class Lifecycle(NamedTuple):
    deprecated: date  # Lambda stops security patches and support
    create_block: date | None  # from then on, no new function can use it
    update_block: date | None  # from then on, no function using it can be updated
    successor: str | None  # the runtime to move to


@cache
def python_lifecycles() -> dict[str, Lifecycle]:
    """Each Python runtime's lifecycle, from cfn-lint's data."""
    # Found, not imported: importing cfnlint costs seconds of CPU, inside a grader's check.
    package = importlib.util.find_spec("cfnlint")
    if package is None or not package.submodule_search_locations:
        raise RuntimeError("cfn-lint is not installed: `make check` installs it")
    text = (Path(package.submodule_search_locations[0]) / LIFECYCLE).read_text(encoding="utf-8")

    def day(value: str | None) -> date | None:
        return date.fromisoformat(value) if value else None

    return {
        runtime: Lifecycle(date.fromisoformat(dates["deprecated"]), day(dates.get("create-block")), day(dates.get("update-block")), dates.get("successor"))
        for runtime, dates in json.loads(text).items()
        if runtime.startswith("python") and dates.get("deprecated")
    }


def problem_with(runtime: object, today: date | None = None) -> str | None:
    """Why `runtime` is not a good choice today, or None when it is current for at least a year."""
    today = today or date.today()
    lifecycle = python_lifecycles().get(str(runtime))
    if lifecycle is None:
        known = ", ".join(sorted(python_lifecycles(), key=_version, reverse=True))
        return f"{runtime!r} is not a Python runtime of Lambda's (known: {known})"
    move = f"; move to {lifecycle.successor}" if lifecycle.successor and lifecycle.successor != runtime else ""
    blocks = ""
    if lifecycle.create_block:
        blocks = f" (no new function can use it from {lifecycle.create_block:%d %B %Y}"
        blocks += f", no update from {lifecycle.update_block:%d %B %Y})" if lifecycle.update_block else ")"
    if lifecycle.deprecated <= today:
        return f"{runtime} was deprecated by Lambda on {lifecycle.deprecated:%d %B %Y}{blocks}{move}"
    if lifecycle.deprecated - today < NOTICE:
        return f"{runtime} is deprecated by Lambda on {lifecycle.deprecated:%d %B %Y}, less than a year from now{blocks}{move}"
    return None


def _version(runtime: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", runtime))


class PowertoolsLayer(NamedTuple):
    major: int
    runtime: str  # as Lambda names it: python3.13
    architecture: str  # arm64 or x86_64
    version: int


# The public layers' names since Powertools v3: AWSLambdaPowertoolsPythonV<major>-python<3XX>-<arch>.
_POWERTOOLS_LAYER = re.compile(r"layer:AWSLambdaPowertoolsPythonV(\d+)-python3(\d+)-(arm64|x86_64):(\d+)")


def powertools_layer(arn: str) -> PowertoolsLayer | None:
    """What a Powertools layer ARN says (major version, runtime, architecture), or None for any other."""
    found = _POWERTOOLS_LAYER.search(arn)
    if found is None:
        return None
    major, minor, architecture, version = found.groups()
    return PowertoolsLayer(int(major), f"python3.{minor}", architecture, int(version))
