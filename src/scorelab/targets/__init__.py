"""Targets: data laws, with the exact scores of their noised marginals where known."""

from .base import NotAvailable, Target
from .datasets import TOY2D_NAMES, FiniteDataset, Toy2D, digits, from_file, load_array, mnist
from .empirical import Empirical
from .gaussian import Gaussian, GaussianMixture, mg25, random_gmm, ring8
from .manifold import Circle, Sphere, Subspace, random_isometry
from .tilt import GaussianTilt, TiltedGMM

__all__ = [
    "TOY2D_NAMES",
    "Circle",
    "Empirical",
    "FiniteDataset",
    "Gaussian",
    "GaussianMixture",
    "GaussianTilt",
    "NotAvailable",
    "Sphere",
    "Subspace",
    "Target",
    "TiltedGMM",
    "Toy2D",
    "digits",
    "from_file",
    "load_array",
    "mg25",
    "mnist",
    "random_gmm",
    "random_isometry",
    "ring8",
]
