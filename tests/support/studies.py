"""A real study made once for a test module: searched in a studies folder of its own, single-split scoring."""

from __future__ import annotations

from pathlib import Path

import pytest


def searched_study(factory: pytest.TempPathFactory, folder: str, data: Path, study: str, *options: str) -> Path:
    """Run ``automl-tl search DATA --study STUDY OPTIONS`` into a new studies folder and return that folder."""
    from automl_tl.cli import main

    studies = factory.mktemp(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTOML_TL_STUDIES", str(studies))
        patch.setenv("AUTOML_TL_CV", "off")
        assert main(["search", str(data), "--study", study, *options]) == 0
    return studies
