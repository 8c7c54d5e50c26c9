"""The generic wrapper (``metrics.assess``): every built-in is a ``value(x, y)`` whose floor is
``value(y2, y)``, and whose fast path computes the bootstrap of its definition."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import scorelab
from scorelab import registry
from scorelab.config import build_target
from scorelab.metrics import MetricContext, assess, metric_names, spec_of
from scorelab.targets import Gaussian

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _context(x, target, seed: int, **kw) -> MetricContext:
    g = gen(seed)
    n = x.shape[0]
    y = target.sample(n, g, dtype=F64).reshape(n, -1)
    y2 = target.sample(n, g, dtype=F64).reshape(n, -1)
    settings = dict(n_boot=40, n_boot_ot=12, max_points=2000, n_permutations=0)
    settings.update(kw)
    return MetricContext(x.reshape(n, -1).double(), y, y2, target, g, **settings)


def _without_fast_path(e: registry.Entry) -> registry.Entry:
    meta = {k: v for k, v in e.meta.items() if k != "resample"}
    return dataclasses.replace(e, meta=meta)


def _cases():
    ring = build_target({"kind": "gmm", "preset": "ring8"}, seed=0)
    x = ring.sample(150, gen(11), F64) * 1.1
    emp = build_target({"kind": "empirical", "points": x[:60].tolist()}, seed=0)
    xe = torch.cat([x[:30], x[80:120] + 0.01])
    digits = build_target({"kind": "digits"}, seed=0)
    xd = digits.sample(60, gen(12), F64)
    xd = xd + 0.3 * torch.randn(xd.shape, generator=gen(13), dtype=F64)
    return [
        ("sliced_w2", ring, x, 0.0),
        ("tv", ring, x, 0.0),
        ("tv_proj", ring, x, 0.0),
        ("sinkhorn", ring, x, 1e-4),  # each solve stops at a marginal error of 1e-6
        ("memorised", emp, xe, 0.0),
        ("nn_ratio", emp, xe, 0.0),
        ("fd_digits", digits, xd, 1e-9),  # features of a batch vs of its rows
    ]


@pytest.mark.parametrize(
    "name,target,x,rtol", _cases(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_fast_path_is_the_bootstrap_of_the_definition(name, target, x, rtol):
    """Where resampling with duplicated points is the metric's own bootstrap (histograms,
    sorted projections, per-point scores, entropic OT, whose value is the same for a point
    counted twice or weighted twice), the fast path's value, floor and CI equal those of the
    generic path, ``value(x[i], y)`` per resample, on the same draws."""
    e = registry.entry("metric", name)
    assert spec_of(e).resample is not None
    fast = assess(e, _context(x, target, 5))
    slow = assess(_without_fast_path(e), _context(x, target, 5))
    assert fast.value == pytest.approx(slow.value, rel=rtol, abs=1e-12)
    assert fast.floor == pytest.approx(slow.floor, rel=rtol, abs=1e-12)
    assert fast.ci == pytest.approx(slow.ci, rel=max(rtol, 1e-12), abs=1e-9)
    assert fast.ci[0] < fast.ci[1]


def test_floor_is_the_value_between_two_target_samples():
    """The built-ins whose value draws no randomness of its own (sliced W2 draws projections,
    MMD permutations, so a call here would not repeat evaluate's): floor = value(y2, y),
    computed here by calling the registered function itself on evaluate's two target
    samples."""
    target = Gaussian(mean=[0.5, -1.0], cov=[[1.0, 0.3], [0.3, 0.5]])
    x = Gaussian(mean=[0.7, -1.0], cov=[[1.2, 0.3], [0.3, 0.5]]).sample(200, gen(1), F64)
    names = ["kl_gaussian", "w2_gaussian", "w1", "w2", "kl_knn", "nll"]
    ev = scorelab.evaluate(x, target, names, n_boot=20, n_boot_ot=10, generator=gen(3))
    g = gen(3)
    y, y2 = (target.sample(200, g, dtype=F64) for _ in range(2))
    simple = {
        "kl_gaussian": {"mean": target.moments()[0], "cov": target.moments()[1]},
        "w2_gaussian": {"mean": target.moments()[0], "cov": target.moments()[1]},
        "w1": {},
        "w2": {},
        "kl_knn": {},
        "nll": {"target": target},
    }
    for nm, kw in simple.items():
        f = registry.get("metric", nm)
        assert ev[nm].floor == pytest.approx(float(f(y2, y, **kw)), rel=1e-12, abs=1e-15), nm
        assert ev[nm].value == pytest.approx(float(f(x, y, **kw)), rel=1e-12, abs=1e-15), nm


def test_values_lie_in_their_declared_ranges():
    """The metadata says what a value can be: each built-in's value and floor on a mixture
    (and on training points) stay in ``value_range`` (the CI's ends are not clipped to it: a
    basic interval's lower end may fall below a distance's 0)."""
    ring = build_target({"kind": "gmm", "preset": "ring8"}, seed=0)
    x = ring.sample(300, gen(4), F64) * 1.2
    emp = build_target({"kind": "empirical", "points": x[:100].tolist()}, seed=0)
    seen = set()
    for target, xs in ((ring, x), (emp, x[50:200])):
        ev = scorelab.evaluate(xs, target, n_boot=20, n_boot_ot=10, generator=gen(0))
        for r in ev.results:
            lo, hi = spec_of(registry.entry("metric", r.name)).value_range
            for v in (r.value, r.floor):
                assert lo is None or v >= lo - 1e-12, (r.name, v)
                assert hi is None or v <= hi + 1e-12, (r.name, v)
            seen.add(r.name)
    bounded = {
        nm
        for nm in metric_names()
        if spec_of(registry.entry("metric", nm)).value_range != (None, None)
    }
    assert bounded - {"kl_gaussian", "fd_digits"} <= seen


def test_metadata_of_every_built_in_is_valid():
    """spec_of accepts every registered metric, and the floor/CI keywords are the ones the
    wrapper knows."""
    for nm in metric_names():
        spec = spec_of(registry.entry("metric", nm))
        assert spec.ci in ("percentile", "basic") or callable(spec.ci)
        assert spec.lower_is_better in (True, False, None)
    assert spec_of(registry.entry("metric", "nn_ratio")).lower_is_better is False
    assert spec_of(registry.entry("metric", "nll")).needs_density


def test_generic_percentile_ci_matches_a_plain_bootstrap():
    """The generic path on a plugin-like statistic is the textbook percentile bootstrap:
    the same replicates computed here by hand from the same draws."""
    target = Gaussian(mean=[0.0, 0.0], cov=[[1.0, 0.0], [0.0, 1.0]])
    x = target.sample(300, gen(8), F64) + 0.2
    registry.register("metric", "mean_norm")(lambda x, y: float(x.mean(0).norm()))
    try:
        c = _context(x, target, 9, n_boot=300)
        r = assess(registry.entry("metric", "mean_norm"), c)
        g = gen(9)
        for _ in range(2):
            target.sample(300, g, dtype=F64)
        idx = torch.randint(0, 300, (300, 300), generator=g)
        boot = np.array([float(x[i].mean(0).norm()) for i in idx])
        assert r.ci == pytest.approx(tuple(np.quantile(boot, [0.025, 0.975])), rel=1e-12)
        assert math.isclose(r.value, float(x.mean(0).norm()), rel_tol=1e-15)
    finally:
        registry.unregister("metric", "mean_norm")
