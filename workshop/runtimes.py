"""Lambda's Python runtimes and the dates Lambda deprecates them.

Source: AWS Lambda Developer Guide, "Lambda runtimes" and "Building Lambda functions with Python",
read 2026-11-27. When AWS publishes a new runtime or moves a date, update this table: the template
checks fail once a chosen runtime is within a year of its deprecation, which is the point.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import NamedTuple

PYTHON_DEPRECATION = {
    "python3.14": date(2030, 6, 30),
    "python3.13": date(2029, 6, 30),
    "python3.12": date(2028, 10, 31),
    "python3.11": date(2026, 6, 30),
    "python3.10": date(2026, 6, 30),
    "python3.9": date(2025, 12, 15),
    "python3.8": date(2024, 10, 14),
}

NOTICE = timedelta(days=365)


def problem_with(runtime: object, today: date | None = None) -> str | None:
    """Why `runtime` is not a good choice today, or None when it is current for at least a year."""
    today = today or date.today()
    deprecated_on = PYTHON_DEPRECATION.get(str(runtime))
    if deprecated_on is None:
        known = ", ".join(PYTHON_DEPRECATION)
        return f"{runtime!r} is not a Python runtime this workshop knows (known: {known})"
    if deprecated_on <= today:
        return f"{runtime} was deprecated by Lambda on {deprecated_on:%d %B %Y}"
    if deprecated_on - today < NOTICE:
        return f"{runtime} is deprecated by Lambda on {deprecated_on:%d %B %Y}, less than a year from now"
    return None


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
