"""`workshop invoke 7`: a durable workflow runs whole in the local runner, and prints its execution history.

Lab 7's function is durable: one invoke is one execution, with its replays, its skipped waits and the
warehouse's answer (`--warehouse`). The other labs' invokes are one invocation each (test_invoke.py).
"""

from __future__ import annotations

import re

import pytest

from workshop import paths

from test_cli import workshop  # tests/meta is on sys.path (pytest's default prepend import mode)

# Each run creates the lab's stack in moto (about 2 s in a fresh process).
pytestmark = pytest.mark.timeout(120)

LABS = paths.ROOT / "labs"


def history(stdout: str) -> list[str]:
    """The names of the operations of the execution history, in order."""
    block = stdout.split("Execution history (oldest first):\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[1] for line in block.splitlines() if line.strip()]


def test_the_confirmed_workflow_completes_in_one_replay_and_prints_each_operation():
    run = workshop(LABS, "invoke", "7", "order_workflow", "--target", "solutions")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert history(run.stdout)[:3] == ["start", "reserve-stock", "take-payment"], run.stdout
    assert "callback" in run.stdout and history(run.stdout)[-1] == "complete-order", run.stdout
    assert "Lambda ran the handler 2 time(s): the first run and 1 replay(s)" in run.stdout, run.stdout
    assert '"status": "COMPLETED"' in run.stdout and "OrdersTable: 1 new or changed item(s)" in run.stdout


def test_a_silent_warehouse_times_out_and_the_workflow_undoes_newest_first():
    run = workshop(LABS, "invoke", "7", "order_workflow", "--warehouse", "silence", "--target", "solutions")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert re.search(r"callback .* TIMED_OUT", run.stdout), run.stdout
    steps = history(run.stdout)
    assert steps.index("refund-payment") < steps.index("release-stock") < steps.index("fail-order"), steps
    assert '"status": "FAILED"' in run.stdout and '"status": "REFUNDED"' in run.stdout


def test_the_starter_shows_its_one_day_wait_and_the_reservation_its_replay_repeats():
    run = workshop(LABS, "invoke", "7", "order_workflow")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "give-the-warehouse-a-day" in history(run.stdout), run.stdout
    # Reserved in the first run and again in the replay: 5 - 2 keyboards, 20 - 4 cables.
    assert '"available": 3, "sku": "KEYBOARD-01"' in run.stdout, run.stdout


def test_an_unknown_warehouse_answer_is_refused_with_exit_code_2():
    run = workshop(LABS, "invoke", "7", "order_workflow", "--warehouse", "maybe")
    assert run.returncode == 2 and "confirm" in run.stderr, run.stderr


def test_the_local_runner_still_reads_the_settings_that_keep_its_checkpoint_thread_from_waiting():
    # workshop/grading/durable.py sets two private settings of the SDK: without the first, each invocation of
    # a local workflow waits up to 0.1 s for the checkpoint thread to stop (most of lab 7's grading time);
    # without the second, every checkpoint a step waits for waits 1 ms more for company.
    import inspect

    from aws_durable_execution_sdk_python import state

    from workshop.grading import durable

    source = inspect.getsource(state)
    for setting, value in durable.LOCAL_SETTINGS.items():
        assert source.count(setting) >= 2, f"the SDK no longer has {setting}: find what its checkpoint thread waits on now"
        assert getattr(state, setting) == value
    assert durable.LOCAL_SETTINGS[durable.STOP_POLL_SETTING] == durable.POLL_SECONDS
