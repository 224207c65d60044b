"""The allocator is tuned in the CLI's own processes only, never in a program that imports automl-tl."""

from __future__ import annotations

import pytest

from automl_tl.runtime import memory


class FakeGlibc:
    """Records mallopt calls instead of changing the test process's allocator."""

    def __init__(self) -> None:
        self.mallopt_calls: list[tuple[int, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.mallopt_calls.append((param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        return 1


@pytest.fixture
def glibc(monkeypatch):
    fake = FakeGlibc()
    monkeypatch.setattr(memory, "_glibc", lambda: fake)
    monkeypatch.delenv(memory.ALLOCATOR_ENV, raising=False)
    monkeypatch.setattr(memory.sys, "platform", "linux")
    return fake


def test_a_library_user_starting_a_torch_trial_keeps_its_allocator(glibc):
    pytest.importorskip("torch")
    import automl_tl  # noqa: F401
    from automl_tl.tuning.space import config_from_params
    from automl_tl.types import Phase
    from automl_tl_torch.adapter import TorchAdapter
    from tests.support.sample_plugins.torch_inline import random_table, tiny_spec

    config = config_from_params(dict(backbone="tiny_cnn", freeze_fraction=0.5, head_units=0, head_dropout=0.0, lr=1e-2,
                                     finetune_lr_ratio=0.5, switch_epoch=1), epochs=2, image_size=16, batch_size=8)
    session = TorchAdapter().start_trial(tiny_spec(), config, random_table())
    session.set_phase(Phase.HEAD)
    session.train_epoch()
    memory.release_freed_memory()
    assert glibc.mallopt_calls == []


def test_the_cli_tunes_its_own_process(glibc, capsys):
    from automl_tl.cli import main

    assert main(["plugins", "--json"]) == 0
    assert len(glibc.mallopt_calls) == 3


def test_the_tuning_can_be_turned_off(glibc, monkeypatch):
    monkeypatch.setenv(memory.ALLOCATOR_ENV, "0")
    assert memory.tune_allocator() is False and glibc.mallopt_calls == []
