"""The figure logic of sweeps, budgets and audits (``scorelab.figures``), checked on its
numbers rather than its pixels: the axis scale chosen for a key, the interval over seeds
(against an independent computation, a Monte Carlo coverage check, and the metric's range),
the lead table's best cell, and what a panel draws."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import stats

from scorelab.figures import (
    Series,
    axis_scale,
    lead_rows,
    metric_meta,
    metric_panel,
    seed_interval,
)
from scorelab.sweep.summary import seed_ci


@pytest.mark.parametrize(
    "key,values,scale",
    [
        ("sampler.steps", [5, 10, 25], "log"),  # a count, though it spans less than a decade
        ("train.steps", [300, 1000, 3000], "log"),
        ("nfe", [10, 20], "log"),
        ("process.schedule.sigma_max", [20.0, 80.0], "log"),
        ("train.lr", [1e-4, 3e-4], "log"),
        ("train.loss.alpha", [0.5, 1.0, 2.0], "log"),
        ("sampler.n", [500, 2000], "log"),
        ("sampler.grid.rho", [5.0, 7.0, 9.0], "linear"),  # an exponent: linear
        ("sampler.grid.rho", [1.0, 30.0], "log"),  # positive and spanning a decade
        ("sampler.eta", [0.0, 0.5, 1.0], "linear"),  # zero cannot go on a log axis
        ("sampler.steps", [0, 10], "linear"),
        ("sampler.kind", ["heun", "euler"], "category"),
        ("sampler.steps", [25], "linear"),  # one value: nothing to spread
    ],
)
def test_the_axis_scale_follows_the_key_and_its_values(key, values, scale):
    assert axis_scale(key, values) == scale


def test_the_interval_of_a_nonnegative_metric_stays_above_zero():
    """The sweep of the quickstart with two seeds: W2 0.2427 and 0.1759 at 5 steps. The plain
    t interval crosses 0; the interval on the log scale does not, and equals the closed form
    exp(mean log ± t₀.₉₇₅,₁ · sd(log) / √2)."""
    w2 = [0.2426660529627919, 0.17589014488805726]
    _, plain_lo, _ = seed_ci(w2)
    assert plain_lo < 0
    iv = seed_interval(w2, (0.0, None))
    logs = np.log(w2)
    half = stats.t.ppf(0.975, 1) * logs.std(ddof=1) / math.sqrt(2)
    assert iv.lo == pytest.approx(math.exp(logs.mean() - half), rel=1e-12)
    assert iv.hi == pytest.approx(math.exp(logs.mean() + half), rel=1e-12)
    assert iv.centre == pytest.approx(math.sqrt(w2[0] * w2[1]), rel=1e-12)  # geometric mean
    assert 0 < iv.lo < min(w2) and iv.hi > max(w2)


def test_the_log_interval_covers_the_median_of_a_lognormal_95_percent_of_the_time():
    """3 seeds of a lognormal metric, 4000 repetitions: coverage of its median e^μ within
    0.95 ± 4 standard errors (it is exact for lognormal values)."""
    rng = random.Random(0)
    mu, reps = -1.5, 4000
    hits = sum(_covers(rng, mu) for _ in range(reps))
    se = math.sqrt(0.95 * 0.05 / reps)
    assert abs(hits / reps - 0.95) < 4 * se


def _covers(rng, mu):
    iv = seed_interval([math.exp(rng.gauss(mu, 0.6)) for _ in range(3)], (0.0, None))
    return iv.lo < math.exp(mu) < iv.hi


@pytest.mark.parametrize("seed", range(30))
def test_no_interval_leaves_the_metric_range(seed):
    rng = random.Random(seed)
    n = rng.choice([2, 3, 5, 8])
    lower, upper = rng.choice([(0.0, None), (0.0, 1.0), (-1.0, None)])
    top = 1.0 if upper is not None else 10.0
    xs = [lower + rng.random() * (top - lower) for _ in range(n)]
    if seed % 3 == 0:
        xs[0] = lower  # a value at the bound: no log scale, the t interval clipped
    iv = seed_interval(xs, (lower, upper))
    assert iv.lo >= lower and (upper is None or iv.hi <= upper)
    assert iv.lo <= iv.centre <= iv.hi
    if seed % 3 == 0:
        assert iv.centre == pytest.approx(sum(xs) / n)
        _, lo, hi = seed_ci(xs)
        assert iv.lo == max(lo, lower) and iv.hi == (hi if upper is None else min(hi, upper))
        assert ("clipped" in iv.method) == (lo < lower or (upper is not None and hi > upper))


def test_an_unbounded_metric_gets_the_plain_t_interval():
    xs = [0.002, -0.001, 0.0005]
    iv = seed_interval(xs)
    assert (iv.centre, iv.lo, iv.hi) == pytest.approx(seed_ci(xs))
    assert iv.method == "t"
    assert seed_interval([0.3]).lo == seed_interval([0.3]).hi == 0.3


def test_the_registry_gives_the_metric_range():
    assert metric_meta("w2") == ((0.0, None), True)
    assert metric_meta("heun/w2") == ((0.0, None), True)
    assert metric_meta("tv") == ((0.0, 1.0), True)
    assert metric_meta("mmd")[0] == (None, None)  # unbiased MMD² may be negative
    assert metric_meta("not_a_metric") == ((None, None), True)


def _rows():
    """Two swept keys × three seeds: "err" falls with steps and is lowest at steps=25,
    lr=0.1; "acc" (higher is better) peaks at steps=10, lr=0.01; "nll" is nearest its floor
    at steps=5, lr=0.1."""
    out = []
    for steps in (5, 10, 25):
        for lr in (0.01, 0.1):
            for seed in range(3):
                jitter = 1 + 0.01 * seed
                out.append({
                    "sampler.steps": steps, "train.lr": lr, "seed": seed, "status": "done",
                    "err": (1.0 / steps + (0.0 if lr == 0.1 else 0.05)) * jitter,
                    "err_floor": 0.02,
                    "acc": (0.9 if (steps, lr) == (10, 0.01) else 0.5) * jitter,
                    "nll": (1.0 if (steps, lr) == (5, 0.1) else 1.3) * jitter,
                    "nll_floor": 1.0,
                })  # fmt: skip
    out.append({"sampler.steps": 25, "train.lr": 0.1, "seed": 9, "status": "failed", "err": 0.0})
    return out


def test_the_lead_table_picks_the_best_cell_by_the_metric_direction():
    meta = {"err": ((0.0, None), True), "acc": ((0.0, 1.0), False), "nll": ((None, None), None)}
    rows = lead_rows(_rows(), ["sampler.steps", "train.lr"], ["err", "acc", "nll"], meta.get)
    best = {r["metric"]: r for r in rows}
    assert best["err"]["values"] == {"sampler.steps": 25, "train.lr": 0.1}
    assert best["acc"]["values"] == {"sampler.steps": 10, "train.lr": 0.01}
    assert best["nll"]["values"] == {"sampler.steps": 5, "train.lr": 0.1}
    err = best["err"]
    values = [0.04 * (1 + 0.01 * s) for s in range(3)]  # the failed cell is left out
    iv = seed_interval(values, (0.0, None))
    assert err["seeds"] == 3 and err["centre"] == pytest.approx(iv.centre)
    assert err["ci"] == pytest.approx((iv.lo, iv.hi))
    assert err["floor"] == 0.02 and err["ratio"] == pytest.approx(iv.centre / 0.02)
    assert best["acc"]["floor"] is None and best["acc"]["ratio"] is None
    assert err["runner_up"] == "sampler.steps=25, train.lr=0.01" and err["separated"] is True


def test_the_lead_table_says_when_two_seeds_cannot_separate_the_best_cell():
    """The quickstart's W2 with two seeds: 25 steps is lowest, but 10 steps lies inside its
    interval."""
    w2 = {5: [0.2427, 0.1759], 10: [0.2424, 0.1660], 25: [0.2424, 0.1652]}
    rows = [{"sampler.steps": k, "seed": i, "w2": v} for k, vs in w2.items()
            for i, v in enumerate(vs)]  # fmt: skip
    (lead,) = lead_rows(rows, ["sampler.steps"], ["w2"])
    assert lead["best"] == "sampler.steps=25" and lead["runner_up"] == "sampler.steps=10"
    assert lead["separated"] is False and lead["ci"][0] > 0


def test_a_panel_draws_steps_on_a_log_axis_and_no_band_below_zero():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    points = {5: [0.2427, 0.1759], 10: [0.2424, 0.1660], 25: [0.2424, 0.1652]}
    panel = metric_panel(
        ax, [Series("w2", points)], key="sampler.steps", metric="w2",
        floor={5: 0.175, 10: 0.175, 25: 0.175}, value_range=(0.0, None),
    )  # fmt: skip
    assert panel.xscale == "log" and ax.get_xscale() == "log"
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() > 0
    ivs = panel.intervals["w2"]
    assert band[:, 1].min() == pytest.approx(min(iv.lo for iv in ivs.values()))
    # two seeds: every seed's value drawn as a point beside the centre line
    drawn = sorted(float(y) for line in ax.lines[1:-1] for y in line.get_ydata())
    assert drawn == sorted(v for vs in points.values() for v in vs)
    # the band spans more than a decade: a log value axis
    assert panel.yscale == "log" and ax.get_yscale() == "log"
    plt.close(fig)


def test_a_panel_of_single_values_leaves_out_what_was_not_measured():
    """An audit's panel: one exact value per NFE (no seeds), a KL that is infinite at the
    coarsest grid and one not measured: those points are left out, the rest drawn as they
    are, on log axes (the values span two decades)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    kl = {2: [math.inf], 5: [None], 10: [0.05], 50: [0.002], 100: [0.0005]}
    panel = metric_panel(ax, [Series("ddim", kl)], key="NFE", metric="KL", value_range=(0, None))
    ivs = panel.intervals["ddim"]
    assert sorted(ivs) == [10, 50, 100]
    assert all(iv.lo == iv.centre == iv.hi == kl[x][0] for x, iv in ivs.items())
    assert list(ax.lines[0].get_ydata()) == [0.05, 0.002, 0.0005]
    assert (panel.xscale, panel.yscale) == ("log", "log")
    plt.close(fig)
