"""Successive halving across folds: under ``--cv``, fold 0 decides whether a costly trial runs the others.

A fine-tuning (or from-scratch) trial scored by K-fold cross-validation costs K + 1 trainings: K folds and
the refit. After fold 0 its best accuracy on that fold is kept (``FOLD_ZERO_ATTR``) and compared with every
other trial's fold-0 accuracy on the same folds; below the top 1/eta of them (with at least ``min_peers``
peers) the trial is PRUNED there, and its other folds and refit never run. A trial that passes runs every
fold and the refit unchanged, so the value every COMPLETE trial is ranked by is still the full out-of-fold
score: the selection stays as honest as full cross-validation, and only trials that would rarely have won
stop early. Head-only trials are exempt: their later folds read the cached features of fold 0 and cost a
small share of it, so they always run every fold.
"""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from automl_tl.study_record import FoldZero
from automl_tl.tuning.pruning import MIN_PEERS, REDUCTION_FACTOR, keep_threshold

EXEMPT_KINDS = ("head-only",)


def fold_zero_record(folds: int, accuracy: float) -> dict[str, float]:
    """The value kept in ``FOLD_ZERO_ATTR`` (``FoldZero``), its accuracy rounded as every peer's is."""
    return FoldZero(folds, round(float(accuracy), 4)).to_attrs()


def fold_zero_peers(study: optuna.Study, number: int, folds: int) -> list[float]:
    """Fold-0 accuracies of every other COMPLETE, PRUNED or RUNNING trial scored on the same ``folds``."""
    peers = []
    for other in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)):
        kept = FoldZero.from_attrs(other.user_attrs)
        if other.number != number and kept is not None and kept.folds == folds:
            peers.append(kept.accuracy)
    return peers


def runs_other_folds(study: optuna.Study, number: int, kind: str, folds: int, accuracy: float,
                     reduction_factor: int = REDUCTION_FACTOR, min_peers: int = MIN_PEERS) -> bool:
    """After fold 0 of trial ``number`` (``kind`` as ``trial_kind`` says): whether its other folds run."""
    if kind in EXEMPT_KINDS:
        return True
    accuracy = round(float(accuracy), 4)  # as the peers' are kept (fold_zero_record): a tie stays a tie
    peers = fold_zero_peers(study, number, folds)
    if len(peers) < min_peers:
        return True
    return accuracy >= keep_threshold([*peers, accuracy], reduction_factor)
