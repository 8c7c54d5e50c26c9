"""Worked examples of extending scorelab: each test adds a component through the registry,
uses it through the public API, and removes it again (``registry.unregister``)."""

from __future__ import annotations

import math

import pytest
import torch

import scorelab
from scorelab import registry
from scorelab.errors import InvalidParameter, ScorelabError
from scorelab.metrics import metric_names
from scorelab.targets import Gaussian, Toy2D


def test_add_a_metric():
    """How to add a metric (docs/metrics.md, "Adding a metric"): a bare ``value(x, y)``,
    registered; ``evaluate`` gives it its floor and CI.

    The metric is ‖x̄ − ȳ‖, the distance between the means of the samples x and of a target
    sample y. For n samples of N(μ + δ, Σ) against the target N(μ, Σ) the value is ‖δ‖ up to
    a Monte Carlo error of about √(2 tr Σ / n); the floor is ‖ȳ₂ − ȳ‖ for two independent
    target samples; the CI, a percentile bootstrap of x̄ with y fixed, is by the delta method
    value ± 1.96 √(uᵀΣu / n), u the unit vector along x̄ − ȳ."""

    @registry.register("metric", "mean_gap")
    def mean_gap(x, y):
        """‖mean(samples) − mean(target sample)‖, the error of the first moment."""
        return (x.mean(0) - y.mean(0)).norm()

    try:
        # registered: a default metric, listed after the built-in ones, with its doc line
        assert metric_names()[-1] == "mean_gap"
        assert "mean_gap" in metric_names(default_only=True)
        assert "mean_gap" in scorelab.metrics.METRICS
        assert registry.entry("metric", "mean_gap").doc.startswith("‖mean(samples)")

        mu, delta, n = torch.tensor([1.0, -2.0]), torch.tensor([0.3, 0.4]), 4000
        cov = torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
        target = Gaussian(mean=mu.tolist(), cov=cov.tolist())
        x = Gaussian(mean=(mu + delta).tolist(), cov=cov.tolist()).sample(
            n, torch.Generator().manual_seed(1), torch.float64
        )
        ev = scorelab.evaluate(
            x, target, ["mean_gap", "w2_gaussian"], n_boot=1000, generator=gen(7)
        )
        r = ev["mean_gap"]
        # evaluate's two target samples: the reference y, then y2, from its generator
        g = gen(7)
        y, y2 = (target.sample(n, g, torch.float64) for _ in range(2))
        assert r.value == pytest.approx(float((x.mean(0) - y.mean(0)).norm()), abs=1e-12)
        assert r.floor == pytest.approx(float((y2.mean(0) - y.mean(0)).norm()), abs=1e-12)
        mc = math.sqrt(2 * float(torch.trace(cov)) / n)  # the Monte Carlo error scale
        assert abs(r.value - float(delta.norm())) < 5 * mc  # ‖δ‖ = 0.5
        assert r.floor < 5 * mc
        u = (x.mean(0) - y.mean(0)) / (x.mean(0) - y.mean(0)).norm()
        half = 1.96 * math.sqrt(float(u @ torch.cov(x.T) @ u) / n)
        assert (r.ci[1] - r.ci[0]) / 2 == pytest.approx(half, rel=0.12)
        assert (r.ci[0] + r.ci[1]) / 2 == pytest.approx(r.value, abs=0.2 * half)
        assert (
            r.note
            == "floor: two target samples; CI: percentile bootstrap, 1000 resamples of the samples"
        )
        assert ev.to_json()["mean_gap"]["value"] == r.value
    finally:
        registry.unregister("metric", "mean_gap")

    assert "mean_gap" not in metric_names()
    with pytest.raises(InvalidParameter, match="unknown metric"):
        scorelab.evaluate(x, target, ["mean_gap"])


def test_a_metric_with_metadata():
    """The registration's keywords say when a metric applies and what its floor and CI are:
    ``min_n``, ``needs`` (why not, for a target), ``context`` (arguments from evaluate, here
    the target). ‖x̄ − E[X]‖ against the target's own mean: its floor is the metric of one
    target sample, ‖ȳ₂ − μ‖."""

    def known_mean(target, d):  # why the metric does not apply, or None
        return None if target.moments() is not None else "needs a target with known moments"

    @registry.register(
        "metric", "mean_error", context=("target",), min_n=10, needs=known_mean, ci="basic"
    )
    def mean_error(x, y, target):
        """‖mean(samples) − E[X]‖."""
        return float((x.mean(0) - target.moments()[0]).norm())

    try:
        target = Gaussian(mean=[1.0, -2.0], cov=[[1.0, 0.3], [0.3, 0.5]])
        x = Gaussian(mean=[1.3, -1.6], cov=[[1.0, 0.3], [0.3, 0.5]]).sample(400, gen(1))
        ev = scorelab.evaluate(x, target, ["mean_error"], n_boot=50, generator=gen(2))
        r = ev["mean_error"]
        g = gen(2)
        _y, y2 = (target.sample(400, g, torch.float64) for _ in range(2))
        mu = torch.tensor([1.0, -2.0], dtype=torch.float64)
        assert r.value == pytest.approx(float((x.double().mean(0) - mu).norm()), abs=1e-12)
        assert r.floor == pytest.approx(float((y2.mean(0) - mu).norm()), abs=1e-12)
        assert "basic (bias-corrected) bootstrap, 50 resamples" in r.note

        # its min_n: skipped by default, an error when asked for explicitly
        few = x[:5]
        ev_few = scorelab.evaluate(few, target, n_boot=10, n_boot_ot=10)
        assert {s.name: s.reason for s in ev_few.skipped}["mean_error"] == (
            "needs at least 10 samples (got 5)"
        )
        with pytest.raises(InvalidParameter, match="too few points for mean_error"):
            scorelab.evaluate(few, target, ["mean_error"], n_boot=10)

        # its `needs`: a target without known moments is skipped, with the reason
        ev_toy = scorelab.evaluate(
            Toy2D("moons").sample(50, gen(3)), Toy2D("moons"), ["mean_error"]
        )
        assert ev_toy.skipped[0].reason == "needs a target with known moments"
    finally:
        registry.unregister("metric", "mean_error")


def test_a_metric_registered_wrongly_is_a_clear_error():
    """A misspelt keyword, an unknown CI kind and the old one-argument form each name the
    metric and what is allowed."""
    target = Gaussian(mean=[0.0], cov=[[1.0]])
    x = target.sample(50, gen(0))
    cases = [
        ({"min_samples": 10}, lambda x, y: 0.0, "unknown registration keyword 'min_samples'"),
        ({"ci": "bca"}, lambda x, y: 0.0, "ci='bca'; allowed: percentile, basic"),
        ({"max_points": 0}, lambda x, y: 0.0, "max_points=0; allowed: True, False or an"),
        ({}, lambda c: 0.0, r"takes 1 positional argument\(s\); a metric is value\(x, y\)"),
    ]
    for meta, fn, words in cases:
        registry.register("metric", "bad_metric", **meta)(fn)
        try:
            with pytest.raises(ScorelabError, match=words):
                scorelab.evaluate(x, target, ["bad_metric"], n_boot=10)
        finally:
            registry.unregister("metric", "bad_metric")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
