"""Load an export folder and classify image files or folders with it."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.data.images import BadImage, decode_image_and_size, is_image_file, to_model_input
from automl_tl.data.paths import special_kind
from automl_tl.deploy.model_folder import open_model, read_model_folder
from automl_tl.errors import UserError
from automl_tl.plugin.manager import Plugins
from automl_tl.types import ExportedModel, Preprocessing

BATCH = 64  # images per forward pass when predicting


@dataclass
class LoadedExport:
    model: ExportedModel
    class_names: list[str]
    preprocessing: Preprocessing
    metadata: dict[str, Any]


def load_export(plugins: Plugins, model_dir: Path, trusted: bool = False) -> LoadedExport:
    """Open an export folder as untrusted input (see model_folder.py): its files are checked first, and a
    format that can run code on load (TorchScript, SavedModel) is opened only when ``trusted``."""
    folder = read_model_folder(model_dir)
    model = open_model(plugins, folder, trusted)
    return LoadedExport(model, folder.class_names, folder.preprocessing, folder.metadata)


def image_paths(paths: list[str]) -> list[Path]:
    """Files as given, folders searched recursively for images, in a stable order. A path that is not a
    regular file or a folder (a FIFO, a device such as /dev/zero, a socket) is refused by its kind,
    from its metadata alone: it is never opened, so nothing blocks or reads forever."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise UserError(f"{raw}: no such file or folder.") from None
        except OSError as exc:
            raise UserError(f"{raw}: cannot be looked at ({exc.strerror or exc}). Check the path and its "
                            f"permissions.") from None
        if stat.S_ISDIR(mode):
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p)))
        elif stat.S_ISREG(mode):
            found.append(path)
        else:
            raise UserError(f"{raw}: this is {special_kind(mode)}, not a regular file, so it is not read. Give image "
                            f"files (.jpg, .jpeg, .png) or folders of them; nothing was predicted.")
    if not found:
        raise UserError(f"No images (.jpg, .jpeg, .png) found in {', '.join(paths)}.")
    return found


def read_regular_file(path: Path) -> bytes:
    """The bytes of ``path``, if it is a regular file. It is opened without blocking and checked on the open
    descriptor, so a file swapped for a FIFO or a device after it was listed is refused, not waited on
    or read forever."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(descriptor, "rb") as handle:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise BadImage(f"{special_kind(mode)}, not a regular file")
        return handle.read()


def predict_rows(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, indices: np.ndarray,
                 num_classes: int, batch_size: int = BATCH) -> np.ndarray:
    """Class probabilities of ``images[indices]`` (uint8), ``batch_size`` rows at a time: each batch goes
    through ``to_model_input`` and then ``predict``. An empty ``indices`` gives an empty (0, num_classes) array."""
    outputs = [np.asarray(predict(to_model_input(images[indices[start : start + batch_size]])))
               for start in range(0, len(indices), batch_size)]
    return np.concatenate(outputs) if outputs else np.zeros((0, num_classes), dtype=np.float32)


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def predict_files(loaded: LoadedExport, paths: list[Path], top: int = 3) -> list[dict[str, Any]]:
    """One result per path: the top classes with probabilities, or the reason it could not be read."""
    return predict_sources(loaded, [(str(path), partial(read_regular_file, path)) for path in paths], top)


def predict_pictures(loaded: LoadedExport, pictures: list[tuple[str, bytes]], top: int = 3) -> list[dict[str, Any]]:
    """``predict_files`` for images already in memory as encoded bytes, each with the name its result carries."""
    return predict_sources(loaded, [(name, partial(bytes, data)) for name, data in pictures], top)


def predict_sources(loaded: LoadedExport, sources: list[tuple[str, Callable[[], bytes]]], top: int) -> list[dict[str, Any]]:
    """One result per (name, read) source, in order: the top classes with probabilities, or why it could not be
    read. Images are decoded as the search decoded them (the pixel cap, the resize rule) and classified in batches."""
    results: list[dict[str, Any]] = []
    notes: dict[str, str | None] = {}
    size = loaded.preprocessing.image_size
    top = max(1, min(top, len(loaded.class_names)))
    for batch in _batches(sources, BATCH):
        arrays, kept = [], []
        for name, read in batch:
            try:
                array, (width, height) = decode_image_and_size(read(), size, rule=loaded.preprocessing.rule)
                arrays.append(array)
                kept.append(name)
                notes[name] = small_input_note(width, height, size)
            except BadImage as exc:
                results.append({"path": name, "error": str(exc)})
            except OSError as exc:
                results.append({"path": name, "error": f"cannot be read: {exc.strerror or exc}"})
        if not arrays:
            continue
        probabilities = loaded.model.predict(to_model_input(np.stack(arrays)))
        for name, row in zip(kept, probabilities):
            order = np.argsort(-row)[:top]
            result = {"path": name, "top": [{"label": loaded.class_names[i], "probability": float(row[i])} for i in order]}
            results.append(result | ({"note": notes[name]} if notes.get(name) else {}))
    order_of = {name: i for i, (name, _) in enumerate(sources)}
    return sorted(results, key=lambda r: order_of[r["path"]])


def small_input_note(width: int, height: int, image_size: int) -> str | None:
    """Why a prediction deserves doubt: the image (``width`` x ``height``, as its header gives it) is far smaller
    than the model's input (the data audit's rule), so the model sees an enlarged blur; None for a fair size."""
    from automl_tl.audit.image_checks import SMALL_FRACTION

    if min(width, height) >= SMALL_FRACTION * image_size:
        return None
    return (f"{width}x{height} px, far smaller than the model's {image_size} px input: it saw an enlarged blur, so "
            f"doubt this prediction")
