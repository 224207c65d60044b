"""The numpy head-only loop does what torch's head and Adam do, step for step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from automl_tl_torch.model import build_head
from automl_tl_torch.numpy_head import NumpyHeadTrainer, head_layout


@pytest.mark.parametrize("hidden", [0, 16])
def test_numpy_steps_match_torch_adam_steps(hidden):
    torch.manual_seed(0)
    head = build_head(12, hidden, 0.0, 4)
    twin = build_head(12, hidden, 0.0, 4)
    twin.load_state_dict(head.state_dict())
    weights = np.array([1.0, 2.0, 0.5, 1.5], np.float32)
    trainer = NumpyHeadTrainer(twin, lr=1e-2, class_weights=weights, seed=0)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss(weight=torch.from_numpy(weights))
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.normal(size=(8, 12)).astype(np.float32)
        y = rng.integers(0, 4, size=8)
        loss = loss_fn(head(torch.from_numpy(x)), torch.from_numpy(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert trainer.step(x, y) == pytest.approx(float(loss.detach()), rel=1e-4)
    trainer.write_back()
    for a, b in zip(head.state_dict().values(), twin.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    x = rng.normal(size=(5, 12)).astype(np.float32)
    np.testing.assert_allclose(trainer.predict(x), torch.softmax(head.eval()(torch.from_numpy(x)), 1).detach().numpy(), atol=1e-5)


def test_dropout_scales_kept_units_and_learns():
    head = build_head(6, 8, 0.5, 2)
    trainer = NumpyHeadTrainer(head, lr=5e-2, class_weights=np.ones(2, np.float32), seed=1)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    first = trainer.step(x, y)
    for _ in range(60):
        last = trainer.step(x, y)
    assert last < first
    assert (trainer.predict(x).argmax(1) == y).mean() > 0.9


def test_only_heads_it_knows_are_taken():
    assert head_layout(build_head(4, 0, 0.1, 2)) is not None
    assert head_layout(nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))) is None
