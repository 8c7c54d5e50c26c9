"""Couplings of a batch of data with a batch of noise for flow matching (docs/theory.md §14.5).

A coupling ``(x0, z) -> z'`` returns the noise re-paired with the data, row i of z' going with
x0[i]: ``independent`` keeps the draw (the product coupling of conditional flow matching);
``minibatch_ot`` solves the exact optimal transport problem between the two empirical measures
of the batch for the squared Euclidean cost (POT's network simplex, ``ot.emd``) and pairs each
x0[i] with the noise row the plan sends it to (Pooladian et al. 2023; Tong et al. 2024). With
uniform weights on equal batches an optimal plan is a permutation, so nothing is averaged and
z' is a reordering of z (its law is the noise law). As the batch grows the pairs approach the
OT map between the data and the noise laws (for Gaussians the Bures map, tested).
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import InvalidParameter
from .registry import get, register


@register("coupling", "independent")
def independent(x0: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The product coupling: the noise as drawn."""
    return z


@register("coupling", "minibatch_ot")
def minibatch_ot(x0: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Exact OT (squared Euclidean cost) between the batch's data and noise, per batch."""
    return z[ot_permutation(x0, z)]


def ot_permutation(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """π with Σᵢ ‖x_i − y_π(i)‖² minimal (exact, through ``ot.emd``), a ``[n]`` index tensor."""
    import ot

    if x.shape[0] != y.shape[0]:
        raise InvalidParameter(
            "z", "must have as many rows as the data batch", y.shape[0], str(x.shape[0])
        )
    n = x.shape[0]
    a = x.detach().reshape(n, -1).to(device="cpu", dtype=torch.float64).numpy()
    b = y.detach().reshape(n, -1).to(device="cpu", dtype=torch.float64).numpy()
    cost = ot.dist(a, b, metric="sqeuclidean")
    w = np.full(n, 1.0 / n)
    plan = ot.emd(w, w, cost, numItermax=max(100_000, 50 * n * n))
    perm = plan.argmax(axis=1)
    if len(set(perm.tolist())) != n:  # the simplex ends on a vertex: this is a safeguard
        raise InvalidParameter("coupling", "the OT solver did not return a permutation", None)
    return torch.as_tensor(perm, device=y.device)


def couple(kind: str, x0: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The noise re-paired with the data by the registered coupling ``kind``."""
    out = get("coupling", kind)(x0, z)
    if out.shape != z.shape:
        raise InvalidParameter("coupling", "must return the noise's shape", tuple(out.shape))
    return out


__all__ = ["couple", "independent", "minibatch_ot", "ot_permutation"]
