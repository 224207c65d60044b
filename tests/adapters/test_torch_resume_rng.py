"""The torch training state keeps the CUDA generators as well as the CPU one (plugins/automl_tl_torch/training_state.py).
CUDA is faked here (its generator states are plain byte tensors): the CPU test machines have none."""

from __future__ import annotations

import torch

import automl_tl_torch.training_state as training_state


class FakeCuda:
    """Two devices' generator states, as ``torch.cuda`` would hold them."""

    def __init__(self):
        self.states = [torch.tensor([1, 2, 3], dtype=torch.uint8), torch.tensor([4, 5, 6], dtype=torch.uint8)]

    def install(self, monkeypatch):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: len(self.states))
        monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [s.clone() for s in self.states])
        monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: self.states.__setitem__(device, state.clone()))


def test_the_cuda_generators_are_saved_and_set_back(monkeypatch, tmp_path):
    from automl_tl.plugin.manager import load_plugins
    from automl_tl.testing import synthetic_table
    from automl_tl.tuning.space import config_from_params
    from tests.support.sample_plugins.torch_inline import tiny_spec

    adapter, spec, data = load_plugins().framework("torch"), tiny_spec(), synthetic_table(size=16, classes=3)
    config = config_from_params(dict(backbone=spec.name, freeze_fraction=0.5, head_units=0, head_dropout=0.2, lr=3e-3,
                                     finetune_lr_ratio=0.3, switch_epoch=1), epochs=2, image_size=16)
    session = adapter.start_trial(spec, config, data)
    try:
        cuda = FakeCuda()
        cuda.install(monkeypatch)
        training_state.save_training_state(session, tmp_path, None)
        saved = torch.load(tmp_path / training_state.STATE_FILE, map_location="cpu", weights_only=True)
        assert [s.tolist() for s in saved["cuda_rng"]] == [[1, 2, 3], [4, 5, 6]]
        cuda.states = [torch.zeros(3, dtype=torch.uint8), torch.zeros(3, dtype=torch.uint8)]  # drawn from since
        training_state.load_training_state(session, tmp_path)
        assert [s.tolist() for s in cuda.states] == [[1, 2, 3], [4, 5, 6]]
    finally:
        session.close()


def test_a_state_saved_without_cuda_leaves_the_cuda_generators_alone(monkeypatch):
    cuda = FakeCuda()
    cuda.install(monkeypatch)
    training_state.restore_cuda_rng(None)
    assert [s.tolist() for s in cuda.states] == [[1, 2, 3], [4, 5, 6]]
