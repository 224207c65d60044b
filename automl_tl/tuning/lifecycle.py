"""A study's life: create or resume it, check its fingerprint, record what workers need, and enqueue smart start."""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

import optuna
from optuna.trial import TrialState
from rich.console import Console

from automl_tl import __version__
from automl_tl.errors import UserError
from automl_tl.plugin.manager import Plugins
from automl_tl.runtime.interrupts import storage_write
from automl_tl.runtime.shown_text import console_text
from automl_tl.runtime.time_ledger import PROFILING, charged
from automl_tl.storage.artifacts import (
    PARITY_FILE,
    STUDY_FILE,
    check_writable,
    claim_folder,
    new_study_key,
    remote_study_folder,
    save_parity_images,
    study_folder,
    study_key,
)
from automl_tl.storage.mirror import S3Mirror
from automl_tl.storage.stored_attrs import quiet_optuna
from automl_tl.storage.urls import is_postgres, open_storage, redact
from automl_tl.study_record import (
    BUDGET_ATTR,
    DATA_INVENTORY_ATTR,
    ENQUEUED_PARAMS_SYSTEM_ATTR,
    FINGERPRINT_ATTR,
    FORMAT_ATTR,
    PROFILE_ATTR,
    SETTINGS_ATTR,
    SMART_START_ATTR,
    STUDY_FORMAT,
    STUDY_KEY_ATTR,
    WARM_START_ATTR,
    Failure,
    StudyData,
    migrated,
    settings_with_limit,
    stored_settings,
)
from automl_tl.tuning.cost_aware_sampler import CostAwareTPESampler, SamplingCost
from automl_tl.tuning.data_changes import data_inventory, describe_data_change
from automl_tl.tuning.fingerprint import DATA_CHANGED, describe_changes, make_fingerprint
from automl_tl.tuning.pruning import make_pruner
from automl_tl.tuning.retries import fail_and_requeue
from automl_tl.tuning.settings import SearchSettings
from automl_tl.tuning.space import search_space, shapes_from, space_json
from automl_tl.tuning.warm_start import WarmRecipe, enqueue_warm_start, warm_start_recipes, warm_start_storage
from automl_tl.types import ImageTable

KILLED = "the process running it was killed"


def fail_orphaned_trials(study: optuna.Study) -> list[Failure]:
    """Trials left RUNNING in a SQLite study by a killed process: failed, and queued again.

    Only safe while this process holds the study's lock file (see ``SqliteAdmission``). Returns what
    was recorded for each: queued again, or given up after its last retry."""
    orphans = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return [fail_and_requeue(study, trial._trial_id, KILLED) for trial in orphans]


def make_sampler(settings: SearchSettings, trials_before: int = 0,
                 cost: SamplingCost | None = None) -> optuna.samplers.BaseSampler:
    """TPE, seeded by --seed and by how many trials the study already has: a resumed study must not
    draw its first run's random start-up trials again. Workers sharing a study each get their own
    seed, or they would all propose the same parameters at the same moment, and the constant liar
    keeps them from crowding around trials that are still running. With ``cost``, TPE weighs each
    candidate by its predicted seconds (``CostAwareTPESampler``: expected improvement per second)."""

    def tpe(**options: Any) -> optuna.samplers.TPESampler:
        return CostAwareTPESampler(cost, **options) if cost is not None else optuna.samplers.TPESampler(**options)

    if not is_postgres(settings.storage_url):
        return tpe(seed=(settings.seed + 7919 * trials_before) % 2**32, n_startup_trials=8)
    worker_seed = (settings.seed * 1_000_003 + os.getpid() * 7919 + time.time_ns()) % 2 ** 32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return tpe(seed=worker_seed, n_startup_trials=8, constant_liar=True)


def open_study(settings: SearchSettings, fingerprint: dict[str, Any], *, create: bool = True,
               cost: SamplingCost | None = None, table: ImageTable | None = None) -> optuna.Study:
    """Load the named study, or create it. A different fingerprint is refused with what changed (with ``table``,
    the images found now: which classes and images changed). With ``cost``, its sampler weighs candidates by
    their predicted seconds (see ``make_sampler``)."""
    quiet_optuna()
    storage = open_storage(settings.storage_url)
    sampler = make_sampler(settings, cost=cost)
    pruner = make_pruner(settings.pruner, settings.epochs)
    existing = {s.study_name for s in optuna.get_all_study_summaries(storage=storage, include_best_trial=False)}
    if settings.study_name in existing:
        study = optuna.load_study(study_name=settings.study_name, storage=storage, sampler=sampler, pruner=pruner)
        study.sampler = make_sampler(settings, len(study.get_trials(deepcopy=False)), cost=cost)
        attrs = migrated(settings.study_name, study.user_attrs)  # a newer format is refused here
        old = attrs.get(FINGERPRINT_ATTR)
        if old is not None:
            changes = describe_changes(old, fingerprint)
            if changes:
                changes, hint = data_changes_told(changes, attrs, table, settings.study_name)
                raise UserError(
                    f"Study {settings.study_name!r} in {redact(settings.storage_url)} was created with a different "
                    f"setup, so it cannot be resumed or joined: {'; '.join(changes)}. Use the original data and "
                    f"settings, or start a new study with --study NEW_NAME{hint}."
                )
        # Every worker must judge staleness by the heartbeat the study was created with.
        recorded = stored_settings(attrs)
        settings.heartbeat_s = recorded.heartbeat_s if recorded is not None else settings.heartbeat_s
        return study
    if not create:
        raise UserError(f"No study named {settings.study_name!r} in {redact(settings.storage_url)}.")
    study = optuna.create_study(
        study_name=settings.study_name, storage=storage, sampler=sampler, pruner=pruner, direction="maximize"
    )
    study.set_user_attr(FORMAT_ATTR, STUDY_FORMAT)
    study.set_user_attr(FINGERPRINT_ATTR, fingerprint)
    study.set_user_attr(STUDY_KEY_ATTR, new_study_key())
    return study


def data_changes_told(changes: list[str], attrs: dict[str, Any], table: ImageTable | None,
                      name: str) -> tuple[list[str], str]:
    """A refusal's ``changes`` with the data's line made exact where the study kept an inventory (which classes
    and how many images changed, ``describe_data_change``), and the hint that goes with changed data: a new
    study can begin from this one's best recipes."""
    if not changes or not changes[0].startswith(DATA_CHANGED):
        return changes, ""
    exact = describe_data_change(attrs.get(DATA_INVENTORY_ATTR), table) if table is not None else None
    return [exact or changes[0], *changes[1:]], f" --warm-start {name} (it begins with this study's best recipes)"


def record_study_attrs(study: optuna.Study, settings: SearchSettings, table: ImageTable) -> None:
    """What workers, resumes and readers need, recorded on the study: its settings (this run's latency limit
    among them), and, once, its data. An older study is written in today's format first (``migrated``), and
    given an artifact key if it was made before keys: its trials from now on are keyed."""
    current = migrated(study.study_name, study.user_attrs)
    current.setdefault(STUDY_KEY_ATTR, new_study_key())
    current.setdefault(SETTINGS_ATTR, settings.stored().to_attrs())
    limited = settings_with_limit(current, settings.max_latency_ms)  # this run's limit, for the workers that join it
    if limited is not None:
        current[SETTINGS_ATTR] = limited
    current.setdefault(DATA_INVENTORY_ATTR, data_inventory(table))  # to say later what changed in the data
    if StudyData.from_attrs(current) is None:
        counts = {name: int(len(idx)) for name, idx in table.splits.items()}
        current.update(StudyData(list(table.class_names), settings.data_location, counts, settings.epochs,
                                 settings.image_size, settings.image_size_reason, settings.resize,
                                 settings.artifacts_remote or str(settings.artifacts), __version__).to_attrs())
    before = study.user_attrs
    for key, value in current.items():
        if before.get(key) != value or key not in before:
            study.set_user_attr(key, value)


def enqueue_smart_start(study: optuna.Study, settings: SearchSettings, plugins: Plugins, table: ImageTable,
                        space: dict[str, Any], console: Console) -> None:
    """Profile the data once and enqueue the first trials of a new study (see smart_start.py)."""
    from automl_tl.tuning.smart_start import profile_attrs, profile_data, start_trials

    pretrained = [name for name in settings.backbones if plugins.backbone(name).pretrained]
    if not pretrained:
        console.print("Smart start skipped: no pretrained backbone to profile the data with.")
        return
    spec = plugins.backbone(pretrained[0])
    with console.status(f"Profiling the data: frozen {console_text(spec.name)} features and a linear probe (cached for the trials)..."):
        with charged(PROFILING):  # the search's time summary: its cache passes inside are counted as those
            profile = profile_data(plugins.framework(spec.framework), spec, table, space)
    limit = 4 + len(pretrained) - 1  # the plans, and the bottleneck recipe on each other pretrained backbone
    limit = limit if settings.trials is None else min(limit, max(1, settings.trials // 4))
    trials = start_trials(profile, space, settings.epochs, settings.backbones, limit, shapes_from(plugins.backbone),
                          pretrained)
    # --warm-start's recipes are not run twice (a waiting trial's parameters are in an Optuna system attribute)
    queued = [t.params or t.system_attrs.get(ENQUEUED_PARAMS_SYSTEM_ATTR, {}) for t in study.get_trials(deepcopy=False)]
    fresh = [trial for trial in trials if trial.params not in queued]
    with storage_write():
        study.set_user_attr(PROFILE_ATTR, profile_attrs(profile))
        for trial in fresh:
            study.enqueue_trial(trial.params, user_attrs={SMART_START_ATTR: trial.reason})
    already = f"; {len(trials) - len(fresh)} more it planned were queued already" if len(fresh) < len(trials) else ""
    console.print(f"[bold]Smart start[/] {console_text(profile.describe())}. The first {len(fresh)} trial(s) follow from that "
                  f"(`automl-tl show {settings.study_name}` says why){already}.")


def prepare_study(settings: SearchSettings, plugins: Plugins, table: ImageTable, console: Console,
                  cost: SamplingCost | None = None) -> tuple[optuna.Study, dict[str, Any]]:
    """Create or resume the study, record what workers need, set its budget, and enqueue smart start. With
    ``cost``, the study's sampler is cost-aware (``make_sampler``).

    This runs once, before any worker starts trials; the budget is the study's total of
    finished (COMPLETE + PRUNED) trials, so raising it by d on resume adds exactly d trials."""
    space = search_space(settings.backbones, settings.epochs, settings.truncation)
    fingerprint = make_fingerprint(table.manifest_hash, space_json(space), settings.epochs, settings.image_size,
                                   settings.resize.token(), settings.cv_folds)
    check_writable(settings.artifacts)  # before the study exists: an unwritable folder leaves nothing behind
    warm = warm_recipes(settings, space)  # before the study exists too: a missing --warm-start study leaves nothing behind
    study = open_study(settings, fingerprint, cost=cost, table=table)
    with storage_write():
        record_study_attrs(study, settings, table)
        study.set_user_attr(BUDGET_ATTR, settings.trials)
    key = study_key(study)
    folder = study_folder(settings.artifacts, key)
    claim_folder(folder, settings.study_name, key)  # before any trial: a folder that cannot be written fails here
    save_parity_images(folder, table)
    remote = remote_study_folder(settings.artifacts_remote, key)
    if remote:
        mirror = S3Mirror(remote)
        for name in (STUDY_FILE, PARITY_FILE):
            mirror.push_file(folder / name, name)
    fresh = not study.get_trials(deepcopy=False)
    if warm is not None and not any(WARM_START_ATTR in t.user_attrs for t in study.get_trials(deepcopy=False)):
        for line in enqueue_warm_start(study, str(settings.warm_start), warm):
            console.print(console_text(line), highlight=False)
    if settings.smart_start and fresh:
        enqueue_smart_start(study, settings, plugins, table, space, console)
    return study, space


def warm_recipes(settings: SearchSettings, space: dict[str, Any]) -> list[WarmRecipe] | None:
    """The recipes ``--warm-start`` queues (None without it); a study that is not there is refused here."""
    if settings.warm_start is None:
        return None
    url = warm_start_storage(settings.study_name, settings.storage_url, settings.warm_start)
    return warm_start_recipes(url, settings.warm_start, settings.study_name if url == settings.storage_url else "", space)
