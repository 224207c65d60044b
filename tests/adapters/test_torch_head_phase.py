"""The torch session's head-only phase on the CPU: plain torch (nn modules, fused Adam) on one
intra-op thread, the threads given back afterwards (bench/numpy_head.py says why)."""

from __future__ import annotations

import torch

from automl_tl.tuning.space import config_from_params
from automl_tl.types import Phase
from automl_tl_torch.adapter import TorchAdapter
from automl_tl_torch.session import one_intra_op_thread
from tests.support.sample_plugins.torch_inline import random_table, tiny_spec


def threads_per_step(session) -> list[int]:
    seen: list[int] = []
    session.optimizer.register_step_pre_hook(lambda optimizer, args, kwargs: seen.append(torch.get_num_threads()))
    return seen


def test_head_only_steps_run_on_one_thread_and_fine_tuning_on_the_sessions_threads(monkeypatch):
    monkeypatch.setenv("AUTOML_TL_THREADS", "2")  # the session's threads, whatever the test run set
    config = config_from_params(dict(backbone="tiny_cnn", freeze_fraction=0.5, head_units=16, head_dropout=0.2,
                                     lr=1e-2, finetune_lr_ratio=0.5, switch_epoch=1, unfrozen_bn="train"),
                                epochs=2, image_size=16, batch_size=8)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        session = TorchAdapter().start_trial(tiny_spec(), config, random_table(n_per_split=16))
        session.set_phase(Phase.HEAD)
        head_steps = threads_per_step(session)
        first = session.train_epoch()
        assert head_steps and set(head_steps) == {1}
        assert torch.get_num_threads() == 2  # given back after the epoch
        assert session.train_epoch() < first  # the head learns
        session.set_phase(Phase.FINETUNE)
        finetune_steps = threads_per_step(session)
        session.train_epoch()
        assert finetune_steps and set(finetune_steps) == {2}
        session.close()
    finally:
        torch.set_num_threads(before)


def test_one_intra_op_thread_gives_the_threads_back_after_an_error():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        try:
            with one_intra_op_thread():
                assert torch.get_num_threads() == 1
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            pass
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
