"""Reproducible installs: constraints.txt locks every dependency at a version pyproject.toml allows, both
commands install through it, and the public CI runs the README's test command with it (and weekly without)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from workshop import paths

LOCK = paths.ROOT / "constraints.txt"
WORKFLOW = paths.ROOT / ".github" / "workflows" / "test.yml"


def locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        found = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if found:
            pins[canonicalize_name(found[1])] = found[2]
    return pins


def requirements() -> list[Requirement]:
    project = tomllib.loads((paths.ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = [r for group in project.get("optional-dependencies", {}).values() for r in group]
    return [Requirement(text) for text in project["dependencies"] + extras]


def test_the_lock_pins_every_requirement_at_a_version_pyproject_allows():
    pins = locked()
    for requirement in requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"constraints.txt does not lock {requirement.name}: run `make upgrade`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt locks {requirement.name}=={pins[name]}, outside pyproject.toml's {requirement.specifier}: run `make upgrade`"
        )


def test_both_commands_install_through_the_lock_and_upgrade_refreshes_it():
    makefile = (paths.ROOT / "Makefile").read_text(encoding="utf-8")
    assert "LOCK   ?= constraints.txt" in makefile
    assert re.search(r"^INSTALL = .*--constraint \$\(LOCK\)", makefile, re.M), "the installs do not use the lock"
    assert re.search(r"^\$\(STAMP\): pyproject.toml \$\(LOCK\)$", makefile, re.M), "a new lock does not reinstall"
    for target in ("$(STAMP)", "$(TEST_STAMP)"):
        recipe = makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
        assert "$(INSTALL)" in recipe and "pip install" not in recipe.replace("pip install --disable-pip-version-check --quiet 'uv==", ""), recipe
    upgrade = makefile.split("\nupgrade:", 1)[1].split("\n\n", 1)[0]
    assert "pip compile pyproject.toml --extra test" in upgrade and "--output-file constraints.txt" in upgrade
    assert "$(MAKE) test" in upgrade, "make upgrade must run the suite against what it locked"


def test_the_public_ci_runs_the_readme_s_test_command_locked_and_weekly_unlocked():
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on:` as True
    assert {"push", "pull_request", "schedule"} <= set(triggers)
    steps = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert any(run.startswith("make test") for run in steps), steps
    assert any("LOCK=" in run for run in steps), "the scheduled run must ignore the lock"
    assert (paths.ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().endswith("make test")


def test_make_test_hands_out_the_longest_files_first():
    """tests/meta/conftest.py puts them first in collection order, and make test's xdist keeps that order."""
    makefile = (paths.ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "--dist=loadfile" in recipe and "--no-loadscope-reorder" in recipe, recipe
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", *sorted(str(path) for path in paths.TESTS.glob("test_*.py")), str(paths.TESTS / "meta"),
         "--target=solutions", "--collect-only", "-q", "-p", "no:cacheprovider"],  # what make test collects
        cwd=paths.ROOT, capture_output=True, text=True, timeout=120,
    )
    files = list(dict.fromkeys(line.split("::")[0] for line in collected.stdout.splitlines() if "::" in line))
    longest = [f"tests/meta/{name}" for name in _longest_first()]
    missing = [name for name in longest if name not in files]
    assert not missing, f"LONGEST_FIRST in tests/meta/conftest.py names files that collect no test: {missing}"
    assert files[: len(longest)] == longest, f"collected first: {files[: len(longest)]}"


def _longest_first() -> tuple[str, ...]:
    spec = importlib.util.spec_from_file_location("meta_conftest", paths.TESTS / "meta" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LONGEST_FIRST
