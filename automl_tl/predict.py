"""Load an export folder and classify image files or folders with it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .data.images import BadImage, decode_image, is_image_file
from .errors import UserError
from .export import LABELS_FILE, METADATA_FILE, PREPROCESSING_FILE
from .plugins import Plugins
from .types import ExportedModel, Preprocessing

BATCH = 64


@dataclass
class LoadedExport:
    model: ExportedModel
    class_names: list[str]
    preprocessing: Preprocessing
    metadata: dict[str, Any]


def load_export(plugins: Plugins, model_dir: Path) -> LoadedExport:
    meta_file = model_dir / METADATA_FILE
    if not meta_file.is_file():
        raise UserError(f"{model_dir} is not an automl-tl export folder (no {METADATA_FILE}). Create one with `automl-tl export`.")
    metadata = json.loads(meta_file.read_text())
    class_names = json.loads((model_dir / LABELS_FILE).read_text())
    preprocessing = Preprocessing.from_dict(json.loads((model_dir / PREPROCESSING_FILE).read_text()))
    framework = metadata["framework"]
    if framework not in plugins.frameworks:
        raise UserError(f"{model_dir} holds a {framework} model, but no {framework} plugin is loaded here. Install it, then retry.")
    model = plugins.framework(framework).load_exported(model_dir, metadata["format"], metadata["model_file"])
    return LoadedExport(model, class_names, preprocessing, metadata)


def image_paths(paths: list[str]) -> list[Path]:
    """Files as given, folders searched recursively for images, in a stable order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p)))
        elif path.is_file():
            found.append(path)
        else:
            raise UserError(f"{raw}: no such file or folder.")
    if not found:
        raise UserError(f"No images (.jpg, .jpeg, .png) found in {', '.join(paths)}.")
    return found


def _batches(paths: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(paths), size):
        yield paths[start : start + size]


def predict_files(loaded: LoadedExport, paths: list[Path], top: int = 3) -> list[dict[str, Any]]:
    """One result per path: the top classes with probabilities, or the reason it could not be read."""
    results: list[dict[str, Any]] = []
    size = loaded.preprocessing.image_size
    top = max(1, min(top, len(loaded.class_names)))
    for batch_paths in _batches(paths, BATCH):
        arrays, kept = [], []
        for path in batch_paths:
            try:
                arrays.append(decode_image(path.read_bytes(), size))
                kept.append(path)
            except (BadImage, OSError) as exc:
                results.append({"path": str(path), "error": str(exc)})
        if not arrays:
            continue
        probabilities = loaded.model.predict(np.stack(arrays).astype(np.float32) / 255.0)
        for path, row in zip(kept, probabilities):
            order = np.argsort(-row)[:top]
            results.append({"path": str(path), "top": [{"label": loaded.class_names[i], "probability": float(row[i])} for i in order]})
    order_of = {str(p): i for i, p in enumerate(paths)}
    return sorted(results, key=lambda r: order_of[r["path"]])
