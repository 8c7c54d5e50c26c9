"""The chain of an error budget: the parts, the order in which they are swapped, the arms it
visits and how the differences between consecutive arms become the parts (docs/budget.md).

An arm is the set of parts already swapped for their exact counterpart: ``frozenset()`` is the
run as it is, ``{"score"}`` the same run with the exact score, and so on. For an order
(p₁, p₂, p₃, p₄) the chain visits E₀ = error(∅), E₁ = error({p₁}), …, E₄ = error({p₁…p₄});
part p_k = E_{k−1} − E_k and the remainder is E₄, so the parts and the remainder sum to the
total E₀ whatever the order. A part that cannot be swapped (or whose swap changes nothing)
is folded away: its arms are the arms without it and its part is exactly 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidParameter

PARTS = ("score", "discretisation", "prior", "early_stopping")
REMAINDER = "remainder"
LABELS = {
    "score": "score",
    "discretisation": "discretisation",
    "prior": "prior",
    "early_stopping": "early stopping",
    REMAINDER: "remainder",
}
#: what each swap replaces, and by what
SWAPS = {
    "score": "the trained score → the target's exact score",
    "discretisation": "the sampler's N steps → a resolved reference (the continuous-time law)",
    "prior": "the prior N(0, prior_std² I) → the exact marginal p_T (same z: coupled)",
    "early_stopping": "stopping at t_min → running on to t = 0",
}
LEVEL = 0.95

Arm = frozenset


def parse_order(order: str | Sequence[str] | None, field: str = "order") -> tuple[str, ...]:
    """An order of the four parts: a comma-separated string or a sequence naming each of
    ``PARTS`` once (``early-stopping`` is read as ``early_stopping``); None is the default
    order."""
    if order is None:
        return PARTS
    raw = order.split(",") if isinstance(order, str) else list(order)
    items = [str(s).strip().replace("-", "_") for s in raw if str(s).strip()]
    allowed = ", ".join(PARTS)
    for item in items:
        if item not in PARTS:
            raise InvalidParameter(field, "names an unknown part", item, allowed)
    if len(set(items)) != len(items):
        twice = next(p for p in items if items.count(p) > 1)
        raise InvalidParameter(field, "names a part twice", twice, allowed)
    missing = [p for p in PARTS if p not in items]
    if missing:
        raise InvalidParameter(
            field, f"must name every part once (missing {', '.join(missing)})", order, allowed
        )
    return tuple(items)


def chain(order: Sequence[str]) -> list[Arm]:
    """The arms E₀ … E₄ that the order visits."""
    return [Arm(order[:k]) for k in range(len(order) + 1)]


def fold(arm: Arm, identities: Mapping[str, str]) -> Arm:
    """The arm with the swaps that change nothing (``identities``: part → why) left out, so
    that equal arms are evaluated once and their difference is exactly 0."""
    return Arm(p for p in arm if p not in identities)


def describe(arm: Arm) -> str:
    if not arm:
        return "the run as it is"
    return "exact: " + ", ".join(LABELS[p] for p in PARTS if p in arm)


@dataclass
class Estimate:
    """One arm's error in one metric: its value on all n samples and, on samples, its values
    on G disjoint groups of the sample indices (the same groups in every arm and in the
    reference): G independent replicates of the whole chain at size n/G."""

    value: float
    groups: np.ndarray | None = None

    def summary(self) -> dict:
        """The arm's error with the interval value ± t·sd/√G: the spread of an error over
        independent replicates falls like 1/√n (measured: docs/budget.md)."""
        return {"value": float(self.value), "ci": _interval(self.value, self.groups, True)}

    def minus(self, other: Estimate) -> dict:
        """The link self − other with the interval value ± t·sd of the paired group
        differences: the spread of a difference between coupled arms was measured to shrink
        little with n (docs/budget.md), so it is not divided by √G (conservative)."""
        value = float(self.value - other.value)
        diff = None
        if self.groups is not None and other.groups is not None:
            diff = self.groups - other.groups
        return {"value": value, "ci": _interval(value, diff, False)}


def _interval(value: float, groups, shrink: bool) -> list[float] | None:
    """value ± t_{G−1}·sd(groups)·(1/√G if ``shrink``); [value, value] in closed form (no
    groups: no sampling error); None where fewer than 2 groups are finite."""
    from scipy import stats

    if groups is None:
        return [float(value), float(value)]
    g = np.asarray(groups, dtype=np.float64)
    g = g[np.isfinite(g)]
    if g.size < 2:
        return None
    half = float(stats.t.ppf(0.5 + LEVEL / 2, g.size - 1) * g.std(ddof=1))
    if shrink:
        half /= math.sqrt(g.size)
    return [float(value) - half, float(value) + half]


def links(
    order: Sequence[str], values: Mapping[Arm, Estimate], identities: Mapping[str, str]
) -> dict:
    """{"total", "parts": {part: {value, ci}}, "arms": [E₀ … E₄]} of one metric along the
    chain of ``order``, from the errors of its (folded) arms."""
    arms = [fold(a, identities) for a in chain(order)]
    E = [values[a] for a in arms]
    parts = {p: E[k].minus(E[k + 1]) for k, p in enumerate(order)}
    parts[REMAINDER] = E[-1].summary()
    return {
        "total": E[0].summary(),
        "parts": parts,
        "arms": [float(e.value) for e in E],
    }


def interaction(main: dict, other: dict) -> dict:
    """Per part, its value in the main order minus its value in the other order: what the
    order of the swaps moves between parts (0 for parts that do not interact)."""
    return {
        p: float(main["parts"][p]["value"] - other["parts"][p]["value"])
        for p in (*PARTS, REMAINDER)
    }
