"""Which term of each bound matches which measured part, and their ratio.

Every bound scorelab implements is a sum of parts (docs/bounds.md); each part answers one of
the budget's swaps:

* paper A, KL (VP): E1 mixing ↔ prior, E2 approximation ↔ score, E3 discretisation ↔
  discretisation (docs/theory.md §9.1); it runs to t = 0, so it has no early-stopping term;
* paper A, W2 (VP, Gaussian target): mixing ↔ prior, score_error ↔ score, approximation-and-
  discretisation plus time regularity ↔ discretisation (§9.2);
* paper C (VE/EDM): E_I ↔ prior, E_D ↔ discretisation, E_S ↔ score (§9.3);
* paper E (OU, compact support): Λ·initialisation ↔ prior, Λ·score ↔ score, Λ·discretisation
  ↔ discretisation, early stopping ↔ early stopping (§9.5; Λ the amplification).

The ratio bound term / measured part says by how much a term overstates the error it bounds;
it is given where the measured part is positive.
"""

from __future__ import annotations

import math

from .chain import PARTS

#: bound family → (the metric it bounds, its title, {part: the terms that bound it})
MATCH = {
    "kl": (
        "kl",
        "paper A: KL (VP)",
        {"score": ("approximation",), "discretisation": ("discretization",), "prior": ("mixing",)},
    ),
    "w2": (
        "w2",
        "paper A: W2 (VP, Gaussian target)",
        {
            "score": ("score_error",),
            "discretisation": ("approx_discretization", "time_regularity"),
            "prior": ("mixing",),
        },
    ),
    "ve": (
        "kl",
        "paper C: E_I, E_D, E_S (VE/EDM)",
        {"score": ("score",), "discretisation": ("discretization",), "prior": ("initialization",)},
    ),
    "w1_manifold": (
        "w1",
        "paper E: W1 (OU, compact support)",
        {
            "score": ("score",),
            "discretisation": ("discretization",),
            "prior": ("initialization",),
            "early_stopping": ("early_stopping",),
        },
    ),
}
#: paper E's terms inside the amplification Λ (the total is Λ·(…) + early stopping)
AMPLIFIED = {"w1_manifold": ("score", "discretization", "initialization")}


def _term(family: str, terms: dict, names: tuple[str, ...]) -> float | None:
    total = 0.0
    for name in names:
        v = terms.get(name)
        if v is None or not math.isfinite(float(v)):
            return None
        if name in AMPLIFIED.get(family, ()):
            amp = terms.get("amplification")
            if amp is None or not math.isfinite(float(amp)):
                return None
            v = float(v) * float(amp)
        total += float(v)
    return total


def ratio(term: float | None, measured: float | None) -> float | None:
    """term / measured where both are finite and the measured part is positive."""
    if term is None or measured is None or not measured > 0 or not math.isfinite(measured):
        return None
    return term / measured


def beside(bounds: dict | None, measured: dict) -> tuple[list[dict], dict]:
    """For each bound that applies and whose metric was measured: its term for every part,
    the measured part, and their ratio (rows), and the refusals (family: reason).

    ``measured`` is the budget's ``metrics`` mapping (metric → {"total", "parts"})."""
    rows, refused = [], {}
    for family, terms in (bounds or {}).items():
        if family not in MATCH:
            continue
        metric, title, match = MATCH[family]
        if "refused" in terms:
            refused[family] = str(terms["refused"])
            continue
        if metric not in measured:
            refused[family] = f"bounds {metric.upper()}, which was not measured"
            continue
        parts = measured[metric]["parts"]
        row = {"family": family, "title": title, "metric": metric, "parts": {}}
        for part in PARTS:
            term = _term(family, terms, match[part]) if part in match else None
            value = parts[part]["value"]
            row["parts"][part] = {
                "term": term,
                "terms": list(match.get(part, ())),
                "measured": value,
                "ratio": ratio(term, value),
            }
        total = terms.get("total")
        total = float(total) if total is not None and math.isfinite(float(total)) else None
        row["total"] = {
            "term": total,
            "measured": measured[metric]["total"]["value"],
            "ratio": ratio(total, measured[metric]["total"]["value"]),
        }
        rows.append(row)
    return rows, refused
