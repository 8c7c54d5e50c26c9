"""The statistical protocol behind every study verdict (docs/studies/protocol.md).

A claim compares arms that share their randomness (common random numbers: the same reference
sample, initial network and noise streams for a given seed), so its evidence is the paired
difference per seed, d_i = metric(arm A, seed i) − metric(arm B, seed i). The effect is the mean
of d over seeds with a 95 % interval over seeds (Student t, or a percentile bootstrap when
asked), and the verdict is three-way:

* ``holds``        — the interval lies wholly on the claimed side of the margin;
* ``fails``        — the interval lies wholly on the other side (the claimed effect is ruled
  out at that margin);
* ``inconclusive`` — the interval straddles it (more seeds, or a larger effect, are needed).

For "A is better than B" the margin is the metric's own noise (its finite-sample floor spread),
so a difference smaller than what two draws of the same law would show never "holds". For
"A is no worse than B" (equivalence within δ) the interval must lie inside (−∞, δ).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

VERDICTS = ("holds", "fails", "inconclusive")
DIRECTIONS = ("less", "greater", "within", "at_most")


@dataclass(frozen=True)
class Effect:
    """A paired effect over seeds: mean difference and its 95 % interval."""

    value: float
    ci: tuple[float, float]
    seeds: int
    method: str = "t"

    def to_json(self) -> dict:
        return {
            "value": _finite(self.value),
            "ci": [_finite(self.ci[0]), _finite(self.ci[1])],
            "seeds": self.seeds,
            "method": self.method,
        }


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval of independent per-seed values (the mean alone for one)."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    n = x.size
    if n == 0:
        raise ValueError("no values")
    mean = float(x.mean())
    if n < 2:
        return mean, -math.inf, math.inf
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * float(x.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def paired_effect(
    a: Sequence[float],
    b: Sequence[float] | None = None,
    *,
    method: str = "t",
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> Effect:
    """The mean of a_i − b_i over seeds (or of a_i alone) with its interval.

    ``method="t"``: Student t over seeds (exact for normal differences; the default, since
    per-seed differences of averaged metrics are close to normal). ``"bootstrap"``: the
    percentile bootstrap of the mean (no normality, but it undercovers below ~10 seeds)."""
    x = np.asarray(a, dtype=np.float64)
    if b is not None:
        y = np.asarray(b, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"paired arms need the same seeds: {x.shape} vs {y.shape}")
        x = x - y
    if method == "t":
        mean, lo, hi = mean_ci(x, level)
    elif method == "bootstrap":
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, x.size, size=(n_boot, x.size))
        boots = x[idx].mean(axis=1)
        mean = float(x.mean())
        lo, hi = (float(q) for q in np.quantile(boots, [0.5 - level / 2, 0.5 + level / 2]))
    else:
        raise ValueError(f"method must be 't' or 'bootstrap', got {method!r}")
    return Effect(mean, (lo, hi), int(x.size), method)


def verdict(effect: Effect, direction: str, margin: float = 0.0) -> str:
    """The three-way verdict of a claim about ``effect`` (docs/studies/protocol.md).

    ``direction="less"``: the claim is effect < −margin (A lower than B by more than the
    margin); ``"greater"``: effect > margin; ``"within"``: |effect| < margin (no worse / no
    better by more than the margin — an equivalence claim); ``"at_most"``: effect < margin
    (A above B by less than the margin, or below it: "no worse" for a lower-is-better metric,
    a non-inferiority claim — holds when the interval lies below +margin, fails when it lies
    wholly above)."""
    lo, hi = effect.ci
    margin = abs(float(margin))
    if direction == "less":
        return "holds" if hi < -margin else "fails" if lo > -margin else "inconclusive"
    if direction == "greater":
        return "holds" if lo > margin else "fails" if hi < margin else "inconclusive"
    if direction == "within":
        if -margin < lo and hi < margin:
            return "holds"
        return "fails" if (lo > margin or hi < -margin) else "inconclusive"
    if direction == "at_most":
        return "holds" if hi < margin else "fails" if lo > margin else "inconclusive"
    raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
