"""Fixtures of the deploy tests: a fresh copy of the one-trial small_cnn study, and the CLI run with its output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from automl_tl.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """``automl-tl argv``: its exit code and what it printed (stdout, then stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture
def small_cnn_study(small_cnn_exports: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the one-trial small_cnn study "mf", made current."""
    studies = tmp_path / "mf_studies"
    shutil.copytree(small_cnn_exports / "studies", studies)
    monkeypatch.setenv("AUTOML_TL_STUDIES", str(studies))
    return studies
