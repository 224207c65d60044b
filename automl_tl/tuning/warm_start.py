"""``search --warm-start OTHER_STUDY``: a new study starts from the best recipes of another one in the same storage
(the same folder with a class added, say), queued before smart start's own plans.

The other study's completed trials are taken best first, and each recipe is fitted to this search's space: a
parameter this space does not have, or a value it cannot take (a backbone that is not searched here, a rate outside
its range), is left out, and Optuna draws it as for any trial; the note says which. Recipes that are the same once
fitted are queued once. Each queued trial records where it came from (``WARM_START_ATTR``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState

from automl_tl.errors import UserError
from automl_tl.runtime.interrupts import storage_write
from automl_tl.storage.urls import open_storage, redact, storage_url
from automl_tl.study_record import WARM_START_ATTR

WARM_START_RECIPES = 5  # the other study's best distinct recipes queued


@dataclass(frozen=True)
class WarmRecipe:
    """One recipe of the other study, fitted to this search's space: the trial it came from, its score there,
    the parameters kept, and the names of those left out."""

    source: int
    value: float
    params: dict[str, Any]
    left_out: list[str] = field(default_factory=list)

    def origin(self) -> str:
        """Where it came from, as its trial attribute says it."""
        return f"trial {self.source} (score {self.value:.4f})"


def fits(dist: BaseDistribution, value: Any) -> bool:
    """Whether ``dist`` can take ``value`` (a choice it has, a number inside its range and on its step)."""
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError, IndexError):
        return False


def fitted_recipe(trial: optuna.trial.FrozenTrial, space: Mapping[str, BaseDistribution]) -> WarmRecipe:
    """``trial``'s parameters that ``space`` can take; the others named, with their values, as left out."""
    kept = {name: value for name, value in trial.params.items() if name in space and fits(space[name], value)}
    left = [f"{name}={value!r}" for name, value in trial.params.items() if name not in kept]
    return WarmRecipe(trial.number, float(trial.value if trial.value is not None else float("nan")), kept, left)


def warm_start_storage(name: str, url: str, other: str) -> str:
    """Where study ``other`` is, for the search of study ``name`` in ``url``: the same storage when it was named
    (--storage, $AUTOML_TL_STORAGE), else ``other``'s own default database beside this study's."""
    return storage_url(other, None) if url == storage_url(name, None) else url


def warm_start_recipes(storage_url: str, other: str, current: str, space: Mapping[str, BaseDistribution],
                       limit: int = WARM_START_RECIPES) -> list[WarmRecipe]:
    """The best ``limit`` distinct completed recipes of study ``other`` in ``storage_url``, fitted to ``space``.
    A study that is not there, or this very study, is refused with a ``UserError``."""
    if other == current:
        raise UserError(f"--warm-start {other!r} names the study being searched; name another study of the same "
                        f"storage (`automl-tl studies` lists them), or leave --warm-start out.")
    try:
        storage = open_storage(storage_url, read_only=True)
    except UserError as exc:
        raise UserError(f"--warm-start {other!r}: no study of that name can be read, because its storage cannot be "
                        f"opened ({exc}) Name a study that exists, or give the database it is in with --storage.") from None
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage=storage, include_best_trial=False))
    if other not in names:
        listed = ", ".join(repr(n) for n in names[:10]) or "none"
        raise UserError(f"--warm-start {other!r}: there is no study of that name in {redact(storage_url)} (its studies: "
                        f"{listed}). Name a study of the same storage, or give its database with --storage.")
    study = optuna.load_study(study_name=other, storage=storage)
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    recipes: list[WarmRecipe] = []
    seen: set[tuple[tuple[str, str], ...]] = set()
    for trial in sorted(done, key=lambda t: (-float(t.value or 0.0), t.number)):
        recipe = fitted_recipe(trial, space)
        key = tuple(sorted((name, repr(value)) for name, value in recipe.params.items()))
        if recipe.params and key not in seen:
            seen.add(key)
            recipes.append(recipe)
        if len(recipes) == limit:
            break
    return recipes


def enqueue_warm_start(study: optuna.Study, other: str, recipes: list[WarmRecipe]) -> list[str]:
    """Queue ``recipes`` on ``study``, first; the lines that say what was queued and what was left out."""
    with storage_write():
        for recipe in recipes:
            study.enqueue_trial(recipe.params, user_attrs={WARM_START_ATTR: f"study {other!r}, {recipe.origin()}"})
    if not recipes:
        return [f"Warm start: study {other!r} has no completed trial whose recipe this search can take; nothing was queued."]
    lines = [f"Warm start: {len(recipes)} recipe(s) of study {other!r} queued first:"]
    for recipe in recipes:
        shown = ", ".join(f"{name}={value!r}" for name, value in recipe.params.items())
        left = f"; left out (not in this search's space): {', '.join(recipe.left_out)}" if recipe.left_out else ""
        lines.append(f"  {recipe.origin()}: {shown}{left}")
    return lines
