"""``AuditReport``: what the data audit found, as one dataclass and one JSON shape.

The shape (``to_dict``; ``from_dict`` reads it back) is what ``audit --json`` prints, what a study keeps
under ``DATA_AUDIT_ATTR`` and what the HTML report draws::

    {"images": int, "image_size": int | null,
     "findings": {"exact_duplicates": [group], "near_duplicates": [group + "distance"],
                  "small_images": [{"file", "width", "height"}],
                  "extreme_aspect": [{"file", "width", "height", "ratio"}],
                  "unreadable": [{"file", "reason"}],
                  "imbalance": {"counts": {class: int}, "ratio": float, "flagged": bool}},
     "label_issues": [{"file", "given", "suggested", "given_probability", "suggested_probability"}],
     "seconds": float, "totals": {kind: int}}

A group is ``{"files": [...], "classes": [...], "splits": [...], "kind": ...}`` with one class and one
split per file, in the same order; ``kind`` is ``within_class``, ``across_classes`` or ``leak`` (see
``audit.groups``). Files are relative to the data root. Every list is cut to ``MAX_LISTED`` entries (the
most serious first); ``totals`` keeps each list's full length, so a cut list still says how much it left.
``totals`` also counts the duplicate groups of each kind, exact and near together, before the cut
(``leak_groups``, ``across_classes_groups``, ``within_class_groups``; ``group_total``).
``totals`` names ``label_issues`` only once they were looked for (after a cross-validated search), so that
"none found" and "not looked for" differ (``labels_checked``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_LISTED = 200  # entries kept per list: the study's record stays small however bad the data
LIST_KINDS = ("exact_duplicates", "near_duplicates", "small_images", "extreme_aspect", "unreadable")


@dataclass(frozen=True)
class DuplicateGroup:
    """Files that are the same image (exactly, or by perceptual hash within ``distance`` bits)."""

    files: list[str]
    classes: list[str]
    splits: list[str]
    kind: str
    distance: int | None = None  # near-duplicates: the largest Hamming distance between linked files

    def to_dict(self) -> dict[str, Any]:
        found = {"files": list(self.files), "classes": list(self.classes), "splits": list(self.splits), "kind": self.kind}
        return found if self.distance is None else {**found, "distance": int(self.distance)}


@dataclass(frozen=True)
class SmallImage:
    file: str
    width: int
    height: int


@dataclass(frozen=True)
class ExtremeAspect:
    file: str
    width: int
    height: int
    ratio: float


@dataclass(frozen=True)
class Unreadable:
    file: str
    reason: str


@dataclass(frozen=True)
class Imbalance:
    """Images per class, the largest count over the smallest, and whether that is over the threshold."""

    counts: dict[str, int]
    ratio: float
    flagged: bool


@dataclass(frozen=True)
class LabelIssue:
    """An image whose out-of-fold probabilities suggest another class than its label."""

    file: str
    given: str
    suggested: str
    given_probability: float
    suggested_probability: float


@dataclass
class AuditReport:
    """Every finding of one audit (lists already cut to ``MAX_LISTED``; ``totals`` before the cut)."""

    images: int
    image_size: int | None
    exact_duplicates: list[DuplicateGroup] = field(default_factory=list)
    near_duplicates: list[DuplicateGroup] = field(default_factory=list)
    small_images: list[SmallImage] = field(default_factory=list)
    extreme_aspect: list[ExtremeAspect] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)
    imbalance: Imbalance = field(default_factory=lambda: Imbalance({}, 1.0, False))
    label_issues: list[LabelIssue] = field(default_factory=list)
    seconds: float = 0.0
    totals: dict[str, int] = field(default_factory=dict)

    def total(self, kind: str) -> int:
        """How many entries ``kind`` had before its list was cut."""
        return int(self.totals.get(kind, len(getattr(self, kind))))

    def group_total(self, kind: str) -> int:
        """How many duplicate groups, exact and near, were of ``kind`` (``leak``, ``across_classes`` or
        ``within_class``) before the lists were cut; a report without the count (an older study's): the listed ones."""
        counted = self.totals.get(group_total_key(kind))
        listed = sum(1 for g in (*self.exact_duplicates, *self.near_duplicates) if g.kind == kind)
        return int(counted) if counted is not None else listed

    def labels_checked(self) -> bool:
        """Whether label issues were looked for (from a cross-validated search's out-of-fold probabilities)."""
        return "label_issues" in self.totals

    def leaks(self) -> list[DuplicateGroup]:
        """The duplicate groups, exact or near, that span more than one split."""
        return [g for g in (*self.exact_duplicates, *self.near_duplicates) if g.kind == "leak"]

    def to_dict(self) -> dict[str, Any]:
        findings: dict[str, Any] = {
            "exact_duplicates": [g.to_dict() for g in self.exact_duplicates],
            "near_duplicates": [g.to_dict() for g in self.near_duplicates],
            "small_images": [asdict(s) for s in self.small_images],
            "extreme_aspect": [asdict(e) for e in self.extreme_aspect],
            "unreadable": [asdict(u) for u in self.unreadable],
            "imbalance": asdict(self.imbalance),
        }
        totals = {**{kind: self.total(kind) for kind in LIST_KINDS}, **self.totals}
        return {"images": int(self.images), "image_size": self.image_size, "findings": findings,
                "label_issues": [asdict(issue) for issue in self.label_issues], "seconds": round(float(self.seconds), 3),
                "totals": totals}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditReport:
        """The report ``to_dict`` wrote (a study's record, or ``audit --json``'s output)."""
        found = data.get("findings") or {}
        balance = found.get("imbalance") or {}
        size = data.get("image_size")
        return cls(
            images=int(data.get("images", 0)),
            image_size=int(size) if size is not None else None,
            exact_duplicates=[_group(g) for g in found.get("exact_duplicates", [])],
            near_duplicates=[_group(g) for g in found.get("near_duplicates", [])],
            small_images=[SmallImage(str(s["file"]), int(s["width"]), int(s["height"])) for s in found.get("small_images", [])],
            extreme_aspect=[ExtremeAspect(str(e["file"]), int(e["width"]), int(e["height"]), float(e["ratio"]))
                            for e in found.get("extreme_aspect", [])],
            unreadable=[Unreadable(str(u["file"]), str(u["reason"])) for u in found.get("unreadable", [])],
            imbalance=Imbalance({str(k): int(v) for k, v in (balance.get("counts") or {}).items()},
                                float(balance.get("ratio", 1.0)), bool(balance.get("flagged", False))),
            label_issues=[LabelIssue(str(i["file"]), str(i["given"]), str(i["suggested"]), float(i["given_probability"]),
                                     float(i["suggested_probability"])) for i in data.get("label_issues", [])],
            seconds=float(data.get("seconds", 0.0)),
            totals={str(k): int(v) for k, v in (data.get("totals") or {}).items()},
        )


def _group(data: Mapping[str, Any]) -> DuplicateGroup:
    distance = data.get("distance")
    return DuplicateGroup([str(f) for f in data["files"]], [str(c) for c in data["classes"]],
                          [str(s) for s in data["splits"]], str(data["kind"]), int(distance) if distance is not None else None)


def group_total_key(kind: str) -> str:
    """The ``totals`` key that counts the duplicate groups of ``kind`` (see ``AuditReport.group_total``)."""
    return f"{kind}_groups"


def capped(entries: list[Any]) -> list[Any]:
    """``entries`` cut to ``MAX_LISTED``."""
    return entries[:MAX_LISTED]
