"""Read what a function printed: Powertools' Logger and Metrics write one JSON object per line."""

from __future__ import annotations

import json


def json_lines(text: str) -> tuple[list[dict], list[str]]:
    """The lines of `text` that are JSON objects (log lines, EMF metrics), and the other non-empty lines."""
    parsed, other = [], []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        if isinstance(value, dict):
            parsed.append(value)
        elif line.strip():
            other.append(line.strip())
    return parsed, other
