"""Create or resume a study, check its fingerprint, and run trials until the budget is met."""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import TrialState
from rich.console import Console
from rich.markup import escape

from . import __version__
from .artifact_mirror import S3Mirror
from .artifacts import (KEY_FIELD, PARITY_FILE, STUDY_FILE, STUDY_KEY_ATTR, check_writable, claim_folder,
                        discard_partial, finalize, new_study_key, partial_dir, remote_study_folder,
                        save_parity_images, study_folder, study_key)
from .engine import PruneTrial, TrialOutcome, effective_config, run_trial
from .errors import TrialFailure, UserError
from .interrupts import StoppedTrial, interrupt_handled, raise_if_interrupted, storage_write
from .fingerprint import FINGERPRINT_ATTR, describe_changes, make_fingerprint
from .plugins import Plugins
from .memory import release_freed_memory, resident_mb
from .progress import SearchProgress
from .pruning import DEFAULT_PRUNER, make_pruner
from .space import config_from_trial, search_space, space_json
from .admission import (BUDGET_ATTR, FINISHED_STATES, Heartbeat, PostgresAdmission, SingleProcessAdmission,
                        SqliteAdmission, study_budget, wait_times)
from .retries import MAX_RETRIES, fail_and_requeue
from .storage import DEFAULT_HEARTBEAT_S, GRACE_HEARTBEATS, is_postgres, is_sqlite, open_storage, redact, sqlite_file
from .types import ImageTable, ResizeRule, TrialConfig, rule_from_dict

INTERRUPTED = "interrupted (Ctrl-C or SIGTERM) before it finished"
KILLED = "the process running it was killed"
SETTINGS_ATTR = "search_settings"  # what a worker needs to run the study's trials the same way


@dataclass
class SearchSettings:
    """Everything a search run needs besides the data and the plugins."""

    study_name: str
    storage_url: str
    artifacts: Path  # <artifacts>/<name>: the study's own folder is the key's sub-folder (see artifacts.py)
    trials: int
    epochs: int
    image_size: int
    backbones: list[str]
    data_location: str
    seed: int = 0
    timeout: float | None = None
    pruner: str = DEFAULT_PRUNER
    truncation: bool = True
    smart_start: bool = True
    max_consecutive_failures: int = 10
    heartbeat_s: int = DEFAULT_HEARTBEAT_S
    artifacts_remote: str | None = None  # s3://bucket/prefix/<study> (the key's sub-folder inside) when artifacts are shared through S3
    max_pixels: int = 40_000_000  # images above this are skipped, which changes the manifest: workers must agree
    resize: ResizeRule = field(default_factory=ResizeRule)  # how every image becomes a square (see data/resolution.py)
    image_size_reason: str = ""  # why this size (``--image-size auto`` says what it saw)
    show_bars: bool = True  # live progress bars; workers started by `search --workers` print lines only


@dataclass
class SearchResult:
    study: optuna.Study
    ran: int = 0
    stopped_by: str = "budget"  # "budget", "timeout", "failures"
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def finished_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED_STATES))


def fail_orphaned_trials(study: optuna.Study) -> list[str]:
    """Trials left RUNNING in a SQLite study by a killed process: failed, and queued again.

    Only safe while this process holds the study's lock file (see ``SqliteAdmission``). Returns what
    was recorded for each: queued again, or given up after its last retry."""
    orphans = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return [fail_and_requeue(study, trial._trial_id, KILLED) for trial in orphans]


def make_sampler(settings: SearchSettings, trials_before: int = 0) -> optuna.samplers.BaseSampler:
    """TPE, seeded by --seed and by how many trials the study already has: a resumed study must not
    draw its first run's random start-up trials again. Workers sharing a study each get their own
    seed, or they would all propose the same parameters at the same moment, and the constant liar
    keeps them from crowding around trials that are still running."""
    if not is_postgres(settings.storage_url):
        return optuna.samplers.TPESampler(seed=(settings.seed + 7919 * trials_before) % 2**32, n_startup_trials=8)
    worker_seed = (settings.seed * 1_000_003 + os.getpid() * 7919 + time.time_ns()) % 2 ** 32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=worker_seed, n_startup_trials=8, constant_liar=True)


def open_study(settings: SearchSettings, fingerprint: dict[str, Any], *, create: bool = True) -> optuna.Study:
    """Load the named study, or create it. A different fingerprint is refused with what changed."""
    quiet_optuna()
    storage = open_storage(settings.storage_url)
    sampler = make_sampler(settings)
    pruner = make_pruner(settings.pruner, settings.epochs)
    existing = {s.study_name for s in optuna.get_all_study_summaries(storage=storage, include_best_trial=False)}
    if settings.study_name in existing:
        study = optuna.load_study(study_name=settings.study_name, storage=storage, sampler=sampler, pruner=pruner)
        study.sampler = make_sampler(settings, len(study.get_trials(deepcopy=False)))
        old = study.user_attrs.get(FINGERPRINT_ATTR)
        if old is not None:
            changes = describe_changes(old, fingerprint)
            if changes:
                raise UserError(
                    f"Study {settings.study_name!r} in {redact(settings.storage_url)} was created with a different "
                    f"setup, so it cannot be resumed or joined: {'; '.join(changes)}. Use the original data and "
                    f"settings, or start a new study with --study NEW_NAME."
                )
        # Every worker must judge staleness by the heartbeat the study was created with.
        settings.heartbeat_s = int(study.user_attrs.get(SETTINGS_ATTR, {}).get("heartbeat_s", settings.heartbeat_s))
        return study
    if not create:
        raise UserError(f"No study named {settings.study_name!r} in {redact(settings.storage_url)}.")
    study = optuna.create_study(
        study_name=settings.study_name, storage=storage, sampler=sampler, pruner=pruner, direction="maximize"
    )
    study.set_user_attr(FINGERPRINT_ATTR, fingerprint)
    study.set_user_attr(STUDY_KEY_ATTR, new_study_key())
    return study


def study_rule_of(attrs: dict[str, Any]) -> ResizeRule:
    """The resize rule a study's attributes record; a study from before rules stretched its images."""
    recorded = attrs.get("resize") or attrs.get(SETTINGS_ATTR, {}).get("resize")
    return rule_from_dict(recorded) if isinstance(recorded, dict) else ResizeRule("stretch")


def recorded_input(storage_url: str, study_name: str) -> tuple[int, ResizeRule, int] | None:
    """The size, rule and epochs an existing study trains with, so that ``auto`` resumes it as it
    began; None when there is no such study yet (nothing is created)."""
    quiet_optuna()
    if is_sqlite(storage_url):
        path = sqlite_file(storage_url)
        if path is None or not path.is_file():
            return None
    storage = open_storage(storage_url)
    names = {s.study_name for s in optuna.get_all_study_summaries(storage=storage, include_best_trial=False)}
    if study_name not in names:
        return None
    attrs = optuna.load_study(study_name=study_name, storage=storage).user_attrs
    if "image_size" not in attrs or "epochs" not in attrs:
        return None
    return int(attrs["image_size"]), study_rule_of(attrs), int(attrs["epochs"])


def record_study_attrs(study: optuna.Study, settings: SearchSettings, table: ImageTable) -> None:
    if STUDY_KEY_ATTR not in study.user_attrs:  # made by an earlier version: its trials from now on are keyed
        study.set_user_attr(STUDY_KEY_ATTR, new_study_key())
    if SETTINGS_ATTR not in study.user_attrs:
        study.set_user_attr(SETTINGS_ATTR, {
            "backbones": list(settings.backbones), "epochs": settings.epochs, "image_size": settings.image_size,
            "seed": settings.seed, "pruner": settings.pruner, "truncation": settings.truncation,
            "heartbeat_s": settings.heartbeat_s, "max_pixels": settings.max_pixels,
            "resize": settings.resize.to_dict(), "image_size_reason": settings.image_size_reason,
        })
    if "class_names" in study.user_attrs:
        return
    counts = {name: int(len(idx)) for name, idx in table.splits.items()}
    study.set_user_attr("class_names", list(table.class_names))
    study.set_user_attr("data_location", settings.data_location)
    study.set_user_attr("split_counts", counts)
    study.set_user_attr("epochs", settings.epochs)
    study.set_user_attr("image_size", settings.image_size)
    study.set_user_attr("image_size_reason", settings.image_size_reason)
    study.set_user_attr("resize", settings.resize.to_dict())
    study.set_user_attr("artifacts", settings.artifacts_remote or str(settings.artifacts))
    study.set_user_attr("automl_tl_version", __version__)


def outcome_attrs(outcome: TrialOutcome) -> dict[str, Any]:
    return {
        "val_accuracy": outcome.val_accuracy,
        "val_balanced_accuracy": outcome.val_balanced_accuracy,
        "test_accuracy": outcome.test_accuracy,
        "test_balanced_accuracy": outcome.test_balanced_accuracy,
        "best_epoch": outcome.best_epoch,
        "best_phase": outcome.best_phase.value,
        "seconds": round(outcome.seconds, 2),
        "rss_mb": round(resident_mb(), 1),  # after the trial: growth from trial to trial is a leak
    }


def describe_config(config: TrialConfig, n_blocks: int, pretrained: bool = True) -> str:
    frozen, depth = config.frozen_blocks(n_blocks), config.depth(n_blocks)
    cut = f", cut at {depth}/{n_blocks}" if depth < n_blocks else ""
    if not pretrained:
        tuning = "from scratch"
    elif config.finetunes(n_blocks):
        tuning = f"fine-tune {depth - frozen}/{depth} blocks from epoch {config.switch_epoch + 1}"
    else:
        tuning = "head only"
    return f"{config.backbone}{cut}, head {config.head_units or 'linear'}, lr {config.lr:.1e}, {tuning}"


class TrialRunner:
    """Runs one asked trial through the engine and tells the study how it ended."""

    def __init__(self, study: optuna.Study, settings: SearchSettings, plugins: Plugins, table: ImageTable,
                 space: dict[str, Any], progress: SearchProgress | None) -> None:
        self.study, self.settings, self.plugins, self.table = study, settings, plugins, table
        self.space, self.progress = space, progress
        self.key = study_key(study)
        self.folder = study_folder(settings.artifacts, self.key)
        remote = remote_study_folder(settings.artifacts_remote, self.key)
        self.mirror = S3Mirror(remote) if remote else None

    def _report(self, number: int, state: str, value: float | None, text: str) -> None:
        if self.progress is not None:
            self.progress.trial_finished(number, state, value, text)

    def give_back(self, trial: optuna.Trial, reason: str) -> StoppedTrial:
        """Fail a trial that was stopped from outside and queue it again, so its slot is not lost.
        Safe to call twice; a second Ctrl-C waits until it is done. Returns the interrupt to raise,
        which says whether the trial was queued again."""
        interrupt_handled()
        with storage_write():
            discard_partial(self.folder, trial.number)
            recorded = fail_and_requeue(self.study, trial._trial_id, reason)
        return StoppedTrial(f"Trial {trial.number} was {recorded}.")

    def run(self, trial: optuna.Trial) -> TrialState:
        """Run an admitted (already asked) trial to its end and tell the study.

        If another worker found this trial's heartbeat stale (a long pause, a database blip), it
        has failed the trial and queued a retry: this worker's result is dropped, and it goes on."""
        try:
            return self._run(trial)
        except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError, ValueError):
            if not self.study._storage.get_trial(trial._trial_id).state.is_finished():
                raise
            discard_partial(self.folder, trial.number)
            self._report(trial.number, "FAIL", None, f"trial {trial.number:>3}  [red]taken over[/]: another worker "
                         f"found its heartbeat stale and queued it again")
            return TrialState.FAIL

    def _run(self, trial: optuna.Trial) -> TrialState:
        number = trial.number
        try:
            config = config_from_trial(trial, self.space, epochs=self.settings.epochs,
                                       image_size=self.settings.image_size, seed=self.settings.seed)
            spec = self.plugins.backbone(config.backbone)
            config = effective_config(spec, config)
            adapter = self.plugins.framework(spec.framework)
            trial.set_user_attr("framework", spec.framework)
            trial.set_user_attr("pretrained", spec.pretrained)
            trial.set_user_attr("frozen_blocks", config.frozen_blocks(len(spec.blocks)))
            trial.set_user_attr("depth", config.depth(len(spec.blocks)))
            trial.set_user_attr("blocks", len(spec.blocks))
            if self.progress is not None:
                self.progress.trial_started(number, config)

            def on_epoch(result: Any) -> None:
                raise_if_interrupted()
                if self.progress is not None:
                    self.progress.epoch_done(number, config, result)

            def should_prune(result: Any) -> bool:
                trial.report(result.val_accuracy, step=result.epoch + 1)  # steps are epochs completed
                return trial.should_prune()

            try:
                outcome = run_trial(adapter, spec, config, self.table, on_epoch, should_prune,
                                    save_to=partial_dir(self.folder, number))
            finally:
                release_freed_memory()  # resident memory must not grow from trial to trial
        except PruneTrial as pruned:
            discard_partial(self.folder, number)
            best = max(r.val_accuracy for r in pruned.history)
            # The traceback holds the trial's frames, and with them its model and activations: drop it
            # before measuring, or a pruned trial's memory would be counted against the next one.
            pruned.__traceback__ = None
            release_freed_memory()
            with storage_write():
                trial.set_user_attr("val_accuracy", best)
                trial.set_user_attr("rss_mb", round(resident_mb(), 1))
                self.study.tell(trial, state=TrialState.PRUNED)
            self._report(number, "PRUNED", None, f"trial {number:>3}  [yellow]pruned[/] after epoch {pruned.history[-1].epoch + 1}  (val acc {best:.4f})")
            return TrialState.PRUNED
        except StoppedTrial:
            raise
        except KeyboardInterrupt:
            raise self.give_back(trial, INTERRUPTED) from None
        except Exception as exc:
            discard_partial(self.folder, number)
            reason = str(exc) if isinstance(exc, (TrialFailure, UserError)) else f"{type(exc).__name__}: {exc}"
            with storage_write():
                trial.set_user_attr("fail_reason", reason[:2000])
                self.study.tell(trial, state=TrialState.FAIL)
            self._report(number, "FAIL", None, f"trial {number:>3}  [red]failed[/]: {escape(reason[:300])}")
            return TrialState.FAIL
        attrs = outcome_attrs(outcome)
        meta = {
            "study": self.settings.study_name,
            KEY_FIELD: self.key,
            "trial": number,
            "params": dict(trial.params),
            "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
            "framework": spec.framework,
            "backbone": spec.name,
            "pretrained": spec.pretrained,
            "class_names": list(self.table.class_names),
            "preprocessing": spec.preprocessing(self.settings.image_size, self.settings.resize).to_dict(),
            "metrics": attrs,
            "automl_tl_version": __version__,
        }
        with storage_write():  # an interrupt here waits until the trial is told COMPLETE
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
            final = finalize(self.folder, number, meta)
            if self.mirror is not None:
                try:
                    self.mirror.push_folder(final, final.name)
                except Exception as exc:  # a completed trial must have its artifact where every worker looks
                    trial.set_user_attr("fail_reason", f"could not upload its artifacts to {self.mirror.url}: {exc}"[:2000])
                    self.study.tell(trial, state=TrialState.FAIL)
                    self._report(number, "FAIL", None, f"trial {number:>3}  [red]failed[/]: artifact upload: {escape(str(exc))}")
                    return TrialState.FAIL
            self.study.tell(trial, outcome.val_accuracy)

        n_blocks = len(spec.blocks)
        self._report(number, "COMPLETE", outcome.val_accuracy,
                     f"trial {number:>3}  val acc [bold]{outcome.val_accuracy:.4f}[/] (epoch {outcome.best_epoch + 1}, "
                     f"{outcome.best_phase.value})  test {outcome.test_accuracy:.4f}  {outcome.seconds:5.1f}s  "
                     f"{escape(describe_config(config, n_blocks, spec.pretrained))}")
        return TrialState.COMPLETE


def enqueue_smart_start(study: optuna.Study, settings: SearchSettings, plugins: Plugins, table: ImageTable,
                        space: dict[str, Any], console: Console) -> None:
    """Profile the data once and enqueue the first trials of a new study (see smart_start.py)."""
    from .smart_start import PROFILE_ATTR, REASON_ATTR, profile_attrs, profile_data, start_trials

    pretrained = [name for name in settings.backbones if plugins.backbone(name).pretrained]
    if not pretrained:
        console.print("Smart start skipped: no pretrained backbone to profile the data with.")
        return
    spec = plugins.backbone(pretrained[0])
    with console.status(f"Profiling the data: frozen {escape(spec.name)} features and a linear probe (cached for the trials)..."):
        profile = profile_data(plugins.framework(spec.framework), spec, table, space)
    limit = min(4, max(1, settings.trials // 4))
    trials = start_trials(profile, space, settings.epochs, settings.backbones, limit)
    with storage_write():
        study.set_user_attr(PROFILE_ATTR, profile_attrs(profile))
        for trial in trials:
            study.enqueue_trial(trial.params, user_attrs={REASON_ATTR: trial.reason})
    console.print(f"[bold]Smart start[/] {escape(profile.describe())}. The first {len(trials)} trial(s) follow from that "
                  f"(`automl-tl show {settings.study_name}` says why).")


def make_admission(settings: SearchSettings) -> SingleProcessAdmission:
    """How this process takes trial slots (see admission.py). Only PostgreSQL is shared by workers."""
    if is_postgres(settings.storage_url):
        return PostgresAdmission(settings.storage_url, settings.study_name)
    path = sqlite_file(settings.storage_url) if is_sqlite(settings.storage_url) else None
    return SqliteAdmission(path) if path is not None else SingleProcessAdmission()


def prepare_study(settings: SearchSettings, plugins: Plugins, table: ImageTable, console: Console) -> tuple[optuna.Study, dict[str, Any]]:
    """Create or resume the study, record what workers need, set its budget, and enqueue smart start.

    This runs once, before any worker starts trials; the budget is the study's total of
    finished (COMPLETE + PRUNED) trials, so raising it by d on resume adds exactly d trials."""
    space = search_space(settings.backbones, settings.epochs, settings.truncation)
    fingerprint = make_fingerprint(table.manifest_hash, space_json(space), settings.epochs, settings.image_size,
                                   settings.resize.token())
    check_writable(settings.artifacts)  # before the study exists: an unwritable folder leaves nothing behind
    study = open_study(settings, fingerprint)
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
    if settings.smart_start and not study.get_trials(deepcopy=False):
        enqueue_smart_start(study, settings, plugins, table, space, console)
    return study, space


def run_search(settings: SearchSettings, plugins: Plugins, table: ImageTable, console: Console,
               on_ready: Callable[[optuna.Study, int], None] | None = None) -> SearchResult:
    """Continue (or start) the study until it has ``settings.trials`` finished trials."""
    admission = make_admission(settings)  # first: a second process on a SQLite study is refused before any write
    try:
        study, space = prepare_study(settings, plugins, table, console)
        return work_on_study(study, settings, plugins, table, space, console, admission, on_ready)
    finally:
        admission.close()


def work_on_study(study: optuna.Study, settings: SearchSettings, plugins: Plugins, table: ImageTable,
                  space: dict[str, Any], console: Console, admission: SingleProcessAdmission,
                  on_ready: Callable[[optuna.Study, int], None] | None = None) -> SearchResult:
    """Take trials from the study, as one of possibly many workers, until its budget is met."""
    result = SearchResult(study=study)
    key = study_key(study)
    claim_folder(study_folder(settings.artifacts, key), settings.study_name, key)  # a worker's own folder, too
    if not isinstance(admission, PostgresAdmission):  # one process per study: what is RUNNING was left by a killed one
        orphans = fail_orphaned_trials(study)
        if orphans:
            requeued = sum("; queued again" in reason for reason in orphans)
            given_up = f"; {len(orphans) - requeued} had been retried {MAX_RETRIES} times and were given up" \
                if requeued < len(orphans) else ""
            result.notes.append(f"{len(orphans)} trial(s) left running by a killed process were failed; "
                                f"{requeued} queued again{given_up}.")
    budget = study_budget(study, settings.trials)
    finished = finished_count(study)
    if on_ready is not None:
        on_ready(study, finished)
    if finished >= budget:
        result.notes.append(
            f"Study {settings.study_name!r} already has {finished} finished trials (budget {budget}); "
            f"nothing to run. Raise --trials to add more."
        )
        return result
    started = time.perf_counter()
    deadline = started + settings.timeout if settings.timeout else None
    best = study.best_value if any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)) else None
    failures_in_a_row = 0
    poll_s = max(1.0, settings.heartbeat_s / 2)  # how often to look again while every slot is taken
    pauses = wait_times(poll_s)
    with SearchProgress(console, budget, finished, best, bars=settings.show_bars) as progress:
        runner = TrialRunner(study, settings, plugins, table, space, progress)
        while True:
            raise_if_interrupted()
            if deadline is not None and time.perf_counter() >= deadline:
                result.stopped_by = "timeout"
                break
            budget = study_budget(study, settings.trials)
            trial = None
            try:
                with storage_write():
                    slots, trial = admission.admit(study, budget, GRACE_HEARTBEATS * settings.heartbeat_s)
            except KeyboardInterrupt:  # arrived during admission: hand the trial back before stopping
                if trial is not None:
                    raise runner.give_back(trial, INTERRUPTED) from None
                raise
            progress.study_finished(slots.finished, budget)
            if slots.done:
                break
            if trial is None:  # every remaining slot is held by a running trial of another worker
                time.sleep(next(pauses))
                continue
            pauses = wait_times(poll_s)
            try:
                state = run_admitted(runner, trial, admission, settings.heartbeat_s)
            except StoppedTrial:
                raise
            except KeyboardInterrupt:  # also one that arrived before the trial's own handler was in place
                raise runner.give_back(trial, INTERRUPTED) from None
            result.ran += 1
            if state == TrialState.FAIL:
                failures_in_a_row += 1
                if failures_in_a_row >= settings.max_consecutive_failures:
                    result.stopped_by = "failures"
                    break
            else:
                failures_in_a_row = 0
    result.seconds = time.perf_counter() - started
    return result


def run_admitted(runner: TrialRunner, trial: optuna.Trial, admission: SingleProcessAdmission, heartbeat_s: int) -> TrialState:
    """Run one trial; on a shared database its heartbeat tells other workers it is alive."""
    if not isinstance(admission, PostgresAdmission):
        return runner.run(trial)
    storage, trial_id = runner.study._storage, trial._trial_id
    with Heartbeat(lambda: storage.record_heartbeat(trial_id), heartbeat_s):
        return runner.run(trial)
