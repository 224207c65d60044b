"""The dataset layer: adapters that find labelled images, a stable split, safe decoding, loading.

Adapters (``FolderDataset``, ``CsvDataset``) turn a DATA argument into ``DataSplits``, built by
``make_splits`` (which applies ``stable_split``), the helper a third-party dataset adapter uses too;
``load_table`` decodes those images into an in-memory ``ImageTable``. The bundled
sample data set is written by ``write_sample`` / ``ensure_sample``.
"""

from __future__ import annotations

from automl_tl.data.csv_manifest import CsvDataset
from automl_tl.data.folder import FolderDataset
from automl_tl.data.images import BadImage, decode_image
from automl_tl.data.loader import describe_skipped, load_table
from automl_tl.data.sample import default_sample_dir, ensure_sample, write_sample
from automl_tl.data.split import make_splits, path_unit_hash, stable_split

__all__ = [
    "BadImage",
    "CsvDataset",
    "FolderDataset",
    "decode_image",
    "default_sample_dir",
    "describe_skipped",
    "ensure_sample",
    "load_table",
    "make_splits",
    "path_unit_hash",
    "stable_split",
    "write_sample",
]
