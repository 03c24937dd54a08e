"""Reproducible installs: constraints.txt locks every dependency at a version pyproject.toml allows, both
commands install through it, and the public CI runs the README's test command with it (and weekly without)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

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


def test_make_compiles_the_project_s_own_modules_and_again_only_what_changed(tmp_path):
    """Where Python may not write bytecode (PYTHONDONTWRITEBYTECODE), every `workshop` process would compile
    our modules again: make check and make test compile them first, and a broken file stops neither."""
    shutil.copy(paths.ROOT / "Makefile", tmp_path)
    sources = {name: tmp_path / name for name in ("workshop/cli.py", "tests/test_lab.py", "solutions/lab/app.py", "labs/lab/app.py")}
    for source in sources.values():
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("ANSWER = 42\n", encoding="utf-8")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to(sys.executable)
    for made in ("pyproject.toml", "constraints.txt", ".venv/.installed"):  # installed after its inputs changed
        (tmp_path / made).touch()

    def make() -> None:
        run = subprocess.run(["make", "--no-print-directory", "-s", ".venv/.compiled"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=120, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        assert run.returncode == 0, run.stdout + run.stderr

    def compiled_from(source: Path) -> int | None:
        """The source mtime a module's bytecode was compiled from (None: it has none)."""
        cached = Path(importlib.util.cache_from_source(str(source)))
        return int.from_bytes(cached.read_bytes()[8:12], "little") if cached.is_file() else None

    make()
    for name in ("workshop/cli.py", "tests/test_lab.py", "solutions/lab/app.py"):
        assert compiled_from(sources[name]) == int(sources[name].stat().st_mtime), f"{name} was not compiled"
    assert compiled_from(sources["labs/lab/app.py"]) is None, "the learner's labs/ are theirs: Python compiles what they edit"
    edited, untouched = sources["solutions/lab/app.py"], sources["workshop/cli.py"]
    before = Path(importlib.util.cache_from_source(str(untouched))).stat().st_mtime_ns
    edited.write_text("ANSWER = 43\n", encoding="utf-8")
    os.utime(edited, (edited.stat().st_atime + 5, edited.stat().st_mtime + 5))  # a later save, whatever the clock's grain
    make()
    assert compiled_from(edited) == int(edited.stat().st_mtime), "an edited module was not compiled again"
    assert Path(importlib.util.cache_from_source(str(untouched))).stat().st_mtime_ns == before
    untouched.write_text("def broken(:\n", encoding="utf-8")
    os.utime(untouched, (untouched.stat().st_atime + 10, untouched.stat().st_mtime + 10))
    make()  # a file that does not compile is reported by what imports it, not by make
