"""The report's pictures, drawn with matplotlib and embedded as PNG data URIs (no network needed to view)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

PRUNED_COLOUR = "#9e9e9e"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_data_uri(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def image_data_uri(image: np.ndarray, scale: int = 3) -> str:
    """A small image (H, W, 3 uint8) as a PNG data URI, enlarged so a 28-pixel image is visible."""
    from PIL import Image

    picture = Image.fromarray(image.astype(np.uint8))
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def trial_value(trial: optuna.trial.FrozenTrial) -> float | None:
    """A complete trial's value, or the best validation accuracy a pruned trial reached."""
    if trial.state == TrialState.COMPLETE:
        return trial.value
    return trial.user_attrs.get("val_accuracy") if trial.state == TrialState.PRUNED else None


def history(study: optuna.Study) -> str:
    plt = _pyplot()
    trials = [t for t in study.get_trials(deepcopy=False) if trial_value(t) is not None]
    figure, axis = plt.subplots(figsize=(7.5, 3.6))
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    axis.scatter([t.number for t in complete], [t.value for t in complete], s=18, label="complete", color="#1f77b4")
    axis.scatter([t.number for t in pruned], [trial_value(t) for t in pruned], s=18, marker="x", color=PRUNED_COLOUR,
                 label="pruned (best epoch seen)")
    if complete:
        numbers = [t.number for t in complete]
        axis.step(numbers, np.maximum.accumulate([t.value for t in complete]), where="post", color="#d62728",
                  label="best so far")
    axis.set_xlabel("trial")
    axis.set_ylabel("validation accuracy")
    axis.legend(loc="lower right", fontsize=8)
    axis.grid(alpha=0.3)
    return png_data_uri(figure)


def importances(study: optuna.Study) -> str | None:
    """Parameter importances (PED-ANOVA); None when the study has too few complete trials to tell."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 3:
        return None
    try:  # PED-ANOVA: built into Optuna, no scikit-learn needed (the default evaluator differs across versions)
        values = optuna.importance.get_param_importances(study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
    except Exception:  # too little variation to tell: the report says so instead
        return None
    if not values:
        return None
    plt = _pyplot()
    names = list(values)[::-1]
    figure, axis = plt.subplots(figsize=(7.5, 0.35 * len(names) + 1.0))
    axis.barh(names, [values[name] for name in names], color="#1f77b4")
    axis.set_xlabel("importance for validation accuracy (PED-ANOVA)")
    axis.grid(alpha=0.3, axis="x")
    return png_data_uri(figure)


def by_backbone(study: optuna.Study) -> str:
    """Validation accuracy against freeze fraction and against switch epoch, one colour per backbone."""
    plt = _pyplot()
    trials = [t for t in study.get_trials(deepcopy=False) if trial_value(t) is not None and "backbone" in t.params]
    backbones = sorted({t.params["backbone"] for t in trials})
    colours = plt.get_cmap("tab10")
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for axis, param, label in ((axes[0], "freeze_fraction", "freeze fraction (share of blocks kept frozen)"),
                               (axes[1], "switch_epoch", "switch epoch (head only -> fine-tune)")):
        for index, backbone in enumerate(backbones):
            points = [(t.params[param], trial_value(t)) for t in trials
                      if t.params["backbone"] == backbone and param in t.params]
            if points:
                x, y = zip(*points)
                axis.scatter(x, y, s=18, color=colours(index % 10), label=backbone, alpha=0.8)
        axis.set_xlabel(label)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("validation accuracy")
    axes[1].legend(fontsize=8, loc="lower right")
    return png_data_uri(figure)


def confusion(matrix: np.ndarray, class_names: list[str]) -> str:
    plt = _pyplot()
    size = max(4.0, 0.45 * len(class_names) + 2.0)
    figure, axis = plt.subplots(figsize=(size, size))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right", fontsize=8)
    axis.set_yticks(range(len(class_names)), class_names, fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    limit = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        axis.text(column, row, str(count), ha="center", va="center", fontsize=7,
                  color="white" if count > limit else "black")
    return png_data_uri(figure)
