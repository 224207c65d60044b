"""A trial's training state kept after its finished epochs (``TrialResume.save_if_due`` says which), so that the
trial, run again after an interrupt or the deadline, goes on from there instead of from epoch 1.

The state lives in one folder per trial (its first attempt's number: every retry of it finds the same folder, and
so does a continuation of a trial the deadline stopped; see automl_tl/storage/trial_state.py): ``resume.json`` and
a subfolder per saved epoch, which the session fills (``automl_tl.capabilities.ResumableSession``) beside the kept
weights' validation probabilities. A save writes the new epoch's subfolder whole under a partial name, renames it,
then replaces ``resume.json`` (written atomically), then removes the older subfolder: a kill at any point leaves a
``resume.json`` whose subfolder is complete. ``resume.json`` proves its content before it is used (the cache's
rule): the SHA-256 of every file of its subfolder, and the trial's identity (its parameters and the configuration
they make); its fields are checked (the subfolder's name is ``epoch-NNNN``, never a path out of the folder; the
best epoch is one of the saved ones; every saved epoch a whole one). A mismatch, a malformed record, a damaged
file or a session that cannot read its state means starting from epoch 1, with ``note`` saying why. The folder is
removed when the trial ends in any way other than an interrupt or a deadline stop before its last epoch.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.capabilities import ResumableSession
from automl_tl.runtime.atomic_files import replace_text
from automl_tl.types import EpochResult, Phase, TrialSession

MANIFEST = "resume.json"
KEPT_PROBABILITIES = "kept_val_probabilities.npy"
FORMAT = 1
# The share of a trial's training time its saves may take (bench/resume_cost.py measured about 3.7% when saving after
# every epoch of a short 224 px fine-tuning trial): a save waits until 1/SAVE_SHARE times the last one's cost has passed.
SAVE_SHARE = 0.02
EPOCH_FOLDER = re.compile(r"epoch-\d{4}")  # a saved epoch's subfolder, the only name resume.json may give


@dataclass
class KeptEpochs:
    """A trial's whole epochs so far and the best of them: its ``EpochResult``, the session's snapshot of its
    weights, and its validation probabilities."""

    history: list[EpochResult] = field(default_factory=list)
    best: EpochResult | None = None
    snapshot: Any = None
    probabilities: np.ndarray | None = None

    def add(self, result: EpochResult, session: TrialSession, probabilities: np.ndarray) -> None:
        """Record a whole epoch; it becomes the best when its validation accuracy is higher."""
        self.history.append(result)
        if self.best is None or result.val_accuracy > self.best.val_accuracy:
            self.best, self.snapshot, self.probabilities = result, session.snapshot(), probabilities


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def folder_digests(folder: Path) -> dict[str, str]:
    """The SHA-256 of every file under ``folder``, by its path relative to it."""
    return {str(p.relative_to(folder)): file_digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def read_manifest(path: Path, layout: int) -> dict[str, Any]:
    """The JSON record at ``path``, which must be an object of format ``layout``; ``ValueError`` (or ``OSError``)
    otherwise."""
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(manifest, dict) or manifest.get("format") != layout:
        raise ValueError("an unknown layout")
    return manifest


def staged(parent: Path, name: str, fill: Callable[[Path], None]) -> tuple[Path, dict[str, str]]:
    """Subfolder ``name`` of ``parent`` staged whole: ``fill`` writes its files into a folder of a partial name,
    returned with the SHA-256 of every file (for the manifest that will name it: ``proven_folder``). The caller
    renames it to ``name`` (a kill before leaves the old ``name``, or none, never part of one)."""
    parent.mkdir(parents=True, exist_ok=True)
    partial = parent / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    fill(partial)
    return partial, folder_digests(partial)


def proven_folder(parent: Path, name: object, named: re.Pattern[str], shown: str, files: object) -> Path:
    """Subfolder ``name`` of ``parent`` (a name a manifest gave), once the name is one ``named`` matches whole (never
    a path out of ``parent``; ``shown`` says which names those are) and its files are exactly ``files`` (their
    digests by path, as ``staged`` gave them); ``ValueError`` (or ``OSError``) otherwise."""
    if not isinstance(name, str) or not named.fullmatch(name):
        raise ValueError(f"its folder {str(name)[:40]!r} is not named {shown}")
    if not isinstance(files, dict) or folder_digests(parent / name) != files:
        raise ValueError(f"the files of {name} do not match the digests recorded with them (damaged or replaced)")
    return parent / name


def _result_record(result: EpochResult) -> dict[str, Any]:
    return {**asdict(result), "phase": result.phase.value}


def _result_of(record: dict[str, Any], epoch: int) -> EpochResult:
    """The ``EpochResult`` of a saved record, which must be whole epoch ``epoch`` with numbers where numbers go."""
    result = EpochResult(**{**record, "phase": Phase(record["phase"])})
    numbers = (result.train_loss, result.val_accuracy, result.val_balanced_accuracy, result.seconds, result.spent)
    if result.epoch != epoch or result.fraction != 1.0 or not all(isinstance(x, (int, float)) for x in numbers):
        raise ValueError(f"its record of epoch {epoch + 1} is not one")
    return result


class TrialResume:
    """The saved training state of one trial, in ``folder``, for the trial whose ``identity`` (JSON-able: its
    parameters and configuration) it was saved with."""

    def __init__(self, folder: Path, identity: dict[str, Any]) -> None:
        self.folder = folder
        self.identity = json.loads(json.dumps(identity, sort_keys=True, default=str))
        self.note: str | None = None  # why a saved state was not used, for the trial's record
        self.spoiled = False  # a session began to read the state and failed: it must be started afresh
        self.resumed_epochs = 0  # the whole epochs read back by ``load``: trained before, not again
        self.saved_at: float | None = None  # the training seconds (``EpochResult.spent``) of the last save, if any
        self.save_seconds = 0.0  # what the last save took

    def save_if_due(self, session: TrialSession, kept: KeptEpochs, planned: int, left: float | None) -> None:
        """``save`` after the last of ``kept.history`` when it is due. Never after the trial's last planned epoch
        (the trial completes and its state is removed). Always the first time, and when the
        deadline is so near (``left``: its seconds left) that the next epoch may not finish, so that a trial the
        deadline stops keeps its last epoch. Otherwise once the training since the last save is at least
        1/``SAVE_SHARE`` times what that save took: saving costs at most about ``SAVE_SHARE`` of the training, and
        a Ctrl-C loses at most that much training (a state saved inside an epoch could not be resumed)."""
        if not kept.history or len(kept.history) >= planned:
            return
        last = kept.history[-1]
        near = left is not None and left < 2 * last.seconds + self.save_seconds
        if self.saved_at is not None and not near and last.spent - self.saved_at < self.save_seconds / SAVE_SHARE:
            return
        started = time.perf_counter()
        self.save(session, kept)
        self.save_seconds, self.saved_at = time.perf_counter() - started, last.spent

    def save(self, session: TrialSession, kept: KeptEpochs) -> None:
        """Keep the state after the last of ``kept.history`` (a session without ``ResumableSession``: nothing)."""
        if not isinstance(session, ResumableSession) or not kept.history or kept.probabilities is None:
            return
        name, snapshot = f"epoch-{len(kept.history):04d}", None if kept.best is kept.history[-1] else kept.snapshot
        probabilities = np.asarray(kept.probabilities, dtype=np.float32)

        def fill(partial: Path) -> None:
            session.save_state(partial, snapshot)
            np.save(partial / KEPT_PROBABILITIES, probabilities)

        partial, digests = staged(self.folder, name, fill)
        shutil.rmtree(self.folder / name, ignore_errors=True)
        partial.rename(self.folder / name)
        best = next(i for i, r in enumerate(kept.history) if r is kept.best)
        manifest = {"format": FORMAT, "identity": self.identity, "epochs": name, "files": digests, "best": best,
                    "history": [_result_record(r) for r in kept.history]}
        replace_text(self.folder / MANIFEST, json.dumps(manifest, indent=1))
        for old in self.folder.iterdir():  # the epochs saved before (or left partial by a kill); nothing else
            if old.name != name and EPOCH_FOLDER.fullmatch(old.name.removeprefix(".").removesuffix(".partial")):
                shutil.rmtree(old, ignore_errors=True)

    def load(self, session: TrialSession) -> KeptEpochs | None:
        """The epochs saved before, the session brought to where they ended (in the last one's phase); None
        when there is nothing to go on from (``note`` says why, when something was there)."""
        proven = self._proven()
        if proven is None or not isinstance(session, ResumableSession):
            if proven is not None:
                self._drop("this framework's sessions cannot read a saved training state")
            return None
        history, best, folder = proven
        try:
            session.set_phase(history[-1].phase)
            kept_snapshot = session.load_state(folder)
            probabilities = np.load(folder / KEPT_PROBABILITIES, allow_pickle=False)
        except Exception as exc:  # any framework's error reading its own files
            self.spoiled = True
            self._drop(f"the session could not read it ({type(exc).__name__}: {exc})"[:300])
            return None
        snapshot = session.snapshot() if kept_snapshot is None else kept_snapshot
        self.resumed_epochs = len(history)
        return KeptEpochs(history, history[best], snapshot, probabilities)

    def saved_identity(self) -> tuple[int, dict[str, Any]] | None:
        """The whole epochs and the identity of the state in the folder, read without proving its files or removing
        anything (what pricing the rest of the trial needs; ``load`` proves it before use); None when there is none
        (or it cannot be read)."""
        try:
            manifest = read_manifest(self.folder / MANIFEST, FORMAT)
            if isinstance(manifest.get("identity"), dict):
                return len(manifest["history"]), manifest["identity"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        return None

    def _proven(self) -> tuple[list[EpochResult], int, Path] | None:
        """The saved epochs, the index of the best, and their folder, when ``resume.json`` is well formed, every
        file it names has its recorded digest and it is this trial's; else None (the folder is removed, with a
        note, when something was there)."""
        path = self.folder / MANIFEST
        if not path.is_file():
            return None
        try:
            manifest = read_manifest(path, FORMAT)
            name, files, best = manifest["epochs"], manifest["files"], manifest["best"]
            history = [_result_of(record, epoch) for epoch, record in enumerate(manifest["history"])]
            if not history:
                raise ValueError("no epochs")
            if type(best) is not int or not 0 <= best < len(history):
                raise ValueError(f"its best epoch {str(best)[:20]} is not one of its {len(history)}")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self._drop(f"{path} cannot be read ({exc})"[:300])
            return None
        if manifest.get("identity") != self.identity:
            self._drop("it was saved by a trial with other parameters")
            return None
        try:
            return history, best, proven_folder(self.folder, name, EPOCH_FOLDER, "epoch-NNNN", files)
        except (OSError, ValueError) as exc:
            self._drop(f"{exc}"[:300])
            return None

    def _drop(self, why: str) -> None:
        """Give up the saved state: the trial starts from epoch 1, and ``note`` says why."""
        self.note = f"started from epoch 1: the saved training state was not used: {why}"
        self.discard()

    def discard(self) -> None:
        """Remove the saved state (the trial ended, or the state cannot be used)."""
        shutil.rmtree(self.folder, ignore_errors=True)

