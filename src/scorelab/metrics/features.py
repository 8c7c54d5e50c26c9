"""Fréchet distance for the 8×8 digits in the features of a small classifier trained here.

NOT Inception FID: the feature map is the 32-unit penultimate layer of a 64-128-32-10 MLP
(ReLU) trained on scikit-learn's digits (1797 images in [−1, 1]) with full-batch Adam for
400 steps from a seeded initialisation (about a second on a CPU; held-out accuracy ≈ 0.97),
cached in-process per seed. FD = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₁^{1/2}Σ₂Σ₁^{1/2})^{1/2})
between Gaussians fitted to the two feature sets (the square of the Bures W₂, as in FID).
"""

from __future__ import annotations

import itertools

import torch

from ..errors import InvalidParameter
from ._checks import as_points
from .gaussian import fit_gaussian, w2_gaussians

_CACHE: dict[int, DigitsClassifier] = {}
WIDTHS = (64, 128, 32, 10)


class DigitsClassifier:
    """A seeded MLP on flattened digits; ``features`` is its penultimate layer."""

    def __init__(self, seed: int = 0, steps: int = 400, n_train: int = 1500):
        from ..targets import digits

        ds = digits(flatten=True)
        from sklearn.datasets import load_digits

        labels = torch.from_numpy(load_digits().target).long()
        g = torch.Generator().manual_seed(int(seed))
        perm = torch.randperm(ds.data.shape[0], generator=g)
        tr, te = perm[:n_train], perm[n_train:]
        x = ds.data.float()
        self.params = []
        for a, b in itertools.pairwise(WIDTHS):
            w = torch.randn(a, b, generator=g) * (2.0 / a) ** 0.5
            self.params += [w.requires_grad_(), torch.zeros(b, requires_grad=True)]
        opt = torch.optim.Adam(self.params, lr=3e-3, weight_decay=1e-4)
        for _ in range(steps):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(self._logits(x[tr]), labels[tr])
            loss.backward()
            opt.step()
        with torch.no_grad():
            pred = self._logits(x[te]).argmax(1)
            self.test_accuracy = float((pred == labels[te]).float().mean())
        for p in self.params:
            p.requires_grad_(False)

    def _forward(self, x: torch.Tensor, upto: int) -> torch.Tensor:
        h = x
        for i in range(upto):
            h = h @ self.params[2 * i] + self.params[2 * i + 1]
            if i < len(WIDTHS) - 2:
                h = torch.relu(h)
        return h

    def _logits(self, x):
        return self._forward(x, len(WIDTHS) - 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``[n, 32]`` (float64) of digits ``[n, 1, 8, 8]`` or ``[n, 64]``."""
        x = as_points(x, "samples", dim=64, min_n=1)
        with torch.no_grad():
            return self._forward(x.float(), len(WIDTHS) - 2).double()


def digits_classifier(seed: int = 0) -> DigitsClassifier:
    """The cached classifier for ``seed`` (trained on first use)."""
    if int(seed) not in _CACHE:
        _CACHE[int(seed)] = DigitsClassifier(int(seed))
    return _CACHE[int(seed)]


def frechet_distance(feat_x, feat_y) -> float:
    """FD between Gaussians fitted to two feature sets (each needs ≥ 2 rows)."""
    fx = as_points(feat_x, "feat_x", min_n=2)
    fy = as_points(feat_y, "feat_y", min_n=2)
    if fx.shape[1] != fy.shape[1]:
        raise InvalidParameter("feat_y", f"must have {fx.shape[1]} features", tuple(fy.shape))
    mx, cx = fit_gaussian(fx)
    my, cy = fit_gaussian(fy)
    return w2_gaussians(mx, cx, my, cy) ** 2


def digits_fd(samples, reference, seed: int = 0) -> float:
    """Fréchet distance between two sets of 8×8 digits in the classifier's features."""
    clf = digits_classifier(seed)
    return frechet_distance(clf.features(samples), clf.features(reference))
