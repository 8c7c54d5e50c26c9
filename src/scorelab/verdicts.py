"""The statistical protocol behind every study verdict (docs/studies/protocol.md).

A claim compares arms that share their randomness (common random numbers: the same reference
sample, initial network and noise streams for a given seed), so its evidence is the paired
difference per seed, d_i = metric(arm A, seed i) − metric(arm B, seed i). The effect is the mean
of d over seeds with a 95 % interval over seeds (Student t, or a percentile bootstrap when
asked), and the verdict has four outcomes:

* ``holds``        — the interval lies wholly on the claimed side of the margin;
* ``below margin`` — the interval excludes 0 on the claimed side but not the margin: the
  effect is real and in the claimed direction, yet smaller than the claim's margin;
* ``fails``        — the claimed direction is ruled out (the interval lies wholly on the other
  side of 0), or a tolerance claim's bound is exceeded;
* ``inconclusive`` — anything else: more seeds, or a larger effect, are needed.

Every margin carries the rule that fixed it (:class:`Margin`), chosen before the run: for
"A is better than B" the noise of the paired difference itself (:func:`paired_noise_margin`),
for equivalence and non-inferiority claims the tolerance δ with its reason. A quantity that
does not depend on the seed (a closed form) is decided once, as ``exact`` (:func:`exact_verdict`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

VERDICTS = ("holds", "below margin", "fails", "inconclusive")
DIRECTIONS = ("less", "greater", "within", "at_most")


@dataclass(frozen=True)
class Effect:
    """A paired effect over seeds: mean difference and its 95 % interval."""

    value: float
    ci: tuple[float, float]
    seeds: int
    method: str = "t"

    @property
    def exact(self) -> bool:
        """A seed-free quantity (a closed form): no interval, no seed count."""
        return self.method == "exact"

    def to_json(self) -> dict:
        if self.exact:
            return {"value": _finite(self.value), "ci": None, "seeds": None, "method": "exact"}
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


@dataclass(frozen=True)
class Margin:
    """A claim's margin (or tolerance δ) and the rule that fixed it before the run."""

    value: float
    rule: str

    def __post_init__(self):
        if not (math.isfinite(self.value) and self.value >= 0):
            raise ValueError(f"a margin is a finite number ≥ 0, got {self.value!r}")
        if not self.rule.strip():
            raise ValueError("a margin needs the rule that fixed it")

    def to_json(self) -> dict:
        return {"value": float(self.value), "rule": self.rule}


def paired_noise_margin(
    d_ref: Sequence[float], d_other_ref: Sequence[float], *, what: str = "the paired difference"
) -> Margin:
    """The margin of a "better than" claim from the noise of its paired difference.

    ``d_ref[i]`` and ``d_other_ref[i]`` are the claim's paired difference (arm A − arm B) at
    seed i evaluated twice with everything shared but the reference draw (two independent
    samples of the target). Their difference has variance 2 s², where s is the spread a single
    reference draw adds to one evaluation of the difference; the margin is s, estimated over
    seeds: an effect smaller than what redrawing the reference moves the difference by is not
    one the metric resolves. (The spread of an *unpaired* floor overstates this: the arms'
    shared luck cancels in a paired difference.)"""
    x = np.asarray(d_ref, dtype=np.float64) - np.asarray(d_other_ref, dtype=np.float64)
    if x.size < 2:
        raise ValueError("a paired-noise margin needs at least 2 seeds")
    s = float(np.sqrt(np.mean(x**2) / 2.0))
    return Margin(
        s,
        f"noise of {what}: RMS over {x.size} seeds of its change between two independent "
        "reference draws (arms shared), divided by √2",
    )


def verdict(effect: Effect, direction: str, margin: float | Margin = 0.0) -> str:
    """The verdict of a claim about ``effect`` (docs/studies/protocol.md), one of
    :data:`VERDICTS`.

    ``direction="less"``: the claim is effect < −margin (A lower than B by more than the
    margin); ``"greater"``: effect > margin; ``"within"``: |effect| < margin (an equivalence
    claim); ``"at_most"``: effect < margin (a non-inferiority claim — holds when the interval
    lies below +margin, fails when it lies wholly above). "below margin" exists only for the
    directional claims: the interval excludes 0 on the claimed side, but not the margin."""
    lo, hi = effect.ci
    m = abs(float(margin.value if isinstance(margin, Margin) else margin))
    if direction == "less":
        if hi < -m:
            return "holds"
        if hi < 0:
            return "below margin"
        return "fails" if lo > 0 else "inconclusive"
    if direction == "greater":
        if lo > m:
            return "holds"
        if lo > 0:
            return "below margin"
        return "fails" if hi < 0 else "inconclusive"
    if direction == "within":
        if -m < lo and hi < m:
            return "holds"
        return "fails" if (lo > m or hi < -m) else "inconclusive"
    if direction == "at_most":
        return "holds" if hi < m else "fails" if lo > m else "inconclusive"
    raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")


def exact_verdict(value: float, direction: str, margin: float | Margin = 0.0) -> str:
    """The verdict of a claim about a seed-free quantity (a closed form): the interval is the
    point itself, so it is never "inconclusive" unless the value sits exactly on a bound."""
    v = float(value)
    if not math.isfinite(v):
        return "inconclusive"
    return verdict(Effect(v, (v, v), 0, "exact"), direction, margin)
