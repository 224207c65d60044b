"""Phase-aware successive halving by seconds: rungs at s0 * 3^k training seconds, peers compared at equal seconds,
a rung at the switch, no judgement in the dip; the clock that asks for checks inside an epoch."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from automl_tl.errors import UserError
from automl_tl.study_record import CHECKS_ATTR, FIRST_RUNG_ATTR, HEAD_EPOCHS_ATTR
from automl_tl.tuning.pruning import (
    MIN_FIRST_RUNG_S,
    Check,
    PhaseAwareHalving,
    RungClock,
    check_of,
    head_epochs_of,
    keep_threshold,
    make_pruner,
    rung_index,
    settle_first_rung,
    value_at,
)
from automl_tl.types import EpochResult, Phase


def cheap(values: list[float], epoch_s: float = 0.5, phase: str = "head") -> list[list]:
    """Checks of a trial with one check per whole epoch of ``epoch_s`` seconds."""
    return [[epoch_s * (e + 1), v, float(e + 1), phase] for e, v in enumerate(values)]


def study_with_peers(peers: list[list[list]], state: TrialState = TrialState.COMPLETE) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for checks in peers:
        study.add_trial(create_trial(state=state, value=max(c[1] for c in checks) if state == TrialState.COMPLETE else None,
                                     user_attrs={CHECKS_ATTR: checks}))
    return study


def judged(study: optuna.Study, pruner: PhaseAwareHalving, checks: list[list], head_epochs: int | None = None) -> bool:
    """Whether ``pruner`` prunes a running trial whose checks so far are ``checks`` (judged at the last)."""
    trial = study.ask()
    trial.set_user_attr(CHECKS_ATTR, checks)
    if head_epochs is not None:
        trial.set_user_attr(HEAD_EPOCHS_ATTR, head_epochs)
    decision = pruner.prune(study, study.get_trials(deepcopy=False)[-1])
    study.tell(trial, state=TrialState.FAIL)
    return decision


GOOD_PEERS = [cheap([0.60 + 0.01 * i, 0.70 + 0.01 * i, 0.80 + 0.01 * i, 0.85 + 0.01 * i] * 3) for i in range(5)]


def test_rungs_are_geometric_in_seconds():
    assert [rung_index(s, 1.0) for s in (0.5, 1.0, 2.9, 3.0, 8.99, 9.0, 30.0)] == [-1, 0, 0, 1, 1, 2, 3]
    assert rung_index(0.3, 0.1) == 1


def test_a_trial_is_judged_against_peers_at_the_same_seconds_not_the_same_epoch():
    pruner = PhaseAwareHalving(first_rung_s=1.0)
    # One long epoch: at 3 s it is 0.3 into its first epoch and scores 0.75. At the same epoch count (epoch 1) its
    # peers scored 0.60-0.64, below it; at the same seconds (epoch 6 of theirs) their best was 0.85-0.89.
    long_epoch = [[1.0, 0.70, 0.1, "head"], [3.0, 0.75, 0.3, "head"]]
    assert judged(study_with_peers(GOOD_PEERS), pruner, long_epoch)
    leader = [[1.0, 0.70, 0.1, "head"], [3.0, 0.90, 0.3, "head"]]
    assert not judged(study_with_peers(GOOD_PEERS), pruner, leader)


def test_only_the_first_check_past_a_rung_is_judged():
    pruner = PhaseAwareHalving(first_rung_s=1.0)
    between = [[1.0, 0.1, 0.1, "head"], [1.5, 0.1, 0.15, "head"]]  # rung 1 was judged at the first check; 3 is ahead
    assert not judged(study_with_peers(GOOD_PEERS), pruner, between)
    jump = [[1.5, 0.1, 1.0, "head"], [20.0, 0.1, 2.0, "head"]]  # one epoch crossed rungs 3 and 9: judged at 9
    assert pruner.judged_at(optuna.create_study(), [Check(*c) for c in jump], None) == 9.0
    assert judged(study_with_peers(GOOD_PEERS), pruner, jump)


def test_peers_that_finished_sooner_count_at_their_final_best_and_pruned_ones_only_where_they_reached():
    pruner = PhaseAwareHalving(first_rung_s=1.0)
    short_complete = [cheap([0.90], epoch_s=0.5) for _ in range(4)]  # finished in 0.5 s, final best 0.90
    assert judged(study_with_peers(short_complete), pruner, [[1.0, 0.5, 0.1, "head"], [27.0, 0.8, 0.9, "head"]])
    short_pruned = study_with_peers(short_complete, state=TrialState.PRUNED)  # stopped before 27 s: no peers there
    assert not judged(short_pruned, pruner, [[1.0, 0.5, 0.1, "head"], [27.0, 0.8, 0.9, "head"]])


def test_the_end_of_the_head_phase_is_a_rung_and_the_first_finetune_epoch_is_not():
    pruner = PhaseAwareHalving(first_rung_s=100.0)  # no geometric rung below 100 s
    peers = [cheap([0.8 + 0.01 * i] * 8, epoch_s=1.0) for i in range(6)]
    head = [[1.0, 0.2, 1.0, "head"], [2.0, 0.3, 2.0, "head"]]
    assert judged(study_with_peers(peers), pruner, head, head_epochs=2), "the switch, behind: pruned at 2 s"
    assert not judged(study_with_peers(peers), pruner, head, head_epochs=3), "no switch there: not judged"
    pruner = PhaseAwareHalving(first_rung_s=1.0)
    # Rung 3 s falls inside the first fine-tuning epoch (epoch 3 after two head epochs) and at its end: never judged.
    dip = [[1.0, 0.95, 1.0, "head"], [2.0, 0.95, 2.0, "head"], [3.1, 0.10, 2.4, "finetune"]]
    assert not judged(study_with_peers(peers), pruner, dip[:2] + [[3.5, 0.10, 3.0, "finetune"]], head_epochs=2)
    assert not judged(study_with_peers(peers), pruner, dip, head_epochs=2)
    behind = [[1.0, 0.1, 1.0, "head"], [2.0, 0.1, 2.0, "head"], [3.5, 0.1, 3.0, "finetune"], [9.2, 0.1, 5.4, "finetune"]]
    assert judged(study_with_peers(peers), pruner, behind, head_epochs=2), "after the dip, rungs are judged again"


def test_too_few_peers_means_no_pruning():
    pruner = PhaseAwareHalving(first_rung_s=1.0, min_peers=4)
    assert not judged(study_with_peers(GOOD_PEERS[:3]), pruner, [[1.0, 0.1, 0.1, "head"]])
    assert judged(study_with_peers(GOOD_PEERS[:4]), pruner, [[1.0, 0.1, 0.1, "head"]])


def test_value_at_is_the_best_up_to_the_first_check_past_the_seconds():
    checks = [Check(*c) for c in [[1.0, 0.5, 1.0, "head"], [2.0, 0.7, 2.0, "head"], [3.0, 0.6, 3.0, "head"]]]
    assert value_at(checks, 1.5) == 0.7 and value_at(checks, 3.0) == 0.7 and value_at(checks, 0.2) == 0.5
    assert value_at(checks, 3.1) is None


def test_checks_never_read_as_an_epoch_end_and_the_first_rung_is_set_once():
    part = EpochResult(epoch=2, phase=Phase.FINETUNE, train_loss=1.0, val_accuracy=0.5, val_balanced_accuracy=0.5,
                       seconds=1.0, fraction=0.99999, spent=12.0)
    assert check_of(part).epochs == 2.999 and not check_of(part).whole
    study = optuna.create_study()
    assert settle_first_rung(study, 0.2) == MIN_FIRST_RUNG_S, "never below the floor"
    assert settle_first_rung(study, 50.0) == MIN_FIRST_RUNG_S, "set once: every worker and resume agree"
    other = optuna.create_study()
    assert settle_first_rung(other, 7.5) == 7.5 and other.user_attrs[FIRST_RUNG_ATTR] == 7.5


def epoch(e: int, spent: float, seconds: float, phase: Phase = Phase.HEAD) -> EpochResult:
    return EpochResult(epoch=e, phase=phase, train_loss=1.0, val_accuracy=0.5, val_balanced_accuracy=0.5,
                       seconds=seconds, spent=spent)


def test_the_clock_asks_for_a_check_at_each_rung_but_not_in_the_dip_or_just_before_an_epoch_ends():
    clock = RungClock(first_rung_s=1.0, head_epochs=None)
    assert not clock.due(0.99) and clock.due(1.0)
    clock.checked(EpochResult(epoch=0, phase=Phase.HEAD, train_loss=1.0, val_accuracy=0.5, val_balanced_accuracy=0.5,
                              seconds=1.01, fraction=0.2, spent=1.01))
    assert not clock.due(2.9) and clock.due(3.0), "the next rung"
    short = RungClock(first_rung_s=10.0, head_epochs=None)
    short.checked(epoch(0, 0.5, 0.5))
    assert not short.due(10.0), "epochs of 5% of the rung: the epoch's end comes soon enough"
    dip = RungClock(first_rung_s=1.0, head_epochs=2)
    dip.checked(epoch(0, 0.2, 0.2))
    dip.checked(epoch(1, 0.4, 0.2))
    assert not dip.due(5.0), "the first fine-tuning epoch is never judged"
    dip.checked(epoch(2, 5.0, 4.6, Phase.FINETUNE))
    assert not dip.due(8.9) and dip.due(9.0), "rungs 1 and 3 fell in the dip; the next is 9 s"
    assert not RungClock(first_rung_s=None, head_epochs=None).due(100.0), "no check before s0 is known"


def test_keep_threshold_keeps_the_top_third():
    assert keep_threshold([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 3) == 0.5


def test_pruners_by_name():
    assert isinstance(make_pruner("halving", 4), PhaseAwareHalving)
    assert isinstance(make_pruner("median", 4), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("hyperband", 4), optuna.pruners.HyperbandPruner)
    with pytest.raises(UserError, match="--pruner"):
        make_pruner("random", 4)


def test_what_the_trial_runs_decides_its_switch_not_what_it_was_asked():
    study = optuna.create_study()
    trial = study.ask({"switch_epoch": optuna.distributions.IntDistribution(1, 9)})
    assert head_epochs_of(study.get_trials(deepcopy=False)[-1]) == trial.params["switch_epoch"], "an older trial"
    trial.set_user_attr(HEAD_EPOCHS_ATTR, None)  # shrunk to its head alone: no switch, whatever it was asked
    assert head_epochs_of(study.get_trials(deepcopy=False)[-1]) is None
