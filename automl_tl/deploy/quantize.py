"""``export --quantize int8``: the float export, quantized by its framework's own tools, weighed against itself.

The core's part: the study's images (a few hundred training images to calibrate on, the validation
split to judge by), the comparison of the quantized model with the float one it came from (file size,
CPU latency at batch 1, validation accuracy, and how often the two agree), and the refusal of a
quantized model that loses more validation accuracy than ``--max-accuracy-drop`` allows. The
adapter's part is ``quantize`` (see ``FrameworkAdapter`` in types.py): it writes the quantized model
file next to the float one, which it then replaces in the export folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.capabilities import Quantizes
from automl_tl.data.images import to_model_input
from automl_tl.errors import UserError
from automl_tl.plugin.manager import Plugins
from automl_tl.runtime.timing import median_ms
from automl_tl.tuning.study_data import study_data
from automl_tl.types import ExportedModel, FrameworkAdapter, ImageTable, Preprocessing

SCHEMES = ("int8",)
CALIBRATION_IMAGES = 256  # training images the activation ranges are calibrated on
CALIBRATION_BATCH = 16
PREDICT_BATCH = 64
CALIBRATION_SEED = 0
DEFAULT_MAX_ACCURACY_DROP = 1.0  # points of validation accuracy a quantized export may lose
MAX_ACCURACY_POINTS = 100.0  # accuracy is a percentage: no model can lose more


@dataclass(frozen=True)
class QuantizeRequest:
    """What ``--quantize`` asks for: the scheme, the largest validation accuracy drop it accepts (in
    points), and the study's images at a given model input (size and resize rule)."""

    scheme: str
    max_accuracy_drop: float
    images: Callable[[Preprocessing], tuple[ImageTable, list[str]]]  # the table, and warnings about it


@dataclass(frozen=True)
class QuantizeInputs:
    """The images a quantization uses, decoded once before anything is exported."""

    scheme: str
    max_accuracy_drop: float
    calibration: np.ndarray  # uint8 NHWC training images
    validation: np.ndarray  # uint8 NHWC validation images
    validation_labels: np.ndarray
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModelFigures:
    """One model file measured on this machine."""

    size_mb: float
    batch_1_ms: float  # median CPU latency of one image
    val_accuracy: float


@dataclass(frozen=True)
class QuantizeReport:
    """The quantized model against the float one it was made from, for the CLI to print and metadata.json."""

    scheme: str
    float_model: ModelFigures
    quantized_model: ModelFigures
    agreement: float  # share of validation images both models give the same class
    validation_images: int
    calibration_images: int
    max_accuracy_drop: float
    warnings: list[str] = field(default_factory=list)

    @property
    def accuracy_drop(self) -> float:
        """Validation accuracy lost, in percentage points (negative: the quantized model scored higher)."""
        return (self.float_model.val_accuracy - self.quantized_model.val_accuracy) * 100.0

    def metadata(self) -> dict[str, Any]:
        """The fields metadata.json records for a quantized export."""
        return {"quantized": self.scheme, "quantization": {
            "float": asdict(self.float_model), self.scheme: asdict(self.quantized_model),
            "accuracy_drop_points": self.accuracy_drop, "max_accuracy_drop_points": self.max_accuracy_drop,
            "agreement": self.agreement, "validation_images": self.validation_images,
            "calibration_images": self.calibration_images,
            "parity": "the parity field is the float export's, checked before quantizing; the quantized model is "
                      "checked by its validation accuracy and its agreement with the float one"}}


def study_images(plugins: Plugins, study_name: str, attrs: dict[str, Any],
                 data: str | None) -> Callable[[Preprocessing], tuple[ImageTable, list[str]]]:
    """The loader a ``QuantizeRequest`` needs: the study's images (``data`` when they moved) at a model's
    input, and a warning when they are no longer the images the study searched on."""

    def load(preprocessing: Preprocessing) -> tuple[ImageTable, list[str]]:
        loaded = study_data(plugins, attrs, study_name, data, image_size=preprocessing.image_size,
                            rule=preprocessing.rule, show_progress=False)
        warnings = [f"The data in {loaded.location} is not the data study {study_name!r} was searched on (images "
                    f"were added, removed, relabelled or edited since): the quantized model is calibrated and "
                    f"checked on it all the same, and its validation images may include training images."
                    ] if loaded.changed else []
        return loaded.table, warnings

    return load


def quantize_formats(adapter: FrameworkAdapter) -> tuple[str, ...]:
    """The adapter's export formats it can quantize (none, if it declares none)."""
    return tuple(adapter.quantize_formats) if isinstance(adapter, Quantizes) else ()


def check_quantize_options(scheme: str, max_accuracy_drop: float) -> None:
    """Refuse, before anything is loaded, a scheme or an accuracy limit that cannot be honoured."""
    if scheme not in SCHEMES:
        raise UserError(f"--quantize {scheme}: the schemes are {', '.join(SCHEMES)}.")
    if not 0 <= max_accuracy_drop <= MAX_ACCURACY_POINTS:  # NaN too
        raise UserError(f"--max-accuracy-drop {max_accuracy_drop}: give the most validation accuracy, in percentage "
                        f"points, that the quantized model may lose against the float one (from 0 to "
                        f"{MAX_ACCURACY_POINTS:g}; {DEFAULT_MAX_ACCURACY_DROP:g} by default).")


def check_format_quantizable(plugins: Plugins, fmt: str) -> None:
    """Refuse, before the study is read, a format that no loaded framework quantizes."""
    offered = [f"{name} ({adapter.name})" for _key, adapter in plugins.frameworks.items()
               for name in quantize_formats(adapter)]
    if not any(fmt in quantize_formats(adapter) for _key, adapter in plugins.frameworks.items()):
        can = f"the formats that can are {', '.join(offered)}" if offered else "no loaded framework quantizes any format"
        raise UserError(f"--format {fmt} --quantize: a {fmt} export cannot be quantized ({can}). Choose one of those "
                        f"formats, or export without --quantize; nothing was written.")


def check_quantizable(adapter: FrameworkAdapter, fmt: str) -> None:
    """Refuse ``--quantize`` with a format that the adapter does not quantize."""
    formats = quantize_formats(adapter)
    if fmt not in formats or not isinstance(adapter, Quantizes):
        can = f"it quantizes {', '.join(formats)} exports" if formats else "it quantizes no format"
        raise UserError(f"--format {fmt} --quantize: the {adapter.name} adapter cannot quantize a {fmt} export ({can}). "
                        f"Choose one of those formats, or export without --quantize; nothing was written.")


def prepare_quantize(adapter: FrameworkAdapter, fmt: str, preprocessing: Preprocessing, class_names: list[str],
                     request: QuantizeRequest) -> QuantizeInputs:
    """Check the request against the adapter and read the study's images at the model's input: up to
    ``CALIBRATION_IMAGES`` training images (a fixed random choice) and the whole validation split."""
    check_quantize_options(request.scheme, request.max_accuracy_drop)
    check_quantizable(adapter, fmt)
    table, warnings = request.images(preprocessing)
    if list(table.class_names) != list(class_names):
        raise UserError(f"The data's classes {list(table.class_names)} differ from the model's {class_names}, so it "
                        f"cannot calibrate or check the quantized model. Pass --data with the data set the study "
                        f"searched on.")
    train = np.asarray(table.splits["train"])
    chosen = np.sort(np.random.default_rng(CALIBRATION_SEED).permutation(train)[:CALIBRATION_IMAGES])
    val = np.asarray(table.splits["val"])
    return QuantizeInputs(request.scheme, request.max_accuracy_drop, np.asarray(table.images[chosen]),
                          np.asarray(table.images[val]), np.asarray(table.labels[val]), list(warnings))


def calibration_batches(images: np.ndarray, batch_size: int = CALIBRATION_BATCH) -> list[np.ndarray]:
    """The calibration images as the models take them: float32 NHWC RGB in [0, 1], in batches."""
    return [to_model_input(images[start : start + batch_size]) for start in range(0, len(images), batch_size)]


def _predictions(model: ExportedModel, images: np.ndarray) -> np.ndarray:
    outputs = [np.asarray(model.predict(to_model_input(images[start : start + PREDICT_BATCH])))
               for start in range(0, len(images), PREDICT_BATCH)]
    return np.concatenate(outputs).argmax(axis=1)


def size_mb(path: Path) -> float:
    """A model file's size (a model folder's: all its files), in megabytes."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def measure(model: ExportedModel, path: Path, inputs: QuantizeInputs) -> tuple[ModelFigures, np.ndarray]:
    """The model's size, batch-1 latency and validation accuracy, and its validation predictions."""
    one = to_model_input(inputs.validation[:1])
    latency = median_ms(lambda: model.predict(one), warmup=3, repeats=30, budget_s=2.0)
    predicted = _predictions(model, inputs.validation)
    accuracy = float(np.mean(predicted == inputs.validation_labels)) if len(predicted) else 0.0
    return ModelFigures(size_mb(path), latency, accuracy), predicted


def check_accuracy_drop(report: QuantizeReport) -> None:
    """Refuse a quantized model that lost more validation accuracy than the request accepts."""
    if report.accuracy_drop <= report.max_accuracy_drop + 1e-9:
        return
    raise UserError(
        f"The {report.scheme} model scores {report.quantized_model.val_accuracy:.2%} on the {report.validation_images} "
        f"validation images against the float model's {report.float_model.val_accuracy:.2%}: a drop of "
        f"{report.accuracy_drop:.2f} points, more than --max-accuracy-drop {report.max_accuracy_drop:g}. Nothing was "
        f"written. Export without --quantize, or accept a larger drop with --max-accuracy-drop."
    )


def quantize_export(adapter: FrameworkAdapter, model: Any, preprocessing: Preprocessing, fmt: str, staging: Path,
                    model_file: str, inputs: QuantizeInputs) -> tuple[str, QuantizeReport]:
    """Quantize the float export ``model_file`` in ``staging``, measure both, refuse a quantized model that
    lost too much accuracy, and leave only the quantized file; returns its name and the comparison."""
    float_model = adapter.load_exported(staging, fmt, model_file, trusted=True)  # written by this export
    float_figures, float_predicted = measure(float_model, staging / model_file, inputs)
    del float_model
    quantize = adapter.quantize  # type: ignore[attr-defined]  # optional: check_quantizable saw it
    quantized_file = str(quantize(model, preprocessing, fmt, staging, model_file, calibration_batches(inputs.calibration)))
    quantized_model = adapter.load_exported(staging, fmt, quantized_file, trusted=True)
    quantized_figures, quantized_predicted = measure(quantized_model, staging / quantized_file, inputs)
    del quantized_model
    agreement = float(np.mean(quantized_predicted == float_predicted)) if len(float_predicted) else 1.0
    report = QuantizeReport(inputs.scheme, float_figures, quantized_figures, agreement, int(len(inputs.validation)),
                            int(len(inputs.calibration)), inputs.max_accuracy_drop, inputs.warnings)
    check_accuracy_drop(report)
    if quantized_file != model_file:
        float_path = staging / model_file
        if float_path.is_dir():
            shutil.rmtree(float_path)
        else:
            float_path.unlink()
    return quantized_file, report
