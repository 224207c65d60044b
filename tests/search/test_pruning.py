"""Phase-aware successive halving: rungs on the epoch scale, a rung at the switch, no judgement in the dip."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial

from automl_tl.errors import UserError
from automl_tl.search.pruning import PhaseAwareHalving, keep_threshold, make_pruner

SWITCH = {"switch_epoch": IntDistribution(1, 9)}


def study_with_peers(values_at_steps: list[dict[int, float]]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for values in values_at_steps:
        study.add_trial(create_trial(params={"switch_epoch": 9}, distributions=SWITCH, value=max(values.values()),
                                     intermediate_values=values, state=TrialState.COMPLETE))
    return study


def judged(study: optuna.Study, pruner: PhaseAwareHalving, switch: int, reports: dict[int, float]) -> bool:
    study.enqueue_trial({"switch_epoch": switch})
    trial = study.ask(fixed_distributions=SWITCH)
    for step, value in sorted(reports.items()):
        trial.report(value, step)
    frozen = study.get_trials(deepcopy=False)[-1]
    decision = pruner.prune(study, frozen)
    study.tell(trial, state=TrialState.FAIL)
    return decision


def test_rungs_are_geometric_plus_the_switch_without_the_dip():
    pruner = PhaseAwareHalving(epochs=9, reduction_factor=3)
    assert pruner.rungs(None) == {1, 3}
    assert pruner.rungs(5) == {1, 3, 5}
    assert pruner.rungs(2) == {1, 2}, "epoch 3 is the first fine-tuning epoch: not judged"
    assert pruner.rungs(9) == {1, 3}, "a trial that never fine-tunes has no switch rung"


def test_a_trial_behind_its_peers_at_a_rung_is_pruned_and_a_leader_is_kept():
    peers = [{1: 0.80, 2: 0.85}, {1: 0.82, 2: 0.86}, {1: 0.84, 2: 0.88}, {1: 0.86, 2: 0.90}, {1: 0.88, 2: 0.91}]
    pruner = PhaseAwareHalving(epochs=9, reduction_factor=3)
    assert judged(study_with_peers(peers), pruner, switch=9, reports={1: 0.50})
    assert not judged(study_with_peers(peers), pruner, switch=9, reports={1: 0.95})


def test_the_end_of_phase_one_is_a_rung_and_the_first_finetune_epoch_is_not():
    peers = [{s: 0.8 + 0.01 * i for s in range(1, 6)} for i in range(6)]
    pruner = PhaseAwareHalving(epochs=9, reduction_factor=3)
    behind_at_switch = {1: 0.9, 2: 0.9, 3: 0.9, 4: 0.5}
    # Step 4 is no geometric rung, but it is this trial's switch: judged there on its best so far.
    assert not judged(study_with_peers(peers), pruner, switch=4, reports=behind_at_switch)
    dip = {1: 0.2, 2: 0.2, 3: 0.2}
    assert not judged(study_with_peers(peers), pruner, switch=2, reports=dip), "step 3 is the dip after a switch at 2"
    assert judged(study_with_peers(peers), pruner, switch=4, reports={1: 0.2, 2: 0.2, 3: 0.2, 4: 0.2})


def test_too_few_peers_means_no_pruning():
    pruner = PhaseAwareHalving(epochs=9, reduction_factor=3, min_peers=4)
    assert not judged(study_with_peers([{1: 0.9}, {1: 0.9}]), pruner, switch=9, reports={1: 0.1})


def test_keep_threshold_keeps_the_top_third():
    assert keep_threshold([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 3) == 0.5


def test_pruners_by_name():
    assert isinstance(make_pruner("halving", 4), PhaseAwareHalving)
    assert isinstance(make_pruner("median", 4), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("hyperband", 4), optuna.pruners.HyperbandPruner)
    with pytest.raises(UserError, match="--pruner"):
        make_pruner("random", 4)
