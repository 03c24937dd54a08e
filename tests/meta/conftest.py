"""Fixtures of the project's own checks that more than one module uses (the graders' are in tests/conftest.py)."""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workshop import paths, templates

# Jupyter installs rfc3987_syntax, which builds an IRI grammar when jsonschema imports it: about 1 s in every
# pytest-xdist worker, as collecting test_notebooks.py imports nbformat. No schema these tests validate (nor
# a notebook's) checks the "iri" format, the one thing the grammar is for.
templates.without_iri_grammar()

# The build folder of `mkdocs build` (git-ignored, removed by `make clean`).
SITE = paths.ROOT / "site"
# The files that take 20 s or more on 2 cores, longest first (measured under `make test`). make test's
# pytest-xdist hands out whole files in collection order: started first, none of them is left to run
# alone at the end while the other workers idle, as test_bench was in xdist's own order (7 min 43 s).
LONGEST_FIRST = ("test_site_in_browser.py", "test_bench.py", "test_cli.py", "test_engine.py", "test_answers.py",
                 "test_invoke.py", "test_bad_input.py", "test_notebooks.py", "test_local.py", "test_local_docs.py",
                 "test_templates.py", "test_memory.py", "test_start_api.py")


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # this process is one of make test's pytest-xdist workers
        atexit.register(_end_without_teardown)


def _end_without_teardown() -> None:
    """The very end of a pytest-xdist worker, its results with the controller: Python's teardown of all
    that its tests loaded (moto, Playwright, Jupyter's clients...) took about 6 s, which make test waited
    for. What of it matters is done here: the atexit functions registered after this one (multiprocessing's,
    temporary folders', the launcher's) have run; of those registered before it, logging's is run now (the
    other is execnet's cleanup of gateways, which a worker never opens), and multiprocessing's again, in case
    it was imported before this was registered (it does nothing the second time); then the output is flushed."""
    import logging

    logging.shutdown()
    multiprocessing_util = sys.modules.get("multiprocessing.util")
    if multiprocessing_util is not None:
        multiprocessing_util._exit_function()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.fixture(scope="session")
def site() -> Path:
    """The site, built strictly once per test run into site/, for the docs, glossary and browser tests.

    Under pytest-xdist (make test) every worker asks for it: the first builds it, holding a lock, and
    the others wait for that build and use it (the run's id, shared by its workers, marks whose it is).
    """
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"single-{os.getpid()}"
    built = SITE / ".built-by"
    paths.WORKSHOP_STATE.mkdir(parents=True, exist_ok=True)
    with open(paths.WORKSHOP_STATE / "site-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if built.is_file() and built.read_text(encoding="utf-8") == run:
            return SITE
        shutil.rmtree(SITE, ignore_errors=True)
        build = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(SITE)],
            cwd=paths.ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
            timeout=300,
        )
        assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stderr[-4000:]}"
        warnings = [line for line in build.stderr.splitlines() if "WARNING" in line]
        assert not warnings, "mkdocs warned:\n" + "\n".join(warnings)
        built.write_text(run, encoding="utf-8")
    return SITE
