"""The finished folds of a cross-validated trial, kept so that the trial, run again after an interrupt (Ctrl-C,
SIGTERM), goes on from its first unfinished fold instead of fold 1 (automl_tl/training/cross_validation.py).

A fold is kept whole or not at all: what the pooled score needs from it (every epoch's out-of-fold probabilities,
their mirrored ones where the session mirrors, its scores and history, its test probabilities) and, for fold 0
when it saved its model, that model's files. A fold's files go into ``fold-NNNN/`` under a partial name, which is
renamed, then ``folds.json`` is replaced (written atomically) with the folds before it plus this one: a kill at any
point leaves a manifest whose folders are complete. The manifest proves its content before it is used, as
``TrialResume``'s does (automl_tl/training/resume.py): the SHA-256 of every file, the trial's identity (its
parameters and configuration) and the folds' rows (a digest of the assignment, which the study's seed fixes).
Arrays are ``np.savez`` files read with ``allow_pickle=False``; nothing is pickled. A malformed record, a damaged
file, another trial's identity or other folds mean starting from fold 1, with ``note`` saying why. The folder is
the trial's resume folder (automl_tl/storage/trial_state.py), kept and removed by the same rules.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.runtime.atomic_files import replace_text
from automl_tl.training.engine import TrialOutcome
from automl_tl.training.resume import proven_folder, read_manifest, staged
from automl_tl.types import EpochResult, Phase, TrialConfig

FOLDS_MANIFEST = "folds.json"
FOLDS_FORMAT = 1
SEEN_FILE = "seen.npz"  # "seen": every epoch's validation probabilities; "mirrored": the same on mirrored images
TEST_FILE = "test.npz"  # "test" and, where there is one, "test_flip": the fold's kept weights on the test split
MODEL_FOLDER = "model"  # fold 0's saved model, where the trial keeps it (``keep_fold_zero``)
_SCORES = ("val_accuracy", "val_balanced_accuracy", "test_accuracy", "test_balanced_accuracy", "mirror_seconds", "seconds")


@dataclass
class FinishedFold:
    """A completed fold: its outcome (scores, history, test probabilities; no validation probabilities), its
    validation probabilities after every epoch (and their mirrored ones), and its wall seconds."""

    outcome: TrialOutcome
    seen: list[np.ndarray]
    mirrored: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0


def assignment_digest(assignment: list[np.ndarray]) -> str:
    """The SHA-256 of the folds' rows, fold by fold: the same folds hold the same rows in the same order."""
    digest = hashlib.sha256()
    for rows in assignment:
        digest.update(np.asarray(rows, dtype=np.int64).tobytes())
        digest.update(b"|")
    return digest.hexdigest()


def _history_record(result: EpochResult) -> dict[str, Any]:
    return {"epoch": result.epoch, "phase": result.phase.value, "train_loss": float(result.train_loss),
            "val_accuracy": float(result.val_accuracy), "val_balanced_accuracy": float(result.val_balanced_accuracy),
            "seconds": float(result.seconds), "spent": float(result.spent)}


def _history_of(records: list[Any]) -> list[EpochResult]:
    """The whole epochs of a saved record, in order, with numbers where numbers go."""
    history = []
    for epoch, record in enumerate(records):
        numbers = [record[k] for k in ("train_loss", "val_accuracy", "val_balanced_accuracy", "seconds", "spent")]
        if record["epoch"] != epoch or not all(type(x) in (int, float) for x in numbers):
            raise ValueError(f"its record of epoch {epoch + 1} is not one")
        history.append(EpochResult(epoch=epoch, phase=Phase(record["phase"]), train_loss=numbers[0],
                                   val_accuracy=numbers[1], val_balanced_accuracy=numbers[2], seconds=numbers[3],
                                   spent=numbers[4]))
    if not history:
        raise ValueError("a fold without epochs")
    return history


def _outcome_record(fold: FinishedFold) -> dict[str, Any]:
    outcome = fold.outcome
    return {**{k: float(getattr(outcome, k)) for k in _SCORES}, "best_epoch": outcome.best_epoch,
            "epochs_run": outcome.epochs_run, "history": [_history_record(r) for r in outcome.history],
            "fold_seconds": fold.seconds}


class FoldResume:
    """The finished folds of one cross-validated trial, in ``folder``, for the trial whose ``identity`` (JSON-able:
    its parameters and configuration) they were kept with; ``bind`` adds the folds' rows before use."""

    def __init__(self, folder: Path, identity: dict[str, Any]) -> None:
        self.folder = folder
        self.identity = json.loads(json.dumps(identity, sort_keys=True, default=str))
        self.note: str | None = None  # why kept folds were not used, for the trial's record
        self.resumed_folds = 0  # the folds read back by ``load``: trained before, not again
        self._entries: list[dict[str, Any]] = []  # the manifest's folds, as kept so far
        self._planned = 0  # the trial's folds, once bound

    @property
    def kept_folds(self) -> int:
        """How many folds are kept now (read back or saved by this run)."""
        return len(self._entries)

    def bind(self, assignment: list[np.ndarray]) -> None:
        """Tie the kept folds to these folds' rows (a retry whose folds differ starts from fold 1)."""
        self.identity = {**self.identity, "folds": assignment_digest(assignment)}
        self._planned = len(assignment)

    def saved_identity(self) -> tuple[int, dict[str, Any]] | None:
        """The folds kept in the folder and the identity they were kept with, less the folds' rows (proven by
        ``load`` once bound), read without proving or removing anything: what planning the rest of the trial needs.
        None when there are none (or the record cannot be read)."""
        manifest = self._manifest()
        if manifest is None or not isinstance(manifest.get("identity"), dict):
            return None
        return len(manifest["folds"]), {k: v for k, v in manifest["identity"].items() if k != "folds"}

    def saved_planned(self) -> int:
        """How many folds the trial that kept the folds in the folder planned (0: none kept, or not recorded)."""
        manifest = self._manifest()
        planned = manifest.get("planned") if manifest is not None else None
        return planned if type(planned) is int and planned > 1 else 0

    def _manifest(self) -> dict[str, Any] | None:
        try:
            manifest = read_manifest(self.folder / FOLDS_MANIFEST, FOLDS_FORMAT)
            if isinstance(manifest["folds"], list):
                return manifest
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None

    def save(self, index: int, fold: FinishedFold, model: Path | None = None) -> None:
        """Keep completed fold ``index`` (the folds before it are kept already), with ``model``'s files if given."""
        if index != len(self._entries):
            return  # an earlier fold was not kept: a later one alone could not be resumed
        name = f"fold-{index:04d}"

        def fill(partial: Path) -> None:
            arrays: dict[str, Any] = {"seen": np.stack(fold.seen).astype(np.float32)}  # Any: savez's **kwds
            if fold.mirrored:
                arrays["mirrored"] = np.stack(fold.mirrored).astype(np.float32)
            np.savez(partial / SEEN_FILE, **arrays)
            tests = {"test": fold.outcome.test_probabilities, "test_flip": fold.outcome.test_flip_probabilities}
            kept: dict[str, Any] = {k: np.asarray(v, dtype=np.float32) for k, v in tests.items() if v is not None}
            np.savez(partial / TEST_FILE, **kept)
            if model is not None:
                shutil.copytree(model, partial / MODEL_FOLDER)

        partial, files = staged(self.folder, name, fill)
        shutil.rmtree(self.folder / name, ignore_errors=True)
        partial.rename(self.folder / name)
        entry = {"name": name, "files": files, "model": model is not None, **_outcome_record(fold)}
        self._entries.append(entry)
        manifest = {"format": FOLDS_FORMAT, "identity": self.identity, "planned": self._planned, "folds": self._entries}
        replace_text(self.folder / FOLDS_MANIFEST, json.dumps(manifest, indent=1))

    def load(self, config: TrialConfig, save_to: Path | None) -> list[FinishedFold]:
        """The folds kept before, in order (fold 0's model copied into ``save_to`` when that is given); [] when
        there are none or they do not prove (then ``note`` says why and the folder is removed)."""
        path = self.folder / FOLDS_MANIFEST
        if not path.is_file():
            return []
        try:
            manifest = read_manifest(path, FOLDS_FORMAT)
            if manifest.get("identity") != self.identity:
                raise ValueError("they were kept by a trial with other parameters or other folds")
            entries = manifest["folds"]
            folds = [self._proven_fold(index, entry, config) for index, entry in enumerate(entries)]
            if folds and save_to is not None:
                if not entries[0]["model"]:
                    raise ValueError("fold 1's model was not kept with it")
                shutil.copytree(self.folder / entries[0]["name"] / MODEL_FOLDER, save_to, dirs_exist_ok=True)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            self._drop(f"{exc}"[:300])
            return []
        self._entries, self.resumed_folds = list(entries), len(folds)
        return folds

    def _proven_fold(self, index: int, entry: dict[str, Any], config: TrialConfig) -> FinishedFold:
        """Kept fold ``index``, read back once its folder's name and every file's digest prove."""
        name = f"fold-{index:04d}"
        folder = proven_folder(self.folder, entry["name"], re.compile(name), name, entry["files"])
        history = _history_of(entry["history"])
        scores = {k: entry[k] for k in _SCORES}
        if not all(type(x) in (int, float) for x in scores.values()) or type(entry["best_epoch"]) is not int:
            raise ValueError(f"the scores of fold {index + 1} are not numbers")
        with np.load(folder / SEEN_FILE, allow_pickle=False) as seen_file, \
                np.load(folder / TEST_FILE, allow_pickle=False) as test_file:
            seen = list(seen_file["seen"])
            mirrored = list(seen_file["mirrored"]) if "mirrored" in seen_file.files else []
            test = test_file["test"] if "test" in test_file.files else None
            test_flip = test_file["test_flip"] if "test_flip" in test_file.files else None
        if len(seen) != len(history) or not 0 <= entry["best_epoch"] < len(history):
            raise ValueError(f"fold {index + 1} keeps {len(seen)} epochs' probabilities for {len(history)} epochs")
        outcome = TrialOutcome(**scores, best_epoch=entry["best_epoch"], best_phase=history[entry["best_epoch"]].phase,
                               config=config, history=history, test_probabilities=test, test_flip_probabilities=test_flip,
                               epochs_run=int(entry["epochs_run"]))
        return FinishedFold(outcome, seen, mirrored, float(entry["fold_seconds"]))

    def _drop(self, why: str) -> None:
        """Give up the kept folds: the trial starts from fold 1, and ``note`` says why."""
        self.note = f"started from fold 1: the kept folds were not used: {why}"
        self.discard()

    def discard(self) -> None:
        """Remove the kept folds (the trial ended, or they cannot be used)."""
        self._entries = []
        shutil.rmtree(self.folder, ignore_errors=True)
