"""How the chosen trial and the next best learned, epoch by epoch: one small panel per trial, its validation
score after each epoch, the head-only epochs shaded and the switch to fine-tuning marked.

A trial reports its validation accuracy to Optuna after every whole epoch (step = epochs completed), so the
curves are its intermediate values. Under ``--cv`` only fold 0 reports (the pruner judges it); such a trial also
records the pooled out-of-fold accuracy per epoch (``CV_EPOCH_ACCURACIES_ATTR``), its score's own curve, which is
drawn solid with fold 0 dashed beside it. The switch epoch is the one the trial really ran (``head_epochs_of``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import optuna
from matplotlib.ticker import MaxNLocator
from optuna.trial import FrozenTrial

from automl_tl.report.figures import _pyplot, plot_text, png_data_uri, score_label
from automl_tl.report.html_parts import picture
from automl_tl.study_record import BEST_EPOCH_ATTR, CV_EPOCH_ACCURACIES_ATTR
from automl_tl.tuning.budget import ranked_trials
from automl_tl.tuning.pruning import head_epochs_of

CURVE_TRIALS = 6  # the chosen trial and the five next best
_CHOSEN, _OTHER, _SWITCH = "#1f5fa8", "#555555", "#b00020"


@dataclass(frozen=True)
class TrialCurve:
    """One trial's validation score after each epoch (epochs from 1), and where it switched to fine-tuning."""

    number: int
    backbone: str
    epochs: list[int]
    values: list[float]
    pooled: list[float]  # under --cv: the pooled out-of-fold accuracy after each epoch; else empty
    head_epochs: int | None  # head-only epochs before fine-tuning; None: no switch
    best_epoch: int | None  # epochs completed at the kept weights


def trial_curve(trial: FrozenTrial) -> TrialCurve:
    """``trial``'s curve from its intermediate values and records."""
    steps = sorted(trial.intermediate_values)
    pooled = trial.user_attrs.get(CV_EPOCH_ACCURACIES_ATTR)
    best = trial.user_attrs.get(BEST_EPOCH_ATTR)
    return TrialCurve(trial.number, str(trial.params.get("backbone", "?")), [int(s) for s in steps],
                      [float(trial.intermediate_values[s]) for s in steps],
                      [float(v) for v in pooled] if isinstance(pooled, list) else [], head_epochs_of(trial),
                      int(best) + 1 if isinstance(best, int) else None)


def study_curves(study: optuna.Study, count: int = CURVE_TRIALS) -> list[TrialCurve]:
    """The curves of the ``count`` best completed trials, the chosen one first; trials with no epoch reported
    are left out."""
    curves = [trial_curve(t) for t in ranked_trials(study)[:count]]
    return [c for c in curves if c.values or c.pooled]


def _panel(axis: Any, curve: TrialCurve, chosen: bool) -> None:
    colour = _CHOSEN if chosen else _OTHER
    if curve.head_epochs:
        axis.axvspan(0.5, curve.head_epochs + 0.5, color="#e8e8e8", zorder=0)
        axis.axvline(curve.head_epochs + 0.5, color=_SWITCH, linestyle="--", linewidth=1.1)
    if curve.pooled:
        axis.plot(range(1, len(curve.pooled) + 1), curve.pooled, marker="o", markersize=3, color=colour,
                  label="pooled out-of-fold")
        axis.plot(curve.epochs, curve.values, linestyle=":", color=colour, alpha=0.7, label="fold 0")
    else:
        axis.plot(curve.epochs, curve.values, marker="o", markersize=3, color=colour)
    if curve.best_epoch is not None:
        series = curve.pooled or curve.values
        kept = curve.best_epoch - 1 if curve.pooled else (curve.epochs.index(curve.best_epoch)
                                                            if curve.best_epoch in curve.epochs else None)
        if kept is not None and kept < len(series):
            axis.scatter([curve.best_epoch], [series[kept]], s=60, facecolors="none", edgecolors="#222222", zorder=3)
    phase = ", head only" if curve.head_epochs is None else ""  # no switch: every epoch trained only the head
    title = f"trial {curve.number}: {plot_text(curve.backbone)}{phase}" + (" (chosen)" if chosen else "")
    axis.set_title(title, fontsize=8.5, fontweight="bold" if chosen else "normal")
    axis.tick_params(labelsize=7)
    axis.grid(alpha=0.3)
    last = max([*curve.epochs, len(curve.pooled), 1])
    axis.set_xlim(0.5, last + 0.5)
    if last <= 12:
        axis.set_xticks(range(1, last + 1))
    else:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def curves_figure(study: optuna.Study, count: int = CURVE_TRIALS) -> Any:
    """One panel per trial of ``study_curves``, sharing the score axis; None when no trial reported an epoch."""
    return _figure(study, study_curves(study, count))


def _figure(study: optuna.Study, curves: list[TrialCurve]) -> Any:
    if not curves:
        return None
    plt = _pyplot()
    columns = min(3, len(curves))
    rows = math.ceil(len(curves) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.5 * rows), sharey=True, squeeze=False)
    for index, curve in enumerate(curves):
        _panel(axes[index // columns][index % columns], curve, chosen=index == 0)
    for index in range(len(curves), rows * columns):
        axes[index // columns][index % columns].set_visible(False)
    for row in axes:
        row[0].set_ylabel(plot_text(score_label(study)).replace("score ", "score\n", 1), fontsize=7.5)
    for axis in axes[-1]:
        axis.set_xlabel("epochs completed", fontsize=7.5)
    with_folds = [index for index, curve in enumerate(curves) if curve.pooled]
    if with_folds:
        axes[with_folds[0] // columns][with_folds[0] % columns].legend(fontsize=6.5, loc="lower right")
    figure.tight_layout()
    return figure


CURVES_NOTE = ('<p class="note">The validation score after each epoch of the chosen trial and the next best '
               '(the values each trial reported to Optuna). Shaded: the epochs that trained only the new head before a '
               'switch; the red dashed line: the switch to fine-tuning the unfrozen blocks ("head only" in a title: a '
               'trial that never switched). A circle marks the epoch whose weights '
               'the trial kept.{cv}</p>')
CV_NOTE = (" Cross-validated trials: the solid line is the pooled out-of-fold accuracy (the score), the dotted one "
           "fold 0 alone, which the pruner watches.")


def curves_section(study: optuna.Study) -> str:
    """The section with the panels, or a line saying no trial has reported an epoch yet."""
    curves = study_curves(study)  # once: the figure and the note read the same curves
    figure = _figure(study, curves)
    if figure is None:
        return "<h2>Learning curves</h2><p class=\"note\">No completed trial has reported a whole epoch.</p>"
    cv = CV_NOTE if any(c.pooled for c in curves) else ""
    return ("<h2>Learning curves</h2>" + CURVES_NOTE.format(cv=cv)
            + picture(png_data_uri(figure), "validation score per epoch of the best trials, switch epoch marked"))
