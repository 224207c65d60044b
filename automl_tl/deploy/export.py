"""Best (or chosen) trial -> its artifact -> the framework's exporter -> a parity check."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from automl_tl.data.images import to_model_input
from automl_tl.deploy.export_folder import check_replaceable, finish_export, staging_folder
from automl_tl.deploy.export_leftovers import clear_leftovers
from automl_tl.deploy.flip import FlipChoice, flip_graph, judge_flip, keep_one, mirror_averaged, timed_export, with_latency
from automl_tl.deploy.model_folder import LABELS_FILE, METADATA_FILE, PREPROCESSING_FILE
from automl_tl.deploy.quantize import QuantizeReport, QuantizeRequest, prepare_quantize, quantize_export
from automl_tl.errors import UserError
from automl_tl.plugin.manager import Plugins
from automl_tl.storage.artifacts import PARITY_FILE, STUDY_FILE, TRIAL_FILE, load_parity_images, read_trial, study_key, trial_dir
from automl_tl.study_record import DIGEST_FIELD, backbone_weights_digest
from automl_tl.tuning.budget import ranked_trials
from automl_tl.types import BackboneSpec, FrameworkAdapter, Preprocessing, TrialConfig

PARITY_TOLERANCE = 1e-3


@dataclass
class ExportReport:
    directory: Path
    model_file: str
    trial: int
    max_difference: float
    images_checked: int
    same_classes: bool
    quantized: QuantizeReport | None = None  # with --quantize: the quantized model against the float one
    flip: FlipChoice | None = None  # what --flip decided, and the figures it stood on


def choose_trial(study: optuna.Study, number: int | None) -> int:
    if number is None:
        ranked = ranked_trials(study)
        if not ranked:
            raise UserError(f"Study {study.study_name!r} has no completed trial to export yet. Run a search first.")
        return ranked[0].number
    matches = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    if not matches:
        raise UserError(f"Study {study.study_name!r} has no trial {number}.")
    if matches[0].state != TrialState.COMPLETE:
        raise UserError(f"Trial {number} of study {study.study_name!r} is {matches[0].state.name}; only completed trials can be exported.")
    return number


def check_backbone_weights(adapter: FrameworkAdapter, spec: BackboneSpec, meta: dict[str, Any]) -> None:
    """Refuse a trial rebuilt onto other pretrained weights than it trained on: the trial saved only
    what it trained (its head, its fine-tuned blocks), so the rest must be the very same weights.
    A trial saved before digests were recorded is trusted as before."""
    recorded = meta.get(DIGEST_FIELD)
    if not recorded:
        return
    rebuilt = backbone_weights_digest(adapter, spec)
    if rebuilt is None or rebuilt == recorded:
        return
    raise UserError(
        f"Trial {meta.get('trial')} trained on other pretrained weights of backbone {spec.name!r} than the ones "
        f"rebuilt here (weights digest {str(recorded)[:12]} then, {rebuilt[:12]} now). The trial saved only what it "
        f"trained, so its model cannot be rebuilt onto these weights: the weights file changed (another version, "
        f"another --plugin file), or the backbone's factory ignores pretrained=True. Restore the weights the search "
        f"used, or run the search again with the weights here."
    )


def parity_check(reference: np.ndarray, exported: np.ndarray) -> tuple[float, bool]:
    difference = float(np.max(np.abs(reference - exported))) if reference.size else 0.0
    same = bool(np.array_equal(reference.argmax(axis=1), exported.argmax(axis=1)))
    return difference, same


def fetch_remote_artifacts(remote: str, local: Path, number: int) -> None:
    """Download a trial's artifact folder and the study's parity images from an S3 mirror, unless here."""
    from automl_tl.storage.mirror import S3Mirror

    directory = trial_dir(local, number)
    if all(path.is_file() for path in (directory / TRIAL_FILE, local / PARITY_FILE, local / STUDY_FILE)):
        return
    mirror = S3Mirror(remote)
    mirror.pull_file(STUDY_FILE, local / STUDY_FILE)
    if not (directory / TRIAL_FILE).is_file() and not mirror.pull_folder(directory.name, directory):
        raise UserError(
            f"Trial {number} has no saved artifact in {remote}/{directory.name}. Only completed trials keep their "
            f"weights; pick another with --trial, or check --artifacts."
        )
    mirror.pull_file(PARITY_FILE, local / PARITY_FILE)


@dataclass
class ExportSource:
    """What an export writes: one trained model (a trial's, or one graph averaging several trials') with
    the adapter that exports it, its input rule, its classes and what metadata.json says of where it came from."""

    adapter: FrameworkAdapter
    model: Any
    preprocessing: Preprocessing
    class_names: list[str]
    trial: int  # the trial it is (for an ensemble: its best member)
    metadata: dict[str, Any]  # study, trial(s), params, backbone, scores ...
    # What the export must agree with: by default the adapter's prediction with ``model``; an ensemble
    # gives the weighted mean of its members' own models, so its graph is checked against them.
    reference: Callable[[np.ndarray], np.ndarray] | None = None
    # --flip: whether the graph averages over each image and its mirror (``judge_flip``; None: it does not)
    flip: FlipChoice | None = None

    def predict_reference(self, batch: np.ndarray) -> np.ndarray:
        if self.reference is not None:
            return self.reference(batch)
        return self.adapter.predict_loaded(self.model, self.preprocessing, batch)


@dataclass
class LoadedTrial:
    """A completed trial's saved model, rebuilt onto the pretrained weights it trained on, with its record."""

    number: int
    spec: BackboneSpec
    adapter: FrameworkAdapter
    config: TrialConfig
    model: Any
    meta: dict[str, Any]  # its trial.json

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing.from_dict(self.meta["preprocessing"])


def load_trial_model(plugins: Plugins, study: optuna.Study, artifacts: Path, number: int,
                     fmt: str | None = None) -> LoadedTrial:
    """Rebuild trial ``number`` (nothing is retrained); with ``fmt``, refuse a format its adapter cannot
    write before the model is built."""
    artifact_dir, meta = read_trial(artifacts, number, study.study_name, study_key(study))
    spec = plugins.backbone(meta["backbone"])
    adapter = plugins.framework(meta["framework"])
    if fmt is not None:
        check_format(adapter, fmt)
    config = TrialConfig(**meta["config"])
    model = adapter.load(spec, artifact_dir, len(meta["class_names"]), config)
    check_backbone_weights(adapter, spec, meta)
    return LoadedTrial(number, spec, adapter, config, model, meta)


def trial_source(plugins: Plugins, study: optuna.Study, artifacts: Path, number: int, fmt: str | None = None) -> ExportSource:
    """A completed trial's saved model as an export source (see ``load_trial_model``)."""
    trial = load_trial_model(plugins, study, artifacts, number, fmt)
    meta = trial.meta
    metadata: dict[str, Any] = {
        "study": study.study_name,
        "trial": number,
        "params": meta["params"],
        "framework": meta["framework"],
        "backbone": meta["backbone"],
        "pretrained": meta.get("pretrained", True),
        DIGEST_FIELD: meta.get(DIGEST_FIELD),
        "val_accuracy": meta["metrics"]["val_accuracy"],
        "test_accuracy": meta["metrics"].get("test_accuracy"),
        "metrics": meta["metrics"],
        "automl_tl_version": meta.get("automl_tl_version"),
    }
    return ExportSource(trial.adapter, trial.model, trial.preprocessing, list(meta["class_names"]), number, metadata)


def best_export_format(study: optuna.Study, plugins: Plugins) -> str:
    """The first format the chosen trial's framework exports (onnx for torch, keras for keras); onnx where the
    study has no completed trial or its framework is not loaded."""
    from automl_tl.study_record import FRAMEWORK_ATTR

    ranked = ranked_trials(study)
    framework = ranked[0].user_attrs.get(FRAMEWORK_ATTR) if ranked else None
    if isinstance(framework, str) and framework in plugins.frameworks:
        return (plugins.framework(framework).export_formats or ("onnx",))[0]
    return "onnx"


def check_format_offered(plugins: Plugins, fmt: str) -> None:
    """Refuse, before the study is read, a format that no loaded framework exports (the list is the plugins':
    a framework plugin brings its own formats, so the command line cannot fix them)."""
    offered = {name: adapter.name for _key, adapter in plugins.frameworks.items() for name in adapter.export_formats}
    if fmt not in offered:
        listed = "; ".join(f"{name} ({framework})" for name, framework in offered.items()) or "none"
        raise UserError(f"--format {fmt}: no loaded framework exports it. The formats are: {listed}. "
                        f"Give one of them; nothing was written.")


def check_format(adapter: FrameworkAdapter, fmt: str) -> None:
    if fmt not in adapter.export_formats:
        raise UserError(f"--format {fmt}: the {adapter.name} adapter exports {', '.join(adapter.export_formats)}.")


def export_trial(plugins: Plugins, study: optuna.Study, artifacts: Path, fmt: str, out_dir: Path,
                 trial_number: int | None = None, overwrite: bool = False,
                 quantize: QuantizeRequest | None = None, flip: str = "off",
                 max_latency_ms: float | None = None) -> ExportReport:
    """Export a completed trial's saved weights; nothing is retrained and nothing half-written is left.
    ``flip`` (auto, on, off) averages the exported model over each image and its mirror (see deploy/flip.py)."""
    number = choose_trial(study, trial_number)
    source = trial_source(plugins, study, artifacts, number, fmt)
    source.flip = judge_flip(flip, artifacts, [(number, 1)])
    return write_export(source, fmt, out_dir, load_parity_images(artifacts, study.study_name, study_key(study)), overwrite,
                        quantize, max_latency_ms)


def write_export(source: ExportSource, fmt: str, out_dir: Path, parity_images: np.ndarray | None,
                 overwrite: bool = False, quantize: QuantizeRequest | None = None,
                 max_latency_ms: float | None = None) -> ExportReport:
    """Write ``source`` in ``fmt`` into ``out_dir``: staged beside it, checked against the model it came
    from on ``parity_images`` (random images without them), and moved into place whole. With ``quantize``,
    the checked float export is then quantized and replaced by the quantized model (see quantize.py). With
    ``source.flip`` other than off, both the plain and the mirror-averaged graph are timed at batch 1 and the
    choice made (``max_latency_ms`` bounds the averaged one); an averaged graph is checked against the mean of
    the reference on the images and on their mirrors."""
    check_format(source.adapter, fmt)
    adapter, model, preprocessing = source.adapter, source.model, source.preprocessing
    clear_leftovers(out_dir)  # what a killed export to the same place left: its own folders only
    check_replaceable(out_dir, overwrite)
    inputs = None if quantize is None else prepare_quantize(adapter, fmt, preprocessing, source.class_names, quantize)
    choice = source.flip
    predict_reference: Callable[[np.ndarray], np.ndarray] = source.predict_reference
    with staging_folder(out_dir) as staging:
        if choice is not None and choice.mode != "off":  # each graph is exported once: timed, then one is kept
            averaged_model = flip_graph(adapter, model, preprocessing)
            plain_dir, averaged_dir = staging / ".plain", staging / ".averaged"
            plain_file, plain_ms = timed_export(adapter, model, preprocessing, fmt, plain_dir)
            averaged_file, averaged_ms = timed_export(adapter, averaged_model, preprocessing, fmt, averaged_dir)
            choice = with_latency(choice, plain_ms, averaged_ms, max_latency_ms)
            if choice.flip:
                model, predict_reference = averaged_model, mirror_averaged(source.predict_reference)
            model_file = averaged_file if choice.flip else plain_file
            keep_one(averaged_dir if choice.flip else plain_dir, plain_dir if choice.flip else averaged_dir, staging)
        else:
            model_file = adapter.export(model, preprocessing, fmt, staging)
        images = parity_images
        if images is None:
            images = np.random.default_rng(0).integers(0, 256, (8, preprocessing.image_size, preprocessing.image_size, 3), dtype=np.uint8)
        batch = to_model_input(images)
        reference = predict_reference(batch)
        # The model this export just wrote itself: trusted, whatever its format.
        exported = adapter.load_exported(staging, fmt, model_file, trusted=True).predict(batch)
        difference, same = parity_check(reference, exported)
        if difference > PARITY_TOLERANCE:
            raise UserError(
                f"The exported {fmt} model disagrees with the trained one by up to {difference:.2e} in probability "
                f"(tolerance {PARITY_TOLERANCE}). Nothing was written; try another --format."
            )
        quantized = None
        if inputs is not None:
            model_file, quantized = quantize_export(adapter, model, preprocessing, fmt, staging, model_file, inputs)
        metadata: dict[str, Any] = {
            **source.metadata,
            **(quantized.metadata() if quantized is not None else {}),
            "format": fmt,
            "model_file": model_file,
            "parity": {"images": int(len(batch)), "max_abs_difference": difference, "same_classes": same},
            "flip": (choice or FlipChoice("off", False, "not asked")).metadata(),
            "input": "float32 NHWC RGB in [0, 1] for predict; the model file itself takes NCHW in [0, 1] "
                     "(torch) and normalises inside",
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (staging / LABELS_FILE).write_text(json.dumps(source.class_names, indent=2))
        (staging / PREPROCESSING_FILE).write_text(json.dumps(preprocessing.to_dict(), indent=2))
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
        finish_export(staging, out_dir, overwrite)
    return ExportReport(out_dir, model_file, source.trial, difference, int(len(batch)), same, quantized, choice)
