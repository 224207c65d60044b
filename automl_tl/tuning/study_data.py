"""A study's own images again, after the search: where it recorded its data, at its size, rule and pixel limit.

``export --quantize`` calibrates on them and checks the quantized model on their validation split; the
report scores the best model on their test split. Both read them the way the search did, so the splits
are the study's splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automl_tl.data.images import DEFAULT_MAX_PIXELS
from automl_tl.data.loader import load_table
from automl_tl.errors import UserError
from automl_tl.plugin.manager import Plugins
from automl_tl.study_record import (
    DATA_LOCATION_ATTR,
    FINGERPRINT_ATTR,
    IMAGE_SIZE_ATTR,
    LEGACY_IMAGE_SIZE,
    study_max_pixels,
    study_rule,
)
from automl_tl.types import DataSplits, ImageTable, ResizeRule


@dataclass
class StudyData:
    """The study's images decoded, and whether they are still the images it searched on."""

    table: ImageTable
    location: str  # the folder or CSV read
    changed: bool  # True when the images differ from the ones the study's fingerprint recorded
    splits: DataSplits | None = None  # what was found, before unusable images were skipped


def study_data(plugins: Plugins, attrs: dict[str, Any], study_name: str, data: str | None = None, *,
               image_size: int | None = None, rule: ResizeRule | None = None,
               show_progress: bool = False) -> StudyData:
    """The images of the study with user attributes ``attrs``: from ``data`` when given (the data moved),
    else from where the study recorded them; at ``image_size`` and ``rule`` when given (an exported
    model's own), else at the study's. A location that can no longer be read is a ``UserError`` that
    names it and suggests ``--data``."""
    location = data or attrs.get(DATA_LOCATION_ATTR)
    if not location:
        raise UserError(f"Study {study_name!r} does not record where its data is. Pass --data with the folder or "
                        f"CSV file it searched on.")
    if not data and not Path(str(location)).expanduser().exists():
        raise UserError(f"Study {study_name!r} searched on the data at {location}, which no longer exists. If the "
                        f"data moved, pass --data with its new location (the same images, so the splits match).")
    splits = plugins.discover(str(location))
    max_pixels = study_max_pixels(attrs, DEFAULT_MAX_PIXELS)
    size = image_size or int(attrs.get(IMAGE_SIZE_ATTR, LEGACY_IMAGE_SIZE))
    table = load_table(splits, size, max_pixels=max_pixels, show_progress=show_progress,
                       rule=rule or study_rule(attrs))
    recorded = (attrs.get(FINGERPRINT_ATTR) or {}).get("data_manifest")
    return StudyData(table, str(splits.source), bool(recorded) and table.manifest_hash != recorded, splits)
