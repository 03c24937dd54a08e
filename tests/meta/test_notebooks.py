"""Every lab's notebook runs top to bottom against the reference solution."""

from __future__ import annotations

import nbclient
import nbformat
import pytest

from workshop import manifest


# What each notebook must have shown, proof that it exercised the function (a new lab adds its own).
SHOWS = {
    "lab01_api_gateway": "201",
    "lab02_s3_events": "signature valid",
    "lab03_sqs_processing": "batchItemFailures",
    "lab04_scheduled_tasks": "reports/2026/11/27/13.json",
    "lab05_fan_out": "RetriesExhausted",
    "lab06_performance": "within 200 ms: 1024 MB",
}


def test_every_lab_says_what_its_notebook_shows():
    assert set(SHOWS) == {lab.id for lab in manifest.labs()}


@pytest.mark.parametrize("lab", manifest.labs(), ids=lambda lab: lab.id)
def test_the_notebook_runs_against_the_solution(lab):
    folder = lab.folder("solutions")
    notebook = nbformat.read(folder / "explore.ipynb", as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:
        pytest.fail(f"{lab.id}/explore.ipynb failed against the solution:\n{str(error)[:3000]}")
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    shown = SHOWS.get(lab.id, "")
    assert shown and any(shown in str(output) for output in outputs), f"{lab.id}/explore.ipynb never showed {shown!r}"
