"""`workshop doctor`: is this machine ready for the workshop? Each problem comes with its fix."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from workshop import manifest, paths, sandbox
from workshop.grading import integrity

MINIMUM_PYTHON = (3, 11)


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True  # optional findings (the deploy step) never fail the doctor


def python_version() -> Finding:
    version = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info >= MINIMUM_PYTHON
    return Finding("Python", ok, f"Python {version}", "install Python 3.11 or newer and run `make clean check`")


def virtual_environment() -> Finding:
    expected = (paths.ROOT / ".venv").resolve()
    inside = sys.prefix != sys.base_prefix and os.path.realpath(sys.prefix) == str(expected)
    detail = f"running from {sys.prefix}"
    return Finding("Virtual environment", inside, detail, "run the workshop through `make check` or `.venv/bin/workshop`")


def installed_packages() -> Finding:
    from packaging.requirements import Requirement

    declared = tomllib.loads((paths.ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    problems = []
    for line in declared:
        requirement = Requirement(line)
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{requirement.name} is missing")
            continue
        if version not in requirement.specifier:
            problems.append(f"{requirement.name} {version} is not {requirement.specifier}")
    detail = "; ".join(problems) or f"{len(declared)} dependencies installed at supported versions"
    return Finding("Packages", not problems, detail, "run `make clean check` to reinstall them")


def offline_guard() -> Finding:
    """The sandbox the graders use really hides credentials and refuses outside connections."""
    environ = dict(os.environ)
    found = sorted(name for name in environ if name.startswith(sandbox.REMOVED_PREFIXES) or name == "AWS_ACCESS_KEY_ID")
    sandbox.fake_aws_environment(environ)
    hidden = environ["AWS_ACCESS_KEY_ID"] == "testing" and not any(n.startswith(sandbox.REMOVED_PREFIXES) for n in environ)
    original, original_ex, lookup = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
    sandbox.block_network()
    try:
        with socket.socket() as probe:
            probe.connect(("192.0.2.1", 443))  # TEST-NET-1: refused by the guard before any packet leaves
        blocked = False
    except sandbox.NetworkBlocked:
        blocked = True
    finally:
        socket.socket.connect, socket.socket.connect_ex = original, original_ex  # type: ignore[method-assign]
        socket.getaddrinfo = lookup
    seen = f" (your shell sets {', '.join(found)}: the graders replace them with fakes)" if found else ""
    return Finding(
        "No real AWS",
        hidden and blocked,
        f"fake credentials and no network beyond this machine while grading{seen}",
        "reinstall the workshop (`make clean check`): its sandbox module is not working",
    )


def graders(root: Path = paths.ROOT) -> Finding:
    """The graders are the ones shipped: a changed one could pass anything (or fail everything)."""
    found = integrity.changes(root)
    if not found:
        return Finding("Graders", True, f"{len(integrity.grader_files(root))} grader files match the workshop as shipped")
    return Finding("Graders", False, "; ".join(change.describe() for change in found), integrity.how_to_restore(found))


def course() -> Finding:
    """labs/labs.toml reads and lists labs: every command starts from it."""
    try:
        labs = manifest.labs()
    except manifest.ManifestError as error:
        return Finding("Course", False, str(error), manifest.RESTORE)
    tasks = sum(len(lab.tasks) for lab in labs)
    return Finding("Course", True, f"{paths.relative(paths.MANIFEST)}: {len(labs)} labs, {tasks} tasks")


def sam_cli() -> Finding:
    found = shutil.which("sam")
    return Finding(
        "AWS SAM CLI (deploying only)",
        bool(found),
        found or "not found",
        "optional: install it to deploy (docs/deploy.md); the labs do not need it",
        required=False,
    )


def aws_credentials() -> Finding:
    files = [os.path.expanduser(p) for p in ("~/.aws/credentials", "~/.aws/config")]
    present = any(os.environ.get(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE")) or any(map(os.path.exists, files))
    return Finding(
        "AWS credentials (deploying only)",
        present,
        "found" if present else "none",
        "optional: `aws configure` (or `aws sso login`) before deploying; the labs never use them",
        required=False,
    )


CHECKS = (python_version, virtual_environment, installed_packages, offline_guard, course, graders, sam_cli, aws_credentials)


def run() -> list[Finding]:
    return [check() for check in CHECKS]


def render(findings: list[Finding]) -> str:
    lines = ["Workshop doctor", ""]
    for finding in findings:
        mark = "✔" if finding.ok else ("✘" if finding.required else "·")
        lines.append(f"  {mark} {finding.name}: {finding.detail}")
        if not finding.ok:
            lines.append(f"      fix: {finding.fix}")
    broken = [f for f in findings if f.required and not f.ok]
    lines += ["", f"{len(broken)} problem(s) to fix." if broken else "Ready: `make check` grades your labs."]
    return "\n".join(lines)
