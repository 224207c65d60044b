"""``export --flip auto|on|off``: average the exported model over each image and its left-right mirror.

The averaging is built into the exported graph by the framework adapter (its optional ``flip_average``), so
``predict``, ``evaluate`` and every format give the same averaged probabilities, and the export's parity
check compares the graph with the mean of the trained model on the batch and on its mirror.

``auto`` decides on the study's own kept predictions: a trial keeps its validation (under cross-validation:
out-of-fold) probabilities on the plain and on the mirrored images (``val`` and ``val_flip``, see
automl_tl.storage.predictions); their mean is scored against the plain ones, accuracy first, then log loss
(``flip_pays``). Averaging doubles the work per image, so with ``--max-latency-ms`` the measured batch-1
latency of the averaged export must fit the limit too. Only trials trained on mirrored images (``augment:
hflip``) keep mirrored predictions; for any other trial ``auto`` means off, and says why.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.capabilities import AveragesMirror
from automl_tl.data.images import to_model_input
from automl_tl.errors import UserError
from automl_tl.runtime.timing import median_ms
from automl_tl.storage.artifacts import trial_dir
from automl_tl.storage.predictions import load_predictions
from automl_tl.types import FrameworkAdapter, Preprocessing

FLIP_MODES = ("auto", "on", "off")
DEFAULT_FLIP = "auto"


@dataclass(frozen=True)
class FlipScores:
    """Validation accuracy and mean log loss of one set of probabilities, over ``rows`` images."""

    accuracy: float
    log_loss: float
    rows: int


def scores_of(probabilities: np.ndarray, labels: np.ndarray) -> FlipScores:
    """Accuracy and mean log loss of ``probabilities`` against ``labels``."""
    if not len(labels):
        return FlipScores(0.0, 0.0, 0)
    picked = probabilities[np.arange(len(labels)), labels]
    return FlipScores(float(np.mean(probabilities.argmax(axis=1) == labels)),
                      float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0)))), int(len(labels)))


def flip_pays(plain: FlipScores, averaged: FlipScores) -> bool:
    """The rule: average over the mirror when that scores a higher validation accuracy, or the same accuracy
    with a lower log loss (the held-out images it will meet are ranked by accuracy; log loss breaks ties)."""
    if averaged.accuracy != plain.accuracy:
        return averaged.accuracy > plain.accuracy
    return averaged.log_loss < plain.log_loss


@dataclass(frozen=True)
class FlipChoice:
    """What ``--flip`` decided and why, with the validation figures and batch-1 latencies it stood on."""

    mode: str
    flip: bool
    reason: str
    plain: FlipScores | None = None
    averaged: FlipScores | None = None
    plain_ms: float | None = None
    averaged_ms: float | None = None

    def metadata(self) -> dict[str, Any]:
        """The ``flip`` field of metadata.json."""
        def figures(scores: FlipScores | None) -> dict[str, Any] | None:
            return None if scores is None else {"val_accuracy": scores.accuracy, "val_log_loss": scores.log_loss,
                                                "val_images": scores.rows}
        return {"averaged": self.flip, "mode": self.mode, "reason": self.reason,
                "plain": figures(self.plain), "mirror_averaged": figures(self.averaged),
                "batch_1_ms": {"plain": self.plain_ms, "mirror_averaged": self.averaged_ms}}


def check_flip_mode(mode: str) -> None:
    """Refuse a ``--flip`` value other than auto, on or off."""
    if mode not in FLIP_MODES:
        raise UserError(f"--flip {mode}: give auto (average over each image and its mirror when that scores better on "
                        f"the study's validation predictions), on or off.")


def kept_scores(artifacts: Path, members: Sequence[tuple[int, int]]) -> tuple[FlipScores, FlipScores] | str:
    """The plain and mirror-averaged validation scores of ``members`` ((trial, weight) pairs: one trial, or an
    ensemble's weighted members) from their kept predictions; a sentence why not where they lack them."""
    plain_sum: np.ndarray | None = None
    mirror_sum: np.ndarray | None = None
    index: np.ndarray | None = None
    labels: np.ndarray | None = None
    for number, weight in members:
        kept = load_predictions(trial_dir(artifacts, number))
        if not kept or "val" not in kept or "val_flip" not in kept:
            return (f"trial {number} kept no predictions on mirrored validation images (only trials trained on "
                    f"mirrored images, augment hflip, keep them), so nothing shows whether averaging over the "
                    f"mirror pays")
        val, val_flip = kept["val"], kept["val_flip"]
        if not np.array_equal(val.index, val_flip.index) or (index is not None and not np.array_equal(val.index, index)):
            return f"trial {number}'s kept validation rows do not line up with its mirrored ones or its peers'"
        index, labels = val.index, val.labels
        plain_sum = weight * val.probabilities.astype(np.float64) + (0 if plain_sum is None else plain_sum)
        mirror_sum = weight * val_flip.probabilities.astype(np.float64) + (0 if mirror_sum is None else mirror_sum)
    assert plain_sum is not None and mirror_sum is not None and labels is not None, "at least one member"
    total = float(sum(weight for _, weight in members))
    plain, mirror = plain_sum / total, mirror_sum / total
    return scores_of(plain, labels), scores_of((plain + mirror) / 2.0, labels)


def judge_flip(mode: str, artifacts: Path, members: Sequence[tuple[int, int]]) -> FlipChoice:
    """The accuracy side of ``--flip``, from the members' kept predictions; latency comes later (``with_latency``)."""
    check_flip_mode(mode)
    if mode == "off":
        return FlipChoice(mode, False, "--flip off")
    found = kept_scores(artifacts, members)
    if isinstance(found, str):
        return FlipChoice(mode, mode == "on", "--flip on" if mode == "on" else found)
    plain, averaged = found
    if mode == "on":
        return FlipChoice(mode, True, "--flip on", plain, averaged)
    pays = flip_pays(plain, averaged)
    verdict = ("the mirror-averaged validation predictions score better" if pays else
               "the mirror-averaged validation predictions score no better")
    return FlipChoice(mode, pays, f"{verdict} (accuracy first, then log loss)", plain, averaged)


def with_latency(choice: FlipChoice, plain_ms: float, averaged_ms: float, max_latency_ms: float | None) -> FlipChoice:
    """``choice`` with its measured batch-1 latencies; ``auto`` drops the averaging that does not fit
    ``max_latency_ms``, and ``on`` that does not fit it is refused."""
    choice = replace(choice, plain_ms=plain_ms, averaged_ms=averaged_ms)
    if not choice.flip or max_latency_ms is None or averaged_ms <= max_latency_ms:
        return choice
    if choice.mode == "on":
        raise UserError(f"--flip on --max-latency-ms {max_latency_ms:g}: the mirror-averaged model takes "
                        f"{averaged_ms:.1f} ms per image at batch 1 here (without the mirror {plain_ms:.1f} ms), over "
                        f"the limit. Export with --flip auto or off, or raise the limit; nothing was written.")
    return replace(choice, flip=False, reason=f"the mirror-averaged model takes {averaged_ms:.1f} ms at batch 1, "
                                              f"over --max-latency-ms {max_latency_ms:g}")


def describe(choice: FlipChoice) -> str:
    """One line for the export's output: the choice, the validation figures and the latencies behind it."""
    parts = [f"Flip-averaging {'ON' if choice.flip else 'off'}: {choice.reason}"]
    if choice.plain is not None and choice.averaged is not None:
        parts.append(f"validation accuracy {choice.plain.accuracy:.4f} -> {choice.averaged.accuracy:.4f}, log loss "
                     f"{choice.plain.log_loss:.4f} -> {choice.averaged.log_loss:.4f} on {choice.plain.rows} images")
    if choice.plain_ms is not None and choice.averaged_ms is not None:
        parts.append(f"batch-1 latency {choice.plain_ms:.1f} ms plain, {choice.averaged_ms:.1f} ms averaged")
    return "; ".join(parts) + "."


def mirror_averaged(predict: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """``predict`` averaged over each NHWC image and its left-right mirror: the reference a flip export must match."""
    def averaged(batch: np.ndarray) -> np.ndarray:
        mirrored = np.ascontiguousarray(batch[:, :, ::-1, :])
        return ((np.asarray(predict(batch), np.float64) + np.asarray(predict(mirrored), np.float64)) / 2.0).astype(np.float32)
    return averaged


def flip_graph(adapter: FrameworkAdapter, model: Any, preprocessing: Preprocessing) -> Any:
    """The adapter's model averaged over the mirror, in the form its ``export`` and ``predict_loaded`` take."""
    if not isinstance(adapter, AveragesMirror):
        raise UserError(f"--flip: the {adapter.name} adapter cannot average a model over the mirrored image (it has no "
                        f"`flip_average`). Export with --flip off.")
    return adapter.flip_average(model, preprocessing)


def timed_export(adapter: FrameworkAdapter, model: Any, preprocessing: Preprocessing, fmt: str,
                 folder: Path) -> tuple[str, float]:
    """``model`` exported in ``fmt`` into ``folder`` (made here), and its median batch-1 latency (ms) there."""
    folder.mkdir(parents=True)
    model_file = adapter.export(model, preprocessing, fmt, folder)
    loaded = adapter.load_exported(folder, fmt, model_file, trusted=True)  # written just now
    size = preprocessing.image_size
    one = to_model_input(np.random.default_rng(0).integers(0, 256, (1, size, size, 3), dtype=np.uint8))
    return model_file, median_ms(lambda: loaded.predict(one), warmup=2, repeats=20, budget_s=1.5)


def keep_one(chosen: Path, other: Path, into: Path) -> None:
    """Move everything ``chosen`` holds into ``into`` and remove both export folders (``into`` is their parent)."""
    for entry in chosen.iterdir():
        entry.rename(into / entry.name)
    chosen.rmdir()
    shutil.rmtree(other)
