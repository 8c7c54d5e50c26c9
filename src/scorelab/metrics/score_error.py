"""How far a score model is from a target's exact score, time by time.

On a grid of t, with x ~ p_t drawn as m x₀ + s z: the mean squared error E‖s_θ − ∇log p_t‖²,
the relative error E‖s_θ − s‖² / E‖s‖², and the s²-weighted error s(t)² E‖s_θ − s‖² (the DSM
scale, comparable across t), each with a normal-approximation 95 % half-width.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import InvalidParameter
from ..processes import ForwardProcess
from ..targets import Target


@torch.no_grad()
def score_error_profile(
    score_model,
    target: Target,
    process: ForwardProcess,
    times: Sequence[float],
    n: int = 2000,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> list[dict]:
    """``[{t, sigma, mse, mse_ci, relative, weighted}]`` for each t (needs an exact score)."""
    if not target.has_score:
        raise InvalidParameter(
            "target", "has no exact score to compare with", target.kind, "a target with a law"
        )
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    rows = []
    for t in times:
        x0 = target.sample(n, g, dtype=dtype)
        x = process.sample_marginal(x0, float(t), g)
        exact = target.score(x, float(t), process).reshape(n, -1)
        tt = torch.full((n,), float(t), dtype=dtype)
        model = score_model(x, tt).to(dtype).reshape(n, -1)
        err = (model - exact).pow(2).sum(1)
        mse = float(err.mean())
        half = float(1.96 * err.std() / n**0.5)
        norm = float(exact.pow(2).sum(1).mean())
        var = float(process.variance(float(t)))
        rows.append(
            {
                "t": float(t),
                "sigma": float(process.sigma(float(t))),
                "mse": mse,
                "mse_ci": [mse - half, mse + half],
                "relative": mse / norm if norm > 0 else float("nan"),
                "weighted": var * mse,
            }
        )
    return rows
