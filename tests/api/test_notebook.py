"""The Python API as a notebook user runs it: a real Jupyter kernel (nbclient) executes search, leaderboard,
export, predict and a plot, and the outputs a person would see are there (a table, predictions, a picture)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

CELLS = [
    "import automl_tl\n"
    "study = automl_tl.search(DATA, trials=2, epochs=1, image_size=32, backbones='mobilenet_v2', cv='off', study='nb')",
    "board = study.leaderboard()\nassert type(board).__name__ == 'DataFrame' and len(board) == 2, board\nboard",
    "model = study.export('export', format='onnx')\nmodel",
    "import pathlib\n"
    "images = sorted(pathlib.Path(DATA).rglob('*.png'))[:3]\n"
    "predictions = model.predict(images)\n"
    "print(json.dumps([p['top'][0]['label'] for p in predictions]))",
    "study.plot_curves()",
]


def test_a_notebook_searches_exports_predicts_and_plots_through_the_api(small_sample: Path, tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(f"import json\nDATA = {str(small_sample)!r}")]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in CELLS]
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # a cell that raises fails the test with the cell and its traceback

    outputs = [cell.outputs for cell in notebook.cells]
    board = outputs[2]
    assert any("text/html" in out.get("data", {}) and "mobilenet_v2" in out["data"]["text/html"] for out in board)
    printed = "".join(out.get("text", "") for out in outputs[4] if out.output_type == "stream")
    labels = json.loads(printed.strip().splitlines()[-1])
    classes = {p.name for p in small_sample.iterdir() if p.is_dir()}
    assert len(labels) == 3 and set(labels) <= classes
    assert any("image/png" in out.get("data", {}) for out in outputs[5]), "the plot is not shown inline"
    assert (tmp_path / "export" / "model.onnx").is_file()
