"""The report's table of paper C's terms beside the measured W2."""

from __future__ import annotations

import numpy as np

from ..common import Study
from .grid_claims import w2_per_seed
from .settings import GRIDS, Settings


def terms_table(study: Study, cells: list[dict], s: Settings, exact_terms: dict) -> None:
    """Paper C's terms beside the measured W2, means over seeds."""
    header = ["checkpoint", "grid", "N", "E_I", "E_D", "E_S", "E_S share", "W2"]
    rows = []
    for ck, n in (("well", s.n_compare), ("under", s.n_compare), ("final", s.n_small),
                  ("under", s.n_small)):  # fmt: skip
        for g in GRIDS:
            terms = [c["terms"][f"{ck}/{g}/{n}"] for c in cells]
            rows.append(
                [ck, g, n]
                + [fmt4(np.mean([t[f] for t in terms])) for f in ("E_I", "E_D", "E_S", "share")]
                + [fmt4(np.mean(w2_per_seed(cells, f"{ck}/{g}/{n}")))]
            )
    for n in (s.n_compare, s.n_small):
        if f"exact/edm/{n}" not in cells[0]["w2"]:
            continue
        for g in GRIDS:
            t = exact_terms[f"{g}/{n}"]
            w = np.mean(w2_per_seed(cells, f"exact/{g}/{n}"))
            rows.append(["exact score", g, n, fmt4(t["E_I"]), fmt4(t["E_D"]), "0", "0", fmt4(w)])
    study.section("E_I / E_D / E_S")
    study.text(
        "Paper C's proxies (docs/theory.md §9.3; bounds/paper_c.py), means over seeds: E_I ≤ "
        "E‖X₀‖²/(2σ_max²) (the ring is not Gaussian, so the second-moment bound), E_D = "
        "d Σ (σ_k²/σ_{k+1}² − 1)², E_S = Σ (σ_k² − σ_{k+1}²) E‖s_θ − ∇log p‖² at the grid's "
        "σ_k (interpolated from the measured profile); the share is E_S/(E_I + E_D + E_S). "
        "They are proxies of a KL bound, not predictions of W2."
    )
    study.table(header, rows)


def fmt4(v: float) -> str:
    return f"{v:.4g}"
