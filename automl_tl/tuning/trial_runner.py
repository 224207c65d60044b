"""Run one admitted trial through the training engine and tell Optuna how it ended."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from automl_tl import __version__
from automl_tl.errors import TrialFailure, UserError
from automl_tl.plugin.manager import Plugins
from automl_tl.runtime.deadline import Deadline, DeadlineReached
from automl_tl.runtime.interrupts import StoppedTrial, interrupt_handled, raise_if_interrupted, storage_write
from automl_tl.runtime.memory import release_freed_memory, resident_mb
from automl_tl.runtime.shown_text import console_text
from automl_tl.runtime.time_ledger import LATENCY, STUDY_WRITES, charged
from automl_tl.storage.artifacts import KEY_FIELD, discard_partial, finalize, partial_dir, remote_study_folder, study_folder, study_key
from automl_tl.storage.mirror import S3Mirror
from automl_tl.storage.predictions import SplitPredictions, save_predictions
from automl_tl.storage.trial_state import folds_resumed, resumed, saved_state
from automl_tl.study_record import (
    BLOCKS_ATTR,
    DEPTH_ATTR,
    DIGEST_FIELD,
    FAIL_REASON_ATTR,
    FRAMEWORK_ATTR,
    FROZEN_BLOCKS_ATTR,
    KIND_ATTR,
    PRETRAINED_ATTR,
    RSS_MB_ATTR,
    SECONDS_ATTR,
    TOO_SLOW_ATTR,
    VAL_ACCURACY_ATTR,
    Failure,
    backbone_weights_digest,
)
from automl_tl.training.cross_validation import run_trial_scored
from automl_tl.training.engine import PruneTrial, TrialOutcome, effective_config, run_trial
from automl_tl.tuning.continuation import continued_after, planned_resume, priced_attrs, queue_continuation, resumed_note, stopped_note
from automl_tl.tuning.cost import FitPlan, trial_kind
from automl_tl.tuning.latency import format_ms, record_latency, too_slow_reason
from automl_tl.tuning.outcome_record import outcome_attrs
from automl_tl.tuning.progress import SearchProgress
from automl_tl.tuning.retries import MAX_RETRIES, NOT_STARTED, can_requeue, fail_and_requeue, requeue
from automl_tl.tuning.search_costs import SearchCosts
from automl_tl.tuning.settings import SearchSettings
from automl_tl.tuning.space import config_from_trial, shapes_from
from automl_tl.tuning.trial_lines import describe_config, pruned_where, shrunk_note
from automl_tl.tuning.trial_pruning import TrialPruning
from automl_tl.types import BackboneSpec, FrameworkAdapter, ImageTable, TrialConfig

INTERRUPTED = "interrupted (Ctrl-C or SIGTERM) before it finished"
TIMED_OUT = "stopped by --timeout before a whole epoch (or, under --cv, its first fold) finished"
LATENCY_RESERVE_S = 10.0  # no latency measured for a complete trial this close to the deadline


@dataclass(frozen=True)
class PreparedTrial:
    """A trial ready to train: its backbone and adapter, its plan for the time left, the digest of the
    pretrained weights it starts from, and the pruner's view of it."""

    spec: BackboneSpec
    adapter: FrameworkAdapter
    plan: FitPlan
    digest: str | None
    pruning: TrialPruning


class TrialRunner:
    """Runs one asked trial through the engine and tells the study how it ended."""

    def __init__(self, study: optuna.Study, settings: SearchSettings, plugins: Plugins, table: ImageTable,
                 space: dict[str, Any], progress: SearchProgress | None, deadline: Deadline | None = None,
                 costs: SearchCosts | None = None) -> None:
        self.study, self.settings, self.plugins, self.table = study, settings, plugins, table
        self.space, self.progress, self.deadline, self.costs = space, progress, deadline, costs
        self.not_started: str | None = None  # why the last trial was not started: nothing of it fit the time left
        self.resume_waits: str | None = None  # why, for one with a saved state: not even its next epoch fit
        self.given_back: list[int] = []  # ids of the trials not started, queued again when the run ends
        self.key = study_key(study)
        self.folder = study_folder(settings.artifacts, self.key)
        remote = remote_study_folder(settings.artifacts_remote, self.key)
        self.mirror = S3Mirror(remote) if remote else None

    def __enter__(self) -> TrialRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.requeue_given_back()

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
        return StoppedTrial(f"Trial {trial.number} was {recorded.reason}.")

    def timed_out(self, trial: optuna.Trial, seconds: float) -> TrialState:
        """A trial the deadline stopped before it had a score: failed and queued again, as an interrupted
        one is, so the next run starts with it; the search then ends normally."""
        with storage_write(), charged(STUDY_WRITES):
            discard_partial(self.folder, trial.number)
            trial.set_user_attr(SECONDS_ATTR, round(seconds, 2))
            recorded = fail_and_requeue(self.study, trial._trial_id, TIMED_OUT)
        # ``recorded`` begins with TIMED_OUT ("stopped by --timeout before ..."): said once, not twice
        self._report(trial.number, "FAIL", None, f"trial {trial.number:>3}  [yellow]{console_text(recorded.reason)}[/]")
        return TrialState.FAIL

    def _plan(self, trial: optuna.Trial, spec: BackboneSpec, config: TrialConfig) -> FitPlan | None:
        """What to run of the trial: as asked, or shrunk to fit the time left (``SearchCosts.plan``), its
        prediction and any cut recorded on it; None when not even its smallest version fits."""
        if self.costs is None:
            return FitPlan(config, self.settings.cv_folds, None)
        state = saved_state(self.study, self.folder, trial, config, self.settings.cv_folds)  # a retry, a continuation
        plan, share, waits = planned_resume(self.costs, state, spec, config)
        for key, value in priced_attrs(self.costs.attrs(spec, plan) if plan is not None else {}, share).items():
            trial.set_user_attr(key, value)
        self.resume_waits = waits or self.resume_waits
        return plan

    def _not_started(self, trial: optuna.Trial, spec: BackboneSpec, config: TrialConfig) -> TrialState:
        """A trial that cannot finish in the time left, however shrunk: failed untrained (``not_started`` says
        why) and queued again when this run ends (``requeue_given_back``), so that the next run starts with it
        while this one goes on with other trials."""
        why = self.resume_waits or (self.costs.too_big(spec, config) if self.costs is not None else "")
        with storage_write(), charged(STUDY_WRITES):
            trial.set_user_attr(KIND_ATTR, trial_kind(spec, config))
            again = can_requeue(self.study._storage.get_trial(trial._trial_id))  # the fact, before it is told
            then = ("queued again for the next run" if again else
                    f"not queued again: these parameters were tried {MAX_RETRIES} times")
            failure = Failure(f"{NOT_STARTED}: {why}; {then}", requeued=again, not_started=True)
            for key, value in failure.to_attrs().items():
                trial.set_user_attr(key, value)
            self.study.tell(trial, state=TrialState.FAIL)
        self.not_started = why
        self.given_back.append(trial._trial_id)
        self._report(trial.number, "FAIL", None, f"trial {trial.number:>3}  [yellow]{NOT_STARTED}[/]: {console_text(why)}")
        return TrialState.FAIL

    def requeue_given_back(self) -> None:
        """Queue again the trials this run did not start, for the next run (not while this one goes on: it would
        take them first, and they would not fit again)."""
        with storage_write():
            for trial_id in self.given_back:
                requeue(self.study, self.study._storage.get_trial(trial_id), NOT_STARTED)
        self.given_back.clear()

    def _fold_progress(self, number: int, folds: int) -> dict[str, Any]:
        """``run_trial_scored``'s fold and refit hooks, told to the progress display."""
        progress = self.progress
        if progress is None:
            return {}
        return {"on_fold": lambda fold: progress.fold_started(number, fold, folds),
                "on_refit": lambda epochs: progress.refit_started(number, epochs)}

    def _time_for_latency(self) -> bool:
        """Whether a complete trial's latency may still be measured (an ONNX export and timed runs, a few
        seconds once per architecture): not when the deadline is closer than ``LATENCY_RESERVE_S``."""
        return self.deadline is None or self.deadline.remaining() > LATENCY_RESERVE_S

    def _too_slow(self, trial: optuna.Trial, latency_ms: float, limit_ms: float, described: str) -> TrialState:
        """End a trial over --max-latency-ms before it trains: PRUNED (never ranked) with its latency constraint
        above 0 (see record_latency), so TPE learns that the region is infeasible."""
        with storage_write(), charged(STUDY_WRITES):
            trial.set_user_attr(TOO_SLOW_ATTR, too_slow_reason(latency_ms, limit_ms))
            self.study.tell(trial, state=TrialState.PRUNED)
        self._report(trial.number, "PRUNED", None, f"trial {trial.number:>3}  [yellow]too slow[/]: {format_ms(latency_ms)} ms > "
                     f"limit {limit_ms:g} ms, not trained  {console_text(described)}")
        return TrialState.PRUNED

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
        """``run``'s steps: prepare the trial, train it, and record how it ended."""
        started = time.perf_counter()
        self.not_started = self.resume_waits = None
        plan: FitPlan | None = None
        try:
            ready = self._prepare(trial)
            if isinstance(ready, TrialState):  # not started, or over --max-latency-ms: told already
                return ready
            plan = ready.plan
            outcome = self._train(trial, ready)
        except PruneTrial as pruned:
            return self._pruned(trial, pruned, started, plan)
        except DeadlineReached:
            return self.timed_out(trial, time.perf_counter() - started)
        except StoppedTrial:
            raise
        except KeyboardInterrupt:
            raise self.give_back(trial, INTERRUPTED) from None
        except Exception as exc:
            return self._failed(trial, exc, started)
        return self._complete(trial, ready, outcome)

    def _prepare(self, trial: optuna.Trial) -> PreparedTrial | TrialState:
        """The trial's config, backbone and adapter, recorded on it, and its plan for the time left; or, told to
        the study already, the state of a trial that ends here (not started, or over --max-latency-ms)."""
        config = config_from_trial(trial, self.space, epochs=self.settings.epochs,
                                   image_size=self.settings.image_size, seed=self.settings.seed,
                                   shape_of=shapes_from(self.plugins.backbone))
        spec = self.plugins.backbone(config.backbone)
        adapter = self.plugins.framework(spec.framework)
        trial.set_user_attr(FRAMEWORK_ATTR, spec.framework)
        trial.set_user_attr(PRETRAINED_ATTR, spec.pretrained)
        trial.set_user_attr(BLOCKS_ATTR, len(spec.blocks))
        plan = self._plan(trial, spec, config)  # never started at a size that cannot finish in the time left
        if plan is None:
            return self._not_started(trial, spec, config)
        kind = trial_kind(spec, plan.config)
        trial.set_user_attr(KIND_ATTR, kind)
        if self.progress is not None:
            self.progress.trial_started(trial.number, plan.config)
        too_slow = self._check_latency_limit(trial, adapter, spec, plan.config)  # before anything costly
        if too_slow is not None:
            return too_slow
        digest = backbone_weights_digest(adapter, spec)  # once per trial; refuses a factory that ignores pretrained
        if digest is not None:
            trial.set_user_attr(DIGEST_FIELD, digest)
        pruning = TrialPruning(self.study, trial, kind, plan.folds)  # its checks, rungs, folds
        return PreparedTrial(spec, adapter, plan, digest, pruning)

    def _check_latency_limit(self, trial: optuna.Trial, adapter: FrameworkAdapter, spec: BackboneSpec,
                             config: TrialConfig) -> TrialState | None:
        """Under --max-latency-ms, the trial's latency measured before it trains: PRUNED when over the limit."""
        limit = self.settings.max_latency_ms
        if limit is None:
            return None
        with charged(LATENCY):
            latency_ms = record_latency(trial, adapter, spec, config, self.table.num_classes, limit)
        if latency_ms is None or latency_ms <= limit:
            return None
        return self._too_slow(trial, latency_ms, limit, describe_config(effective_config(spec, config), len(spec.blocks), spec.pretrained))

    def _train(self, trial: optuna.Trial, ready: PreparedTrial) -> TrialOutcome:
        """Train the trial through the engine (under --cv: K folds, then a refit), telling the progress
        display and the pruner as it goes; its freed memory is given back however it ends."""
        number, spec, config, folds, pruning = trial.number, ready.spec, ready.plan.config, ready.plan.folds, ready.pruning

        def on_epoch(result: Any) -> None:  # every whole epoch, and every check inside one (result.partial)
            raise_if_interrupted()
            if self.progress is not None:
                self.progress.epoch_done(number, config, result, part=result.fraction if result.partial else None)

        def should_prune(result: Any) -> bool:  # whole epochs go to Optuna; checks inside one to --pruner halving
            return pruning.should_prune(result)

        def on_start(effective: TrialConfig) -> None:  # what run_trial really runs (effective_config)
            trial.set_user_attr(FROZEN_BLOCKS_ATTR, effective.frozen_blocks(len(spec.blocks)))
            trial.set_user_attr(DEPTH_ATTR, effective.depth(len(spec.blocks)))
            pruning.started(effective, len(spec.blocks))
        try:
            if folds > 1:  # scored by K-fold cross-validation, then refit (--cv)
                return folds_resumed(self.study, self.folder, trial, config, lambda resume: run_trial_scored(
                    ready.adapter, spec, config, self.table, folds, on_epoch, should_prune,
                    save_to=partial_dir(self.folder, number), on_start=on_start, seed=self.settings.seed,
                    deadline=self.deadline, pause_due=pruning.pause_due, after_fold=pruning.after_fold,
                    resume=resume, **self._fold_progress(number, folds)))
            return resumed(self.study, self.folder, trial, config, lambda resume: run_trial(
                ready.adapter, spec, config, self.table, on_epoch, should_prune, save_to=partial_dir(self.folder, number),
                on_start=on_start, deadline=self.deadline, pause_due=pruning.pause_due, resume=resume))
        finally:
            release_freed_memory()  # resident memory must not grow from trial to trial

    def _pruned(self, trial: optuna.Trial, pruned: PruneTrial, started: float, plan: FitPlan | None) -> TrialState:
        """A trial the pruner stopped: its partial artifact discarded, its best score and seconds kept, PRUNED."""
        discard_partial(self.folder, trial.number)
        best = max(r.val_accuracy for r in pruned.history)
        # The traceback holds the trial's frames, and with them its model and activations: drop it
        # before measuring, or a pruned trial's memory would be counted against the next one.
        pruned.__traceback__ = None
        release_freed_memory()
        with storage_write(), charged(STUDY_WRITES):
            trial.set_user_attr(VAL_ACCURACY_ATTR, best)
            trial.set_user_attr(SECONDS_ATTR, round(time.perf_counter() - started, 2))
            trial.set_user_attr(RSS_MB_ATTR, round(resident_mb(), 1))
            self.study.tell(trial, state=TrialState.PRUNED)
        self._report(trial.number, "PRUNED", None,
                     f"trial {trial.number:>3}  [yellow]pruned[/] {pruned_where(pruned)}  (score {best:.4f}){shrunk_note(plan)}"
                     f"{resumed_note(trial.user_attrs)}")
        return TrialState.PRUNED

    def _failed(self, trial: optuna.Trial, exc: Exception, started: float) -> TrialState:
        """A trial that raised: its partial artifact discarded, the reason kept, FAIL."""
        discard_partial(self.folder, trial.number)
        reason = str(exc) if isinstance(exc, (TrialFailure, UserError)) else f"{type(exc).__name__}: {exc}"
        with storage_write(), charged(STUDY_WRITES):
            trial.set_user_attr(FAIL_REASON_ATTR, reason[:2000])
            trial.set_user_attr(SECONDS_ATTR, round(time.perf_counter() - started, 2))
            self.study.tell(trial, state=TrialState.FAIL)
        self._report(trial.number, "FAIL", None, f"trial {trial.number:>3}  [red]failed[/]: {console_text(reason[:300])}")
        return TrialState.FAIL

    def _complete(self, trial: optuna.Trial, ready: PreparedTrial, outcome: TrialOutcome) -> TrialState:
        """A trained trial: its latency (without a limit), predictions, metrics and artifact kept, then COMPLETE
        with its score; FAIL when its artifact cannot be uploaded."""
        number, spec = trial.number, ready.spec
        ready.pruning.flush()  # its last checks, for peers judged at seconds it has reached
        if self.settings.max_latency_ms is None and self._time_for_latency():
            with charged(LATENCY):  # without a limit only a complete trial's latency matters (report, export)
                record_latency(trial, ready.adapter, spec, ready.plan.config, self.table.num_classes, None)
        attrs = outcome_attrs(outcome)
        meta = self._trial_meta(trial, ready, outcome.config, attrs)
        self._save_predictions(number, outcome)
        kept = continued_after(saved_state(self.study, self.folder, trial, ready.plan.config, ready.plan.folds), outcome, ready.plan.folds)
        goes_on = kept is not None
        with storage_write(), charged(STUDY_WRITES):  # an interrupt here waits until the trial is told COMPLETE
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
            final = finalize(self.folder, number, meta)
            if self.mirror is not None:
                try:
                    self.mirror.push_folder(final, final.name)
                except Exception as exc:  # a completed trial must have its artifact where every worker looks
                    trial.set_user_attr(FAIL_REASON_ATTR, f"could not upload its artifacts to {self.mirror.url}: {exc}"[:2000])
                    self.study.tell(trial, state=TrialState.FAIL)
                    self._report(number, "FAIL", None, f"trial {number:>3}  [red]failed[/]: artifact upload: {console_text(str(exc))}")
                    return TrialState.FAIL
            if kept is not None:  # stopped by the deadline before its end: the next run goes on from its saved state
                queue_continuation(self.study, self.study._storage.get_trial(trial._trial_id), *kept)
            self.study.tell(trial, outcome.val_accuracy)
        cut = stopped_note(outcome, goes_on)
        self._report(number, "COMPLETE", outcome.val_accuracy,
                     f"trial {number:>3}  score [bold]{outcome.val_accuracy:.4f}[/] "
                     f"(epoch {outcome.best_epoch + 1}, "
                     f"{outcome.best_phase.value})  {outcome.seconds:5.1f}s  "  # test accuracy: the chosen model's only
                     f"{console_text(describe_config(outcome.config, len(spec.blocks), spec.pretrained))}{cut}"
                     f"{shrunk_note(ready.plan)}{resumed_note(trial.user_attrs)}")
        return TrialState.COMPLETE

    def _trial_meta(self, trial: optuna.Trial, ready: PreparedTrial, config: TrialConfig, attrs: dict[str, Any]) -> dict[str, Any]:
        """What the trial's ``trial.json`` records: the study, the trial's config and backbone, and its metrics."""
        spec = ready.spec
        return {
            "study": self.settings.study_name,
            KEY_FIELD: self.key,
            "trial": trial.number,
            "params": dict(trial.params),
            "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
            "framework": spec.framework,
            "backbone": spec.name,
            "pretrained": spec.pretrained,
            DIGEST_FIELD: ready.digest,
            "class_names": list(self.table.class_names),
            "preprocessing": spec.preprocessing(self.settings.image_size, self.settings.resize).to_dict(),
            "metrics": attrs,
            "automl_tl_version": __version__,
        }

    def _save_predictions(self, number: int, outcome: TrialOutcome) -> None:
        """The trial's validation and test probabilities (and their mirrored ones), beside its partial artifact."""
        val_rows = self.table.splits["val"] if outcome.val_index is None else outcome.val_index  # CV: out-of-fold rows
        save_predictions(partial_dir(self.folder, number), {
            split: SplitPredictions(probabilities, rows, self.table.labels[rows])
            for split, probabilities, rows in (("val", outcome.val_probabilities, val_rows),
                                               ("test", outcome.test_probabilities, self.table.splits["test"]),
                                               ("val_flip", outcome.val_flip_probabilities, val_rows),
                                               ("test_flip", outcome.test_flip_probabilities, self.table.splits["test"]))
            if probabilities is not None})

