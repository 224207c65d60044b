"""The Python API as a notebook user runs it: a real Jupyter kernel (nbclient) executes search, leaderboard,
export, predict and a plot, and the outputs a person would see are there (a table, predictions, a picture)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbclient  # no skip: `make setup` installs the dev extra, and a notebook test that skipped would prove nothing
import nbformat
import pytest

CELLS = [
    "import automl_tl\n"
    "study = automl_tl.search(DATA, trials=2, epochs=1, image_size=32, backbones='mobilenet_v2', cv='off', study='nb')",
    "board = study.leaderboard()\nassert type(board).__name__ == 'DataFrame' and len(board) == 2, board\nboard",
    "model = study.export('export')\nmodel",  # the framework's own first format: onnx for torch
    "import pathlib\n"
    "images = sorted(pathlib.Path(DATA).rglob('*.png'))[:3]\n"
    "predictions = model.predict(images)\n"
    "print(json.dumps([p['top'][0]['label'] for p in predictions]))",
    "study.plot_curves()",
]


def test_a_notebook_searches_exports_predicts_and_plots_through_the_api(small_sample: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel is this interpreter (the project's .venv), never a kernelspec of the user's named python3.
    spec = tmp_path / "jupyter" / "kernels" / "automl-tl-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f",
                                                           "{connection_file}"], "display_name": "automl-tl tests",
                                                  "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    work = tmp_path / "work"
    work.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(f"import json\nDATA = {str(small_sample)!r}")]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in CELLS]
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="automl-tl-test",
                                     resources={"metadata": {"path": str(work)}})
    client.execute()  # a cell that raises fails the test with the cell and its traceback

    outputs = [cell.outputs for cell in notebook.cells]
    board = outputs[2]
    assert any("text/html" in out.get("data", {}) and "mobilenet_v2" in out["data"]["text/html"] for out in board)
    printed = "".join(out.get("text", "") for out in outputs[4] if out.output_type == "stream")
    labels = json.loads(printed.strip().splitlines()[-1])
    classes = {p.name for p in small_sample.iterdir() if p.is_dir()}
    assert len(labels) == 3 and set(labels) <= classes
    assert any("image/png" in out.get("data", {}) for out in outputs[5]), "the plot is not shown inline"
    assert (work / "export" / "model.onnx").is_file()
    shown = "".join(out.get("text", "") for cell in outputs for out in cell if out.output_type == "stream")
    assert "Traceback" not in shown and "ipywidgets" not in shown  # rich's live display found its widgets
