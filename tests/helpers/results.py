"""Reading a study's results.json: every number in a nested JSON value, and a claim checked
against its evidence recomputed here, apart from the library's statistics (``verdicts.py``).

``check_claim`` takes the per-seed values a claim rests on, recomputed by the test from the
numbers results.json stores, and checks the claim's effect, its 95 % interval and its verdict
against a second implementation of the protocol (docs/studies/protocol.md): the paired mean,
the Student-t interval (with two seeds, the quick mode, its quantile is the Cauchy law's
closed form tan(0.475π)), and the four-outcome rule. ``check_exact_claim`` checks a seed-free
claim: its value, no interval, no seed count. Both check that the margin comes with its rule.
``check_provenance`` checks that a `paper` claim names the statement of the paper it rests on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

# Student t's 97.5 % quantile with one degree of freedom: t₁ is the Cauchy law, whose quantile
# function is tan(π(p − ½))
T975_ONE_DOF = math.tan(0.475 * math.pi)


def numbers(obj) -> Iterator[float]:
    """Every int or float (not bool) in nested dicts and lists."""
    if isinstance(obj, dict):
        for v in obj.values():
            yield from numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from numbers(v)
    elif isinstance(obj, int | float) and not isinstance(obj, bool):
        yield obj


def paired_interval(
    a: Sequence[float], b: Sequence[float] | None = None
) -> tuple[float, float, float]:
    """The mean of a_i − b_i (or a_i) and its 95 % Student-t interval over the seeds."""
    d = np.asarray(a, dtype=np.float64)
    if b is not None:
        d = d - np.asarray(b, dtype=np.float64)
    mean = float(d.mean())
    if np.ptp(d) == 0.0:  # identical per-seed values (an exact quantity): no spread
        return mean, mean, mean
    if d.size == 2:
        q = T975_ONE_DOF
    else:
        from scipy import stats

        q = float(stats.t.ppf(0.975, d.size - 1))
    half = q * float(d.std(ddof=1)) / math.sqrt(d.size)
    return mean, mean - half, mean + half


def four_way(lo: float, hi: float, direction: str, margin: float) -> str:
    """The verdict of an interval [lo, hi] against a direction and margin, written apart from
    ``verdicts.verdict``: which side of 0 and of the margin the interval lies on."""
    m = abs(margin)
    if direction in ("less", "greater"):
        sign = -1.0 if direction == "less" else 1.0
        # reflect a "less" claim onto a "greater" one: the claimed side is then above
        lo, hi = sorted((sign * lo, sign * hi))
        if lo > m:
            return "holds"
        if lo > 0:
            return "below margin"
        return "fails" if hi < 0 else "inconclusive"
    claimed, refuted = {
        "within": (-m < lo and hi < m, lo > m or hi < -m),
        "at_most": (hi < m, lo > m),
    }[direction]
    return "holds" if claimed else "fails" if refuted else "inconclusive"


def _check_margin(claim: dict, margin: float) -> None:
    stored = claim.get("margin") or {}
    assert stored.get("value") == pytest.approx(abs(margin), rel=1e-9, abs=1e-15), claim["id"]
    assert str(stored.get("rule", "")).strip(), f"{claim['id']}: margin without its rule"


def check_claim(
    claim: dict,
    a: Sequence[float],
    b: Sequence[float] | None = None,
    *,
    direction: str,
    margin: float,
    verdict: str | None = None,
) -> None:
    """The claim's effect and interval are the paired mean and t-interval of ``a`` − ``b``, its
    verdict the four-outcome rule's (or ``verdict``, where the study overrides the rule), and
    its margin the one given, with a rule."""
    value, lo, hi = paired_interval(a, b)
    eff = claim["effect"]
    where = claim["id"]
    scale = max(abs(value), abs(lo), abs(hi), 1e-300)
    assert not claim.get("exact"), f"{where}: a measured claim is not exact"
    assert eff["value"] == pytest.approx(value, rel=1e-9, abs=1e-12 * scale), where
    assert eff["ci"] == pytest.approx([lo, hi], rel=1e-9, abs=1e-12 * scale), where
    assert claim["seeds"] == len(a), where
    _check_margin(claim, margin)
    expected = verdict if verdict is not None else four_way(lo, hi, direction, margin)
    assert claim["verdict"] == expected, (where, (lo, hi), direction, margin)


def check_exact_claim(claim: dict, value: float, *, direction: str, margin: float) -> None:
    """A seed-free claim: labelled exact, its value the one recomputed, no interval and no
    seed count, decided by where the value lies."""
    where = claim["id"]
    assert claim.get("exact") is True and claim["seeds"] is None, where
    assert claim["effect"]["ci"] is None, where
    assert claim["effect"]["value"] == pytest.approx(value, rel=1e-9, abs=1e-12), where
    _check_margin(claim, margin)
    assert claim["verdict"] == four_way(value, value, direction, margin), where


# What a `paper` claim's `where` must name: a statement the paper itself makes — a sentence of
# its abstract, a numbered result (theorem, proposition, corollary, lemma), a figure, a table,
# a section or an equation. Abbreviations as papers print them (Thm., Prop., Fig., Eq., §).
_PAPER_PLACES = re.compile(
    r"\b(abstract|theorems?|thm\.|propositions?|prop\.|corollary|corollaries|cor\.|lemmas?|"
    r"figures?|figs?\.|tables?|tab\.|sections?|sec\.|equations?|eqs?\.)|§|\(\d+(\.\d+)*\)",
    re.IGNORECASE,
)


def check_provenance(claim: dict) -> None:
    """A claim's provenance: ``source`` is "paper" or "extrapolation" and ``where`` says
    something; a ``paper`` claim's ``where`` names the statement of the paper it rests on (an
    abstract sentence, theorem, proposition, corollary, lemma, figure, table, section or
    equation) — anything the paper does not state is an extrapolation."""
    where, source = str(claim.get("where") or "").strip(), claim.get("source")
    cid = claim.get("id", "?")
    assert source in ("paper", "extrapolation"), f"{cid}: source {source!r}"
    assert where, f"{cid}: a claim says where it comes from"
    if source == "paper":
        assert _PAPER_PLACES.search(where), (
            f"{cid}: a paper claim's `where` names an abstract sentence, theorem, proposition, "
            f"corollary, lemma, figure, table, section or equation of the paper: {where!r}"
        )


def paired_noise(d: Sequence[float], d_again: Sequence[float]) -> float:
    """The margin a "better than" claim should carry, recomputed here: its paired difference
    evaluated twice per seed (two independent reference draws, arms shared) changes by
    e − e' with variance 2s²; s = √(mean((d − d')²)/2)."""
    change = np.asarray(d, dtype=np.float64) - np.asarray(d_again, dtype=np.float64)
    return math.sqrt(float(np.mean(change**2)) / 2.0)
