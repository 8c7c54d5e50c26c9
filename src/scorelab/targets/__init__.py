"""Targets: data laws, with the exact scores of their noised marginals where known."""

# Imported in the order `scorelab list` shows them (each module registers its targets).
from .base import NotAvailable, Target  # noqa: I001
from .gaussian import Gaussian, GaussianMixture, mg25, random_gmm, ring8
from .tilt import GaussianTilt, TiltedGMM
from .empirical import Empirical
from .manifold import Circle, Sphere, Subspace, random_isometry
from .datasets import TOY2D_NAMES, FiniteDataset, Toy2D, digits, from_file, mnist
from .files import load_array

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
