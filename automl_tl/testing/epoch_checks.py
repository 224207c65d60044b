"""Conformance checks of ``train_epoch(should_stop)``: a session stops after the step at which it is told to,
and the next call goes on with the same epoch, so that an epoch cut into pieces trains exactly what an
uninterrupted one does (``--timeout`` and checks inside long epochs depend on it)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from automl_tl.types import Phase, TrialConfig, TrialSession

from .base import ConformanceBase
from .verdicts import fail, largest_difference, number, refusals_named, require

__all__ = ["EpochChecks"]

SLICED_BATCH = 4  # rows per step in these checks: the suite's 16 training images make 4 steps an epoch


class EpochChecks(ConformanceBase):
    """An epoch stopped after every step and continued trains each batch once, as one uninterrupted epoch does."""

    def sliced_config(self) -> TrialConfig:
        """The suite's trial with small batches, so an epoch has several steps to stop between."""
        return dataclasses.replace(self.config(), batch_size=SLICED_BATCH)

    def sliced_session(self) -> TrialSession:
        adapter, spec = self.make_adapter(), self.make_spec()
        with refusals_named(spec.name, "start_trial"):
            return adapter.start_trial(spec, self.sliced_config(), self.make_table())

    def epoch_in_steps(self, session: TrialSession, phase: Phase) -> tuple[int, int]:
        """Train one epoch with ``should_stop`` saying True after every step: (calls made, times it was asked)."""
        rows = len(self.make_table().splits["train"])
        most = math.ceil(rows / SLICED_BATCH)
        asked = [0]

        def stop() -> bool:
            asked[0] += 1
            return True

        calls, before = 0, 0.0
        while True:
            calls += 1
            loss = session.train_epoch(stop)
            require(np.isfinite(loss), self.backbone, f"train_epoch(should_stop) returned the loss {loss} in a "
                                                      f"{phase.value} epoch")
            progress = float(session.epoch_progress)
            if progress >= 1.0:
                return calls, asked[0]
            require(asked[0] == calls, self.backbone,
                    f"train_epoch(should_stop) returned before its epoch ended ({progress:.2f} of it) after asking "
                    f"should_stop {asked[0]} time(s) in {calls} call(s): it must return only when should_stop says True")
            require(progress > before, self.backbone,
                    f"epoch_progress went from {before:.2f} to {progress:.2f} over a train_epoch call that trained a "
                    f"step: a call after a stop must continue the same epoch, not start it again")
            before = progress
            if calls > most:
                fail(self.backbone, f"the {phase.value} epoch did not end after {calls} calls of train_epoch(should_stop) "
                                    f"that each ran one step of {SLICED_BATCH} rows ({rows} training rows): a call after "
                                    f"a stop must continue the same epoch with its remaining batches")

    def test_an_epoch_stopped_after_every_step_trains_what_an_uninterrupted_one_does(self) -> None:
        """``should_stop`` is asked after every optimiser step and True returns at once; the next call continues
        the epoch (same order, same schedule steps); ``epoch_progress`` reaches exactly 1.0 at its end; and the
        weights after the cut epochs equal those after uninterrupted ones (within ``determinism_tolerance``)."""
        phases = self.two_phases()
        whole = self.sliced_session()
        require(float(whole.epoch_progress) == 1.0, self.backbone,
                f"epoch_progress is {whole.epoch_progress} before any epoch; it must be 1.0 (the next train_epoch "
                f"starts a new epoch)")
        expected = []
        for phase in self.phase_changes(phases):
            if phase is not None:
                whole.set_phase(phase)
            whole.train_epoch()
            require(float(whole.epoch_progress) == 1.0, self.backbone,
                    f"epoch_progress is {whole.epoch_progress} after an uninterrupted epoch, not 1.0")
            expected.append(whole.predict_split("val"))
        sliced = self.sliced_session()
        for index, phase in enumerate(self.phase_changes(phases)):
            if phase is not None:
                sliced.set_phase(phase)
            calls, asked = self.epoch_in_steps(sliced, phases[index])
            require(calls >= 2 and asked >= calls - 1, self.backbone,
                    f"train_epoch(should_stop) ran the {phases[index].value} epoch in {calls} call(s) asking should_stop "
                    f"{asked} time(s), with should_stop saying True after every step: it must be asked after every "
                    f"optimiser step and the call must return when it says True")
            difference = largest_difference(sliced.predict_split("val"), expected[index])
            if difference > self.determinism_tolerance:
                fail(self.backbone, f"a {phases[index].value} epoch stopped after every step and continued gives "
                                    f"validation probabilities {number(difference)} away from an uninterrupted epoch's "
                                    f"(tolerance {number(self.determinism_tolerance)}): each call must go on with the "
                                    f"epoch's remaining batches, in the same order")

    @staticmethod
    def phase_changes(phases: tuple[Phase, ...]) -> list[Phase | None]:
        """``phases`` with None where the phase stays as it was (set_phase is called only when it changes)."""
        changes: list[Phase | None] = []
        for i, phase in enumerate(phases):
            changes.append(phase if i == 0 or phases[i - 1] is not phase else None)
        return changes
