"""A linear (softmax) head fitted to convergence on frozen features: multinomial logistic regression by L-BFGS.

The head-only recipe trains a softmax layer on cached bottleneck features. With Adam and a fixed number of
epochs it stops wherever the epochs end; on a few hundred images the convex problem can be solved instead,
with its L2 strength searched like any other parameter (the ``lbfgs`` head fit, ``TrialConfig.head_fit``).
The features are standardised for the solver (it converges in tens of iterations where raw features need
hundreds) and the scaling is folded back into the weights, so the head reads the raw features as an Adam
head does, and exports unchanged. ``scipy.optimize.minimize`` (L-BFGS-B) does the solving.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from automl_tl.errors import TrialFailure
from automl_tl.types import FittedHeadSession

MAX_ITERATIONS = 300  # 647 images x 1280 features converge in 60-150 (bench/head_fit.py)


@dataclass(frozen=True)
class LinearHead:
    """``logits = features @ weights + bias``: ``weights`` (features, classes), ``bias`` (classes,), float32."""

    weights: np.ndarray
    bias: np.ndarray
    loss: float  # the weighted mean cross-entropy on the rows it was fitted to
    iterations: int


def fit_logistic_head(features: np.ndarray, labels: np.ndarray, num_classes: int, l2: float,
                      class_weights: np.ndarray | None = None, max_iterations: int = MAX_ITERATIONS) -> LinearHead:
    """The softmax layer minimising the class-weighted mean cross-entropy over ``features`` (rows) and
    ``labels`` plus ``l2 / 2 * |W|^2`` on the standardised features' weights (the bias is not penalised)."""
    x = np.asarray(features, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    basis = None
    if z.shape[0] < z.shape[1]:
        # Fewer rows than features: the penalised optimum lies in the rows' span (its gradient is z.T @ residual
        # + l2 * W), so it is solved exactly in those coordinates, with fewer unknowns for the solver.
        _, singular, basis_t = np.linalg.svd(z, full_matrices=False)
        basis = basis_t[singular > singular[0] * 1e-10].T  # (features, rank), orthonormal columns
        z = z @ basis
    rows, width = z.shape
    targets = np.zeros((rows, num_classes))
    targets[np.arange(rows), labels] = 1.0
    row_weights = np.ones(rows) if class_weights is None else np.asarray(class_weights, dtype=np.float64)[labels]
    row_weights = row_weights / row_weights.sum()

    def loss_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        weights, bias = theta[: width * num_classes].reshape(width, num_classes), theta[width * num_classes :]
        logits = z @ weights + bias
        logits -= logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(logits).sum(axis=1, keepdims=True))
        log_probabilities = logits - log_norm
        loss = -float((row_weights * (log_probabilities * targets).sum(axis=1)).sum()) + 0.5 * l2 * float((weights**2).sum())
        residual = (np.exp(log_probabilities) - targets) * row_weights[:, None]
        gradient = np.concatenate([(z.T @ residual + l2 * weights).ravel(), residual.sum(axis=0)])
        return loss, gradient

    start = np.zeros(width * num_classes + num_classes)
    # Products of a few hundred rows: BLAS threads only hand work to each other, and beside a busy core they
    # wait on it (0.15 s on one thread against 4-10 s on two while another process ran).
    with threadpool_limits(limits=1, user_api="blas"):
        result = minimize(loss_and_gradient, start, jac=True, method="L-BFGS-B", options={"maxiter": max_iterations})
    weights = result.x[: width * num_classes].reshape(width, num_classes)
    bias = result.x[width * num_classes :]
    penalty = 0.5 * l2 * float((weights**2).sum())  # the same in both coordinates: the basis is orthonormal
    if basis is not None:
        weights = basis @ weights
    raw_weights = weights / scale[:, None]
    raw_bias = bias - mean @ raw_weights
    data_loss = float(result.fun) - penalty
    return LinearHead(raw_weights.astype(np.float32), raw_bias.astype(np.float32), data_loss, int(result.nit))


def fit_session_head(session: object, num_classes: int, class_weights: np.ndarray, l2: float, describe: str) -> float:
    """Fit ``session``'s linear head on its training features (``FittedHeadSession``) and return the fit's
    loss; a session that cannot give its features or take the weights fails the trial, naming ``describe``."""
    if not isinstance(session, FittedHeadSession):
        raise TrialFailure(f"{describe} cannot fit a linear head in closed form (head_fit 'lbfgs'): its trial session "
                           f"lacks head_training_features and set_linear_head (automl_tl.types.FittedHeadSession)")
    features, labels = session.head_training_features()
    head = fit_logistic_head(features, labels, num_classes, l2, class_weights)
    session.set_linear_head(head.weights, head.bias)
    return head.loss
