"""``search --plugin FILE`` records the file with the study; later commands never load it by themselves,
but when they need a backbone from it, the error names the file and asks for ``--plugin FILE``."""

from __future__ import annotations

import hashlib
import shutil

import optuna
import pytest

import tests.support.sample_plugins.torch_inline as torch_inline
from automl_tl.cli import main
from automl_tl.storage.urls import storage_url

SEARCH = ["--backbones", "tiny_cnn", "--trials", "1", "--epochs", "1", "--image-size", "16", "--no-smart-start"]


@pytest.fixture
def searched(small_sample, tmp_path, capsys):
    """Study "pf", searched with a copy of the inline torch plugin given as --plugin."""
    plugin = tmp_path / "my_backbones.py"
    shutil.copyfile(torch_inline.__file__, plugin)
    assert main(["search", str(small_sample), "--study", "pf", "--plugin", str(plugin), *SEARCH]) == 0
    capsys.readouterr()
    return plugin


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_search_records_its_plugin_files_with_the_study(searched):
    attrs = optuna.load_study(study_name="pf", storage=storage_url("pf", None)).user_attrs
    assert attrs["plugin_files"] == [{"path": str(searched.resolve()), "backbones": ["tiny_cnn"],
                                      "sha256": hashlib.sha256(searched.read_bytes()).hexdigest()}]


def test_export_without_the_plugin_names_the_file_it_came_from(searched, tmp_path, capsys):
    code, text = run(capsys, "export", "pf", "--format", "onnx", "-o", str(tmp_path / "out"))
    assert code == 2 and "Traceback" not in text
    assert "tiny_cnn" in text and str(searched.resolve()) in text and "--plugin" in text
    assert "no longer there" not in text
    code, text = run(capsys, "export", "pf", "--format", "onnx", "-o", str(tmp_path / "out"), "--plugin", str(searched))
    assert code == 0, text
    assert "warning" not in text


def test_a_recorded_file_that_is_gone_is_named_as_gone(searched, tmp_path, capsys):
    moved = tmp_path / "elsewhere" / searched.name
    moved.parent.mkdir()
    searched.rename(moved)
    code, text = run(capsys, "export", "pf", "--format", "onnx", "-o", str(tmp_path / "out"))
    assert code == 2 and str(searched.resolve()) in text and "no longer there" in text
    assert run(capsys, "export", "pf", "--format", "onnx", "-o", str(tmp_path / "out"), "--plugin", str(moved))[0] == 0


def test_a_changed_plugin_file_is_warned_about(searched, tmp_path, capsys):
    searched.write_text(searched.read_text() + "\n# edited after the search\n")
    code, text = run(capsys, "export", "pf", "--format", "onnx", "-o", str(tmp_path / "out"), "--plugin", str(searched))
    assert code == 0, text
    assert "warning" in text and "is not the file the study's search loaded" in text


def test_worker_and_report_name_the_plugin_file_too(searched, tmp_path, capsys):
    code, text = run(capsys, "worker", "--study", "pf", "--lines")
    assert code == 2 and str(searched.resolve()) in text and "--plugin" in text
    report = tmp_path / "report.html"
    code, text = run(capsys, "report", "pf", "-o", str(report))
    assert code == 0, text
    page = report.read_text()
    assert "could not be evaluated" in page and "my_backbones.py" in page and "--plugin" in page


def test_a_study_searched_without_plugin_files_records_none(small_sample, capsys):
    assert main(["search", str(small_sample), "--study", "none", "--backbones", "small_cnn", "--trials", "1",
                 "--epochs", "1", "--image-size", "16", "--no-smart-start"]) == 0
    assert "plugin_files" not in optuna.load_study(study_name="none", storage=storage_url("none", None)).user_attrs


def test_the_docs_commands_table_documents_plugin_for_every_command_that_takes_it():
    import argparse
    import re
    from pathlib import Path

    from automl_tl.api.parser import build_parser

    page = (Path(__file__).resolve().parents[2] / "docs" / "user-guide" / "commands.md").read_text()
    table = page[page.index("## Every command"):page.index("## Exit codes")]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z-]+).*$", table, flags=re.MULTILINE)}
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    taking = [name for name, parser in sub.choices.items()
              if any("--plugin" in action.option_strings for action in parser._actions)]
    assert "export" in taking and "search" in taking
    assert [name for name in taking if "--plugin" not in rows.get(name, "")] == []
