"""``--help`` ends with examples that parse; a command run without DATA names the bundled sample first."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import pytest

from automl_tl.api.common import data_location
from automl_tl.api.examples import EXAMPLES, TOP_LEVEL
from automl_tl.api.parser import build_parser
from automl_tl.cli import main
from tests.conftest import STUB_PLUGIN


def sub_commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return dict(actions[0].choices)


def test_every_help_ends_with_examples_of_its_own_command() -> None:
    parser = build_parser()
    helps = {TOP_LEVEL: parser.format_help()} | {name: p.format_help() for name, p in sub_commands(parser).items()}
    for command, text in helps.items():
        assert "\nExamples:\n" in text, f"automl-tl {command} --help has no Examples section"
        shown = [line.strip() for line in text.split("\nExamples:\n", 1)[1].splitlines() if line.strip().startswith("automl-tl")]
        assert 2 <= len(shown) <= 4, command
        if command != TOP_LEVEL:
            assert all(shlex.split(line)[1] == command for line in shown), command
    assert set(EXAMPLES) == set(helps), "examples of a command that is gone, or a command without examples"


@pytest.mark.parametrize("line", [line for lines in EXAMPLES.values() for line, _ in lines])
def test_each_example_parses(line: str) -> None:
    words = shlex.split(line)
    assert words[0] == "automl-tl"
    args = build_parser().parse_args(words[1:])  # argparse exits 2 on an option or value that is not accepted
    assert callable(args.func)


def test_the_examples_keep_their_line_breaks() -> None:
    text = build_parser().format_help()
    assert "\n  automl-tl predict model/ photo.jpg\n" in text


def test_a_search_without_data_names_the_sample_before_anything_else(capsys: pytest.CaptureFixture[str],
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    monkeypatch.setenv("AUTOML_TL_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("automl_tl.data.sample.ensure_sample", lambda: tmp_path / "not_written")  # no sample written
    code = main(["search", "--trials", "1", "--epochs", "1", "--image-size", "16", "--plugin", STUB_PLUGIN,
                 "--framework", "stub"])
    captured = capsys.readouterr()
    assert code == 2  # the stand-in sample folder does not exist
    first = captured.err.splitlines()[0]
    assert first.startswith("note No DATA given: searching the bundled sample at "), captured.err
    assert str(tmp_path / "home" / "animal_mnist") in " ".join(captured.err.split())
    assert "automl-tl search DATA" in " ".join(captured.err.split())


def test_a_search_with_data_says_nothing_of_the_sample(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    main(["search", str(tmp_path / "nope"), "--trials", "1", "--plugin", STUB_PLUGIN, "--framework", "stub"])
    captured = capsys.readouterr()
    assert "bundled sample" not in captured.out + captured.err


def test_evaluate_without_data_names_the_sample_too(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("AUTOML_TL_DATA_HOME", str(tmp_path))
    monkeypatch.setattr("automl_tl.data.sample.ensure_sample", lambda: tmp_path / "animal_mnist")
    assert data_location(None, "evaluate") == str(tmp_path / "animal_mnist")
    said = " ".join(capsys.readouterr().err.split())
    assert "No DATA given: reading the bundled sample at" in said and "automl-tl evaluate MODEL_DIR DATA" in said
