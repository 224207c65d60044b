"""How a study scores its trials: on the validation split, or by K-fold cross-validation (``search --cv``).

With a few hundred trials and about a hundred validation images, the trial with the best validation
accuracy is mostly the luckiest one: its score overstates the chosen model. ``auto`` therefore scores by
cross-validation over train and val when the validation split is small. A study keeps the scoring it
began with: values scored one way cannot be ranked against values scored another, so ``auto`` resumes it
as it began, and an explicit different ``--cv`` is refused by the study's fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass

from automl_tl.errors import UserError
from automl_tl.storage.stored_attrs import existing_study_attrs
from automl_tl.study_record import study_cv_folds
from automl_tl.training.folds import MAX_FOLDS, MIN_FOLDS

AUTO_FOLDS = 5
AUTO_BELOW_VAL_IMAGES = 300  # auto cross-validates when the validation split has fewer images than this


@dataclass(frozen=True)
class Scoring:
    """The folds trials are scored over (0: the validation split) and why."""

    folds: int
    why: str

    def describe(self, scored_images: int) -> str:
        """One line for the start of a search; empty when trials are scored on the validation split."""
        if self.folds < MIN_FOLDS:
            return ""
        return (f"Trials are scored by {self.folds}-fold cross-validation over the {scored_images} train and val "
                f"images ({self.why}); the chosen recipe is then retrained on all of them")


def check_cv_option(requested: str | int) -> None:
    """``--cv`` as a number must be a usable number of folds; refused before any data is read."""
    if isinstance(requested, int) and not MIN_FOLDS <= requested <= MAX_FOLDS:
        raise UserError(f"--cv {requested}: give between {MIN_FOLDS} and {MAX_FOLDS} folds, off (score trials on the "
                        f"validation split) or auto ({AUTO_FOLDS} folds when the validation split has fewer than "
                        f"{AUTO_BELOW_VAL_IMAGES} images).")


def recorded_cv_folds(storage_url: str, study_name: str) -> int | None:
    """The folds an existing study scores its trials over (0 for a study made before ``--cv``); None when
    there is no such study yet."""
    attrs = existing_study_attrs(storage_url, study_name)
    if attrs is None:
        return None
    return study_cv_folds(attrs)


def choose_scoring(requested: str | int, val_images: int, scored_images: int, recorded: int | None) -> Scoring:
    """``--cv`` resolved: ``"off"``, a number of folds, or ``"auto"`` (the study's own scoring when it exists,
    else ``AUTO_FOLDS`` folds below ``AUTO_BELOW_VAL_IMAGES`` validation images). ``scored_images`` is the
    train and val images together, which every fold must have one of."""
    check_cv_option(requested)
    if requested == "off":
        return Scoring(0, "--cv off")
    if isinstance(requested, int):
        scoring = Scoring(requested, f"--cv {requested}")
    elif recorded is not None:
        scoring = Scoring(recorded, "the study began with it")
    elif val_images < AUTO_BELOW_VAL_IMAGES:
        scoring = Scoring(AUTO_FOLDS, f"auto: the validation split has {val_images} images, under "
                                      f"{AUTO_BELOW_VAL_IMAGES}, where the best of many trials is mostly the luckiest")
    else:
        return Scoring(0, f"auto: the validation split has {val_images} images, enough to choose by")
    if scoring.folds > scored_images:
        raise UserError(f"--cv {scoring.folds}: there are only {scored_images} train and val images, fewer than the "
                        f"folds. Use fewer folds, or --cv off.")
    return scoring


SCORE = "score"  # the one name a trial's value has in the progress display, the trial lines, show, the report


def score_meaning(folds: int) -> str:
    """What a trial's score is, in a few words: ``"validation accuracy"`` or ``"5-fold cross-validated accuracy"``
    (``score_name`` in ``show --json``)."""
    return "validation accuracy" if folds < MIN_FOLDS else f"{folds}-fold cross-validated accuracy"


def score_legend(folds: int) -> str:
    """The one line that says what "score" means wherever it is shown."""
    if folds < MIN_FOLDS:
        return (f"{SCORE}: accuracy on the validation split; trials are ranked by it, and the test split is kept for "
                f"the chosen model.")
    return (f"{SCORE}: {score_meaning(folds)}, from out-of-fold predictions over every train and val image; each "
            f"chosen recipe is retrained on all of them, and its test accuracy is that model's.")
