"""The error budget (docs/budget.md): the chain of swaps, its closed form on Gaussian targets
checked against the laws written out here, the samples path's coupling and paired intervals,
and the bounds' terms beside the parts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from scorelab import oracles
from scorelab.budget import PARTS, error_budget, parse_order
from scorelab.budget.chain import REMAINDER, chain
from scorelab.config import build, build_grid, load_config, sampler_options
from scorelab.errors import InvalidParameter
from scorelab.grids import TimeGrid
from scorelab.processes import VP
from scorelab.sampling import generate
from scorelab.schedules import LinearBeta
from scorelab.targets import Gaussian

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


# --- laws and distances written out per eigen-direction (the independent truth) ------------


def w2_diag(mu, lam, a, b) -> float:
    """W2(N(μ, diag λ), N(a, diag b))."""
    return math.sqrt(float(np.sum((a - mu) ** 2 + (np.sqrt(b) - np.sqrt(lam)) ** 2)))


def kl_diag(mu, lam, a, b) -> float:
    """KL(N(μ, diag λ) ‖ N(a, diag b))."""
    return float(0.5 * np.sum(lam / b + (a - mu) ** 2 / b - 1 + np.log(b / lam)))


def reverse_sde_law(process, t_from, t_to, lam, mu, a, b):
    """The continuous reverse SDE with the exact score from N(a, b) at t_from to t_to, per
    direction (docs/theory.md §5.3), with its own quadrature of ∫ g²/v."""

    def mv(t, la):
        m, s2 = float(process.scale(t)), float(process.variance(t))
        return m, m * m * la + s2

    means, variances = [], []
    for la, m_i, a_i, b_i in zip(lam, mu, a, b, strict=True):
        integral = quad(
            lambda t, la=la: float(process.diffusion2(t)) / mv(t, la)[1],
            t_to,
            t_from,
            epsabs=0,
            epsrel=1e-13,
            limit=500,
        )[0]
        (m0, v0), (m1, v1) = mv(t_from, la), mv(t_to, la)
        r = v1 / v0
        means.append(m1 * m_i + (a_i - m0 * m_i) * math.sqrt(r) * math.exp(-integral / 2))
        variances.append(v1 + (b_i - v0) * r * math.exp(-integral))
    return np.array(means), np.array(variances)


@pytest.fixture(scope="module")
def paper_a():
    cfg = load_config(CONFIGS / "paper_a_gaussian_d10.yaml")
    target, process = build(cfg)
    sc = cfg.sampler
    budget = error_budget(
        target,
        process,
        sampler=sc.kind,
        grid=build_grid(sc),
        params=sampler_options(sc),
        n=sc.n,
        seed=cfg.seed,
    )
    return cfg, target, process, budget


# --- the order --------------------------------------------------------------------------------


def test_an_order_names_every_part_once():
    assert parse_order(None) == PARTS
    assert parse_order("prior, score,early-stopping,discretisation") == (
        "prior",
        "score",
        "early_stopping",
        "discretisation",
    )
    for bad, problem in [
        ("score,discretisation,prior,stopping", "unknown part"),
        ("score,score,prior,early_stopping", "twice"),
        ("score,prior", "every part once"),
    ]:
        with pytest.raises(InvalidParameter, match=problem) as exc:
            parse_order(bad, "--order")
        assert exc.value.field == "--order"
    assert [sorted(a) for a in chain(("prior", "score", "early_stopping", "discretisation"))][
        :3
    ] == [[], ["prior"], ["prior", "score"]]


# --- closed form: paper A's Gaussian ------------------------------------------------------------


def test_closed_form_on_paper_a_matches_the_laws_written_out(paper_a):
    """Score part exactly 0 (the score is exact); discretisation, prior and early-stopping
    parts equal to 1e-8 the KL and W2 between the laws computed here: the sampler's exact
    recursion, the continuous reverse SDE from the prior, the marginal p_{t_min}, the
    target."""
    cfg, target, process, b = paper_a
    assert b.method == "closed_form"
    mean, cov = target.gaussian_moments()
    lam = np.linalg.eigvalsh(cov.numpy())  # isotropic: the eigenbasis is any basis
    mu = mean.numpy().astype(np.float64)
    times = build_grid(cfg.sampler).times(process).tolist()
    T, t_min = times[0], times[-1]
    zeros, prior_var = np.zeros(10), np.full(10, process.prior_std**2)
    e1 = oracles.sampler_moments(cfg.sampler.kind, process, times, lam, mu)
    e2 = reverse_sde_law(process, T, t_min, lam, mu, zeros, prior_var)
    m, s2 = float(process.scale(t_min)), float(process.variance(t_min))
    e3 = (m * mu, m * m * lam + s2)
    for name, dist in (("w2", w2_diag), ("kl", kl_diag)):
        E1, E2, E3 = (dist(mu, lam, *law) for law in (e1, e2, e3))
        assert b.part(name, "score") == 0.0
        assert b.part(name, "discretisation") == pytest.approx(E1 - E2, abs=1e-8)
        assert b.part(name, "prior") == pytest.approx(E2 - E3, abs=1e-8)
        assert b.part(name, "early_stopping") == pytest.approx(E3, abs=1e-8)
        assert b.part(name, REMAINDER) == pytest.approx(0.0, abs=1e-12)
        assert b.metrics[name]["total"]["value"] == pytest.approx(E1, abs=1e-10)
    assert b.reference["limit"] == "reverse_sde"
    assert b.part("w2", "discretisation") > 10 * b.part("w2", "prior") > 0


def test_the_links_sum_to_the_total_in_every_order(paper_a):
    _, target, process, b = paper_a
    for metric, m in b.metrics.items():
        parts = sum(m["parts"][p]["value"] for p in (*PARTS, REMAINDER))
        assert parts == pytest.approx(m["total"]["value"], rel=1e-12, abs=1e-15), metric
    # the interactions are the parts' differences between two orders of one total
    for metric, inter in b.interactions.items():
        assert sum(inter.values()) == pytest.approx(0.0, abs=1e-12), metric
    other = error_budget(
        target,
        process,
        sampler="exponential_integrator",
        grid=TimeGrid("uniform", steps=100),
        order="early_stopping,prior,discretisation,score",
        interactions=False,
    )
    assert other.interactions is None
    for metric, m in other.metrics.items():
        parts = sum(m["parts"][p]["value"] for p in (*PARTS, REMAINDER))
        assert parts == pytest.approx(m["total"]["value"], rel=1e-12)
        assert m["total"]["value"] == pytest.approx(b.metrics[metric]["total"]["value"], 1e-12)


def test_the_discretisation_part_falls_at_the_sampler_order():
    """Exponential integrator, weak order 1: 4× the steps leaves about ¼ of the output's
    moment error, so about ¼ of the W2 part and, KL being quadratic in a small moment error,
    about 1/16 of the KL part."""
    target = Gaussian(mean=1.0, cov=0.5, dim=3)
    process = VP(LinearBeta())
    budgets = [
        error_budget(
            target,
            process,
            sampler="exponential_integrator",
            grid=TimeGrid("uniform", steps=N),
            interactions=False,
            bounds={},
        )
        for N in (100, 400)
    ]
    w2, kl = ([b.part(m, "discretisation") for b in budgets] for m in ("w2", "kl"))
    assert 3.5 < w2[0] / w2[1] < 4.5
    assert 14 < kl[0] / kl[1] < 18


def test_which_continuous_law_resolves_the_discretisation():
    """A deterministic sampler → the exact flow; Euler–Maruyama → the reverse SDE; DDIM at
    η = 0.5 (neither) → a fine grid with its own residual."""
    target = Gaussian(mean=[1.0, -0.5], cov=[0.3, 2.0])
    process = VP(LinearBeta())
    grid = TimeGrid("uniform", steps=20)
    limits = {}
    for sampler, params in (("heun", {}), ("euler_maruyama", {}), ("ddim", {"eta": 0.5})):
        b = error_budget(
            target, process, sampler=sampler, grid=grid, params=params, bounds={}, refine=8
        )
        limits[sampler] = b.reference
    assert limits["heun"]["limit"] == "pf_ode" and limits["heun"]["residual"] is None
    assert limits["euler_maruyama"]["limit"] == "reverse_sde"
    ddim = limits["ddim"]
    assert ddim["limit"] == "fine_grid"
    # an order-1 scheme at 160 vs 80 steps: the residual is small beside the part itself
    assert 0 < abs(ddim["residual"]["w2"]["value"]) < 0.2


def test_a_final_denoising_step_is_part_of_the_discretisation():
    """With final="denoise" the run ends with Tweedie's step; in the chain it stays with the
    run's grid, so at t = 0 (where it is the identity) the remainder is still 0."""
    target = Gaussian(mean=0.5, cov=[0.2, 1.5])
    process = VP(LinearBeta())
    b = error_budget(
        target,
        process,
        sampler="ddim",
        grid=TimeGrid("edm", steps=10, final="denoise"),
        bounds={},
    )
    assert b.method == "closed_form"
    assert b.part("w2", REMAINDER) == pytest.approx(0.0, abs=1e-12)
    # Tweedie's step shrinks p_{t_min} to E[X0 | X_{t_min}]: a variance deficit at t_min
    assert b.part("w2", "early_stopping") > 0


# --- the samples path ---------------------------------------------------------------------


def _gaussian_2d():
    return Gaussian(mean=[1.0, -1.0], cov=[0.5, 0.2]), VP(LinearBeta())


def test_the_run_arm_reproduces_the_runs_samples_and_the_prior_arm_is_coupled():
    from scorelab.budget.core import _setting
    from scorelab.budget.samples import SampleArms

    target, process = _gaussian_2d()
    grid = TimeGrid("uniform", steps=8, t_max=0.9)
    s = _setting(
        target,
        process,
        score=target.score_model(process),
        sampler="heun",
        grid=grid,
        params={},
        n=64,
        seed=3,
        dtype=torch.float64,
        batch_size=None,
        refine=4,
    )
    arms = SampleArms(s)
    run = generate(
        s.exact, process, (2,), sampler="heun", grid=grid, n=64, seed=3, dtype=torch.float64
    )
    assert torch.equal(arms.samples(frozenset()), run.samples)
    # the exact-prior arm maps the run's own draw z to m x0 + s z at the grid's first time
    assert arms.prior(frozenset(), grid) is None
    prior = arms.prior(frozenset({"prior"}), grid)
    z = torch.randn(64, 2, dtype=torch.float64)
    m, sd = float(process.scale(0.9)), float(process.std(0.9))
    assert torch.allclose(prior(z, slice(0, 64)), m * arms.x0 + sd * z)
    assert torch.allclose(prior(z[10:20], slice(10, 20)), m * arms.x0[10:20] + sd * z[10:20])


def test_a_perturbed_score_has_a_positive_score_part():
    """The exact score times (1 + δ) over-contracts every step: a worse output, so the score
    part (trained → exact) is positive, its paired interval clear of 0; with the exact score
    the same part is exactly 0."""
    target, process = _gaussian_2d()
    exact = target.score_model(process)
    kw = dict(
        sampler="heun",
        grid=TimeGrid("uniform", steps=10),
        n=1000,
        seed=0,
        refine=4,
        dtype=torch.float64,
        bounds={},
    )
    b = error_budget(target, process, score=lambda x, t: 1.3 * exact(x, t), **kw)
    assert b.method == "samples"
    for metric in ("w2", "kl"):
        part = b.metrics[metric]["parts"]["score"]
        assert part["value"] > 0 and part["ci"][0] > 0, (metric, part)
    same = error_budget(target, process, score=exact, **kw)
    assert same.part("w2", "score") == 0.0 and same.metrics["w2"]["parts"]["score"]["ci"] == [
        0.0,
        0.0,
    ]
    for m in b.metrics.values():
        parts = sum(m["parts"][p]["value"] for p in (*PARTS, REMAINDER))
        assert parts == pytest.approx(m["total"]["value"], rel=1e-12)


def test_samples_agree_with_the_closed_form_within_their_intervals():
    """The same setup on samples (a score the budget cannot see is exact) and in closed form:
    the KL part of the fitted Gaussian (whose small-sample bias is the same in every arm and
    cancels in the links) is within 10 % of the closed-form part, which its paired 95 %
    interval contains."""
    target, process = _gaussian_2d()
    exact = target.score_model(process)
    kw = dict(
        sampler="euler_maruyama",
        grid=TimeGrid("uniform", steps=6),
        seed=1,
        bounds={},
        refine=8,
        dtype=torch.float64,
    )
    closed = error_budget(target, process, **kw)
    sampled = error_budget(target, process, score=lambda x, t: exact(x, t), n=1500, **kw)
    assert closed.method == "closed_form" and sampled.method == "samples"
    want = closed.part("kl", "discretisation")
    got = sampled.metrics["kl"]["parts"]["discretisation"]
    lo, hi = got["ci"]
    assert want > 0.05 and lo <= want <= hi, (want, got)
    assert got["value"] == pytest.approx(want, rel=0.1)  # measured over seeds: within 6 %


def test_generate_starts_from_a_prior_of_the_draws():
    target, process = _gaussian_2d()
    score = target.score_model(process)
    kw = dict(sampler="euler_maruyama", grid=TimeGrid("uniform", steps=5), n=2100, seed=4)
    base = generate(score, process, (2,), **kw).samples
    same = generate(score, process, (2,), prior=lambda z, rows: process.prior_std * z, **kw)
    assert torch.equal(base, same.samples)
    x0 = torch.randn(2100, 2)
    prior = lambda z, rows: 0.3 * x0[rows] + z  # noqa: E731
    one = generate(score, process, (2,), prior=prior, **kw).samples
    chunked = generate(score, process, (2,), prior=prior, batch_size=1024, **kw).samples
    assert torch.equal(one, chunked)  # each sample's x0 follows its row, whatever the chunks
    assert not torch.equal(one, base)
    with pytest.raises(InvalidParameter, match="prior"):
        generate(score, process, (2,), prior=lambda z, rows: z[:3], **kw)


def test_bad_settings_name_their_field():
    target, process = _gaussian_2d()
    for kw, field in [
        ({"n": 5}, "n"),
        ({"refine": 1}, "refine"),
        ({"order": "score"}, "order"),
        ({"sampler": "nonesuch"}, "sampler"),
    ]:
        with pytest.raises(InvalidParameter) as exc:
            error_budget(target, process, bounds={}, **kw)
        assert field in str(exc.value), (kw, str(exc.value))


# --- bounds beside the parts --------------------------------------------------------------


def test_each_bound_term_sits_beside_its_part(paper_a):
    from scorelab.bounds import all_bounds

    _, target, process, b = paper_a
    bounds = all_bounds(target, process, 100, generator=torch.Generator().manual_seed(0))
    rows = {r["family"]: r for r in b.bounds}
    assert set(rows) == {"kl", "w2"}
    kl, w2 = rows["kl"]["parts"], rows["w2"]["parts"]
    assert kl["prior"]["term"] == bounds["kl"]["mixing"]
    assert kl["score"]["term"] == bounds["kl"]["approximation"] == 0.0
    assert kl["discretisation"]["term"] == bounds["kl"]["discretization"]
    assert kl["early_stopping"]["term"] is None  # paper A runs to t = 0
    assert w2["discretisation"]["term"] == pytest.approx(
        bounds["w2"]["approx_discretization"] + bounds["w2"]["time_regularity"]
    )
    part = b.part("kl", "discretisation")
    assert kl["discretisation"]["ratio"] == pytest.approx(bounds["kl"]["discretization"] / part)
    assert kl["score"]["ratio"] is None  # a part of 0: no ratio
    # every bound holds for the part it bounds
    for row in b.bounds:
        for p, cell in row["parts"].items():
            if cell["term"] is not None and cell["measured"] > 0:
                assert cell["term"] >= cell["measured"], (row["family"], p)
    assert "ve" in b.refused and "w1_manifold" in b.refused


def test_paper_c_terms_on_a_ve_process():
    from scorelab.processes import EDM

    target = Gaussian(mean=0.3, cov=[0.5, 1.0])
    b = error_budget(target, EDM(), sampler="euler_maruyama", grid=TimeGrid("edm", steps=30))
    rows = {r["family"]: r for r in b.bounds}
    assert "ve" in rows
    ve = rows["ve"]["parts"]
    assert ve["prior"]["terms"] == ["initialization"]
    assert ve["discretisation"]["term"] > b.part("kl", "discretisation") > 0
