"""The engine keeps exactly the weights of its best epoch and reports on one step scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from automl_tl.errors import TrialFailure
from automl_tl.training.engine import PruneTrial, phase_schedule, run_trial
from automl_tl.tuning.space import config_from_params
from automl_tl.types import ImageTable, Phase
from tests.support.sample_plugins.stub_plugin import stub_spec


def table(n_per_split: int = 10) -> ImageTable:
    labels = np.tile(np.arange(2), 3 * n_per_split // 2)
    splits = {name: np.arange(i * n_per_split, (i + 1) * n_per_split) for i, name in enumerate(("train", "val", "test"))}
    return ImageTable(images=np.zeros((len(labels), 4, 4, 3), np.uint8), labels=labels, class_names=("a", "b"),
                      relpaths=tuple(str(i) for i in range(len(labels))), splits=splits, manifest_hash="t")


class ScriptedSession:
    """Accuracy per epoch follows a script; the 'weights' are the epoch number."""

    def __init__(self, script, losses=None):
        self.script, self.losses = script, losses or [0.5] * len(script)
        self.weights = -1
        self.phases: list[Phase] = []
        self.saved: Path | None = None
        self.closed = False

    def set_phase(self, phase):
        self.phases.append(phase)

    def train_epoch(self):
        self.weights += 1
        return self.losses[self.weights]

    def predict_split(self, split):
        labels = table().labels[table().splits[split]]
        accuracy = self.script[self.weights]
        right = int(round(accuracy * len(labels)))
        predicted = labels.copy()
        predicted[right:] = 1 - predicted[right:]
        return np.eye(2)[predicted]

    def snapshot(self):
        return self.weights

    def restore(self, snapshot):
        self.weights = snapshot

    def save(self, directory):
        self.saved = directory

    def close(self):
        self.closed = True


class ScriptedAdapter:
    name = "stub"
    export_formats = ()

    def __init__(self, session):
        self.session = session

    def start_trial(self, spec, config, data):
        return self.session


def config(switch=2, epochs=4, freeze=0.5):
    return config_from_params(dict(backbone="stub_net", freeze_fraction=freeze, head_units=0, head_dropout=0.0, lr=1e-3,
                                   finetune_lr_ratio=0.1, switch_epoch=switch), epochs=epochs, image_size=4)


def test_value_and_test_score_come_from_the_best_epoch_weights(tmp_path):
    session = ScriptedSession([0.5, 0.9, 0.6, 0.7])
    outcome = run_trial(ScriptedAdapter(session), stub_spec(), config(), table(), save_to=tmp_path)
    assert outcome.val_accuracy == pytest.approx(0.9)
    assert outcome.best_epoch == 1 and outcome.best_phase is Phase.HEAD
    assert session.weights == 1, "the best epoch's weights must be restored before testing and saving"
    assert outcome.test_accuracy == pytest.approx(0.9)
    assert session.saved == tmp_path and session.closed


def test_phases_switch_once_at_switch_epoch():
    session = ScriptedSession([0.5] * 4)
    run_trial(ScriptedAdapter(session), stub_spec(), config(switch=1), table())
    assert session.phases == [Phase.HEAD, Phase.FINETUNE]
    assert phase_schedule(config(freeze=1.0), 4) == [Phase.HEAD] * 4


def test_every_epoch_is_reported_on_one_step_scale():
    seen = []
    run_trial(ScriptedAdapter(ScriptedSession([0.1, 0.2, 0.3, 0.4])), stub_spec(), config(), table(),
              on_epoch=lambda r: seen.append((r.epoch, r.phase)))
    assert seen == [(0, Phase.HEAD), (1, Phase.HEAD), (2, Phase.FINETUNE), (3, Phase.FINETUNE)]


def test_nan_loss_fails_the_trial_with_a_reason():
    session = ScriptedSession([0.5] * 4, losses=[0.5, float("nan"), 0.1, 0.1])
    with pytest.raises(TrialFailure, match="nan in epoch 2"):
        run_trial(ScriptedAdapter(session), stub_spec(), config(), table())
    assert session.closed


def test_pruning_stops_the_trial_and_keeps_history():
    with pytest.raises(PruneTrial) as info:
        run_trial(ScriptedAdapter(ScriptedSession([0.5] * 4)), stub_spec(), config(), table(),
                  should_prune=lambda r: r.epoch == 1)
    assert len(info.value.history) == 2


def test_a_from_scratch_backbone_trains_every_block_from_the_first_epoch():
    session = ScriptedSession([0.5, 0.6, 0.7, 0.8])
    started = []
    outcome = run_trial(ScriptedAdapter(session), stub_spec(pretrained=False), config(switch=2), table(),
                        on_start=started.append)
    assert [r.phase for r in outcome.history] == [Phase.FINETUNE] * 4
    assert started == [outcome.config] and outcome.config == config(switch=2).from_scratch()
