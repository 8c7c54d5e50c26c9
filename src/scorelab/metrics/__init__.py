"""Metrics: how far samples are from a target, each with its finite-sample floor and a CI.

``evaluate(samples, target)`` runs every metric that applies; a metric is a registered
``value(x, y)`` with metadata, and one wrapper (``assess``) gives each its floor and CI. The
functions below compute one metric each on plain tensors. See docs/metrics.md for
definitions, estimators and biases.
"""

from .contract import MetricContext, MetricResult, MetricSpec, Resamples, assess, spec_of
from .density import entropy, mean_nll, tv_histogram, tv_projections
from .evaluate import Evaluation, Skipped, check_metric_names, evaluate, metric_names
from .features import DigitsClassifier, digits_classifier, digits_fd, frechet_distance
from .gaussian import (
    fit_gaussian,
    gaussian_entropy,
    kl_gaussian_fit,
    kl_gaussians,
    w2_gaussian_fit,
    w2_gaussians,
)
from .kernel import mmd2
from .knn import knn_kl
from .memorisation import memorised_fraction, nn_ratio
from .transport import sinkhorn_divergence, sliced_w2, w1, w2, wasserstein


def __getattr__(name: str):
    if name == "METRICS":  # the registered metric names, in order (computed on each access)
        return metric_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "METRICS",
    "DigitsClassifier",
    "Evaluation",
    "MetricContext",
    "MetricResult",
    "MetricSpec",
    "Resamples",
    "Skipped",
    "assess",
    "check_metric_names",
    "digits_classifier",
    "digits_fd",
    "entropy",
    "evaluate",
    "fit_gaussian",
    "frechet_distance",
    "gaussian_entropy",
    "kl_gaussian_fit",
    "kl_gaussians",
    "knn_kl",
    "mean_nll",
    "memorised_fraction",
    "metric_names",
    "mmd2",
    "nn_ratio",
    "sinkhorn_divergence",
    "sliced_w2",
    "spec_of",
    "tv_histogram",
    "tv_projections",
    "w1",
    "w2",
    "w2_gaussian_fit",
    "w2_gaussians",
    "wasserstein",
]
