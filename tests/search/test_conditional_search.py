"""A real search asks each trial only the parameters it uses, and an old flat-space study says why it cannot resume."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState
from rich.console import Console

from automl_tl.distributed.loop import run_search
from automl_tl.errors import UserError
from automl_tl.study_record import FINGERPRINT_ATTR
from automl_tl.tuning.space import config_from_params

from .test_study import settings

FINE_TUNING = {"switch_epoch", "finetune_lr_ratio", "unfrozen_bn"}


def test_the_trials_of_a_search_carry_only_the_parameters_they_use(stub_plugins, table, small_sample):  # noqa: F811
    result = run_search(settings(small_sample, name="cond", trials=6, epochs=3), stub_plugins, table,
                        Console(quiet=True))
    blocks = len(stub_plugins.backbone("stub_net").blocks)
    finished = result.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == 6
    kinds = set()
    for trial in finished:
        config = config_from_params(trial.params, epochs=3, image_size=16)
        if config.finetunes(blocks):
            kinds.add("fine-tune")
            assert FINE_TUNING <= set(trial.params) and trial.params["switch_epoch"] < 3, trial.params
        else:
            kinds.add("head only")
            assert not FINE_TUNING & set(trial.params), f"a head-only trial was asked what it ignores: {trial.params}"
            assert trial.user_attrs["frozen_blocks"] == trial.user_attrs["depth"]
    assert kinds == {"fine-tune", "head only"}


def test_a_study_made_with_the_flat_space_is_refused_with_the_reason(stub_plugins, table, small_sample):  # noqa: F811
    study = run_search(settings(small_sample, name="old", trials=1), stub_plugins, table, Console(quiet=True)).study
    stored = optuna.load_study(study_name="old", storage=study._storage)
    old = dict(stored.user_attrs[FINGERPRINT_ATTR])
    del old["space_layout"]
    stored.set_user_attr(FINGERPRINT_ATTR, old)
    with pytest.raises(UserError, match="earlier automl-tl, whose search space asked every trial every parameter") as error:
        run_search(settings(small_sample, name="old", trials=2), stub_plugins, table, Console(quiet=True))
    assert "--study NEW_NAME" in str(error.value)
