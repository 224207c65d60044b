"""Per-trial artifacts (weights, labels, preprocessing) so export never retrains.

A study's artifacts live in a folder that belongs to that one study in that one storage:
``<artifacts>/<name>/<key>/``, where the key is a random id recorded in the study's attributes
when the study is created. The folder's ``study.json`` and every ``trial.json`` carry the key,
and every read checks it, so two studies with the same name (in two databases, or a study
deleted and created again) never read each other's weights or parity images.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from automl_tl.errors import UserError
from automl_tl.runtime.atomic_files import replace_file, replace_text
from automl_tl.study_record import ARTIFACTS_ATTR, STUDY_KEY_ATTR
from automl_tl.types import ImageTable

TRIAL_FILE = "trial.json"
PARITY_FILE = "parity.npz"
STUDY_FILE = "study.json"  # the folder's owner: the study's name and key
KEY_FIELD = "study_key"
PARITY_COUNT = 32


def new_study_key() -> str:
    """A random key for a new study: its artifact folder is named after it."""
    return uuid.uuid4().hex


def study_key(study: optuna.Study) -> str:
    """The study's artifact key; a study made before keys existed cannot be matched to a folder safely."""
    key = study.user_attrs.get(STUDY_KEY_ATTR)
    if not isinstance(key, str) or len(key) != 32:
        raise UserError(
            f"Study {study.study_name!r} has no artifact key (it was made by an earlier automl-tl), so no artifact "
            f"folder can be proven to be its own. Run `automl-tl search` on it once to give it one; trials from "
            f"then on are exported safely."
        )
    return key


def study_folder(base: Path, key: str) -> Path:
    """The folder of the study with ``key`` under its name-level folder ``base`` (``<artifacts>/<name>``)."""
    return base / key[:16]


def remote_study_folder(remote: str | None, key: str) -> str | None:
    return f"{remote.rstrip('/')}/{key[:16]}" if remote else None


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and prove a file can be written in it, or say why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write-check.", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(
            f"Cannot write the study's artifacts in {folder}: {exc.strerror or exc}. Trials keep their weights there; "
            f"make the folder writable, or choose another with --artifacts DIR. No trial was run."
        ) from None


def claim_folder(folder: Path, study_name: str, key: str) -> None:
    """Create the study's folder with its owner file, or check that an existing one is this study's;
    either way prove that trials can write there, before the first trial is trained."""
    check_writable(folder)
    if (folder / STUDY_FILE).exists():
        verify_folder(folder, study_name, key)
        return
    try:
        _write_atomically(folder / STUDY_FILE, json.dumps({"study": study_name, KEY_FIELD: key}, indent=2))
    except OSError as exc:
        raise UserError(f"Cannot write {folder / STUDY_FILE}: {exc.strerror or exc}. No trial was run.") from None


def verify_folder(folder: Path, study_name: str, key: str) -> None:
    """Refuse a folder whose owner file names another study (or none)."""
    owner_file = folder / STUDY_FILE
    try:
        owner = json.loads(owner_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"{folder} holds no artifacts of study {study_name!r} (no {STUDY_FILE}). Check --artifacts, or the "
            f"study's storage: a study of the same name in another database has its own artifacts."
        ) from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{owner_file} is damaged ({exc}); its artifacts cannot be matched to study {study_name!r}.") from None
    if not isinstance(owner, dict) or owner.get(KEY_FIELD) != key:
        raise UserError(
            f"{folder} belongs to another study named {study_name!r} (another database, or one deleted and made "
            f"again), not to this one; refusing to use its artifacts. Check --storage and --artifacts."
        )


def _write_atomically(path: Path, text: str) -> None:
    replace_text(path, text, partial=path.with_name(f".{path.name}.partial"))


def trial_dir(base: Path, number: int) -> Path:
    return base / f"trial-{number:04d}"


def partial_dir(base: Path, number: int) -> Path:
    """Where a running trial writes; renamed into place only when the trial completes."""
    return base / f".trial-{number:04d}.partial"


def resume_dir(base: Path, number: int) -> Path:
    """Where the training state of trial ``number`` (its first attempt: every retry shares it) is kept between
    epochs, so that a retry goes on from its last finished epoch (automl_tl/training/resume.py)."""
    return base / f".resume-{number:04d}"


def finalize(base: Path, number: int, meta: dict[str, Any]) -> Path:
    partial = partial_dir(base, number)
    (partial / TRIAL_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    final = trial_dir(base, number)
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    return final


def discard_partial(base: Path, number: int) -> None:
    shutil.rmtree(partial_dir(base, number), ignore_errors=True)


def read_trial(base: Path, number: int, study_name: str, key: str) -> tuple[Path, dict[str, Any]]:
    """A completed trial's folder and ``trial.json``, checked to belong to the study with ``key``."""
    verify_folder(base, study_name, key)
    directory = trial_dir(base, number)
    meta_file = directory / TRIAL_FILE
    if not meta_file.is_file():
        raise UserError(
            f"Trial {number} has no saved artifact in {directory}. Only completed trials keep their weights; "
            f"pick another with --trial, or check --artifacts if the study's artifacts live elsewhere."
        )
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{meta_file} is damaged ({exc}); export another trial with --trial.") from None
    if not isinstance(meta, dict) or meta.get(KEY_FIELD) != key or meta.get("trial") != number:
        raise UserError(
            f"{meta_file} is not trial {number} of this study {study_name!r} (its study key or number differs); "
            f"refusing to export weights that another study trained."
        )
    return directory, meta


def save_parity_images(base: Path, table: ImageTable) -> None:
    """A few validation images kept with the study, so export can check parity without the data."""
    target = base / PARITY_FILE
    if target.exists():
        return
    base.mkdir(parents=True, exist_ok=True)
    indices = table.splits["val"][:PARITY_COUNT]
    replace_file(target, lambda partial: np.savez_compressed(partial, images=table.images[indices],
                                                             labels=table.labels[indices]),
                 partial=base / (PARITY_FILE + ".partial.npz"))


def load_parity_images(base: Path, study_name: str, key: str) -> np.ndarray | None:
    """The study's parity images, from its own folder only."""
    verify_folder(base, study_name, key)
    path = base / PARITY_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["images"]
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{path} is damaged ({exc}); delete it and export again (random images are then used).") from None


def study_artifact_places(study: optuna.Study, option: str | None) -> tuple[Path, str | None]:
    """The folder (and S3 mirror, if any) of this study's own artifacts: ``option`` (``--artifacts``) when
    given, else where the study records them."""
    from automl_tl.storage.urls import artifact_places, recorded_artifact_places

    key = study_key(study)
    local, remote = (artifact_places(study.study_name, option) if option
                     else recorded_artifact_places(study.study_name, study.user_attrs.get(ARTIFACTS_ATTR)))
    return study_folder(local, key), remote_study_folder(remote, key)
