"""An export folder is untrusted input: it may come from anyone, so it is checked before anything in it runs.

Reading a folder (``read_model_folder``) checks its three JSON files against the schema that
``automl-tl export`` writes: required fields, their types and ranges. It also checks that every file
the folder names stays inside it, once resolved: no absolute path, no ``..``, no link that leads out.
Opening the model (``open_model``) loads only formats that run no code from the file (the adapter's
``safe_formats``: ONNX, ``.keras`` in safe mode) unless the caller trusts the folder
(``--trust-model``). It turns the runtime's failure on a damaged file into a message that names the
file, and runs one small batch to check that the model gives one probability per label.
Every problem is a ``UserError`` that names the file and the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.errors import UserError
from automl_tl.runtime.label_names import label_key, look_alike
from automl_tl.types import INTERPOLATIONS, RESIZE_MODES, ExportedModel, FrameworkAdapter, Preprocessing, ResizeRule

METADATA_FILE = "metadata.json"  # an export folder's three JSON files (here, not in export.py: reading a folder
LABELS_FILE = "labels.json"  # to predict then needs none of the export's imports, Optuna's among them)
PREPROCESSING_FILE = "preprocessing.json"
LEGACY_RESIZE_TEXT = "bilinear, to a square"  # what preprocessing.json said before resize rules

MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 1024  # the range `automl-tl search --image-size` accepts
MAX_JSON_BYTES = 1 << 20  # an export's JSON files are a few kilobytes
CHECK_BATCH = 2  # images in the batch that checks a loaded model's output shape
FIX = "Export the model again with `automl-tl export`, or ask whoever made the folder for a fresh export."


@dataclass(frozen=True)
class ModelFolder:
    """An export folder whose JSON files passed the schema; nothing in it has been loaded yet."""

    directory: Path  # resolved
    metadata: dict[str, Any]
    class_names: list[str]
    preprocessing: Preprocessing
    framework: str
    format: str
    model_file: str  # as metadata.json names it, relative to ``directory``

    @property
    def model_path(self) -> Path:
        return self.directory / self.model_file

    @property
    def flip_averaged(self) -> bool:
        """Whether the model averages each image with its mirror (``export --flip``; metadata.json "flip")."""
        return flip_averaged(self.metadata)


def flip_averaged(metadata: dict[str, Any]) -> bool:
    """metadata.json's "flip" "averaged" field; False when absent (exports before --flip) or malformed."""
    flip = metadata.get("flip")
    return isinstance(flip, dict) and flip.get("averaged") is True


def _show(value: Any) -> str:
    """A JSON value as the user wrote it, cut short."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def inside(folder: Path, name: str, source: Path, field: str) -> Path:
    """``folder / name`` resolved; refused unless it lies inside ``folder`` (itself resolved)."""
    if Path(name).is_absolute():
        raise UserError(f'{source}: the field "{field}" is the absolute path {_show(name)}; a model folder may only '
                        f'name files inside itself. {FIX}')
    try:
        path = (folder / name).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a NUL byte, a loop of links
        raise UserError(f'{source}: the field "{field}" ({_show(name)}) is not a usable file name ({exc}). {FIX}') from None
    if path == folder:
        raise UserError(f'{source}: the field "{field}" ({_show(name)}) names the model folder itself, not a file in '
                        f'it. {FIX}')
    if not path.is_relative_to(folder):
        raise UserError(f'{source}: the field "{field}" ({_show(name)}) leads outside the model folder, to {path}; a '
                        f'model folder may only name files inside itself (no "..", absolute paths or links out). {FIX}')
    return path


def _read_json(folder: Path, name: str) -> Any:
    path = folder / name
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:
        raise UserError(f"{path} cannot be read ({exc}). {FIX}") from None
    if not resolved.is_relative_to(folder):
        raise UserError(f"{path} is a link to {resolved}, outside the model folder; it is not read. {FIX}")
    if not path.is_file():
        if name == METADATA_FILE:
            raise UserError(f"{folder} is not an automl-tl export folder (no {METADATA_FILE}). Create one with "
                            f"`automl-tl export`.")
        raise UserError(f"{folder} is not a complete automl-tl export: {name} is missing. {FIX}")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_JSON_BYTES + 1)
    except OSError as exc:
        raise UserError(f"{path} cannot be read ({exc.strerror or exc}). {FIX}") from None
    if len(raw) > MAX_JSON_BYTES:
        raise UserError(f"{path} is larger than {MAX_JSON_BYTES // 1024} KiB, far more than an export's {name}; it is "
                        f"not read. {FIX}")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text (byte {exc.start} is {raw[exc.start]:#04x}). {FIX}") from None
    except RecursionError:
        raise UserError(f"{path} nests too deeply to be an export's {name}. {FIX}") from None
    except ValueError as exc:
        raise UserError(f"{path} is not valid JSON ({exc}). {FIX}") from None


def _object(data: Any, path: Path, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a JSON object ({what}), not {type(data).__name__} {_show(data)}. {FIX}")
    return data


def _string(data: dict[str, Any], field: str, path: Path) -> str:
    if field not in data:
        raise UserError(f'{path}: the field "{field}" is missing. {FIX}')
    value = data[field]
    if not isinstance(value, str) or not value.strip():
        raise UserError(f'{path}: the field "{field}" must be a non-empty string, not {_show(value)}. {FIX}')
    return value


def check_labels(data: Any, path: Path) -> list[str]:
    """labels.json: a list of at least two distinct, non-empty strings, one per class in output order."""
    if not isinstance(data, list):
        raise UserError(f"{path} must hold a JSON list of class names, not {type(data).__name__} {_show(data)}. {FIX}")
    if len(data) < 2:
        raise UserError(f"{path} lists {len(data)} label(s); a classifier needs at least two. {FIX}")
    seen: set[str] = set()
    for index, label in enumerate(data):
        if not isinstance(label, str) or not label_key(label):
            raise UserError(f"{path}: label {index} is {_show(label)}; every label must be a non-empty string, not "
                            f"only spaces. {FIX}")
        if label in seen:
            raise UserError(f"{path}: the label {_show(label)} appears twice; each class needs its own name. {FIX}")
        seen.add(label)
    twins = look_alike(data)
    if twins is not None:
        raise UserError(f"{path}: the labels {_show(twins[0])} and {_show(twins[1])} differ only in spaces or in how "
                        f"an accent is encoded, so predictions would show two classes by one name. {FIX}")
    return list(data)


def check_preprocessing(data: Any, path: Path) -> Preprocessing:
    """preprocessing.json: ``image_size`` a whole number in the search's range; ``mean`` and ``std`` three
    finite numbers each, every ``std`` above zero."""
    data = _object(data, path, "image_size, mean and std")
    if "image_size" not in data:
        raise UserError(f'{path}: the field "image_size" is missing. {FIX}')
    size = data["image_size"]
    if not isinstance(size, int) or isinstance(size, bool) or not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
        raise UserError(f'{path}: the field "image_size" is {_show(size)}; it must be a whole number of pixels from '
                        f'{MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}, the sizes a search trains at. {FIX}')
    values: dict[str, tuple[float, float, float]] = {}
    for field in ("mean", "std"):
        if field not in data:
            raise UserError(f'{path}: the field "{field}" is missing. {FIX}')
        value = data[field]
        if not (isinstance(value, list) and len(value) == 3 and all(_is_number(v) and math.isfinite(v) for v in value)):
            raise UserError(f'{path}: the field "{field}" is {_show(value)}; it must be a list of three finite numbers '
                            f'(one per RGB channel). {FIX}')
        values[field] = (float(value[0]), float(value[1]), float(value[2]))
    if not all(s > 0 for s in values["std"]):
        raise UserError(f'{path}: the field "std" is {_show(data["std"])}; every channel\'s std must be above zero '
                        f'(pixels are divided by it). {FIX}')
    return Preprocessing(size, values["mean"], values["std"], _check_rule(data, path))


def _check_rule(data: dict[str, Any], path: Path) -> ResizeRule:
    """The resize rule: ``resize`` one of the modes, ``crop_pct`` from 0.5 to 1, ``interpolation`` one we
    resample with. A file written before rules existed has none of them and stretched its images."""
    if "resize" not in data or data["resize"] == LEGACY_RESIZE_TEXT:
        return ResizeRule("stretch")
    mode, crop, interpolation = data["resize"], data.get("crop_pct", 1.0), data.get("interpolation", "bilinear")
    if mode not in RESIZE_MODES:
        raise UserError(f'{path}: the field "resize" is {_show(mode)}; it must be one of {", ".join(RESIZE_MODES)}. {FIX}')
    if not (_is_number(crop) and math.isfinite(crop) and 0.5 <= crop <= 1.0):
        raise UserError(f'{path}: the field "crop_pct" is {_show(crop)}; it must be a number from 0.5 to 1. {FIX}')
    if interpolation not in INTERPOLATIONS:
        raise UserError(f'{path}: the field "interpolation" is {_show(interpolation)}; it must be one of '
                        f'{", ".join(INTERPOLATIONS)}. {FIX}')
    return ResizeRule(mode, float(crop), interpolation)


def read_model_folder(model_dir: Path) -> ModelFolder:
    """Check an export folder's JSON files and the model file it names, before anything is loaded."""
    given = Path(model_dir).expanduser()
    if not given.is_dir():
        if given.exists():
            raise UserError(f"{model_dir} is a file, not an export folder. Give the folder `automl-tl export -o` wrote.")
        raise UserError(f"{model_dir} is not an automl-tl export folder (no such folder). Create one with `automl-tl export`.")
    folder = given.resolve()
    meta_path = folder / METADATA_FILE
    metadata = _object(_read_json(folder, METADATA_FILE), meta_path, "framework, format, model_file, ...")
    framework = _string(metadata, "framework", meta_path)
    fmt = _string(metadata, "format", meta_path)
    model_file = _string(metadata, "model_file", meta_path)
    model_path = inside(folder, model_file, meta_path, "model_file")
    if not model_path.exists():
        raise UserError(f'{meta_path}: the field "model_file" names {model_file!r}, which is not in {folder}. {FIX}')
    class_names = check_labels(_read_json(folder, LABELS_FILE), folder / LABELS_FILE)
    preprocessing = check_preprocessing(_read_json(folder, PREPROCESSING_FILE), folder / PREPROCESSING_FILE)
    return ModelFolder(folder, metadata, class_names, preprocessing, framework, fmt, model_file)


def safe_formats(adapter: FrameworkAdapter) -> tuple[str, ...]:
    """The adapter's formats that load without running code from the file (none, if it declares none)."""
    return tuple(adapter.safe_formats)


def _reason(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def open_model(plugins: Any, folder: ModelFolder, trusted: bool = False) -> ExportedModel:
    """Load the folder's model if its format is safe or the caller trusts the folder; check its outputs."""
    meta_path = folder.directory / METADATA_FILE
    if folder.framework not in plugins.frameworks:
        raise UserError(f'{folder.directory} holds a {folder.framework} model ({meta_path.name} "framework"), but no '
                        f'{folder.framework} plugin is loaded here. Install it, then retry.')
    adapter = plugins.framework(folder.framework)
    if folder.format not in adapter.export_formats:
        raise UserError(f'{meta_path}: the field "format" is {_show(folder.format)}, which the {adapter.name} plugin '
                        f'does not load (it loads {", ".join(adapter.export_formats) or "nothing"}). {FIX}')
    safe = safe_formats(adapter)
    if folder.format not in safe and not trusted:
        instead = (f"an export in {' or '.join(safe)} format, which loads without running code" if safe
                   else "an export in a format that runs no code")
        raise UserError(
            f'{meta_path}: the model is a {folder.format} export (field "format"), and loading {folder.format} can run '
            f"code stored in the model, so a folder from someone else could read or change your files. It is loaded only "
            f"with --trust-model: pass it if you made this export yourself or trust whoever did. Otherwise ask for "
            f"{instead} (`automl-tl export NAME --format {safe[0] if safe else 'FORMAT'}`). Nothing was loaded."
        )
    if not adapter.is_installed():
        raise UserError(f"{folder.directory} holds a {folder.framework} model, but {folder.framework} is not installed "
                        f"here. Install it, then retry.")
    try:
        model = adapter.load_exported(folder.directory, folder.format, folder.model_file, trusted=trusted)
    except UserError:
        raise
    except Exception as exc:  # the runtime's own error for a file it cannot read: whatever it raises, the file is at fault
        raise UserError(f"{folder.model_path}: the {folder.format} model cannot be loaded ({_reason(exc)}); the file is "
                        f"damaged, truncated or not a model in the {folder.format} format. {FIX}") from None
    check_outputs(model, folder)
    return model


def check_outputs(model: ExportedModel, folder: ModelFolder) -> None:
    """One small batch through the model: it must give (batch, len(labels)) numbers."""
    size, labels = folder.preprocessing.image_size, len(folder.class_names)
    batch = np.full((CHECK_BATCH, size, size, 3), 0.5, dtype=np.float32)
    try:
        outputs = np.asarray(model.predict(batch))
    except Exception as exc:  # a model that cannot take these images: it and preprocessing.json disagree
        raise UserError(f'{folder.model_path}: the model fails on {size}x{size} RGB images, the size that '
                        f'{PREPROCESSING_FILE} "image_size" gives ({_reason(exc)}); the model and its '
                        f"{PREPROCESSING_FILE} do not belong together. {FIX}") from None
    if outputs.shape != (CHECK_BATCH, labels) or outputs.dtype.kind not in "fiu":
        if outputs.shape == (CHECK_BATCH, labels):
            got = f"{outputs.dtype} outputs, not numbers,"
        elif outputs.ndim == 2 and outputs.shape[0] == CHECK_BATCH:
            got = f"{outputs.shape[1]} outputs per image"
        else:
            got = f"outputs of shape {outputs.shape} for {CHECK_BATCH} images"
        raise UserError(f"{folder.model_path}: the model gives {got}, but {LABELS_FILE} lists {labels} labels; they must "
                        f"match one to one. The model and its {LABELS_FILE} do not belong together. {FIX}")
