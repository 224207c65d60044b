"""Conformance checks of training: what each phase may change, that the head learns, the engine's phase
schedule, probabilities, snapshots and determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from automl_tl.plugin.spec_checks import check_backbone_spec, check_framework_adapter
from automl_tl.training.engine import run_trial
from automl_tl.types import ImageTable, Phase

from .base import ConformanceBase
from .verdicts import fail, largest_difference, number, refusals_named, require, require_close, same_arrays

__all__ = ["TrainingChecks"]


def cross_entropy(probabilities: np.ndarray, data: ImageTable, split: str = "train") -> float:
    """The mean cross-entropy of ``split``'s probabilities against its labels."""
    labels = data.labels[data.splits[split]]
    picked = np.asarray(probabilities, dtype=np.float64)[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, 1e-12, None)).mean())


class TrainingChecks(ConformanceBase):
    """What training a trial must and must not change."""

    def test_adapter_declares_itself(self) -> None:
        """The spec passes the registry's checks, names this adapter's framework, and the adapter's formats add up."""
        adapter, spec = self.make_adapter(), self.make_spec()
        with refusals_named(str(getattr(spec, "name", spec)), "the spec and adapter checks"):
            check_backbone_spec(spec, "the conformance suite's make_spec()")
            check_framework_adapter(adapter, "the conformance suite's make_adapter()")
        name = spec.name
        require(adapter.is_installed(), name, f"adapter {adapter.name!r} says its framework is not installed")
        require(spec.framework == adapter.name, name,
                f"spec.framework is {spec.framework!r}, but the adapter under test is {adapter.name!r}")
        require(len(spec.blocks) >= 2, name, f"spec.blocks has {len(spec.blocks)} block(s); the suite needs at least 2")
        require(isinstance(adapter.export_formats, tuple) and adapter.export_formats, name,
                f"adapter.export_formats is {adapter.export_formats!r}, not a non-empty tuple of format names")
        require(isinstance(adapter.safe_formats, tuple) and set(adapter.safe_formats) <= set(adapter.export_formats),
                name, f"adapter.safe_formats {adapter.safe_formats!r} is not a tuple within export_formats "
                      f"{adapter.export_formats!r}")

    def test_head_phase_trains_only_the_head(self) -> None:
        """A head-only epoch changes the head (and so the predictions) and leaves every block as it was."""
        if not self.make_spec().pretrained:
            pytest.skip("from scratch: a trial of it has no head-only phase")
        _, session, _ = self.session()
        before = [self.block_weights(session, i) for i in range(self.n_blocks())]
        session.set_phase(Phase.HEAD)
        head_before, predictions_before = self.head_weights(session), session.predict_split("val")
        session.train_epoch()
        for i in range(self.n_blocks()):
            require(same_arrays(before[i], self.block_weights(session, i)), self.backbone,
                    f"{self.block_name(i)} changed during a head-only epoch (weights or BatchNorm statistics); "
                    f"the head-only phase must leave every backbone block as it was")
        require(not same_arrays(head_before, self.head_weights(session)), self.backbone,
                "the head's weights did not change in a head-only epoch: the head never trains")
        change = largest_difference(session.predict_split("val"), predictions_before)
        require(change > 0.0, self.backbone, "the validation probabilities did not change in a head-only epoch: "
                                             "predict_split does not use the head being trained")

    def test_the_head_learns_in_the_first_phase(self) -> None:
        """A few epochs of the trial's first phase change the head and lower the training set's cross-entropy
        (the synthetic table gives each class one bright channel)."""
        _, session, data = self.session(epochs=self.learning_epochs)  # fine-tuning anneals to 0 over the trial's epochs
        phase = self.first_phase()
        session.set_phase(phase)
        head_before, loss_before = self.head_weights(session), cross_entropy(session.predict_split("train"), data)
        losses = [session.train_epoch() for _ in range(self.learning_epochs)]
        where = f"{self.learning_epochs} {phase.value} epochs"
        require(all(np.isfinite(losses)), self.backbone, f"train_epoch returned the losses {losses} in {where}")
        require(not same_arrays(head_before, self.head_weights(session)), self.backbone,
                f"the head's weights did not change in {where}: the head never trains")
        loss_after = cross_entropy(session.predict_split("train"), data)
        require(loss_after < loss_before, self.backbone,
                f"the training set's cross-entropy did not fall in {where} ({loss_before:.6g} before, {loss_after:.6g} "
                f"after): the model does not learn the synthetic table")

    def test_finetune_phase_trains_only_blocks_above_the_freeze_point(self) -> None:
        """A fine-tuning epoch changes every block above the freeze point, and the head, and no block below it."""
        _, session, _ = self.session()
        n = self.n_blocks()
        frozen = self.config().frozen_blocks(n)
        before = [self.block_weights(session, i) for i in range(n)]
        if self.make_spec().pretrained:
            self.train(session, (Phase.HEAD,))
        session.set_phase(Phase.FINETUNE)
        head_before = self.head_weights(session)
        session.train_epoch()
        after = [self.block_weights(session, i) for i in range(n)]
        changed = [i for i in range(frozen) if not same_arrays(before[i], after[i])]
        require(not changed, self.backbone,
                f"{', '.join(self.block_name(i) for i in changed)} changed during fine-tuning, but the trial freezes "
                f"blocks 0..{frozen - 1} (freeze_fraction={self.config().freeze_fraction:.3g} of {n} blocks)")
        still = [i for i in range(frozen, n) if after[i] and same_arrays(before[i], after[i])]
        require(not still, self.backbone,
                f"{', '.join(self.block_name(i) for i in still)} did not change in a fine-tuning epoch, but the trial "
                f"fine-tunes blocks {frozen}..{n - 1}")
        require(not same_arrays(head_before, self.head_weights(session)), self.backbone,
                "the head's weights did not change in a fine-tuning epoch: the head never trains")

    def test_predictions_are_probabilities_for_every_split(self) -> None:
        """``predict_split`` gives one row of class probabilities per image, for each split."""
        _, session, data = self.session()
        self.train(session, (self.first_phase(),))
        for split in ("train", "val", "test"):
            probabilities = np.asarray(session.predict_split(split))
            shape = (len(data.splits[split]), data.num_classes)
            require(probabilities.shape == shape, self.backbone,
                    f"predict_split({split!r}) has shape {probabilities.shape}, not (images, classes) = {shape}")
            require(np.isfinite(probabilities).all() and (probabilities >= 0).all(), self.backbone,
                    f"predict_split({split!r}) holds negative or non-finite values, not probabilities")
            require_close(self.backbone, f"each row's sum of predict_split({split!r})", probabilities.sum(axis=1),
                          np.ones(len(probabilities)), 1e-4, "1 (probabilities)")

    def test_engine_switches_phase_once_and_reports_every_epoch(self, tmp_path: Path) -> None:
        """``run_trial`` runs the phases the trial schedules (from scratch: fine-tuning throughout), reports
        every epoch and saves the trial."""
        adapter, data, spec = self.make_adapter(), self.make_table(), self.make_spec()
        seen: list[tuple[int, Phase]] = []
        with refusals_named(spec.name, "run_trial"):
            outcome = run_trial(adapter, spec, self.config(switch_epoch=1, epochs=3), data,
                                on_epoch=lambda r: seen.append((r.epoch, r.phase)), save_to=tmp_path / "trial")
        phases = [Phase.HEAD, Phase.FINETUNE, Phase.FINETUNE] if spec.pretrained else [Phase.FINETUNE] * 3
        expected = list(enumerate(phases))
        require(seen == expected, spec.name, f"the engine reported the epochs {[(e, p.value) for e, p in seen]}, "
                                             f"not {[(e, p.value) for e, p in expected]}")
        require(0.0 <= outcome.val_accuracy <= 1.0, spec.name, f"validation accuracy {outcome.val_accuracy}")
        require((tmp_path / "trial").is_dir() and any((tmp_path / "trial").iterdir()), spec.name,
                "TrialSession.save wrote nothing into the trial's folder")

    def test_snapshot_and_restore(self) -> None:
        """``restore(snapshot())`` brings the predictions back after another epoch has changed the model."""
        _, session, _ = self.session()
        first, second = self.two_phases()
        self.train(session, (first,))
        snapshot, expected = session.snapshot(), session.predict_split("val")
        if second is not first:
            session.set_phase(second)
        session.train_epoch()
        session.restore(snapshot)
        require_close(self.backbone, "the output on the validation split after restore(snapshot)",
                      session.predict_split("val"), expected, 1e-5,
                      f"the output when the snapshot was taken (after a {first.value} epoch)")

    def test_determinism_under_a_fixed_seed(self) -> None:
        """Two trials of one config and seed predict the same (within ``determinism_tolerance``)."""
        results = []
        for _ in range(2):
            _, session, _ = self.session()
            self.train(session, self.two_phases())
            results.append(session.predict_split("val"))
        if largest_difference(results[0], results[1]) > self.determinism_tolerance:
            fail(self.backbone, f"two trials of one config and seed differ: their validation probabilities differ by "
                                f"{number(largest_difference(results[0], results[1]))} (tolerance "
                                f"{number(self.determinism_tolerance)}); seed every random number from config.seed")
