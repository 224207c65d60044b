"""Searches of the stub framework's ``stub_net`` at 16 px, as the search tests run them in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from automl_tl.storage.urls import artifacts_dir, storage_url
from automl_tl.tuning.settings import SearchSettings


def stub_settings(data: Path, name: str, trials: int | None, epochs: int, **changes: Any) -> SearchSettings:
    """Settings of study ``name`` (in the test's studies folder) searching ``stub_net`` at 16 px over ``data``,
    with ``changes`` on top."""
    values: dict[str, Any] = dict(study_name=name, storage_url=storage_url(name, None), artifacts=artifacts_dir(name),
                                  trials=trials, epochs=epochs, image_size=16, backbones=["stub_net"],
                                  data_location=str(data))
    values.update(changes)
    return SearchSettings(**values)
