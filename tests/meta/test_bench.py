"""The benchmark runs and prints its figures (its numbers are reported, never asserted: see `make bench`)."""

from __future__ import annotations

import subprocess
import sys

from workshop import bench, manifest, paths


def test_bench_measures_every_figure_in_one_quick_run():
    run = subprocess.run(
        [sys.executable, "-m", "workshop", "bench", "--runs", "1", "--no-suite"],
        cwd=paths.ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    for lab in manifest.labs():
        assert f"Grading lab {lab.number} (the reference solution)" in run.stdout
    for scenario in bench.SCENARIOS.values():
        number = manifest.find(scenario.lab).number
        for label in ("clients at import", "clients in the handler"):
            assert f"Lab {number} cold start, {label}" in run.stdout
            assert f"Lab {number} warm invocation, {label}" in run.stdout
    assert f"Lab 3: {bench.BATCH_ORDERS} orders, put_item one by one vs batch writer" in run.stdout


def test_the_published_figures_say_where_and_when_they_were_measured():
    text = bench.SNIPPET.read_text(encoding="utf-8")
    assert "Measured with `make bench` on" in text and "cores" in text and "Python" in text
    assert "| Grading lab 1" in text
