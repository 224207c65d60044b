"""Study summaries: the leaderboard table and the JSON that ``show`` prints."""

from __future__ import annotations

from collections import Counter
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.markup import escape
from rich.table import Table

from automl_tl.search.budget import ranked_trials


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def chosen_test_line(study: optuna.Study) -> str | None:
    """The test accuracy of the chosen model (the best by validation accuracy), said as what it is:
    the one estimate the test split gives; None before a trial completes."""
    ranked = ranked_trials(study)
    if not ranked or not isinstance(ranked[0].user_attrs.get("test_accuracy"), (int, float)):
        return None
    best = ranked[0]
    return (f"Chosen model: trial {best.number} (best validation accuracy {best.value:.4f}), test accuracy "
            f"{best.user_attrs['test_accuracy']:.4f}. Choose by validation accuracy: the test split is for this one "
            f"estimate.")


def leaderboard_table(study: optuna.Study, top: int = 10, test_per_trial: bool = False,
                      chosen_caption: bool = True) -> Table:
    """The best ``top`` completed trials by validation accuracy. Test accuracy is left out per trial unless
    ``test_per_trial``: ranking trials by it would make it a second validation set. ``chosen_caption``
    says the chosen model's test accuracy under the table."""
    caption = chosen_test_line(study) if chosen_caption else None
    table = Table(title=f"Leaderboard of study {escape(repr(study.study_name))} (top {top} completed trials)",
                  caption=escape(caption) if caption else None)
    columns = ["#", "val acc", *(["test acc"] if test_per_trial else []), "bal. acc", "framework", "backbone",
               "pretrained", "depth", "frozen", "head", "lr", "ft ratio", "switch", "BN", "secs"]
    for column in columns:
        table.add_column(column, justify="right" if column not in ("framework", "backbone") else "left")
    for trial in ranked_trials(study)[:top]:
        p, a = trial.params, trial.user_attrs
        pretrained = a.get("pretrained", True)
        blocks = a.get("blocks", "?")
        depth = a.get("depth", blocks)
        transfer = (lambda text: text) if pretrained else (lambda text: "-")  # from scratch: no transfer settings
        table.add_row(
            str(trial.number),
            _fmt(trial.value, ".4f"),
            *([_fmt(a.get("test_accuracy"), ".4f")] if test_per_trial else []),
            _fmt(a.get("val_balanced_accuracy"), ".4f"),
            escape(str(a.get("framework", "?"))),
            escape(str(p.get("backbone"))),
            "yes" if pretrained else "[red]no, from scratch[/]",
            escape(f"{depth}/{blocks}"),  # values from the study, which others may have written: not markup
            transfer(escape(f"{a.get('frozen_blocks', '?')}/{depth}")),
            escape(str(p.get("head_units") or "linear")),
            _fmt(p.get("lr"), ".1e"),
            transfer(_fmt(p.get("finetune_lr_ratio"), ".2f")),  # "-" where the trial does not fine-tune
            transfer(escape(str(p.get("switch_epoch", "-")))),
            escape(str(p.get("unfrozen_bn", "-"))),
            _fmt(a.get("seconds"), ".0f"),
        )
    return table


def failure_row(trial: FrozenTrial, retry: FrozenTrial | None) -> dict[str, Any]:
    """Why a trial failed and which trial retried it. A trial whose worker was killed could not
    record a reason itself; the retry says why it was queued."""
    reason = trial.user_attrs.get("fail_reason") or (retry.user_attrs.get("retry_reason", "") if retry else "")
    if retry is not None:
        reason = f"{reason} (retried as trial {retry.number})"
    return {"trial": trial.number, "reason": reason, "retried_as": retry.number if retry else None}


def study_input_summary(attrs: dict[str, Any]) -> dict[str, Any]:
    """The size the study trains at, why, and how images become squares."""
    from automl_tl.search.lifecycle import study_rule_of
    rule = study_rule_of(attrs)
    return {"image_size": attrs.get("image_size"), "why": attrs.get("image_size_reason") or "--image-size",
            "resize": rule.mode, "crop_pct": rule.crop_pct, "interpolation": rule.interpolation,
            "rule": rule.describe()}


def study_summary(study: optuna.Study) -> dict[str, Any]:
    """Counts by state, best value, best params and best trial, as ``show --json`` prints them."""
    trials = study.get_trials(deepcopy=False)
    counts = Counter(t.state.name for t in trials)
    ranked = ranked_trials(study)
    best = ranked[0] if ranked else None
    retries = {t.user_attrs["retry_of"]: t for t in trials if "retry_of" in t.user_attrs}
    failures = [failure_row(t, retries.get(t.number)) for t in trials if t.state == TrialState.FAIL]
    return {
        "study": study.study_name,
        "counts": {state.name: counts.get(state.name, 0) for state in TrialState},
        "finished": counts.get("COMPLETE", 0) + counts.get("PRUNED", 0),
        "best_value": best.value if best else None,
        "best_params": dict(best.params) if best else None,
        "best_trial": {
            "number": best.number,
            "value": best.value,
            "params": dict(best.params),
            "user_attrs": dict(best.user_attrs),
            "duration_s": best.duration.total_seconds() if best and best.duration else None,
        } if best else None,
        "failures": failures,
        "smart_start": {str(t.number): t.user_attrs["smart_start"] for t in trials if "smart_start" in t.user_attrs},
        "input": study_input_summary(study.user_attrs),
        "user_attrs": {k: v for k, v in study.user_attrs.items() if k != "fingerprint"},
    }
