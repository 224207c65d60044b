"""Assemble the report: summary, leaderboard, pictures and the best model's test results, in one HTML file."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

import automl_tl.report.figures as figures
from automl_tl.data.images import DEFAULT_MAX_PIXELS
from automl_tl.report.audit_section import audit_section
from automl_tl.report.best_model import BestModelResults
from automl_tl.report.curves import curves_section
from automl_tl.report.data_section import DataReading, skipped_section, split_counts_text
from automl_tl.report.html_parts import cell as _cell
from automl_tl.report.html_parts import picture as _img
from automl_tl.report.html_parts import table as _table
from automl_tl.report.leaderboard import study_input_summary
from automl_tl.report.thumbnails import data_root
from automl_tl.report.top_losses import mistakes_html
from automl_tl.runtime.owned_files import check_file_target, write_file
from automl_tl.runtime.shown_text import html_text
from automl_tl.study_record import (
    BLOCKS_ATTR,
    CLASS_NAMES_ATTR,
    DATA_AUDIT_ATTR,
    DATA_LOCATION_ATTR,
    DEPTH_ATTR,
    EPOCHS_ATTR,
    FROZEN_BLOCKS_ATTR,
    IMAGE_SIZE_ATTR,
    LATENCY_ATTR,
    PRETRAINED_ATTR,
    SECONDS_ATTR,
    SPLIT_COUNTS_ATTR,
    TEST_ACCURACY_ATTR,
    TIME_SUMMARY_ATTR,
    study_cv_folds,
    study_max_pixels,
)
from automl_tl.tuning.budget import ranked_trials
from automl_tl.tuning.scoring import SCORE, score_legend
from automl_tl.tuning.space import head_label

# The mark that tells a report automl-tl wrote (and may replace without --overwrite) from a file of the user's.
GENERATOR_META = '<meta name="generator" content="automl-tl">'
PAGE_HEAD = f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">{GENERATOR_META}'
# Reports written before the mark began with this instead.
LEGACY_PAGE_HEAD = '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>automl-tl: '

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85rem; } td, th { padding: 0.25rem 0.6rem; border-bottom: 1px solid #eee; }
th { text-align: left; background: #f6f6f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.scratch { color: #b00020; } .note { color: #666; font-size: 0.85rem; }
.warning { color: #8a4b00; background: #fff4e0; border: 1px solid #f0c070; padding: 0.5rem 0.8rem; }
.grid { display: flex; flex-wrap: wrap; gap: 0.6rem; } .grid figure { margin: 0; text-align: center; font-size: 0.75rem; }
img.plot { max-width: 100%; } .grid figure { width: 128px; } img.thumb { max-width: 112px; max-height: 112px; }
.nothumb { width: 96px; height: 96px; margin: auto; background: #f3f3f3; color: #888; font-size: 0.7rem;
  display: flex; align-items: center; justify-content: center; }
.path { color: #666; font-size: 0.7rem; overflow-wrap: anywhere; } .group { margin-bottom: 0.8rem; }
.group .grid { display: inline-flex; }
"""


def _duration(trials: list[FrozenTrial]) -> str:
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    if not starts or not ends:
        return "-"
    seconds = (max(ends) - min(starts)).total_seconds()
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def summary_section(study: optuna.Study, reading: DataReading | None = None) -> str:
    attrs = study.user_attrs
    shown = study_input_summary(attrs)
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state.name.lower() for t in trials)
    counts = attrs.get(SPLIT_COUNTS_ATTR, {})
    classes = attrs.get(CLASS_NAMES_ATTR, [])
    rows = [
        ["data set", html_text(str(attrs.get(DATA_LOCATION_ATTR, "-")))],
        ["classes", f"{len(classes)}: " + html_text(", ".join(classes))],
        ["images per split", split_counts_text(counts, reading)],
        ["trials", ", ".join(f"{k} {v}" for k, v in sorted(states.items())) or "none"],
        ["search took", _duration(trials) + " (first trial's start to last trial's end)"],
        ["epochs per trial, image size", html_text(f"{attrs.get(EPOCHS_ATTR, '-')}, {attrs.get(IMAGE_SIZE_ATTR, '-')} px")],
        ["input", html_text(f"{shown['image_size']} px ({shown['why']}); {shown['rule']}")],
    ]
    return "<h2>Summary</h2>" + _table(None, [[f"<th>{k}</th>", f"<td>{v}</td>"] for k, v in rows])


def time_section(study: optuna.Study) -> str:
    """Where the last search's time went (by phase and by kind of trial), when the search recorded it."""
    summary = study.user_attrs.get(TIME_SUMMARY_ATTR)
    if not isinstance(summary, dict) or not isinstance(summary.get("rows"), list):
        return ""
    rows = [[_cell(row.get("label", "")), _cell(row["trials"] if row.get("trials") is not None else ""),
             _cell(row.get("seconds", "-"), ".1f"), _cell(row.get("share", "-"), ".0%")]
            for row in summary["rows"] if isinstance(row, dict)]
    total = summary.get("total_seconds")
    whole = f"{total:.0f} s in all" if isinstance(total, (int, float)) else "its total unknown"
    return (f'<h2>Where the time went</h2><p class="note">The last search run on this study, {whole}.</p>'
            + _table(["where", "trials", "seconds", "share"], rows))


TEST_NOTE = ('<p class="note">Test accuracy is shown for the chosen model only (below): choosing among trials by it '
             'would make it an optimistic estimate. <code>automl-tl report --test-per-trial</code> shows every '
             'trial\'s.</p>')


def leaderboard_section(study: optuna.Study, top: int = 15, test_per_trial: bool = False) -> str:
    """The best trials by score; their test accuracy only with ``test_per_trial``."""
    rows = []
    for trial in ranked_trials(study)[:top]:
        p, attrs = trial.params, trial.user_attrs
        pretrained = attrs.get(PRETRAINED_ATTR, True)
        rows.append([
            _cell(trial.number), _cell(trial.value, ".4f"),
            *([_cell(attrs.get(TEST_ACCURACY_ATTR, "-"), ".4f")] if test_per_trial else []),
            _cell(p.get("backbone")),
            "<td>yes</td>" if pretrained else '<td class="scratch">no, trained from scratch</td>',
            _cell(f"{attrs.get(DEPTH_ATTR, '?')}/{attrs.get(BLOCKS_ATTR, '?')}"),
            _cell(f"{attrs.get(FROZEN_BLOCKS_ATTR, '?')}/{attrs.get(DEPTH_ATTR, '?')}" if pretrained else "-"),
            _cell(head_label(p)), _cell(p.get("lr", "-"), ".1e"),
            _cell(p.get("switch_epoch", "-") if pretrained else "-"), _cell(attrs.get(SECONDS_ATTR, "-"), ".0f"),
            _cell(attrs.get(LATENCY_ATTR, "-"), ".2f"),
        ])
    headers = ["#", SCORE, *(["test acc"] if test_per_trial else []), "backbone", "pretrained", "depth",
               "frozen", "head", "lr", "switch", "secs", "ms (batch 1)"]
    note = f'<p class="note">{html_text(score_legend(study_cv_folds(study.user_attrs)))}</p>'  # what "score" is
    return f"<h2>Leaderboard</h2>{note}{_table(headers, rows) if rows else '<p>No completed trial yet.</p>'}"


def per_backbone_section(study: optuna.Study, test_per_trial: bool = False) -> str:
    """Each backbone's best trial by score; its test accuracy only with ``test_per_trial``."""
    best: dict[str, FrozenTrial] = {}
    for trial in ranked_trials(study):
        best.setdefault(str(trial.params.get("backbone")), trial)
    rows = [[_cell(name), _cell(t.value, ".4f"),
             *([_cell(t.user_attrs.get(TEST_ACCURACY_ATTR, "-"), ".4f")] if test_per_trial else []), _cell(t.number),
             _cell("yes" if t.user_attrs.get(PRETRAINED_ATTR, True) else "no, from scratch")] for name, t in best.items()]
    headers = ["backbone", f"best {SCORE}", *(["its test acc"] if test_per_trial else []), "trial", "pretrained"]
    return "<h2>Best result per backbone</h2>" + _table(headers, rows)


LATENCY_NOTE = ('<p class="note">Latency: the median time the exported model takes to classify one image on the '
                'CPU of the machine that ran the search (measured once per architecture). The Pareto front joins the '
                'trials that no other trial beats on both accuracy and latency.</p>')


def plots_section(study: optuna.Study) -> str:
    parts = ["<h2>Optimisation history</h2>", _img(figures.history(study), "score per trial, best so far")]
    importance = figures.importances(study)
    parts.append("<h2>Parameter importances</h2>")
    parts.append(importance_caveat(study) + (_img(importance, "parameter importances") if importance else ""))
    parts += ["<h2>Freeze fraction and switch epoch, by backbone</h2>",
              _img(figures.by_backbone(study), "score against freeze fraction and switch epoch")]
    trade_off = figures.accuracy_latency(study)
    parts.append("<h2>Accuracy and latency</h2>")
    parts.append(_img(trade_off, "score against batch-1 latency, Pareto front marked") + LATENCY_NOTE
                 if trade_off else '<p class="note">No completed trial has a measured latency (its framework adapter '
                 'measures none, or the trials ran before automl-tl measured latency).</p>')
    return "".join(parts)


def importance_caveat(study: optuna.Study) -> str:
    """What the importances can and cannot say, from how many completed trials they would stand on."""
    complete = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    trials = f"{complete} completed trial{'' if complete == 1 else 's'}"
    if complete < figures.MIN_IMPORTANCE_TRIALS:
        return (f'<p class="note">Not drawn: only {trials}. Importances from fewer than '
                f"{figures.MIN_IMPORTANCE_TRIALS} trials reflect which values happened to be drawn more than which "
                f"parameters matter. Run more trials to see them.</p>")
    return (f'<p class="note">Estimated from {trials} (PED-ANOVA): a hint of what mattered in this search, not a '
            f"measurement. With few trials a parameter can look important by chance: the more trials, the steadier "
            f"they are.</p>")


def best_model_section(results: BestModelResults | None, reason: str = "") -> str:
    if results is None:
        return f"<h2>Best model on the test split</h2><p class=\"note\">{html_text(reason)}</p>"
    rows = [[_cell(name), _cell(float(p), ".3f"), _cell(float(r), ".3f"), _cell(int(results.confusion[i].sum()))]
            for i, (name, p, r) in enumerate(zip(results.class_names, results.precision, results.recall))]
    return (f"<h2>Best model on the test split</h2><p>Trial {results.trial}: test accuracy {results.accuracy:.4f} on "
            f"{int(results.confusion.sum())} images.</p>"
            + _img(figures.confusion(results.confusion, results.class_names), "confusion matrix")
            + "<h3>Precision and recall per class</h3>" + _table(["class", "precision", "recall", "test images"], rows)
            + mistakes_html(results.mistakes, results.wrong))


def study_audit_section(study: optuna.Study, data_location: str | None = None) -> str:
    """The data audit recorded on the study, its thumbnails read from ``data_location`` (``--data``) or from
    where the study recorded its data, under the study's pixel cap."""
    attrs = study.user_attrs
    location = data_location or str(attrs.get(DATA_LOCATION_ATTR, ""))
    return audit_section(attrs.get(DATA_AUDIT_ATTR), data_root(location), study_max_pixels(attrs, DEFAULT_MAX_PIXELS))


def render(study: optuna.Study, best: BestModelResults | None, best_reason: str = "",
           warnings: Sequence[str] = (), test_per_trial: bool = False, ensemble_html: str = "",
           data_location: str | None = None) -> str:
    created = datetime.now().strftime("%Y-%m-%d %H:%M")
    reading = best.reading if best is not None else None
    body = (f"<h1>Study {html_text(study.study_name)}</h1><p class=\"note\">automl-tl report, {created}</p>"
            + "".join(f'<p class="warning">{html_text(text)}</p>' for text in warnings)
            + summary_section(study, reading) + skipped_section(reading) + time_section(study)
            + leaderboard_section(study, test_per_trial=test_per_trial) + ("" if test_per_trial else TEST_NOTE)
            + curves_section(study) + plots_section(study) + per_backbone_section(study, test_per_trial)
            + ensemble_html + best_model_section(best, best_reason) + study_audit_section(study, data_location))
    return (f"{PAGE_HEAD}<title>automl-tl: "
            f"{html_text(study.study_name)}</title><style>{STYLE}</style></head><body>{body}</body></html>")


def report_is_ours(head: bytes, tail: bytes) -> bool:
    """Whether a file, from its first bytes, is a report automl-tl wrote (with the mark, or from before it)."""
    return head.startswith(PAGE_HEAD.encode()) or head.startswith(LEGACY_PAGE_HEAD.encode())


def write_report(study: optuna.Study, output: Path, evaluate: Callable[[], BestModelResults | None],
                 warnings: Sequence[str] = (), test_per_trial: bool = False, ensemble_html: str = "",
                 overwrite: bool = False, data_location: str | None = None) -> Path:
    """Write the page atomically: a half-written report never replaces a good one, and a failed write
    leaves nothing behind. An existing file is replaced only when it is an earlier report, or with
    ``overwrite``; a link, device, FIFO or socket never (see ``runtime.owned_files``). ``warnings``
    (which ``evaluate`` may still add to) head the page."""
    check_file_target(output, "-o", report_is_ours, overwrite, "report.html")  # before the slow part
    try:
        best, reason = evaluate(), ""
    except Exception as exc:  # the rest of the report is still worth having
        best, reason = None, f"The best model could not be evaluated: {exc}"
    page = render(study, best, reason, warnings, test_per_trial, ensemble_html, data_location)
    return write_file(output, page.encode("utf-8"), "-o", report_is_ours, overwrite, "report.html")
