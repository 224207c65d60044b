"""The audit in words: one paragraph for the start of a search, and the refusal of ``search --strict``."""

from __future__ import annotations

from automl_tl.audit.image_checks import MAX_ASPECT, MAX_IMBALANCE, SMALL_FRACTION, small_fraction_words
from automl_tl.audit.perceptual import MAX_DISTANCE
from automl_tl.audit.report import AuditReport
from automl_tl.errors import UserError

_NAMED = 5  # files a sentence names before "and N more"


def _counted(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def small_rule(report: AuditReport) -> str:
    """What "small" meant in ``report``: the fraction and the side it was taken of, in pixels when known."""
    fraction = small_fraction_words()
    if report.image_size:
        return (f"under {fraction} of the {report.image_size} px searched ({SMALL_FRACTION * report.image_size:g} px) "
                f"on the shorter side")
    return f"under {fraction} of the median image's shorter side"


def finding_phrases(report: AuditReport) -> list[str]:
    """One short phrase per kind of finding the report has, most serious first; [] for clean data."""
    leaks, leak_groups = report.leaks(), report.group_total("leak")
    phrases = []
    if leak_groups:
        example = f", e.g. {', '.join(leaks[0].files[:3])}" if leaks else ""
        phrases.append(f"{_counted(leak_groups, 'duplicate group spans', 'duplicate groups span')} the train/val/test "
                       f"splits (a leak: scores are inflated){example}")
    across = report.group_total("across_classes")
    if across:
        phrases.append(f"{_counted(across, 'duplicate group has', 'duplicate groups have')} conflicting labels")
    others = report.group_total("within_class")
    if others > 0:
        phrases.append(f"{_counted(others, 'more group', 'more groups')} of duplicates within a class "
                       f"(exact, or within {MAX_DISTANCE / 100:g} of a perceptual fingerprint)")
    if report.total("small_images"):
        phrases.append(f"{_counted(report.total('small_images'), 'image is', 'images are')} {small_rule(report)}")
    if report.total("extreme_aspect"):
        phrases.append(f"{_counted(report.total('extreme_aspect'), 'image is', 'images are')} more than "
                       f"{MAX_ASPECT:g} times as long as wide")
    if report.total("unreadable"):
        phrases.append(f"{_counted(report.total('unreadable'), 'file is', 'files are')} unreadable")
    if report.imbalance.flagged:
        phrases.append(f"the largest class has {report.imbalance.ratio:g} times the images of the smallest (over "
                       f"{MAX_IMBALANCE:g})")
    return phrases


def warning_paragraph(report: AuditReport, data: str) -> str:
    """The one paragraph a search prints about its data; "" when the audit found nothing."""
    phrases = finding_phrases(report)
    if not phrases:
        return ""
    return (f"The data audit of {report.images} images found: {'; '.join(phrases)}. The search goes on; "
            f"`automl-tl audit {data}` names every file.")


def refuse_leaks(report: AuditReport, data: str) -> None:
    """``search --strict``: a ``UserError`` naming the files of each leak, when there is one."""
    leaks, total = report.leaks(), report.group_total("leak")
    if not total:
        return
    named = "; ".join(" = ".join(f"{f} ({s})" for f, s in zip(g.files, g.splits)) for g in leaks[:_NAMED])
    more = f"; and {total - len(leaks[:_NAMED])} more" if total > len(leaks[:_NAMED]) else ""
    raise UserError(f"--strict: {_counted(total, 'group of copies spans', 'groups of copies span')} more than one of "
                    f"the train, val and test splits, so a model would be scored on what it trained on: {named}{more}. "
                    f"Remove the copies (`automl-tl audit {data}` lists them all), or search without --strict.")
