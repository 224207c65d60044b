"""``export --format``: the formats come from the loaded framework plugins, not from a fixed list in the parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from automl_tl.api.parser import build_parser

from .conftest import run


def test_the_parser_takes_a_format_a_framework_plugin_brings():
    args = build_parser().parse_args(["export", "study", "--format", "npz", "-o", "out"])
    assert args.format == "npz", "a third framework's own format reaches the command, which checks it"


def test_a_format_no_loaded_framework_exports_is_one_paragraph_naming_the_formats(small_cnn_study: Path, tmp_path: Path,
                                                                                   capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "never"
    code, text = run(capsys, "export", "mf", "--format", "pdf", "-o", str(out))
    assert code == 2 and "--format pdf: no loaded framework exports it" in text
    assert "onnx (torch)" in text and "tflite (keras)" in text and "Traceback" not in text
    assert not out.exists(), "nothing written"


def test_a_format_of_another_framework_than_the_trials_is_refused_by_the_trials_adapter(small_cnn_study: Path, tmp_path: Path,
                                                                                         capsys: pytest.CaptureFixture[str]):
    code, text = run(capsys, "export", "mf", "--format", "tflite", "-o", str(tmp_path / "never"))
    assert code == 2 and "--format tflite: the torch adapter exports onnx, torchscript" in text
