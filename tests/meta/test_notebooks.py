"""Every lab's notebook runs top to bottom against the reference solution."""

from __future__ import annotations

import nbclient
import nbformat
import pytest

from workshop import manifest


# What each notebook must have shown, proof that it exercised the function (a new lab adds its own): the
# first string from the sections that call the function directly, the others from "End to end, as in AWS",
# where LocalLab runs the lab's stack and Lambda's log (its REPORT line) is printed.
SHOWS = {
    "lab01_api_gateway": ("201", "REPORT RequestId", '"message":"Item created"'),
    "lab02_s3_events": ("signature valid", "REPORT RequestId", "March+orders+%28EU%29.csv"),
    "lab03_sqs_processing": ("batchItemFailures", "REPORT RequestId", "on the dead-letter queue after 3 receives"),
    "lab04_scheduled_tasks": ("reports/2026/11/27/13.json", "REPORT RequestId", "fired at 2026-11-27T13:00:00Z"),
    "lab05_fan_out": ("RetriesExhausted", "REPORT RequestId", "NotifierFunction: 3 attempt(s), FailedInvocationsQueue"),
    "lab06_performance": ("within 200 ms: 1024 MB", "REPORT RequestId", "billed cold/warm"),
    # A durable workflow: which steps a replay ran again, a callback that timed out, out of stock.
    "lab07_durable_orders": ("ran again in invocation 2 or later: take_payment", "TIMED_OUT", "not enough stock"),
}


def test_every_lab_says_what_its_notebook_shows():
    assert set(SHOWS) == {lab.id for lab in manifest.labs()}


@pytest.mark.parametrize("lab", manifest.labs(), ids=lambda lab: lab.id)
def test_the_notebook_runs_against_the_solution(lab):
    folder = lab.folder("solutions")
    notebook = nbformat.read(folder / "explore.ipynb", as_version=4)
    # The kernel is stopped, not asked to exit: its exit takes apart every module it imported (moto's
    # services, botocore's models), 1.3 s of CPU a notebook, and nothing of it is under test.
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3", shutdown_kernel="immediate",
                                     resources={"metadata": {"path": str(folder)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:
        pytest.fail(f"{lab.id}/explore.ipynb failed against the solution:\n{str(error)[:3000]}")
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    shown = SHOWS.get(lab.id, ())
    missing = [marker for marker in shown if not any(marker in str(output) for output in outputs)]
    assert shown and not missing, f"{lab.id}/explore.ipynb never showed {', '.join(map(repr, missing))}"
