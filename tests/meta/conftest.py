"""Fixtures of the project's own checks that more than one module uses (the graders' are in tests/conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workshop import paths

# The build folder of `mkdocs build` (git-ignored, removed by `make clean`).
SITE = paths.ROOT / "site"


@pytest.fixture(scope="session")
def site() -> Path:
    """The site, built strictly once per test session into site/, for the docs, glossary and browser tests."""
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
    return SITE
