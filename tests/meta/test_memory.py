"""A function's MemorySize is enforced, as Lambda enforces it: by the graders and by the local runtime.

Lab 1's reference solution, its list route made to allocate 1.5 GB, is graded and invoked by the real
CLI under a MemorySize of 256 MB (out of memory) and of 3,008 MB (enough): the same code, two
verdicts. The accounting of workshop/memory.py is checked on its own, with allocations of a few
hundred MB.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from workshop import manifest, memory, paths, starters
from workshop.lambda_runtime import FunctionError
from workshop.local import LocalLab
from workshop.memory import FunctionMemory, OutOfMemory, Phase, PhaseMeter

from test_cli import APP1, LAB1, graded, messages, solve, workshop  # tests/meta is on sys.path
from test_local import copy_of

pytestmark = pytest.mark.timeout(120)

MIB = 1024 * 1024
TEMPLATE1 = "lab01_api_gateway/template.yaml"
GLOBAL_MEMORY_SIZE = "    MemorySize: 256\n"  # lab 1's Globals
# 1.5 GB, every byte written (bytearray zeroes what it allocates): 1,431 MB resident.
ALLOCATE = "def list_items():\n    held = bytearray(1_500_000_000)\n"
# What the measurement must see of it at least: the kernel's resident counters are approximate.
ALLOCATED_MB = 1_400
LINUX_PROC = Path("/proc/self/clear_refs").exists()
needs_proc = pytest.mark.skipif(not LINUX_PROC, reason="resident memory is measured from /proc (Linux)")


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path} no longer holds {old!r}"
    path.write_text(text.replace(old, new))


@pytest.fixture
def allocating_lab(tmp_path: Path) -> Callable[[int], Path]:
    """make(memory_size_mb): a labs/ copy whose lab 1 is the reference, its GET /items allocating 1.5 GB."""

    def make(memory_size_mb: int) -> Path:
        labs = tmp_path / "labs"
        for lab in manifest.labs():
            starters.write_files(labs / lab.id, starters.files_in(paths.ROOT / "labs" / lab.id))
        solve(labs, LAB1)
        replace(labs / TEMPLATE1, GLOBAL_MEMORY_SIZE, f"    MemorySize: {memory_size_mb}\n")
        replace(labs / APP1, "def list_items():\n", ALLOCATE)
        return labs

    return make


def used_figure(text: str) -> int:
    match = re.search(r"used about ([\d,]+) MB", text)
    assert match, f"no 'used about N MB' in:\n{text[-2000:]}"
    return int(match[1].replace(",", ""))


# --- the real CLI: 1.5 GB under 256 MB, then under 3,008 MB -----------------------------------------


@needs_proc
def test_going_over_memory_size_fails_the_task_and_the_invocation_as_lambda_does(allocating_lab):
    labs = allocating_lab(256)

    lab = graded(labs, "1")[LAB1.id]
    statuses = {task["task_id"]: task["status"] for task in lab["tasks"]}
    assert statuses[1] == "fail" and statuses[5] == "pass", statuses
    ran_out = [m for m in messages(lab) if "Runtime.OutOfMemory" in m]
    assert ran_out, messages(lab)[:2]
    assert all("more than its MemorySize of 256 MB" in m and TEMPLATE1 in m for m in ran_out), ran_out[0]
    assert ALLOCATED_MB + memory.RUNTIME_BASELINE_MB <= used_figure(ran_out[0]) < 2_000, ran_out[0]

    run = workshop(labs, "invoke", "1", "items_api", "--event", "api_list_items")
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert '"errorType": "Runtime.OutOfMemory"' in run.stdout, run.stdout[-2000:]
    assert re.search(r"RequestId: \S+ Error: Runtime exited with error: signal: killed", run.stdout)
    assert "Memory Size: 256 MB\tMax Memory Used: 256 MB" in run.stdout, "REPORT shows the limit, reached"
    assert "more than its MemorySize of 256 MB" in run.stdout
    assert ALLOCATED_MB + memory.RUNTIME_BASELINE_MB <= used_figure(run.stdout) < 2_000


@needs_proc
def test_the_same_allocation_under_a_memory_size_big_enough_passes(allocating_lab):
    labs = allocating_lab(3008)

    lab = graded(labs, "1")[LAB1.id]
    assert lab["status"] == "pass", messages(lab)[:2]

    run = workshop(labs, "invoke", "1", "items_api", "--event", "api_list_items")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    used = re.search(r"Memory Size: 3008 MB\tMax Memory Used: (\d+) MB", run.stdout)
    assert used, run.stdout[-2000:]
    assert ALLOCATED_MB + memory.RUNTIME_BASELINE_MB <= int(used[1]) < 2_000, "the 1.5 GB was seen, under the limit"


# --- MemoryError is out of memory too ----------------------------------------------------------------


def test_a_memory_error_in_a_graded_function_is_out_of_memory():
    def load() -> Callable:
        def handler(event, context):
            raise MemoryError

        return handler

    handler = FunctionMemory("items_api", 256, TEMPLATE1).cold_start(load)
    with pytest.raises(OutOfMemory, match=r"^Runtime\.OutOfMemory: items_api ran out of memory \(Python raised MemoryError\)"):
        handler({}, None)

    def load_that_runs_out() -> Callable:
        raise MemoryError

    with pytest.raises(OutOfMemory, match="items_api ran out of memory at import"):
        FunctionMemory("items_api", 256, TEMPLATE1).cold_start(load_that_runs_out)


def test_a_memory_error_in_a_local_function_is_lambdas_out_of_memory_and_its_environment_is_replaced(tmp_path, monkeypatch):
    labs = copy_of("1", tmp_path, {"items_api/app.py": ("def list_items():\n", "def list_items():\n    raise MemoryError\n")})
    monkeypatch.setitem(paths.TARGETS, "labs", labs)
    with LocalLab("1") as lab:
        ran_out = lab.invoke("items_api", "api_list_items")
        after = lab.invoke("items_api", "api_get_item_missing")
    assert ran_out.error == {
        "errorMessage": f"RequestId: {ran_out.request_id} Error: Runtime exited with error: signal: killed",
        "errorType": "Runtime.OutOfMemory",
    }
    assert "Max Memory Used: 256 MB" in ran_out.report, ran_out.report
    assert ran_out.log_text().endswith(f"{ran_out.error['errorMessage']}\nRuntime.OutOfMemory")
    assert "Python raised MemoryError" in ran_out.result_text()
    assert after.cold and after.ok, "Lambda starts a new environment after running out of memory"


# --- the accounting ----------------------------------------------------------------------------------


def test_used_is_the_runtimes_share_plus_what_the_function_added_in_whole_mb():
    assert memory.used_mb() == memory.RUNTIME_BASELINE_MB
    assert memory.used_mb(1) == memory.RUNTIME_BASELINE_MB + 1
    assert memory.used_mb(1024, 1024) == memory.RUNTIME_BASELINE_MB + 2
    assert memory.used_mb(1025) == memory.RUNTIME_BASELINE_MB + 2


def test_an_invocation_counts_what_the_init_left_resident():
    function = FunctionMemory("items_api", 256, TEMPLATE1)
    assert function.after_init(Phase(peak_kib=300 * 1024, kept_kib=100 * 1024)) == memory.RUNTIME_BASELINE_MB + 300
    assert function.after_invocation(Phase(peak_kib=150 * 1024, kept_kib=0)) == memory.RUNTIME_BASELINE_MB + 250


def test_out_of_memory_reads_like_lambda_and_says_what_to_do():
    error = OutOfMemory("items_api", 256, 1540, TEMPLATE1)
    assert isinstance(error, FunctionError), "the grader plugin shows a FunctionError's text as it is"
    text = str(error)
    assert text.startswith(
        f"Runtime.OutOfMemory: items_api used about 1,540 MB, more than its MemorySize of 256 MB ({TEMPLATE1})"
    )
    assert "stream" in text and "raise MemorySize" in text


@needs_proc
def test_the_phase_meter_sees_the_peak_and_what_stays_resident():
    meter = PhaseMeter()
    kept = bytearray(100 * MIB)
    transient = bytearray(200 * MIB)
    del transient
    phase = meter.result()
    # Linux's resident counters are approximate (batched per CPU): a few hundred KiB either way.
    assert 290 * MIB // 1024 <= phase.peak_kib < 340 * MIB // 1024, phase
    assert 90 * MIB // 1024 <= phase.kept_kib < 140 * MIB // 1024, phase
    assert len(kept) == 100 * MIB


@needs_proc
def test_a_graded_invocation_is_held_to_memory_size_with_what_its_init_holds():
    kept: list[bytearray] = []

    def load(keep_mb: int) -> Callable:
        kept.append(bytearray(keep_mb * MIB))  # a module-level cache, made at import

        def handler(event, context, *, extra=0):
            return len(bytearray(150 * MIB)) + event + extra  # 150 MB for the invocation, freed at return

        return handler

    within = FunctionMemory("fn", 256, TEMPLATE1).cold_start(lambda: load(0))
    assert within(1, None, extra=2) == 150 * MIB + 3, "the same arguments and result"

    holding = FunctionMemory("fn", 256, TEMPLATE1).cold_start(lambda: load(100))
    with pytest.raises(OutOfMemory) as ran_out:
        holding(0, None)
    assert memory.RUNTIME_BASELINE_MB + 240 <= ran_out.value.used_mb < memory.RUNTIME_BASELINE_MB + 290


@needs_proc
def test_going_over_then_raising_is_reported_as_out_of_memory_and_an_init_is_held_by_its_peak():
    def handler(event, context):
        bytearray(300 * MIB)
        raise ValueError("never reached in Lambda")

    with pytest.raises(OutOfMemory, match="used about"):
        FunctionMemory("fn", 256, TEMPLATE1).cold_start(lambda: handler)({}, None)

    def load() -> Callable:
        bytearray(300 * MIB)  # freed before the import ends: only the peak sees it
        return handler

    with pytest.raises(OutOfMemory, match="at import"):
        FunctionMemory("fn", 256, TEMPLATE1).cold_start(load)


@needs_proc
def test_the_guard_turns_a_runaway_allocation_into_a_memory_error_and_is_lifted_after():
    import resource

    before = resource.getrlimit(resource.RLIMIT_AS)
    with memory.address_space_guard(headroom_mb=256), pytest.raises(MemoryError):
        bytes(1024 * MIB)  # address space only (calloc's pages stay untouched): harmless without the guard
    assert resource.getrlimit(resource.RLIMIT_AS) == before
    assert len(bytes(1024 * MIB)) == 1024 * MIB, "without the guard, the same allocation succeeds"


def test_a_phase_whose_end_cannot_be_read_counts_nothing_rather_than_the_whole_process(tmp_path, monkeypatch):
    """/proc read when the phase began but not when it ended: nothing was measured, so no OutOfMemory is
    made up (the process's whole peak, from getrusage, is not what the function used)."""
    meter = PhaseMeter()
    monkeypatch.setattr(memory, "STATUS", tmp_path / "none" / "status")
    monkeypatch.setattr(memory, "process_peak_rss_kib", lambda: 900 * 1024)
    assert meter.result() == Phase(peak_kib=0, kept_kib=0)


def test_without_proc_a_phase_is_seen_by_how_far_it_raises_the_process_peak(tmp_path, monkeypatch):
    import resource

    monkeypatch.setattr(memory, "CLEAR_REFS", tmp_path / "none" / "clear_refs")
    monkeypatch.setattr(memory, "STATUS", tmp_path / "none" / "status")
    peaks = iter([500 * 1024, 800 * 1024])
    monkeypatch.setattr(memory, "process_peak_rss_kib", lambda: next(peaks))
    assert PhaseMeter().result() == Phase(peak_kib=300 * 1024, kept_kib=300 * 1024)

    before = resource.getrlimit(resource.RLIMIT_AS)
    with memory.address_space_guard(headroom_mb=0):
        assert resource.getrlimit(resource.RLIMIT_AS) == before, "no guard where /proc cannot say the size"
