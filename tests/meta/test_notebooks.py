"""Every lab's notebook runs top to bottom against the reference solution."""

from __future__ import annotations

import nbclient
import nbformat
import pytest

from workshop import manifest


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
    assert any("201" in str(output) for output in outputs), "the notebook never showed a created item"
