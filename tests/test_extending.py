"""Worked examples of extending scorelab: each test adds a component through the registry,
uses it through the public API, and removes it again (``registry.unregister``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import scorelab
from scorelab import registry
from scorelab.errors import InvalidParameter
from scorelab.metrics import MetricContext, MetricResult, metric_names
from scorelab.targets import Gaussian, Toy2D


def test_add_a_metric():
    """How to add a metric (docs/metrics.md, "Adding a metric"): one decorated function.

    The metric is ‖x̄ − E[X]‖, the distance between the samples' mean and the target's. For n
    samples of N(μ + δ, Σ) against the target N(μ, Σ), x̄ − μ ~ N(δ, Σ/n): the value is ‖δ‖
    up to a Monte Carlo error of about √(tr Σ / n), and the floor (one target sample) is about
    √(tr Σ / n) itself."""

    def known_mean(target, d):  # why the metric does not apply, or None
        return None if target.moments() is not None else "needs a target with known moments"

    @registry.register("metric", "mean_error", min_n=10, needs=known_mean)
    def mean_error(c: MetricContext) -> MetricResult:
        """‖mean(samples) − E[X]‖, the error of the first moment."""
        mu = c.target.moments()[0]
        f = lambda z: float((z.mean(0) - mu).norm())  # noqa: E731
        boot = [f(c.x[i]) for i in c.boot_index(c.n_boot)]  # percentile bootstrap
        ci = (float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975)))
        return MetricResult("mean_error", f(c.x), f(c.y2), ci, "floor: one target sample")

    try:
        # registered: a default metric, listed after the built-in ones, with its doc line
        assert metric_names()[-1] == "mean_error"
        assert "mean_error" in metric_names(default_only=True)
        assert "mean_error" in scorelab.metrics.METRICS
        assert registry.entry("metric", "mean_error").doc.startswith("‖mean(samples)")

        mu, delta, n = torch.tensor([1.0, -2.0]), torch.tensor([0.3, 0.4]), 4000
        cov = torch.tensor([[1.0, 0.3], [0.3, 0.5]])
        target = Gaussian(mean=mu.tolist(), cov=cov.tolist())
        g = torch.Generator().manual_seed(0)
        x = Gaussian(mean=(mu + delta).tolist(), cov=cov.tolist()).sample(n, g, torch.float64)
        ev = scorelab.evaluate(x, target, ["mean_error", "w2_gaussian"], n_boot=50, generator=g)
        r = ev["mean_error"]
        assert r.value == pytest.approx(float((x.mean(0) - mu).norm()), abs=1e-12)
        mc = math.sqrt(float(torch.trace(cov)) / n)  # the Monte Carlo error scale
        assert abs(r.value - float(delta.norm())) < 5 * mc  # ‖δ‖ = 0.5
        assert r.floor < 5 * mc
        assert r.ci[0] <= r.value <= r.ci[1]
        assert ev.to_json()["mean_error"]["value"] == r.value

        # its min_n: skipped by default, an error when asked for explicitly
        few = x[:5]
        ev_few = scorelab.evaluate(few, target, n_boot=10, n_boot_ot=10)
        assert {s.name: s.reason for s in ev_few.skipped}["mean_error"] == (
            "needs at least 10 samples (got 5)"
        )
        with pytest.raises(InvalidParameter, match="too few points for mean_error"):
            scorelab.evaluate(few, target, ["mean_error"], n_boot=10)

        # its `needs`: a target without known moments is skipped, with the reason
        ev_toy = scorelab.evaluate(Toy2D("moons").sample(50, g), Toy2D("moons"), ["mean_error"])
        assert ev_toy.skipped[0].reason == "needs a target with known moments"
    finally:
        registry.unregister("metric", "mean_error")

    assert "mean_error" not in metric_names()
    with pytest.raises(InvalidParameter, match="unknown metric"):
        scorelab.evaluate(x, target, ["mean_error"])
