"""``automl_tl.load_model``: an exported model folder, ready to classify images and to be scored.

``automl-tl predict`` and ``automl-tl evaluate`` run through this class too."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

from automl_tl.errors import UserError

# What ``predict`` takes: a file or folder path, a PIL image, an (H, W, 3) or (H, W) uint8 array, or a list of them.
ImageInput = Union[str, Path, "np.ndarray", Any]


class ExportedModel:
    """An export folder opened as untrusted input: its files are checked, and a format that can run code when
    loaded (torchscript, savedmodel) opens only with ``trust=True``. (The framework's own model object, which a
    plugin returns, is ``automl_tl.types.ExportedModel``; this class wraps it with the labels and preprocessing.)"""

    def __init__(self, path: Path, loaded: Any, plugin_files: Sequence[str] = ()) -> None:
        self.path, self._loaded, self._plugin_files = path, loaded, list(plugin_files)

    @property
    def class_names(self) -> list[str]:
        """The labels, in the order of the model's outputs."""
        return list(self._loaded.class_names)

    @property
    def image_size(self) -> int:
        """The square input size the model was trained at; every image is resized to it as in the search."""
        return int(self._loaded.preprocessing.image_size)

    @property
    def metadata(self) -> dict[str, Any]:
        """The export's record: study, trial, format, parity check and more."""
        return dict(self._loaded.metadata)

    def predict(self, images: ImageInput | Sequence[ImageInput], top: int = 3) -> list[dict[str, Any]]:
        """The ``top`` most likely classes of each image, with probabilities: one record per image, in order, as
        ``automl-tl predict --json`` prints them (``{"path", "top": [{"label", "probability"}]}``, or ``"error"``
        for a file that cannot be read, and a ``"note"`` when the image is far smaller than the model's input, so
        the prediction deserves doubt). Paths to folders are searched for images."""
        from automl_tl.deploy.predict import image_paths, predict_files, predict_pictures

        if top < 1:
            raise UserError(f"predict(top={top}): give how many of the most likely classes to return (at least 1).")
        items = list(images) if isinstance(images, (list, tuple)) else [images]
        if all(isinstance(item, (str, Path)) for item in items):
            return predict_files(self._loaded, image_paths([str(item) for item in items]), top=top)
        if any(isinstance(item, (str, Path)) for item in items):
            raise UserError("predict(): give paths, or images in memory (PIL images or arrays), not both in one call.")
        return predict_pictures(self._loaded, [(f"<image {i}>", encoded(item)) for i, item in enumerate(items)], top=top)

    def evaluate(self, data: str | Path | None = None, split: str = "test") -> dict[str, Any]:
        """Accuracy and balanced accuracy on ``split`` (train, val, test, or all) of ``data``, split as the search
        split it; the bundled sample without ``data``. The test split estimates one chosen model: compare
        candidates on ``split="val"``."""
        from automl_tl.api.common import data_location, read_images
        from automl_tl.deploy.evaluate import evaluate_export
        from automl_tl.plugin.manager import load_plugins

        if split not in ("train", "val", "test", "all"):
            raise UserError(f"evaluate(split={split!r}): choose train, val, test or all.")
        location = data_location(str(data) if data is not None else None, "evaluate")
        splits = load_plugins(plugin_files=self._plugin_files).discover(location)
        table = read_images(splits, self.image_size, self._loaded.preprocessing.rule, skipped_note="They are not counted.")
        return evaluate_export(self._loaded, table, split)

    def __repr__(self) -> str:
        return f"<ExportedModel {str(self.path)!r}: {len(self.class_names)} classes at {self.image_size} px>"


def load_model(path: str | Path, *, trust: bool = False, plugin: str | Iterable[str] = ()) -> ExportedModel:
    """Open the export folder ``path`` (``Study.export`` or ``automl-tl export`` wrote it). ``trust``: also open
    formats that can run code when loaded, only for an export you made or whose maker you trust; ``plugin``:
    single-file plugins to load, as ``--plugin``."""
    from automl_tl.deploy.predict import load_export
    from automl_tl.plugin.manager import load_plugins

    files = plugin_list(plugin)
    return ExportedModel(Path(path), load_export(load_plugins(plugin_files=files), Path(path), trusted=trust), files)


def plugin_list(plugin: str | Iterable[str] | None) -> list[str]:
    """The plugin files of a ``plugin=`` keyword: one file, several, or none."""
    return [plugin] if isinstance(plugin, str) else [str(name) for name in plugin or ()]


def encoded(picture: Any) -> bytes:
    """An image in memory as PNG bytes, so that it is decoded, capped and resized exactly as a file is."""
    from PIL import Image

    if isinstance(picture, np.ndarray):
        if picture.dtype != np.uint8 or picture.ndim not in (2, 3) or (picture.ndim == 3 and picture.shape[2] not in (3, 4)):
            raise UserError(f"predict(): an array image must be uint8 of shape (H, W), (H, W, 3) or (H, W, 4); got "
                            f"{picture.dtype} {picture.shape}.")
        picture = Image.fromarray(picture)
    if not isinstance(picture, Image.Image):
        raise UserError(f"predict(): cannot read a {type(picture).__name__}; give a path, a PIL image or a uint8 array.")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
