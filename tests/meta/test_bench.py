"""The benchmark runs and prints its figures (its numbers are reported, never asserted: see `make bench`)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workshop import bench, manifest, paths


@pytest.mark.timeout(660)
def test_bench_measures_every_figure_in_one_quick_run():
    run = subprocess.run(
        [*paths.workshop_command(), "bench", "--quick", "--no-suite"],
        cwd=paths.ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # about 110 s on an idle 2-core machine; several times that while other work runs
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "a quick run: every figure once" in run.stdout, run.stdout[:500]
    grading = [bench.FLOOR_ROW]
    for lab in manifest.labs():
        grading += [f"Grading lab {lab.number} ({which})" for which in bench.TARGET_NAMES.values()]
        grading.append(f"watch: a save of lab {lab.number} graded and shown (warm engine)")
    for which in bench.ALL_TARGET_NAMES.values():
        grading += [f"Grading every lab, check --all ({which})", f"check --all ÷ slowest lab ({which})",
                    f"check --all, processor time ({which})"]
    missing = [row for row in grading if row not in run.stdout]
    assert not missing, f"`workshop bench` printed no grading rows {missing}:\n{run.stdout[-3000:]}"
    for which in bench.ALL_TARGET_NAMES.values():
        processor = _figure(run.stdout, f"check --all, processor time ({which})")
        assert processor > 0, f"check --all ({which}) used no processor time: {processor} CPU-s"
    floor_ratios = run.stdout.count("x the import floor")
    assert floor_ratios == 2 * len(manifest.labs()) + 2, f"{floor_ratios} grading rows give their ratio to the floor"
    for scenario in bench.SCENARIOS.values():
        number = manifest.find(scenario.lab).number
        variants = [f", {label}" for label in bench.VARIANTS.values()] if scenario.clients else [""]
        for variant in variants:
            for figure in ("cold start", "warm invocation"):
                row = f"Lab {number} {scenario.function} {figure}{variant}"
                assert row in run.stdout, f"`workshop bench` printed no row {row!r}:\n{run.stdout[-3000:]}"
    assert f"Lab 3: {bench.QUICK.batch_orders} orders, put_item one by one vs batch writer" in run.stdout
    local = [f"Local {function}: warm invocation, call to REPORT" for function, scenario in bench.SCENARIOS.items()
             if function != "csv_summary" and not scenario.durable]
    local += [f"`workshop invoke` {function}, cold path" for function in bench.SCENARIOS if function != "csv_summary"]
    local += ["`workshop upload` to lab 2, cold path", "Opening a LocalLab", "`workshop start-api` GET /items, warm"]
    missing = [row for row in local if row not in run.stdout]
    assert not missing, f"`workshop bench` printed no local runtime rows {missing}:\n{run.stdout[-3000:]}"


def test_processor_time_counts_the_processes_a_command_waited_for():
    """check --all's processor time is its workers' too: a command's children (grandchildren of the bench),
    once waited for, count. A wall-clock comparison would not do: a busy machine stretches the wall time."""
    burns_in_a_child = (
        "import os, time\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    end = time.process_time() + 0.3\n"
        "    while time.process_time() < end:\n"
        "        pass\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
    )
    before = bench.processor_seconds()
    subprocess.run([sys.executable, "-c", burns_in_a_child], check=True, timeout=60)
    used = bench.processor_seconds() - before
    assert used >= 0.3, f"a command whose child used 0.3 CPU-s counted {used:.2f}"


def test_a_quick_run_is_never_published():
    published = bench.SNIPPET.read_bytes()
    run = subprocess.run([*paths.workshop_command(), "bench", "--quick", "--write"], cwd=paths.ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-2000:]
    assert "--quick measures too little to publish; run `make bench`" in run.stderr
    assert "Measuring" not in run.stdout, "a refused quick run measured anyway"
    assert bench.SNIPPET.read_bytes() == published


def test_every_reference_function_of_the_labs_has_a_scenario():
    functions = {(lab.id, function) for lab in manifest.labs() for function in lab.functions}
    scenarios = {(scenario.lab, scenario.function) for scenario in bench.SCENARIOS.values()}
    assert functions == scenarios, f"bench.SCENARIOS misses {sorted(functions - scenarios)}, or has extra {sorted(scenarios - functions)}"
    for scenario in bench.SCENARIOS.values():
        event = manifest.find(scenario.lab).folder("solutions") / "events" / f"{scenario.event}.json"
        assert event.is_file(), f"the bench scenario of {scenario.function} serves {paths.relative(event)}, which does not exist"


def test_the_published_figures_say_where_and_when_they_were_measured():
    text = bench.SNIPPET.read_text(encoding="utf-8")
    assert "Measured with `make bench` on" in text and "cores" in text and "Python" in text
    assert "| Grading lab 1" in text
    assert f"| {bench.FLOOR_ROW} |" in text and "| watch: a save of lab 1" in text and "| check --all ÷ slowest lab" in text


def _figure(printed: str, row: str) -> float:
    """The value (its first number: the median) of a row `workshop bench` printed."""
    line = next(line for line in printed.splitlines() if line.strip().startswith(row))
    return float(line.strip()[len(row):].split()[0])
