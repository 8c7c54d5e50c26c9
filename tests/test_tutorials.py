"""The tutorials (docs/tutorials/*.ipynb) run from top to bottom and end with a figure.

The site shows the committed notebooks with their stored outputs (mkdocs-jupyter, ``execute:
false``), so these tests check both halves: every stored notebook carries the outputs of its
cells and ends with a figure, and executing it afresh (nbclient, one kernel per notebook) runs
without an error and draws that figure. To refresh the stored outputs after a change, execute
a notebook in place: ``jupyter nbconvert --to notebook --execute --inplace docs/tutorials/X.ipynb``
(or ``python tests/test_tutorials.py``, which refreshes them all).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

TUTORIALS_DIR = Path(__file__).resolve().parents[1] / "docs" / "tutorials"
TUTORIALS = sorted(TUTORIALS_DIR.glob("*.ipynb"))
# seconds to run; the others train a network, audit a scheduler or start a Dask cluster
FAST = {"schedule_from_bound"}
CELL_TIMEOUT = 900  # a bound against a hung kernel, not a timing


def read(path: Path):
    return nbformat.read(path, as_version=4)


# nbclient runs in a child process: looking up the kernel imports ipykernel, and a process
# that has imported ipykernel is taken for a notebook by scorelab.progress
EXECUTE = """
import sys
import nbformat
from nbclient import NotebookClient

notebook = nbformat.read(sys.argv[1], as_version=4)
resources = {"metadata": {"path": sys.argv[3]}}
client = NotebookClient(notebook, timeout=int(sys.argv[4]), kernel_name="python3")
client.resources = resources
client.execute()
nbformat.write(notebook, sys.argv[2])
"""


def execute(path: Path, out: Path):
    """The notebook at ``path`` executed in a fresh kernel, in the tutorials' directory."""
    done = subprocess.run(
        [sys.executable, "-c", EXECUTE, str(path), str(out), str(TUTORIALS_DIR), str(CELL_TIMEOUT)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return read(out)


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def ends_with_a_figure(notebook) -> bool:
    last = code_cells(notebook)[-1]
    return any("image/png" in out.get("data", {}) for out in last.outputs)


def errors(notebook) -> list[str]:
    return [
        f"{out.ename}: {out.evalue}"
        for cell in code_cells(notebook)
        for out in cell.outputs
        if out.output_type == "error"
    ]


def test_there_are_the_four_tutorials():
    assert {p.stem for p in TUTORIALS} >= {
        "ring_from_exact_to_trained",
        "schedule_from_bound",
        "audit_diffusers",
        "dask_sweep",
    }


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_the_stored_notebook_shows_its_outputs(path):
    notebook = read(path)
    cells = code_cells(notebook)
    assert all(cell.execution_count is not None for cell in cells), "not executed"
    counts = [cell.execution_count for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), "executed out of order or partly"
    assert errors(notebook) == []
    assert ends_with_a_figure(notebook)
    assert "torch.set_num_threads(1)" in "".join(c.source for c in cells)


def _marks(path: Path):
    return [] if path.stem in FAST else [pytest.mark.slow]


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem, marks=_marks(p)) for p in TUTORIALS])
def test_the_tutorial_runs_and_draws_its_figure(path, tmp_path):
    jupyter_here = "ipykernel" in sys.modules
    run = execute(path, tmp_path / path.name)
    assert errors(run) == []
    assert ends_with_a_figure(run)
    assert ("ipykernel" in sys.modules) == jupyter_here  # this process stays a plain one


if __name__ == "__main__":  # refresh the stored outputs: python tests/test_tutorials.py [NAME...]
    wanted = set(sys.argv[1:])
    for path in TUTORIALS:
        if not wanted or path.stem in wanted:
            execute(path, path)
            print("executed", path.name)
