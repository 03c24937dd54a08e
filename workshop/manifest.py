"""The course manifest, labs/labs.toml: the one ordered list of labs and their tasks."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from workshop import paths


@dataclass(frozen=True)
class Task:
    number: int
    title: str
    hints: tuple[str, ...]  # tiers: a nudge, a pointer, the exact API
    # A hint for one check's failure, by the grader's test name: what a learner whose code fails that
    # check needs, where the task's first tier would answer another question.
    checks: tuple[tuple[str, str], ...] = ()

    def hint_for(self, test_name: str) -> str | None:
        """The hint that fits a failure of `test_name` (parameters ignored), or None."""
        name = test_name.partition("[")[0]
        return dict(self.checks).get(name)


@dataclass(frozen=True)
class LocalSetup:
    """What the local runtime creates beside a lab's stack: what a learner creates by hand before a deploy
    (`secure_parameters`: template parameter -> value of the SecureString it names), and sample data
    (`seed`: DynamoDB table logical id -> JSON file of items, relative to the lab's folder)."""

    secure_parameters: dict[str, str] = field(default_factory=dict)
    seed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Lab:
    number: int
    id: str
    title: str
    pattern: str
    practice: str
    functions: tuple[str, ...]
    minutes: int
    tasks: tuple[Task, ...]
    local: LocalSetup = LocalSetup()

    @property
    def grader(self) -> Path:
        return paths.TESTS / f"test_{self.id}.py"

    @property
    def page(self) -> str:
        """The lab's page, relative to docs/."""
        return f"labs/{self.id}.md"

    def folder(self, target: str) -> Path:
        return paths.target_root(target) / self.id


class ManifestError(ValueError):
    """labs.toml is malformed; the message says where."""


def _task(lab_id: str, number: int, raw: dict) -> Task:
    title, hints = raw.get("title"), raw.get("hints", [])
    if not isinstance(title, str) or not title.strip():
        raise ManifestError(f"{lab_id}, task {number}: 'title' must be a non-empty string")
    if not isinstance(hints, list) or not all(isinstance(h, str) and h.strip() for h in hints):
        raise ManifestError(f"{lab_id}, task {number}: 'hints' must be a list of non-empty strings")
    checks = raw.get("checks", {})
    if not isinstance(checks, dict) or not all(
        name.startswith(f"test_task{number}_") and isinstance(text, str) and text.strip() for name, text in checks.items()
    ):
        raise ManifestError(
            f"{lab_id}, task {number}: 'checks' must map test_task{number}_* test names to non-empty hints"
        )
    return Task(number, title.strip(), tuple(hints), tuple(checks.items()))


def _lab(number: int, raw: dict) -> Lab:
    required = {"id": str, "title": str, "pattern": str, "practice": str, "functions": list, "minutes": int}
    for key, kind in required.items():
        if not isinstance(raw.get(key), kind):
            raise ManifestError(f"lab #{number}: '{key}' is missing or is not a {kind.__name__}")
    tasks = raw.get("task", [])
    if not tasks:
        raise ManifestError(f"{raw['id']}: a lab needs at least one [[lab.task]]")
    local = raw.get("local", {})
    for key in ("secure_parameters", "seed"):
        value = local.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ManifestError(f"{raw['id']}: 'local.{key}' must be a table of strings")
    return Lab(
        number=number,
        id=raw["id"],
        title=raw["title"],
        pattern=raw["pattern"],
        practice=raw["practice"],
        functions=tuple(raw["functions"]),
        minutes=raw["minutes"],
        tasks=tuple(_task(raw["id"], n, t) for n, t in enumerate(tasks, start=1)),
        local=LocalSetup(dict(local.get("secure_parameters", {})), dict(local.get("seed", {}))),
    )


def parse(text: str) -> tuple[Lab, ...]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ManifestError(f"labs.toml is not valid TOML: {error}") from None
    labs = tuple(_lab(n, raw) for n, raw in enumerate(data.get("lab", []), start=1))
    ids = [lab.id for lab in labs]
    if len(set(ids)) != len(ids):
        raise ManifestError(f"labs.toml lists a lab twice: {ids}")
    return labs


RESTORE = "bring it back with `git checkout -- labs/labs.toml`"


@cache
def labs() -> tuple[Lab, ...]:
    """The course's labs, in order; a manifest that is missing, unreadable or lists no lab is a
    ManifestError that says which and how to restore it."""
    where = paths.relative(paths.MANIFEST)
    try:
        text = paths.MANIFEST.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{where} is missing: it lists the labs and their tasks; {RESTORE}") from None
    except UnicodeDecodeError as error:
        raise ManifestError(f"{where} is not UTF-8 text (byte {error.start} is not): {RESTORE}") from None
    except OSError as error:
        raise ManifestError(f"{where} cannot be read ({error.strerror}): {RESTORE}") from None
    try:
        found = parse(text)
    except ManifestError as error:
        raise ManifestError(f"{where}: {error}; {RESTORE} if you did not mean to change it") from None
    if not found:
        raise ManifestError(f"{where} lists no lab (no [[lab]] table): {RESTORE}")
    return found


def find(key: str) -> Lab:
    """A lab by id, by number ('1') or by a unique prefix of its id ('lab01')."""
    all_labs = labs()
    # isdecimal, not isdigit: int() cannot read every digit ('²'), nor more than 4,300 of them.
    if key.isdecimal() and len(key) < 100 and 1 <= int(key) <= len(all_labs):
        return all_labs[int(key) - 1]
    matches = [lab for lab in all_labs if lab.id == key] or [lab for lab in all_labs if lab.id.startswith(key)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(lab.id for lab in all_labs)
    raise LookupError(f"no single lab matches {key!r}; the labs are: {known}")
