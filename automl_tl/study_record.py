"""One record of a study: every key a study and its trials keep in Optuna's attributes, and the typed records
that write and read them.

Nothing else names an attribute: writers and readers import the key or the record from here, so what a study
holds is read in one file. The study's format is ``STUDY_FORMAT``, written when the study is created
(``FORMAT_ATTR``); ``migrated`` is the one place that reads an older format (it fills in what those studies did
without saying: stretched images, scoring on the validation split) or refuses a newer one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from automl_tl.capabilities import DigestsWeights
from automl_tl.errors import UserError
from automl_tl.types import BackboneSpec, FrameworkAdapter, ResizeRule, rule_from_dict

STUDY_FORMAT = 2  # 1: every study made before this record, which wrote no format (read through ``migrated``)

# The study's user attributes.
FORMAT_ATTR = "record_format"  # STUDY_FORMAT, written once when the study is created
SETTINGS_ATTR = "search_settings"  # StudySettings: what a worker needs to run the study's trials the same way
FINGERPRINT_ATTR = "fingerprint"  # what must not change when the study is resumed (search/fingerprint.py)
DATA_INVENTORY_ATTR = "data_inventory"  # per class: image count, digest, and (bounded) path/content entries (search/data_changes.py)
STUDY_KEY_ATTR = "artifact_key"  # the random key its artifact folder is named after (storage/artifacts.py)
BUDGET_ATTR = "budget"  # its total of finished trials; null: no count (--timeout alone)
PLUGIN_FILES_ATTR = "plugin_files"  # [{"path", "sha256", "backbones"}, ...]: the --plugin files it searched with
TIME_SUMMARY_ATTR = "time_summary"  # the last search's time summary (search/time_summary.py)
PROFILE_ATTR = "data_profile"  # what smart start measured of the data (search/smart_start.py)
DATA_AUDIT_ATTR = "data_audit"  # the last search's data audit, AuditReport.to_dict() (automl_tl/audit/report.py)
FIRST_RUNG_ATTR = "pruning_first_rung_s"  # s0, the seconds of the pruner's first rung (search/pruning.py)
CLASS_NAMES_ATTR = "class_names"  # the StudyData fields, recorded once with the first search
DATA_LOCATION_ATTR = "data_location"
SPLIT_COUNTS_ATTR = "split_counts"
EPOCHS_ATTR = "epochs"
IMAGE_SIZE_ATTR = "image_size"
IMAGE_SIZE_REASON_ATTR = "image_size_reason"
RESIZE_ATTR = "resize"
ARTIFACTS_ATTR = "artifacts"  # where its artifacts are: a folder, or s3://...
VERSION_ATTR = "automl_tl_version"

# A trial's user attributes.
FRAMEWORK_ATTR = "framework"
PRETRAINED_ATTR = "pretrained"
BLOCKS_ATTR = "blocks"
DEPTH_ATTR = "depth"
FROZEN_BLOCKS_ATTR = "frozen_blocks"
KIND_ATTR = "kind"  # head-only, fine-tune or scratch (see automl_tl.tuning.cost.trial_kind)
DIGEST_FIELD = "backbone_digest"  # in trial.json and the trial's attributes: the pretrained weights it trained on
LATENCY_ATTR = "latency_ms"  # its batch-1 median, ms: the figure --max-latency-ms limits
LATENCY_B32_ATTR = "latency_ms_b32"  # its batch-32 median, ms per call (of 32 images)
LATENCY_ERROR_ATTR = "latency_error"  # why it could not be measured (the trial trains anyway without a limit)
TOO_SLOW_ATTR = "too_slow"  # on a trial ended before training because it was over the limit: the sentence why
SECONDS_ATTR = "seconds"  # what the trial really took
PREDICTED_ATTR = "predicted_seconds"  # the calibrated prediction, what the user and the benchmark compare
PREDICTED_RAW_ATTR = "predicted_raw_seconds"  # the model's prediction before calibration, what calibration uses
SHRUNK_ATTR = "shrunk"  # what was cut so that it fits the time left (absent: nothing)
STOPPED_BY_ATTR = "stopped_by"  # "deadline": the --timeout cut it short; it kept its best whole epoch
FAIL_REASON_ATTR = "fail_reason"  # why it failed, as the user reads it
REQUEUED_ATTR = "requeued"  # on a failed trial: whether it was queued again (True) or given up (False)
NOT_STARTED_ATTR = "not_started"  # on a failed trial: True when it failed untrained, too big for the time left
RETRY_OF_ATTR = "retry_of"  # on a retry: the number of the attempt it repeats
RETRY_REASON_ATTR = "retry_reason"  # on a retry: why the attempt before it did not finish
SMART_START_ATTR = "smart_start"  # why smart start chose it
WARM_START_ATTR = "warm_start"  # on a trial queued by --warm-start: the study and trial its recipe came from
ENQUEUED_PARAMS_SYSTEM_ATTR = "fixed_params"  # Optuna's own system attribute: the parameters of an enqueued trial
RESUMED_FROM_ATTR = "resumed_after_epoch"  # on a retry that went on from a saved state: the epochs it did not train again
RESUMED_FOLDS_ATTR = "resumed_after_fold"  # on a cross-validated retry: the finished folds it read back, not trained
CONTINUES_ATTR = "continues"  # on a continuation of a trial the --timeout stopped early: ContinuationOf
RESUME_NOTE_ATTR = "resume_note"  # on a retry that found a saved state it could not use: why it started from epoch (or fold) 1
CHECKS_ATTR = "checks"  # [[seconds, value, epochs, phase], ...]: every whole epoch and check inside one
HEAD_EPOCHS_ATTR = "head_epochs"  # head-only epochs before it fine-tunes (null: it has no such switch)
FOLD_ZERO_ATTR = "cv_fold_0_accuracy"  # FoldZero: fold 0's best validation accuracy under --cv
VAL_ACCURACY_ATTR = "val_accuracy"
VAL_BALANCED_ATTR = "val_balanced_accuracy"
TEST_ACCURACY_ATTR = "test_accuracy"
TEST_BALANCED_ATTR = "test_balanced_accuracy"
BEST_EPOCH_ATTR = "best_epoch"
BEST_PHASE_ATTR = "best_phase"
EPOCHS_RUN_ATTR = "epochs_run"
MIRROR_SECONDS_ATTR = "mirror_seconds"  # the kept weights scored on mirrored images (export --flip)
RSS_MB_ATTR = "rss_mb"  # resident memory after the trial: growth from trial to trial is a leak
SCORING_ATTR = "scoring"  # how the trial was scored, in words (under --cv)
CV_FOLDS_ATTR = "cv_folds"  # under --cv (training/cross_validation.py): the folds, done and scored, and the refit
CV_FOLDS_DONE_ATTR = "cv_folds_done"
CV_SCORED_IMAGES_ATTR = "cv_scored_images"
CV_REFIT_ATTR = "cv_refit"
CV_FOLD_ACCURACIES_ATTR = "cv_fold_accuracies"
CV_EPOCH_ACCURACIES_ATTR = "cv_epoch_accuracies"
CV_FOLD_SECONDS_ATTR = "cv_fold_seconds"
CV_REFIT_SECONDS_ATTR = "cv_refit_seconds"

# A trial's system attributes: the names Optuna's own retry callback uses, so Optuna's tools read them too.
FAILED_TRIAL_SYSTEM_ATTR = "failed_trial"
RETRY_HISTORY_SYSTEM_ATTR = "retry_history"

LEGACY_IMAGE_SIZE = 48  # what studies of format 1 trained at before they recorded their size
LEGACY_MAX_PIXELS = 40_000_000  # the pixel limit of format-1 studies that did not record theirs
LEGACY_RESIZE = ResizeRule("stretch")  # what studies of format 1 did to every image before resize rules


def study_format(attrs: Mapping[str, Any]) -> int:
    """The record format of a study's user attributes (1: made before formats were written)."""
    value = attrs.get(FORMAT_ATTR, 1)
    return int(value) if isinstance(value, int) else 1


def migrated(study_name: str, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The one reader of older formats: a study's user attributes in today's format, in memory (the study is
    not written). A format newer than this automl-tl knows is refused: its fields may mean something else."""
    found = study_format(attrs)
    if found > STUDY_FORMAT:
        raise UserError(f"Study {study_name!r} was written by a newer automl-tl (study format {found}; this one "
                        f"reads up to {STUDY_FORMAT}). Upgrade automl-tl (pip install -U automl-tl) to work on it.")
    current = dict(attrs)
    if found == 1:  # before this record: what those studies did without recording it
        settings = dict(current.get(SETTINGS_ATTR) or {})
        rule = current.get(RESIZE_ATTR) or settings.get(RESIZE_ATTR)
        current[RESIZE_ATTR] = rule if isinstance(rule, dict) else LEGACY_RESIZE.to_dict()  # stretched
        if settings:
            settings.setdefault("cv_folds", 0)  # before --cv, trials were scored on the validation split
            settings.setdefault("image_size_reason", "")
            settings.setdefault("max_pixels", LEGACY_MAX_PIXELS)
            settings[RESIZE_ATTR] = current[RESIZE_ATTR]
            current[SETTINGS_ATTR] = settings
    current[FORMAT_ATTR] = STUDY_FORMAT
    return current


@dataclass(frozen=True)
class StudySettings:
    """What a worker needs to run the study's trials the way ``search`` does (``SETTINGS_ATTR``)."""

    backbones: list[str]
    epochs: int
    image_size: int
    seed: int
    pruner: str
    truncation: bool
    heartbeat_s: int
    max_pixels: int
    resize: ResizeRule = field(default_factory=ResizeRule)
    image_size_reason: str = ""
    cv_folds: int = 0  # how trials are scored: workers must score theirs the same way
    max_latency_ms: float | None = None  # the last run's limit, for the workers that join it

    def to_attrs(self) -> dict[str, Any]:
        """The JSON form kept in the study."""
        return {"backbones": list(self.backbones), "epochs": self.epochs, "image_size": self.image_size,
                "seed": self.seed, "pruner": self.pruner, "truncation": self.truncation,
                "heartbeat_s": self.heartbeat_s, "max_pixels": self.max_pixels, "resize": self.resize.to_dict(),
                "image_size_reason": self.image_size_reason, "cv_folds": self.cv_folds,
                "max_latency_ms": self.max_latency_ms}

    @classmethod
    def from_attrs(cls, values: Mapping[str, Any]) -> StudySettings:
        """Read back what ``to_attrs`` wrote (after ``migrated``, for an older study)."""
        limit = values.get("max_latency_ms")
        return cls(backbones=[str(b) for b in values["backbones"]], epochs=int(values["epochs"]),
                   image_size=int(values["image_size"]), seed=int(values["seed"]), pruner=str(values["pruner"]),
                   truncation=bool(values["truncation"]), heartbeat_s=int(values["heartbeat_s"]),
                   max_pixels=int(values["max_pixels"]), resize=rule_from_dict(values.get("resize") or {}),
                   image_size_reason=str(values.get("image_size_reason", "")),
                   cv_folds=int(values.get("cv_folds") or 0),
                   max_latency_ms=float(limit) if isinstance(limit, (int, float)) else None)


@dataclass(frozen=True)
class StudyData:
    """What the first search recorded of the data and how it read it (recorded once)."""

    class_names: list[str]
    data_location: str
    split_counts: dict[str, int]
    epochs: int
    image_size: int
    image_size_reason: str
    resize: ResizeRule
    artifacts: str  # where the artifacts are: a folder, or s3://...
    version: str  # the automl-tl that recorded it

    def to_attrs(self) -> dict[str, Any]:
        """The study's user attributes, one per field."""
        return {CLASS_NAMES_ATTR: list(self.class_names), DATA_LOCATION_ATTR: self.data_location,
                SPLIT_COUNTS_ATTR: dict(self.split_counts), EPOCHS_ATTR: self.epochs, IMAGE_SIZE_ATTR: self.image_size,
                IMAGE_SIZE_REASON_ATTR: self.image_size_reason, RESIZE_ATTR: self.resize.to_dict(),
                ARTIFACTS_ATTR: self.artifacts, VERSION_ATTR: self.version}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> StudyData | None:
        """Read back what ``to_attrs`` wrote; None when the study has not recorded it yet."""
        if CLASS_NAMES_ATTR not in attrs:
            return None
        return cls([str(n) for n in attrs[CLASS_NAMES_ATTR]], str(attrs.get(DATA_LOCATION_ATTR, "")),
                   {str(k): int(v) for k, v in (attrs.get(SPLIT_COUNTS_ATTR) or {}).items()},
                   int(attrs.get(EPOCHS_ATTR, 0)), int(attrs.get(IMAGE_SIZE_ATTR, LEGACY_IMAGE_SIZE)),
                   str(attrs.get(IMAGE_SIZE_REASON_ATTR, "")), study_rule(attrs),
                   str(attrs.get(ARTIFACTS_ATTR, "")), str(attrs.get(VERSION_ATTR, "")))


def study_rule(attrs: Mapping[str, Any]) -> ResizeRule:
    """The resize rule a study's attributes record (``migrated`` gives a format-1 study its stretch)."""
    recorded = attrs.get(RESIZE_ATTR) or (attrs.get(SETTINGS_ATTR) or {}).get(RESIZE_ATTR)
    return rule_from_dict(recorded) if isinstance(recorded, dict) else LEGACY_RESIZE


def stored_settings(attrs: Mapping[str, Any]) -> StudySettings | None:
    """The study's ``StudySettings``; None for a study ``search`` has not prepared (or whose settings lack a field
    that every format records)."""
    values = attrs.get(SETTINGS_ATTR)
    if not isinstance(values, Mapping):
        return None
    try:
        return StudySettings.from_attrs({RESIZE_ATTR: study_rule(attrs).to_dict(), **values})
    except (KeyError, TypeError, ValueError):
        return None


def study_cv_folds(attrs: Mapping[str, Any]) -> int:
    """The folds a study scores its trials over, from its user attributes (0: the validation split)."""
    return int((attrs.get(SETTINGS_ATTR) or {}).get("cv_folds", 0) or 0)


def study_latency_limit(attrs: Mapping[str, Any]) -> float | None:
    """The --max-latency-ms the study's last run trained with (None: none, or a study from before limits)."""
    value = (attrs.get(SETTINGS_ATTR) or {}).get("max_latency_ms")
    return float(value) if isinstance(value, (int, float)) else None


def settings_with_limit(attrs: Mapping[str, Any], limit_ms: float | None) -> dict[str, Any] | None:
    """The study's settings with this run's --max-latency-ms, for the workers that join it; None when they
    already say it."""
    values = dict(attrs.get(SETTINGS_ATTR) or {})
    if values.get("max_latency_ms") == limit_ms:
        return None
    return {**values, "max_latency_ms": limit_ms}


def study_max_pixels(attrs: Mapping[str, Any], default: int) -> int:
    """The pixel limit above which the study's images were skipped (``default`` when it records none)."""
    return int((attrs.get(SETTINGS_ATTR) or {}).get("max_pixels", default))


@dataclass(frozen=True)
class FoldZero:
    """Fold 0's best validation accuracy of a trial scored over ``folds`` folds (``FOLD_ZERO_ATTR``)."""

    folds: int
    accuracy: float

    def to_attrs(self) -> dict[str, Any]:
        """The JSON form kept on the trial."""
        return {"folds": self.folds, "accuracy": self.accuracy}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> FoldZero | None:
        """The trial's record; None when it has none (not under --cv, or fold 0 not done)."""
        kept = attrs.get(FOLD_ZERO_ATTR)
        if not isinstance(kept, Mapping) or "folds" not in kept or "accuracy" not in kept:
            return None
        return cls(int(kept["folds"]), float(kept["accuracy"]))


@dataclass(frozen=True)
class RetryOf:
    """On a retry (a WAITING copy of a trial that could not finish): what it repeats and why."""

    number: int  # the attempt it repeats
    reason: str
    history: list[int]  # every earlier attempt, oldest first

    def user_attrs(self) -> dict[str, Any]:
        """Its user attributes."""
        return {RETRY_OF_ATTR: self.number, RETRY_REASON_ATTR: self.reason}

    def system_attrs(self) -> dict[str, Any]:
        """Its system attributes, named as Optuna's retry callback names them."""
        return {FAILED_TRIAL_SYSTEM_ATTR: self.history[0], RETRY_HISTORY_SYSTEM_ATTR: list(self.history)}

    @classmethod
    def from_attrs(cls, user_attrs: Mapping[str, Any], system_attrs: Mapping[str, Any]) -> RetryOf | None:
        """The trial's record; None for a first attempt."""
        if RETRY_OF_ATTR not in user_attrs:
            return None
        history = [int(n) for n in system_attrs.get(RETRY_HISTORY_SYSTEM_ATTR, [user_attrs[RETRY_OF_ATTR]])]
        return cls(int(user_attrs[RETRY_OF_ATTR]), str(user_attrs.get(RETRY_REASON_ATTR, "")), history)


@dataclass(frozen=True)
class ContinuationOf:
    """On a trial queued to go on with one the --timeout stopped before its last epoch (which stays COMPLETE, with
    the score of what it trained): the trial it continues, the whole epochs that one had trained, and the trial
    whose saved training state both use (``automl_tl.storage.trial_state``); for a cross-validated trial, the folds
    it had finished, which that state keeps (0: not cross-validated). Carried by its own retries."""

    number: int
    epochs: int
    state_of: int
    folds: int = 0

    def user_attrs(self) -> dict[str, Any]:
        """Its user attributes."""
        kept = {"trial": self.number, "epochs": self.epochs, "state_of": self.state_of}
        return {CONTINUES_ATTR: {**kept, "folds": self.folds} if self.folds else kept}

    @classmethod
    def from_attrs(cls, user_attrs: Mapping[str, Any]) -> ContinuationOf | None:
        """The trial's record; None when it continues no trial (or the record is not one)."""
        kept = user_attrs.get(CONTINUES_ATTR)
        if not isinstance(kept, Mapping):
            return None
        try:
            return cls(int(kept["trial"]), int(kept["epochs"]), int(kept["state_of"]), int(kept.get("folds", 0)))
        except (KeyError, TypeError, ValueError):
            return None


def retry_history(system_attrs: Mapping[str, Any]) -> list[int]:
    """Numbers of the earlier attempts of a trial, oldest first; empty for a first attempt."""
    return [int(n) for n in system_attrs.get(RETRY_HISTORY_SYSTEM_ATTR, [])]


@dataclass(frozen=True)
class Failure:
    """How a trial failed: the reason the user reads, and whether it was queued again (a fact, not a sentence)."""

    reason: str
    requeued: bool = False
    not_started: bool = False  # failed untrained: not even its smallest version fitted in the time left

    def to_attrs(self) -> dict[str, Any]:
        """Its user attributes (``NOT_STARTED_ATTR`` only when it is true)."""
        flag = {NOT_STARTED_ATTR: True} if self.not_started else {}
        return {FAIL_REASON_ATTR: self.reason, REQUEUED_ATTR: self.requeued, **flag}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Failure | None:
        """The trial's record; None when it did not fail."""
        if FAIL_REASON_ATTR not in attrs:
            return None
        return cls(str(attrs[FAIL_REASON_ATTR]), bool(attrs.get(REQUEUED_ATTR, False)),
                   bool(attrs.get(NOT_STARTED_ATTR, False)))


def backbone_weights_digest(adapter: FrameworkAdapter, spec: BackboneSpec) -> str | None:
    """The digest of the pretrained weights ``spec``'s trials start from (``DIGEST_FIELD``), from the adapter's
    optional ``backbone_digest(spec)``; None for a from-scratch backbone or an adapter without one. Export refuses
    to rebuild a trial onto weights with another digest."""
    if not isinstance(adapter, DigestsWeights) or not spec.pretrained:
        return None
    digest = adapter.backbone_digest(spec)
    return str(digest) if digest else None
