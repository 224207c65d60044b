"""Best (or chosen) trial -> its artifact -> the framework's exporter -> a parity check."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from .artifacts import PARITY_FILE, TRIAL_FILE, load_parity_images, read_trial, trial_dir
from .errors import UserError
from .leaderboard import ranked_trials
from .plugins import Plugins
from .types import Preprocessing, TrialConfig

METADATA_FILE = "metadata.json"
LABELS_FILE = "labels.json"
PREPROCESSING_FILE = "preprocessing.json"
PARITY_TOLERANCE = 1e-3


@dataclass
class ExportReport:
    directory: Path
    model_file: str
    trial: int
    max_difference: float
    images_checked: int
    same_classes: bool


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


def _prepare_target(out_dir: Path, overwrite: bool) -> Path:
    replaceable = overwrite and (out_dir / METADATA_FILE).is_file()
    if out_dir.exists() and not replaceable and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(
            f"-o {out_dir}: the folder exists and is not empty. Choose a new folder, or pass --overwrite to replace "
            f"an earlier automl-tl export there; nothing was written."
        )
    staging = out_dir.parent / f".{out_dir.name}.exporting"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def parity_check(reference: np.ndarray, exported: np.ndarray) -> tuple[float, bool]:
    difference = float(np.max(np.abs(reference - exported))) if reference.size else 0.0
    same = bool(np.array_equal(reference.argmax(axis=1), exported.argmax(axis=1)))
    return difference, same


def fetch_remote_artifacts(remote: str, local: Path, number: int) -> None:
    """Download a trial's artifact folder and the study's parity images from an S3 mirror, unless here."""
    from .artifact_mirror import S3Mirror

    directory = trial_dir(local, number)
    if (directory / TRIAL_FILE).is_file() and (local / PARITY_FILE).is_file():
        return
    mirror = S3Mirror(remote)
    if not (directory / TRIAL_FILE).is_file() and not mirror.pull_folder(directory.name, directory):
        raise UserError(
            f"Trial {number} has no saved artifact in {remote}/{directory.name}. Only completed trials keep their "
            f"weights; pick another with --trial, or check --artifacts."
        )
    mirror.pull_file(PARITY_FILE, local / PARITY_FILE)


def export_trial(plugins: Plugins, study: optuna.Study, artifacts: Path, fmt: str, out_dir: Path,
                 trial_number: int | None = None, overwrite: bool = False) -> ExportReport:
    """Export a completed trial's saved weights; nothing is retrained and nothing half-written is left."""
    number = choose_trial(study, trial_number)
    artifact_dir, meta = read_trial(artifacts, number)
    spec = plugins.backbone(meta["backbone"])
    adapter = plugins.framework(meta["framework"])
    if fmt not in adapter.export_formats:
        raise UserError(f"--format {fmt}: the {adapter.name} adapter exports {', '.join(adapter.export_formats)}.")
    config = TrialConfig(**meta["config"])
    preprocessing = Preprocessing.from_dict(meta["preprocessing"])
    class_names = list(meta["class_names"])
    model = adapter.load(spec, artifact_dir, len(class_names), config)
    staging = _prepare_target(out_dir, overwrite)
    try:
        model_file = adapter.export(model, preprocessing, fmt, staging)
        images = load_parity_images(artifacts)
        if images is None:
            images = np.random.default_rng(0).integers(0, 256, (8, preprocessing.image_size, preprocessing.image_size, 3), dtype=np.uint8)
        batch = images.astype(np.float32) / 255.0
        reference = adapter.predict_loaded(model, preprocessing, batch)
        exported = adapter.load_exported(staging, fmt, model_file).predict(batch)
        difference, same = parity_check(reference, exported)
        if difference > PARITY_TOLERANCE:
            raise UserError(
                f"The exported {fmt} model disagrees with the trained one by up to {difference:.2e} in probability "
                f"(tolerance {PARITY_TOLERANCE}). Nothing was written; try another --format."
            )
        metadata: dict[str, Any] = {
            "study": study.study_name,
            "trial": number,
            "params": meta["params"],
            "framework": meta["framework"],
            "backbone": meta["backbone"],
            "pretrained": meta.get("pretrained", True),
            "format": fmt,
            "model_file": model_file,
            "val_accuracy": meta["metrics"]["val_accuracy"],
            "test_accuracy": meta["metrics"].get("test_accuracy"),
            "metrics": meta["metrics"],
            "parity": {"images": int(len(batch)), "max_abs_difference": difference, "same_classes": same},
            "input": "float32 NHWC RGB in [0, 1] for predict; the model file itself takes NCHW in [0, 1] "
                     "(torch) and normalises inside",
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "automl_tl_version": meta.get("automl_tl_version"),
        }
        (staging / LABELS_FILE).write_text(json.dumps(class_names, indent=2))
        (staging / PREPROCESSING_FILE).write_text(json.dumps(preprocessing.to_dict(), indent=2))
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
        if out_dir.exists():
            previous = out_dir.parent / f".{out_dir.name}.previous"
            out_dir.rename(previous)
            staging.rename(out_dir)
            shutil.rmtree(previous, ignore_errors=True)
        else:
            staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportReport(out_dir, model_file, number, difference, int(len(batch)), same)
