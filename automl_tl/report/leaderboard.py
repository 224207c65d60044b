"""Study summaries: the leaderboard table and the JSON that ``show`` prints."""

from __future__ import annotations

from collections import Counter
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from automl_tl.runtime.fitted_table import TEXT_MIN, FitColumn, FittedTable
from automl_tl.runtime.shown_text import console_text
from automl_tl.study_record import (
    BLOCKS_ATTR,
    DATA_INVENTORY_ATTR,
    DEPTH_ATTR,
    FAIL_REASON_ATTR,
    FINGERPRINT_ATTR,
    FRAMEWORK_ATTR,
    FROZEN_BLOCKS_ATTR,
    IMAGE_SIZE_ATTR,
    IMAGE_SIZE_REASON_ATTR,
    LATENCY_ATTR,
    LATENCY_B32_ATTR,
    PRETRAINED_ATTR,
    RETRY_OF_ATTR,
    RETRY_REASON_ATTR,
    SECONDS_ATTR,
    SMART_START_ATTR,
    TEST_ACCURACY_ATTR,
    TOO_SLOW_ATTR,
    VAL_BALANCED_ATTR,
    study_cv_folds,
    study_latency_limit,
    study_rule,
)
from automl_tl.tuning.budget import ranked_trials, without_its_refit
from automl_tl.tuning.latency import format_ms, pareto_front, timed_trials
from automl_tl.tuning.scoring import SCORE, score_legend, score_meaning
from automl_tl.tuning.space import head_label

LATENCY_NOTE = "ms: the exported model's batch-1 latency on the search machine's CPU."


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def chosen_test_line(study: optuna.Study) -> str | None:
    """The test accuracy of the chosen model (the best by score), said as what it is: the one estimate the
    test split gives; None before a trial completes."""
    ranked = ranked_trials(study)
    if not ranked or not isinstance(ranked[0].user_attrs.get(TEST_ACCURACY_ATTR), (int, float)):
        return None
    best = ranked[0]
    line = (f"Chosen model: trial {best.number} (best {SCORE} {best.value:.4f}), test accuracy "
            f"{best.user_attrs[TEST_ACCURACY_ATTR]:.4f}. Choose by {SCORE}: the test split is for this one estimate.")
    passed_over = [t for t in ranked[1:] if (t.value or 0.0) > (best.value or 0.0) and without_its_refit(t)]
    if passed_over:
        numbers = ", ".join(str(t.number) for t in passed_over)
        line += (f" Trial(s) {numbers} {SCORE} higher, but the --timeout cut their refit: their model is fold 1's, "
                 f"so they lead only by more than one standard error of their {SCORE}.")
    return line


# Optional columns, the first left out first when the console is too narrow for every number to show whole.
DROP_ORDER = ("BN", "decay", "ft ratio", "framework", "switch", "head", "frozen", "lr", "bal. acc", "secs", "depth",
              "pretrained", "ms")
TEXT_COLUMNS = ("framework", "backbone", "pretrained", "head", "BN")


BACKBONE_KEEP = 20  # most backbone names whole before an optional column stays


def _column(header: str, justify_left: bool = False) -> FitColumn:
    drop = DROP_ORDER.index(header) if header in DROP_ORDER else None
    keep = BACKBONE_KEEP if header == "backbone" else TEXT_MIN
    return FitColumn(header, numeric=header not in TEXT_COLUMNS, drop=drop, justify="left" if justify_left else "right",
                     keep=keep)


def leaderboard_table(study: optuna.Study, top: int = 10, test_per_trial: bool = False,
                      chosen_caption: bool = True, legend: bool = True) -> FittedTable:
    """The best ``top`` completed trials by score. Test accuracy is left out per trial unless
    ``test_per_trial``: ranking trials by it would make it a second validation set. ``chosen_caption``
    says the chosen model's test accuracy under the table, ``legend`` what the score is. Drawn narrower
    than its columns, it leaves out optional columns rather than cut a number."""
    shown = leaderboard_rows(study, top, every_test=test_per_trial)
    notes = [score_legend(study_cv_folds(study.user_attrs)) if legend else None,
             chosen_test_line(study) if chosen_caption else None,
             LATENCY_NOTE if any(row["latency_ms"] is not None for row in shown) else None]
    caption = " ".join(note for note in notes if note)
    decays = any("block_lr_decay" in row["params"] for row in shown)  # per-block rates: a column where a trial searched them
    headers = ["#", SCORE, *(["test acc"] if test_per_trial else []), "bal. acc", "framework", "backbone",
               "pretrained", "depth", "frozen", "head", "lr", "ft ratio", *(["decay"] if decays else []), "switch", "BN",
               "secs", "ms"]
    table = FittedTable([_column(h, justify_left=h in ("framework", "backbone")) for h in headers],
                        title=f"Leaderboard of study {console_text(repr(study.study_name))} (top {top} completed trials)",
                        caption=console_text(caption) if caption else None)
    for row in shown:
        p, pretrained, depth = row["params"], row["pretrained"], _known(row["depth"])
        transfer = (lambda text: text) if pretrained else (lambda text: "-")  # from scratch: no transfer settings
        table.add_row(
            str(row["trial"]),
            _fmt(row["score"], ".4f"),
            *([_fmt(row["test_accuracy"], ".4f")] if test_per_trial else []),
            _fmt(row["balanced_accuracy"], ".4f"),
            console_text(str(_known(row["framework"]))),
            console_text(str(row["backbone"])),
            "yes" if pretrained else "[red]no, from scratch[/]",
            console_text(f"{depth}/{_known(row['blocks'])}"),  # values from the study, which others may have written: not markup
            transfer(console_text(f"{_known(row['frozen_blocks'])}/{depth}")),
            console_text(row["head"]),
            _fmt(p.get("lr"), ".1e"),
            transfer(_fmt(p.get("finetune_lr_ratio"), ".2f")),  # "-" where the trial does not fine-tune
            *([_fmt(p.get("block_lr_decay"), ".2f")] if decays else []),  # "-" too with one block fine-tuned
            transfer(console_text(str(p.get("switch_epoch", "-")))),
            console_text(str(p.get("unfrozen_bn", "-"))),
            _fmt(row["seconds"], ".0f"),
            _ms(row["latency_ms"]),
        )
    return table


def leaderboard_rows(study: optuna.Study, top: int | None = None, every_test: bool = False) -> list[dict[str, Any]]:
    """The leaderboard as records, best first (``Study.leaderboard()``, and the table's source): the table's
    columns under plain names (None where the trial did not record one), and every parameter of the trial. The
    test accuracy is the chosen model's only, as in the table, unless ``every_test``."""
    rows = []
    for rank, trial in enumerate(ranked_trials(study)[:top]):
        p, attrs = trial.params, trial.user_attrs
        rows.append({
            "trial": trial.number, "score": trial.value,
            "test_accuracy": attrs.get(TEST_ACCURACY_ATTR) if rank == 0 or every_test else None,
            "balanced_accuracy": attrs.get(VAL_BALANCED_ATTR), "framework": attrs.get(FRAMEWORK_ATTR),
            "backbone": p.get("backbone"), "pretrained": attrs.get(PRETRAINED_ATTR, True),
            "depth": attrs.get(DEPTH_ATTR, attrs.get(BLOCKS_ATTR)), "blocks": attrs.get(BLOCKS_ATTR),
            "frozen_blocks": attrs.get(FROZEN_BLOCKS_ATTR), "head": head_label(p), "seconds": attrs.get(SECONDS_ATTR),
            "latency_ms": attrs.get(LATENCY_ATTR), "params": dict(p),
        })
    return rows


def _known(value: Any) -> Any:
    """A value of the table, or "?" where the trial did not record it."""
    return "?" if value is None else value


def _ms(value: Any) -> str:
    return format_ms(float(value)) if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def pareto_table(study: optuna.Study) -> FittedTable | None:
    """The completed trials on the score-latency Pareto front (no other trial is both faster and better),
    fastest first; None when no completed trial has a measured latency."""
    timed = timed_trials(study.get_trials(deepcopy=False))
    if not timed:
        return None
    front = [timed[i] for i in pareto_front([(latency, float(t.value or 0.0)) for t, latency in timed])]
    columns = [FitColumn("#"), FitColumn(SCORE), FitColumn("ms, batch 1"), FitColumn("ms, batch 32", drop=2),
               FitColumn("backbone", numeric=False, justify="left", keep=BACKBONE_KEEP), FitColumn("depth", drop=1),
               FitColumn("head", numeric=False, drop=0)]
    table = FittedTable(columns, title=f"Accuracy-latency Pareto front ({len(front)} of {len(timed)} timed trials)",
                        caption="latency: the exported model on the search machine's CPU, median per call")
    for trial, latency in front:
        attrs = trial.user_attrs
        depth = f"{attrs.get(DEPTH_ATTR, '?')}/{attrs.get(BLOCKS_ATTR, '?')}"
        table.add_row(str(trial.number), _fmt(trial.value, ".4f"), format_ms(latency), _ms(attrs.get(LATENCY_B32_ATTR)),
                      console_text(str(trial.params.get("backbone"))), console_text(depth),
                      console_text(head_label(trial.params)))
    return table


def failure_row(trial: FrozenTrial, retry: FrozenTrial | None) -> dict[str, Any]:
    """Why a trial failed and which trial retried it. A trial whose worker was killed could not
    record a reason itself; the retry says why it was queued."""
    reason = trial.user_attrs.get(FAIL_REASON_ATTR) or (retry.user_attrs.get(RETRY_REASON_ATTR, "") if retry else "")
    if retry is not None:
        reason = f"{reason} (retried as trial {retry.number})"
    return {"trial": trial.number, "reason": reason, "retried_as": retry.number if retry else None}


def study_input_summary(attrs: dict[str, Any]) -> dict[str, Any]:
    """The size the study trains at, why, and how images become squares."""
    rule = study_rule(attrs)
    return {"image_size": attrs.get(IMAGE_SIZE_ATTR), "why": attrs.get(IMAGE_SIZE_REASON_ATTR) or "--image-size",
            "resize": rule.mode, "crop_pct": rule.crop_pct, "interpolation": rule.interpolation,
            "rule": rule.describe()}


def latency_summary(study: optuna.Study, trials: list[FrozenTrial]) -> dict[str, Any]:
    """The latency limit the study's last search ran with, the trials it stopped as too slow, and the
    Pareto front's trial numbers, fastest first."""
    timed = timed_trials(trials)
    front = pareto_front([(latency, float(t.value or 0.0)) for t, latency in timed])
    return {"max_latency_ms": study_latency_limit(study.user_attrs),
            "too_slow": [t.number for t in trials if TOO_SLOW_ATTR in t.user_attrs],
            "pareto_front": [timed[i][0].number for i in front]}


def study_summary(study: optuna.Study) -> dict[str, Any]:
    """Counts by state, best score (also under its older key ``best_value``), best params and best trial, as
    ``show --json`` prints them; ``score_name`` says what the score is."""
    trials = study.get_trials(deepcopy=False)
    counts = Counter(t.state.name for t in trials)
    ranked = ranked_trials(study)
    best = ranked[0] if ranked else None
    retries = {t.user_attrs[RETRY_OF_ATTR]: t for t in trials if RETRY_OF_ATTR in t.user_attrs}
    failures = [failure_row(t, retries.get(t.number)) for t in trials if t.state == TrialState.FAIL]
    return {
        "study": study.study_name,
        "counts": {state.name: counts.get(state.name, 0) for state in TrialState},
        "finished": counts.get("COMPLETE", 0) + counts.get("PRUNED", 0),
        "score_name": score_meaning(study_cv_folds(study.user_attrs)),  # what "score" (and "value") is
        "best_value": best.value if best else None,
        "best_score": best.value if best else None,
        "best_params": dict(best.params) if best else None,
        "best_trial": {
            "number": best.number,
            "value": best.value,
            "score": best.value,
            "params": dict(best.params),
            "user_attrs": dict(best.user_attrs),
            "duration_s": best.duration.total_seconds() if best and best.duration else None,
        } if best else None,
        "failures": failures,
        "smart_start": {str(t.number): t.user_attrs[SMART_START_ATTR] for t in trials if SMART_START_ATTR in t.user_attrs},
        "latency": latency_summary(study, trials),
        "input": study_input_summary(study.user_attrs),
        "user_attrs": {k: v for k, v in study.user_attrs.items() if k not in (FINGERPRINT_ATTR, DATA_INVENTORY_ATTR)},
    }
