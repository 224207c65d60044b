"""The numpy head-only loop that automl-tl used on the CPU until bench/numpy_head.py measured it,
kept here as that benchmark's reference (docs/decisions.md, "The head-only phase is plain torch").

A hand-written forward and backward pass of the head (dropout, linear[, ReLU, dropout, linear])
with class-weighted cross-entropy, and Adam on one flat buffer: the same maths as torch's head
and ``torch.optim.Adam``, without torch's per-operation overhead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache

import numpy as np
import torch
from threadpoolctl import ThreadpoolController
from torch import nn

ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults
ADAM_EPS = 1e-8


@lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()  # finds the loaded BLAS libraries once; limiting is then cheap


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run numpy's BLAS on one thread inside the block. A head step's matrices are tiny, and on
    a small machine torch's OpenMP threads, still spinning after its last operation, compete with
    BLAS's own: one thread made a cached head-only trial about 15% faster here."""
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


def head_layout(head: nn.Sequential) -> tuple[list[nn.Linear], float] | None:
    """The linear layers and dropout rate of a head built by ``model.build_head``; None for any other shape."""
    linears = [m for m in head if isinstance(m, nn.Linear)]
    dropouts = {m.p for m in head if isinstance(m, nn.Dropout)}
    others = [m for m in head if not isinstance(m, (nn.Linear, nn.Dropout, nn.ReLU))]
    if others or len(linears) not in (1, 2) or len(dropouts) > 1:
        return None
    return linears, (dropouts.pop() if dropouts else 0.0)


class NumpyHeadTrainer:
    """Trains a head (dropout, linear[, ReLU, dropout, linear]) with class-weighted cross-entropy and Adam."""

    def __init__(self, head: nn.Sequential, lr: float, class_weights: np.ndarray, seed: int) -> None:
        layout = head_layout(head)
        if layout is None:
            raise ValueError("not a head that NumpyHeadTrainer knows")
        self.linears, self.dropout = layout
        self.lr = lr
        self.class_weights = np.asarray(class_weights, np.float32)
        self.rng = np.random.default_rng(seed)
        tensors = [p.detach().cpu() for linear in self.linears for p in (linear.weight, linear.bias)]
        # One flat buffer for all parameters (and one for their gradients), so Adam is a few array operations.
        self.flat = np.concatenate([t.numpy().ravel() for t in tensors]).astype(np.float32)
        self.grad = np.zeros_like(self.flat)
        self.params, self.grads, offset = [], [], 0
        for t in tensors:
            size = t.numel()
            self.params.append(self.flat[offset : offset + size].reshape(tuple(t.shape)))
            self.grads.append(self.grad[offset : offset + size].reshape(tuple(t.shape)))
            offset += size
        self.m = np.zeros_like(self.flat)
        self.v = np.zeros_like(self.flat)
        self.t = 0

    def _drop(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Inverted dropout, as torch's: the output, and the scale each element was multiplied by."""
        if self.dropout <= 0:
            return x, None
        scale = (self.rng.random(x.shape, dtype=np.float32) >= self.dropout).astype(np.float32) / (1.0 - self.dropout)
        return x * scale, scale

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One Adam step on a batch; returns the batch's loss."""
        a0, _ = self._drop(x)
        if len(self.linears) == 1:
            w, b = self.params
            logits = a0 @ w.T + b
        else:
            w1, b1, w2, b2 = self.params
            z1 = a0 @ w1.T + b1
            a1, scale1 = self._drop(np.maximum(z1, 0.0))
            logits = a1 @ w2.T + b2
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        probs = exp / exp.sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        weight = self.class_weights[y]
        total = float(weight.sum())
        loss = float(-(weight * np.log(probs[rows, y] + 1e-30)).sum() / total)
        dlogits = probs
        dlogits[rows, y] -= 1.0
        dlogits *= (weight / total)[:, None]
        g = self.grads
        if len(self.linears) == 1:
            np.matmul(dlogits.T, a0, out=g[0])
            dlogits.sum(axis=0, out=g[1])
        else:
            dz1 = (dlogits @ w2) * (z1 > 0)
            if scale1 is not None:
                dz1 *= scale1
            np.matmul(dz1.T, a0, out=g[0])
            dz1.sum(axis=0, out=g[1])
            np.matmul(dlogits.T, a1, out=g[2])
            dlogits.sum(axis=0, out=g[3])
        self._adam()
        return loss

    def _adam(self) -> None:
        self.t += 1
        beta1, beta2 = ADAM_BETAS
        g, m, v = self.grad, self.m, self.v
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * (g * g)
        denom = np.sqrt(v)
        denom /= np.sqrt(1.0 - beta2**self.t)
        denom += ADAM_EPS
        self.flat -= (self.lr / (1.0 - beta1**self.t)) * m / denom

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, as the torch head gives them in evaluation mode (no dropout)."""
        if len(self.linears) == 1:
            logits = x @ self.params[0].T + self.params[1]
        else:
            logits = np.maximum(x @ self.params[0].T + self.params[1], 0.0) @ self.params[2].T + self.params[3]
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)

    def write_back(self) -> None:
        """Copy the trained arrays into the torch head."""
        with torch.no_grad():
            tensors = [p for linear in self.linears for p in (linear.weight, linear.bias)]
            for tensor, array in zip(tensors, self.params, strict=True):
                tensor.copy_(torch.from_numpy(array))
