"""The test images the chosen model gets wrong, worst first: sorted by their loss (the cross-entropy
``-log p(true class)``), each shown with the class predicted, its probability, and the true class with the
probability the model gave it. Thumbnails are ``THUMBNAIL_PX`` wide, whatever the image size searched."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from automl_tl.report.html_parts import figure, grid
from automl_tl.report.thumbnails import array_thumbnail
from automl_tl.runtime.shown_text import html_text

MAX_MISTAKES = 24
_FLOOR = 1e-12  # a probability of 0 gives a finite, very large loss


@dataclass(frozen=True)
class Mistake:
    """One misclassified test image (H, W, 3 uint8) and what the model said of it."""

    image: np.ndarray
    true: str
    predicted: str
    predicted_probability: float
    true_probability: float
    relpath: str = ""

    @property
    def loss(self) -> float:
        """Cross-entropy of the true class: the higher, the more confidently wrong."""
        return -math.log(max(self.true_probability, _FLOOR))


def ranked_mistakes(probabilities: np.ndarray, labels: np.ndarray, limit: int = MAX_MISTAKES) -> list[int]:
    """Positions of the misclassified rows of ``probabilities`` (N, classes), highest loss first (ties: the
    earlier row first), at most ``limit``."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return []
    wrong = np.flatnonzero(probabilities.argmax(axis=1) != labels)
    losses = -np.log(np.maximum(probabilities[wrong, labels[wrong]], _FLOOR))
    order = np.argsort(-losses, kind="stable")
    return [int(wrong[i]) for i in order[:limit]]


def mistakes_html(mistakes: list[Mistake], total_wrong: int) -> str:
    """The mistakes' heading and grid, or a line saying there is none."""
    count = f"{len(mistakes)} of {total_wrong}" if total_wrong > len(mistakes) else f"{total_wrong}"
    heading = f"<h3>Misclassified test images, highest loss first ({count})</h3>"
    if not mistakes:
        return heading + "<p>None.</p>"
    note = ('<p class="note">Loss: the cross-entropy of the true class, -log p(true). Each image is shown as the model '
            'saw it, with the class it predicted and that probability, then the true class and the probability the '
            'model gave it.</p>')
    cards = []
    for mistake in mistakes:
        caption = (f"predicted <b>{html_text(mistake.predicted)}</b> {mistake.predicted_probability:.2f}<br>"
                   f"true {html_text(mistake.true)} {mistake.true_probability:.2f}<br>"
                   f'<span class="note">loss {mistake.loss:.2f}</span>')
        if mistake.relpath:
            caption += f'<br><span class="path">{html_text(mistake.relpath)}</span>'
        cards.append(figure(array_thumbnail(mistake.image), f"{mistake.true} predicted as {mistake.predicted}", caption))
    return heading + note + grid(cards)
