"""``search --max-latency-ms`` on a study that already exists: the study's limit is kept when the option is
left out, changed only when a different one is given (``off`` lifts it), and the run says which, before
any trial.

A latency limit only decides which architectures are trained; a trial's score does not depend on it, so,
unlike ``--epochs`` or ``--cv``, changing it leaves the study's trials comparable and is not refused. What
a change cannot do is rewrite the past: trials already finished keep their state and their Optuna
constraint (``latency - limit`` as it was then). The sentence says what that means for each direction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automl_tl.study_record import study_latency_limit

OFF = "off"  # --max-latency-ms off: train every architecture again


def recorded_limit(attrs: Mapping[str, Any]) -> float | None:
    """The limit the study's last run trained with (None: none, or a study from before latency limits)."""
    return study_latency_limit(attrs)


def resumed_limit(given: float | str | None, attrs: Mapping[str, Any] | None) -> tuple[float | None, str | None]:
    """This run's limit, and a sentence when it is not simply what the option says of a new study.

    ``given`` is the option: milliseconds, ``"off"``, or None when left out. ``attrs`` are the existing
    study's user attributes, None for a study this run creates."""
    asked = None if given is None or given == OFF else float(given)
    if attrs is None:
        return asked, None
    before = recorded_limit(attrs)
    if given is None:
        if before is None:
            return None, None
        return before, (f"the study's limit is kept: architectures slower than {before:g} ms at batch 1 are not "
                        f"trained (--max-latency-ms MS sets another, --max-latency-ms off lifts it)")
    if asked == before:
        return asked, None
    if asked is None:
        return None, (f"--max-latency-ms off lifts the study's limit of {before:g} ms for this run and the workers "
                      f"that join it: every architecture is trained again. Trials the limit kept from training stay "
                      f"pruned as too slow")
    kept = "for this run and the workers that join it"
    if before is None:
        return asked, (f"--max-latency-ms {asked:g} applies from now on, {kept}; the study's earlier trials ran "
                       f"without a limit and stay as they were, so its leaderboard may rank slower ones "
                       f"(`export --max-latency-ms {asked:g}` picks within the limit)")
    if asked < before:
        return asked, (f"--max-latency-ms {asked:g} replaces the study's limit of {before:g} ms, {kept}; earlier "
                       f"trials stay as they were, so its leaderboard may rank trials slower than {asked:g} ms "
                       f"(`export --max-latency-ms {asked:g}` picks within the new limit)")
    return asked, (f"--max-latency-ms {asked:g} replaces the study's limit of {before:g} ms, {kept}; trials the "
                   f"earlier limit kept from training stay pruned as too slow, and the sampler still counts them as "
                   f"over a limit")
