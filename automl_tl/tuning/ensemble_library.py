"""The candidate library for ensemble selection: different backbones, cut depths and heads before near-copies.

A search's best trials are often neighbours: the same backbone cut at the same block under the same kind of
head, with a slightly different rate or dropout. Their errors agree, so averaging them gains little, while
they fill the library and give greedy selection more ways to fit the selection rows by chance. The library
therefore takes the best trial of each group (backbone, cut, head kind, fine-tuned or not) first, in rank
order, then the others by rank, at most ``PER_GROUP`` of a group; only when that leaves the library short
of its size do further trials of crowded groups fill it, still by rank.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

from automl_tl.types import HEAD_FIT_LBFGS

PER_GROUP = 3  # trials of one group before another group's trial of lower rank

Item = TypeVar("Item")


def diversity_group(params: Mapping[str, Any]) -> tuple[str, float, str, bool]:
    """A trial's group: its backbone, cut fraction, head kind (fitted, linear or hidden units) and whether
    it fine-tunes any block."""
    if params.get("head_fit") == HEAD_FIT_LBFGS:
        head = "fitted"
    else:
        head = "hidden" if int(params.get("head_units") or 0) > 0 else "linear"
    return (str(params.get("backbone", "")), float(params.get("cut_fraction", 1.0)), head,
            float(params.get("freeze_fraction", 1.0)) < 1.0)


def diverse_order(ranked: Sequence[Item], group_of: Callable[[Item], Hashable], limit: int | None,
                  per_group: int = PER_GROUP) -> list[Item]:
    """``ranked`` (best first) reordered for diversity and cut to ``limit`` (None: all): each group's best in
    rank order, then the rest by rank up to ``per_group`` per group, then the remaining trials by rank. The
    first item stays the best one."""
    seen: dict[Hashable, int] = {}
    leaders: list[Item] = []
    followers: list[Item] = []
    crowded: list[Item] = []
    for item in ranked:
        group = group_of(item)
        seen[group] = seen.get(group, 0) + 1
        (leaders if seen[group] == 1 else followers if seen[group] <= per_group else crowded).append(item)
    ordered = leaders + followers + crowded
    return ordered if limit is None else ordered[:limit]
