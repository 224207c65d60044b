"""The data audit's findings on the page, with thumbnails: leaks between the splits first, then duplicates,
likely label errors, images far smaller than the size searched, extreme aspect ratios, unreadable files and
class imbalance.

The audit (``automl_tl.audit``) stores its result on the study as a dict (``DATA_AUDIT_ATTR``) whose file names
are relative to the data folder. It is read defensively: a finding of the wrong shape is left out, never an
error, and every piece of text in it is escaped. Thumbnails are read with the safe image reader under the
study's pixel cap, only from inside the data folder; a file that cannot be read gets none."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from automl_tl.audit.image_checks import small_fraction_words
from automl_tl.report.html_parts import cell, figure, grid, more_note, table
from automl_tl.report.thumbnails import file_thumbnail
from automl_tl.runtime.shown_text import html_text

MAX_GROUPS = 12  # duplicate groups shown per kind
MAX_FILES = 24  # thumbnails shown per list of single files
AUDIT_THUMBNAIL_PX = 96
Thumbnail = Callable[[str], "str | None"]


def _entries(value: Any) -> list[dict[str, Any]]:
    return [entry for entry in value if isinstance(entry, dict)] if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _number(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else "?"


def _group_html(group: dict[str, Any], thumbnail: Thumbnail) -> str:
    files, classes, splits = _strings(group.get("files")), _strings(group.get("classes")), _strings(group.get("splits"))
    cards = []
    for index, name in enumerate(files):
        where = ", ".join(x for x in (classes[index] if index < len(classes) else "",
                                      splits[index] if index < len(splits) else "") if x)
        caption = f'<span class="path">{html_text(name)}</span>' + (f"<br>{html_text(where)}" if where else "")
        cards.append(figure(thumbnail(name), name, caption))
    distance = group.get("distance")
    said = f' <span class="note">(hash distance {_number(distance, "d")})</span>' if distance is not None else ""
    return f'<div class="group">{grid(cards)}{said}</div>'


def _count(total: int, listed: int) -> str:
    """A heading's count: the audit's true total, and when the stored list was cut, how much of it is listed."""
    if total <= listed:
        return f"{total}"
    return f"{total}; the first {listed} listed" if listed else f"{total}; none listed"


def _cut_note(total: int, listed: int) -> str:
    return ("" if total <= listed else '<p class="note">The study keeps the audit\'s most serious findings of each '
            "kind, leaks first; <code>automl-tl audit DATA</code> names every one.</p>")


def _total(totals: dict[str, Any], key: str, listed: int) -> int:
    """``totals[key]`` when it is a count not under ``listed`` (the stored list's length), else ``listed``."""
    value = totals.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= listed else listed


def _groups_html(title: str, explanation: str, groups: list[dict[str, Any]], thumbnail: Thumbnail, total: int) -> str:
    if not groups and not total:
        return ""
    shown = groups[:MAX_GROUPS]
    return (f"<h3>{html_text(title)} ({_count(total, len(groups))})</h3><p class=\"note\">{html_text(explanation)}</p>"
            + _cut_note(total, len(groups)) + "".join(_group_html(g, thumbnail) for g in shown)
            + more_note(len(shown), len(groups), "groups listed"))


def _duplicates_html(findings: dict[str, Any], totals: dict[str, Any], thumbnail: Thumbnail) -> str:
    exact, near = _entries(findings.get("exact_duplicates")), _entries(findings.get("near_duplicates"))
    leaks = [g for g in exact + near if g.get("kind") == "leak"]
    across = [g for g in exact + near if g.get("kind") == "across_classes"]
    within = [g for g in exact + near if g.get("kind") not in ("leak", "across_classes")]
    return (_groups_html("Leaks between splits", "The same image, or nearly, in more than one of train, val and "
                         "test: a model scored on an image it trained on looks better than it is.", leaks, thumbnail,
                         _total(totals, "leak_groups", len(leaks)))
            + _groups_html("Duplicates across classes", "The same image, or nearly, under different labels: at "
                           "least one label is wrong.", across, thumbnail,
                           _total(totals, "across_classes_groups", len(across)))
            + _groups_html("Duplicates within a class", "The same image, or nearly, more than once in a class: it "
                           "counts twice.", within, thumbnail, _total(totals, "within_class_groups", len(within))))


def _label_issues_html(issues: list[dict[str, Any]], checked: bool, thumbnail: Thumbnail, total: int) -> str:
    if not checked:
        return ('<h3>Likely label errors</h3><p class="note">Not looked for: they are ranked from the out-of-fold '
                'probabilities of a cross-validated search (<code>--cv</code>).</p>')
    if not issues:
        return "<h3>Likely label errors</h3><p>None found.</p>"
    cards = []
    for issue in issues[:MAX_FILES]:
        name = str(issue.get("file", ""))
        caption = (f'given <b>{html_text(str(issue.get("given", "?")))}</b> '
                   f'{_number(issue.get("given_probability"), ".2f")}<br>&rarr; '
                   f'{html_text(str(issue.get("suggested", "?")))} {_number(issue.get("suggested_probability"), ".2f")}'
                   f'<br><span class="path">{html_text(name)}</span>')
        cards.append(figure(thumbnail(name), name, caption))
    return (f"<h3>Likely label errors ({_count(total, len(issues))})</h3><p class=\"note\">Images whose out-of-fold probabilities "
            f"favour another class: the label given with the probability the models gave it, then the class they "
            f"suggest with its probability. Check these labels by eye.</p>" + grid(cards)
            + more_note(min(len(issues), MAX_FILES), len(issues), "likely label errors listed"))


def _files_html(title: str, explanation: str, entries: list[dict[str, Any]], thumbnail: Thumbnail,
                describe: Callable[[dict[str, Any]], str], total: int) -> str:
    if not entries:
        return ""
    names = [str(e.get("file", "")) for e in entries[:MAX_FILES]]
    cards = [figure(thumbnail(name), name, f'{describe(e)}<br><span class="path">{html_text(name)}</span>')
             for name, e in zip(names, entries)]
    return (f"<h3>{html_text(title)} ({_count(total, len(entries))})</h3><p class=\"note\">{html_text(explanation)}</p>"
            + grid(cards) + more_note(min(len(entries), MAX_FILES), len(entries), "files listed"))


def _unreadable_html(entries: list[dict[str, Any]], total: int) -> str:
    if not entries:
        return ""
    rows = [[cell(str(e.get("file", ""))), cell(str(e.get("reason", "")))] for e in entries[:200]]
    return f"<h3>Unreadable files ({_count(total, len(entries))})</h3>" + table(["file", "why"], rows)


def _imbalance_html(imbalance: Any) -> str:
    if not isinstance(imbalance, dict) or not isinstance(imbalance.get("counts"), dict):
        return ""
    counts = imbalance["counts"]
    rows = [[cell(str(name)), cell(count, "d")] for name, count in counts.items()
            if isinstance(count, int) and not isinstance(count, bool)]
    flagged = imbalance.get("flagged") is True
    said = (f"The largest class has {_number(imbalance.get('ratio'), '.1f')} times the images of the smallest"
            + (": imbalanced enough to weigh on the score." if flagged else ", within what the search handles."))
    opening = '<p class="warning">' if flagged else "<p>"
    return (f"<h3>Class balance</h3>{opening}{html_text(said)}</p>"
            + table(["class", "images"], rows))


def audit_section(audit: Any, data_root: Path | None, max_pixels: int) -> str:
    """The section for the audit dict ``audit`` (None or not a dict: a line saying no audit is recorded);
    thumbnails from the data folder ``data_root`` when it is known."""
    if not isinstance(audit, dict) or not isinstance(audit.get("findings"), dict):
        return ('<h2>Data audit</h2><p class="note">No data audit is recorded on this study: run <code>automl-tl '
                'audit DATA</code>, or a search, which audits the data first.</p>')
    findings = audit["findings"]

    def thumbnail(name: str) -> str | None:
        return file_thumbnail(data_root, name, max_pixels, AUDIT_THUMBNAIL_PX) if data_root is not None and name else None

    kept_totals = audit.get("totals")
    totals: dict[str, Any] = kept_totals if isinstance(kept_totals, dict) else {}
    listed = {kind: _entries(findings.get(kind)) for kind in ("small_images", "extreme_aspect", "unreadable")}
    size = audit.get("image_size")
    small = _files_html("Small images", f"Under {small_fraction_words()} of the {_number(size, 'd')} px the search used on "
                        "their shorter side: enlarged, they are mostly blur.", listed["small_images"], thumbnail,
                        lambda e: f"{_number(e.get('width'), 'd')}&times;{_number(e.get('height'), 'd')} px",
                        _total(totals, "small_images", len(listed["small_images"])))
    aspect = _files_html("Extreme aspect ratios", "Much longer than they are wide, or the other way round: a square "
                         "crop loses most of them.", listed["extreme_aspect"], thumbnail,
                         lambda e: f"{_number(e.get('width'), 'd')}&times;{_number(e.get('height'), 'd')} px, "
                                   f"ratio {_number(e.get('ratio'), '.1f')}",
                         _total(totals, "extreme_aspect", len(listed["extreme_aspect"])))
    checked = "label_issues" in totals if isinstance(kept_totals, dict) else bool(audit.get("label_issues"))
    duplicates = _duplicates_html(findings, totals, thumbnail)
    unreadable = _unreadable_html(listed["unreadable"], _total(totals, "unreadable", len(listed["unreadable"])))
    clean = "" if duplicates + small + aspect + unreadable else (
        "<p>No leaks, duplicates, small or odd-shaped images, or unreadable files.</p>")
    issues = _entries(audit.get("label_issues"))
    body = (clean + duplicates + _label_issues_html(issues, checked, thumbnail, _total(totals, "label_issues", len(issues)))
            + small + aspect + unreadable + _imbalance_html(findings.get("imbalance")))
    seconds = audit.get("seconds")
    took = "under 0.1" if isinstance(seconds, (int, float)) and 0 <= seconds < 0.05 else _number(seconds, ".1f")
    head = (f'<p class="note">{_number(audit.get("images"), "d")} images audited in {took} s. File names are '
            f'relative to the data folder.</p>')
    return "<h2>Data audit</h2>" + head + body

