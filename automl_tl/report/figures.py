"""The report's pictures, embedded as PNG data URIs (no network needed to view): Optuna's own
matplotlib plots where Optuna draws the figure (history, importances), matplotlib for the rest
(by backbone, accuracy against latency, confusion matrix); thumbnails are ``thumbnails``' job."""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from automl_tl.runtime.shown_text import printable
from automl_tl.study_record import VAL_ACCURACY_ATTR, study_cv_folds

PRUNED_COLOUR = "#9e9e9e"
# Fewer completed trials than this and parameter importances say more about chance than about the parameters:
# with a handful of trials, one lucky draw decides which parameter "matters". The report draws none then.
MIN_IMPORTANCE_TRIALS = 10


def plot_text(text: object) -> str:
    """Outside text (a class or backbone name) for a matplotlib label: controls escaped as everywhere
    (``printable``), and ``$`` escaped, so the name is drawn as written, never parsed as mathtext."""
    return printable(text).replace("$", r"\$")


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


def score_label(study: optuna.Study) -> str:
    """The axis name of a trial's value: "score", and what it is (validation or cross-validated accuracy)."""
    from automl_tl.tuning.scoring import SCORE, score_meaning

    return f"{SCORE} ({score_meaning(study_cv_folds(study.user_attrs))})"


def trial_value(trial: optuna.trial.FrozenTrial) -> float | None:
    """A complete trial's score, or the best a pruned trial reached."""
    if trial.state == TrialState.COMPLETE:
        return trial.value
    return trial.user_attrs.get(VAL_ACCURACY_ATTR) if trial.state == TrialState.PRUNED else None


@contextmanager
def _optuna_plot() -> Iterator[None]:
    """Around one of optuna.visualization.matplotlib's plots: they switch pyplot's global style to
    ggplot and warn that they are experimental; both stay inside the block."""
    plt = _pyplot()
    with plt.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", "No artists with labels", UserWarning)  # a study with no complete trial
        yield


def history(study: optuna.Study) -> str:
    """Optuna's optimisation history (complete trials and the best so far), plus each pruned trial
    at the best score it reached, which Optuna's plot leaves out."""
    _pyplot()
    from optuna.visualization.matplotlib import plot_optimization_history

    with _optuna_plot():
        axis = plot_optimization_history(study, target_name=score_label(study))
        pruned = [(t.number, value) for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
                  if (value := trial_value(t)) is not None]
        if pruned:
            numbers, values = zip(*pruned, strict=True)
            axis.scatter(numbers, values, marker="x", color=PRUNED_COLOUR, label="pruned (best epoch seen)")
        if axis.get_legend_handles_labels()[0]:
            axis.legend(loc="lower right", fontsize=8)
        figure: Any = axis.figure
        figure.set_size_inches(7.5, 3.6)
        return png_data_uri(figure)


def importances(study: optuna.Study) -> str | None:
    """Optuna's parameter importances (PED-ANOVA); None when the study has fewer than ``MIN_IMPORTANCE_TRIALS``
    complete trials, or too little variation to tell."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < MIN_IMPORTANCE_TRIALS:
        return None
    _pyplot()
    from optuna.visualization.matplotlib import plot_param_importances

    names = {name for trial in complete for name in trial.params}
    with _optuna_plot(), _pyplot().rc_context({"figure.figsize": (7.5, 0.35 * len(names) + 1.4)}):
        try:  # PED-ANOVA: built into Optuna, no scikit-learn needed (the default evaluator differs across versions)
            axis = plot_param_importances(study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
                                          target_name=score_label(study))
        except Exception:  # too little variation to tell: the report says so instead
            _pyplot().close("all")
            return None
        if not axis.patches:  # no parameter has an importance
            _pyplot().close(axis.figure)
            return None
        legend = axis.get_legend()
        if legend is not None:
            legend.remove()  # one objective: the x label names it
        axis.set_xlabel(f"importance for the {score_label(study)} (PED-ANOVA)")
        return png_data_uri(axis.figure)


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
                x, y = zip(*points, strict=True)
                axis.scatter(x, y, s=18, color=colours(index % 10), label=plot_text(backbone), alpha=0.8)
        axis.set_xlabel(label)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(score_label(study))
    if axes[1].get_legend_handles_labels()[0]:
        axes[1].legend(fontsize=8, loc="lower right")
    return png_data_uri(figure)


def study_latency_limit(study: optuna.Study) -> float | None:
    """The --max-latency-ms the study's last search ran with (recorded for its workers), or None."""
    from automl_tl.study_record import study_latency_limit as recorded_limit

    return recorded_limit(study.user_attrs)


def accuracy_latency_figure(study: optuna.Study) -> Any:
    """Validation accuracy against batch-1 latency (the exported model on the search machine's CPU) of each
    completed trial, one colour per backbone, with the Pareto front (no trial both faster and more accurate)
    drawn as a staircase and labelled with trial numbers, and the study's latency limit if it has one.
    None when no completed trial has a measured latency."""
    from automl_tl.tuning.latency import pareto_front, timed_trials

    timed = timed_trials(study.get_trials(deepcopy=False))
    if not timed:
        return None
    plt = _pyplot()
    colours = plt.get_cmap("tab10")
    figure, axis = plt.subplots(figsize=(7.5, 3.8))
    backbones = sorted({str(t.params.get("backbone")) for t, _ in timed})
    for index, backbone in enumerate(backbones):
        points = [(latency, t.value) for t, latency in timed if str(t.params.get("backbone")) == backbone]
        x, y = zip(*points, strict=True)
        axis.scatter(x, y, s=20, color=colours(index % 10), alpha=0.8, label=plot_text(backbone))
    front = [timed[i] for i in pareto_front([(latency, float(t.value or 0.0)) for t, latency in timed])]
    front_x = [latency for _, latency in front]
    front_y = [float(t.value or 0.0) for t, _ in front]
    axis.plot(front_x, front_y, drawstyle="steps-post", color="#222222", linewidth=1, label="Pareto front")
    axis.scatter(front_x, front_y, s=70, facecolors="none", edgecolors="#222222", linewidths=1.2)
    for (trial, latency), value in zip(front, front_y, strict=True):
        axis.annotate(str(trial.number), (latency, value), textcoords="offset points", xytext=(4, 4), fontsize=7)
    limit = study_latency_limit(study)
    if limit is not None:
        axis.axvline(limit, linestyle="--", color="#b00020", linewidth=1, label=f"limit {limit:g} ms")
    latencies = [latency for _, latency in timed] + ([limit] if limit is not None else [])
    if max(latencies) / min(latencies) > 20:
        axis.set_xscale("log")
    axis.set_xlabel("latency at batch 1, ms (exported model, search machine's CPU)")
    axis.set_ylabel(score_label(study))
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    return figure


def accuracy_latency(study: optuna.Study) -> str | None:
    """``accuracy_latency_figure`` as a PNG data URI, or None when no completed trial has a measured latency."""
    figure = accuracy_latency_figure(study)
    return png_data_uri(figure) if figure is not None else None


def confusion(matrix: np.ndarray, class_names: list[str]) -> str:
    plt = _pyplot()
    size = max(4.0, 0.45 * len(class_names) + 2.0)
    figure, axis = plt.subplots(figsize=(size, size))
    axis.imshow(matrix, cmap="Blues")
    names = [plot_text(name) for name in class_names]
    axis.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    axis.set_yticks(range(len(names)), names, fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    limit = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        axis.text(column, row, str(count), ha="center", va="center", fontsize=7,
                  color="white" if count > limit else "black")
    return png_data_uri(figure)
