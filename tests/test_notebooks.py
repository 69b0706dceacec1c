"""The notebooks in notebooks/ run top to bottom in a Jupyter kernel, on small settings.

Each notebook runs with TRAINLAB_NOTEBOOK_SMALL=1 (fewer combinations and epochs) and writes its
runs under TRAINLAB_NOTEBOOK_OUT=<tmp_path>, so nothing lands in the repository. Every *.ipynb in
notebooks/ is collected, so a new notebook is tested without touching this file.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError

pytestmark = pytest.mark.full  # the slow tier: `make test-full`

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
NOTEBOOK_TIMEOUT = 300  # seconds for one whole notebook, kernel start included
# Runs each shipped notebook trains on small settings (summary.json files under its output folder).
EXPECTED_RUNS = {"act_optim": 4, "shapes_bias_variance": 6, "text_overfit": 1}


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def outputs(nb) -> list:
    return [o for c in code_cells(nb) for o in c.outputs]


def execute(path: Path):
    """The notebook executed in a fresh python3 kernel started in notebooks/ (cwd), as Jupyter would.

    NOTEBOOK_TIMEOUT bounds the whole notebook: each cell may use what the cells before it left.
    """
    nb = nbformat.read(path, as_version=4)
    deadline = time.monotonic() + NOTEBOOK_TIMEOUT
    client = NotebookClient(nb, timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
                            startup_timeout=60, kernel_name="python3", shutdown_kernel="immediate",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    try:
        client.execute()
    except CellTimeoutError:
        done = sum(c.execution_count is not None for c in code_cells(nb))
        pytest.fail(f"{path.name} did not finish within {NOTEBOOK_TIMEOUT}s (stopped in code cell {done} of "
                    f"{len(code_cells(nb))})")
    return nb


def test_the_promised_notebooks_exist():
    assert {p.stem for p in NOTEBOOKS} >= set(EXPECTED_RUNS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    cells = code_cells(nb)
    assert cells, "a notebook without code"
    assert all(not c.outputs and c.execution_count is None for c in cells), "clear the outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_on_small_settings(path, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINLAB_NOTEBOOK_SMALL", "1")  # the kernel inherits this process's environment
    monkeypatch.setenv("TRAINLAB_NOTEBOOK_OUT", str(tmp_path))
    before = sorted(NOTEBOOK_DIR.rglob("*"))

    nb = execute(path)  # a cell that raises fails here, with its traceback

    cells = code_cells(nb)
    assert all(c.execution_count is not None for c in cells)
    assert not [o for o in outputs(nb) if o.output_type == "error"]
    data = [o.get("data", {}) for o in outputs(nb) if o.output_type in ("display_data", "execute_result")]
    assert any(d.get("image/png") for d in data), "no plot shown"
    tables = [d["text/markdown"] for d in data if "text/markdown" in d]
    assert any("\n|---" in t for t in tables), "no table shown"

    summaries = [json.loads(p.read_text()) for p in tmp_path.rglob("summary.json")]
    assert [s["status"] for s in summaries] == ["completed"] * len(summaries)
    assert len(summaries) == EXPECTED_RUNS.get(path.stem, len(summaries))
    assert all(s["history"] and s["verdict"]["fit"] in ("underfitting", "overfitting", "good fit") for s in summaries)
    assert sorted(NOTEBOOK_DIR.rglob("*")) == before  # nothing written next to the notebooks
