"""The ensemble ``export --ensemble auto`` would build, beside the best single trial: for ``show`` and the report."""

from __future__ import annotations

import optuna

from automl_tl.errors import UserError
from automl_tl.runtime.shown_text import html_text
from automl_tl.tuning.ensemble import Ensemble, candidates, decision_text, select_ensemble


def study_ensemble(study: optuna.Study, artifacts_option: str | None = None) -> tuple[Ensemble | None, str]:
    """Select the ``auto`` ensemble from the study's kept validation probabilities (no model is run).
    Returns it, or None and why not (no trial kept its probabilities, artifacts only in S3, a damaged file)."""
    from automl_tl.storage.artifacts import study_artifact_places

    try:
        local, remote = study_artifact_places(study, artifacts_option)
        found = candidates(study, local)
    except UserError as exc:
        return None, str(exc)
    if not found:
        where = f"they live in {remote}; `automl-tl export --ensemble auto` fetches them" if remote else \
            "completed trials of an older automl-tl have none: run more trials with `automl-tl search`"
        return None, f"No completed trial's validation probabilities are here ({where})."
    try:
        return select_ensemble(found, "auto"), ""
    except UserError as exc:
        return None, str(exc)


def _test(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "-"


def ensemble_text(ensemble: Ensemble) -> str:
    """One paragraph: the ensemble's members and scores against the best single trial's, and what ``auto``
    exports, with the cross-fitted figures that decide it."""
    proposed = ensemble.proposed or ensemble
    if proposed.size == 1:
        return (f"Ensemble (export --ensemble auto): selection keeps trial {ensemble.best_single} alone; no other trial "
                f"improves its score {ensemble.best_single_val_accuracy:.4f}. {decision_text(ensemble)}")
    return (f"Ensemble (export --ensemble auto): selection proposes {proposed.describe()}. Score {proposed.val_accuracy:.4f} "
            f"against {ensemble.best_single_val_accuracy:.4f} for the best single trial {ensemble.best_single} (optimistic: "
            f"its members were chosen on these rows); test acc {_test(proposed.test_accuracy)} against "
            f"{_test(ensemble.best_single_test_accuracy)}. {decision_text(ensemble)}")


def ensemble_section(ensemble: Ensemble | None, reason: str = "") -> str:
    """The report's section: the ensemble and the best single trial side by side, and the members."""
    if ensemble is None:
        return f"<h2>Ensemble of trials</h2><p class=\"note\">{html_text(reason or 'No ensemble.')}</p>"
    proposed = ensemble.proposed or ensemble
    label = "proposed ensemble (not exported by auto)" if ensemble.proposed else "ensemble (export --ensemble auto)"
    rows = [
        [label, f"{proposed.val_accuracy:.4f}", _test(proposed.test_accuracy),
         ", ".join(f"trial {m} &times;{w}" for m, w in zip(proposed.members, proposed.weights))],
        [f"best single trial ({ensemble.best_single})", f"{ensemble.best_single_val_accuracy:.4f}",
         _test(ensemble.best_single_test_accuracy), f"trial {ensemble.best_single}"],
    ]
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return ("<h2>Ensemble of trials</h2>"
            "<table><thead><tr><th>model</th><th>score</th><th>test acc (these two only)</th><th>members (weight: rounds won)</th>"
            f"</tr></thead><tbody>{body}</tbody></table>"
            f"<p class=\"note\">{html_text(ensemble_text(ensemble))} Greedy forward selection with replacement "
            f"on the trials' validation probabilities (Caruana et al. 2004), {proposed.rounds} rounds.</p>")
