"""How the conformance suite says what is wrong: every failure names the backbone and the promise broken."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

import numpy as np

from automl_tl.errors import UserError

__all__ = ["ConformanceFailure", "fail", "largest_difference", "number", "refusals_named", "require", "require_close",
           "same_arrays"]


class ConformanceFailure(AssertionError):
    """A broken promise of the adapter contract, as ``"<backbone>: <what is wrong>"``. It is an
    ``AssertionError``, so pytest reports it as a failed test, with this one line as the reason."""


def fail(backbone: str, text: str) -> NoReturn:
    """Fail the check: ``backbone`` broke the promise described by ``text``."""
    raise ConformanceFailure(f"{backbone}: {text}")


def require(condition: object, backbone: str, text: str) -> None:
    """Fail with ``text`` unless ``condition`` holds."""
    if not condition:
        fail(backbone, text)


def number(x: float) -> str:
    """A difference or a tolerance, short: ``0.41``, ``8.5e-5``, ``1e-4``."""
    if x != 0 and abs(x) != float("inf") and (abs(x) < 1e-3 or abs(x) >= 1e5):
        mantissa, exponent = f"{x:.2e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{x:.3g}"


def largest_difference(got: np.ndarray, want: np.ndarray) -> float:
    """The largest absolute difference between two arrays of one shape (inf where either is not finite)."""
    a, b = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if a.size == 0:
        return 0.0
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("inf")
    return float(np.abs(a - b).max())


def require_close(backbone: str, what: str, got: np.ndarray, want: np.ndarray, tolerance: float, reference: str) -> None:
    """Fail unless ``got`` (described by ``what``) has ``want``'s shape and lies within ``tolerance`` of it
    everywhere; the message says what ``want`` is (``reference``), by how much they differ, and the tolerance."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        fail(backbone, f"{what} has shape {got.shape}, but {reference} has shape {want.shape}")
    difference = largest_difference(got, want)
    if not difference <= tolerance:
        fail(backbone, f"{what} differs from {reference} by {number(difference)} (tolerance {number(tolerance)})")


def same_arrays(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> bool:
    """Whether two lists of arrays (a block's weights) are exactly equal."""
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@contextmanager
def refusals_named(backbone: str, step: str) -> Iterator[None]:
    """An error raised inside (the adapter refusing the backbone, or the framework failing on it) fails
    the check with a message naming the backbone and the step; the suite's own failures pass through."""
    try:
        yield
    except AssertionError:
        raise
    except UserError as exc:
        raise ConformanceFailure(f"{backbone}: {step} raised UserError: {exc}") from exc
    except Exception as exc:
        detail = " ".join(str(exc).split())[:500]
        raise ConformanceFailure(
            f"{backbone}: {step} raised {type(exc).__name__}: {detail} (the suite trains at its class's image_size, "
            f"16 px by default: a backbone that needs larger inputs sets image_size = 32 or more on its test class)"
        ) from exc
