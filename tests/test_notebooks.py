"""The notebooks in ``notebooks/`` run top to bottom, are stored without outputs, and warn about nothing.

Each notebook is executed with nbclient in a fresh kernel that runs this interpreter (the test
environment's Python, whatever kernels the machine has registered), with ``notebooks/`` as the working
directory, as a user opening it there would. The real-data notebook is skipped when the shared
datasets are not beside the project.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from conftest import SHARED_DATA

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
#: Notebooks that read the shared real datasets, and the file each needs.
NEEDS_SHARED_DATA = {"02_online_retail": SHARED_DATA / "online_retail" / "online_retail.parquet"}
#: Every notebook, the real-data ones marked ``realdata``.
RUNS = [
    pytest.param(p, id=p.stem, marks=[pytest.mark.realdata] if p.stem in NEEDS_SHARED_DATA else [])
    for p in NOTEBOOKS
]
CELL_TIMEOUT = 600  # seconds; each notebook takes about a minute on two cores


def _this_python_kernel() -> type:
    """A kernel manager class whose ``python3`` kernel is this interpreter, not another registered one."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
            return KernelSpec(argv=argv, display_name="Python 3", language="python")

    class ThisPythonKernel(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _kernel_spec_manager_default(self) -> KernelSpecManager:
            return ThisPython(data_dir=self.data_dir)

    return ThisPythonKernel


def _warnings(nb: nbformat.NotebookNode) -> list[str]:
    """Text written to stderr by the cells that looks like a Python warning."""
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("text", "")
            if output.get("name") == "stderr" and "Warning" in text:
                found.append(f"cell {cell.get('id')}: {text.strip()[:500]}")
    return found


def test_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == ["01_quickstart", "02_online_retail", "03_subscription_signals"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, "a notebook without code"
    assert [c.get("id") for c in code if c.outputs or c.execution_count is not None] == []
    # prose between the steps: at least one markdown cell for every two code cells
    assert sum(cell.cell_type == "markdown" for cell in nb.cells) * 2 >= len(code)


@pytest.mark.slow
@pytest.mark.parametrize("path", RUNS)
def test_notebook_runs(path):
    from nbclient import NotebookClient

    needed = NEEDS_SHARED_DATA.get(path.stem)
    if needed is not None and not needed.exists():
        pytest.skip(f"{path.name} needs the shared dataset {needed}, which is absent")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        kernel_manager_class=_this_python_kernel(),
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell and the traceback, on any error
    assert _warnings(nb) == []
