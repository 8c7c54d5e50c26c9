"""Samplers against exact truth: the Gaussian recursions of docs/theory.md §5 (oracles module),
the exact probability-flow map, convergence orders, per-sample seeding and finiteness; and the
registry metadata each sampler declares (oracle, deterministic, own_final_step, processes,
batch_invariant, predictor), checked against what the sampler does."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scorelab import oracles
from scorelab import schedules as sch
from scorelab.errors import InvalidParameter
from scorelab.grids import TimeGrid
from scorelab.processes import EDM, VE, VP, SubVP, families
from scorelab.registry import entries, names
from scorelab.samplers import integrate, predictors
from scorelab.sampling import generate
from scorelab.targets import Gaussian, ring8

SAMPLERS = {name: e.obj for name, e in entries("sampler").items()}
META = {name: e.meta for name, e in entries("sampler").items()}


def _with(key, value=True) -> list[str]:
    """The samplers whose metadata ``key`` is ``value`` (a missing key counts as None)."""
    return sorted(n for n, m in META.items() if m.get(key) == value)


def _applies(kind: str, process) -> bool:
    """Whether the sampler is derived for the process (its ``processes`` metadata)."""
    allowed = META[kind].get("processes")
    return not allowed or bool(families(process) & set(allowed))


F64 = torch.float64
LAM = np.array([0.5, 0.05, 2.0])
MU = np.array([1.0, -0.5, 0.3])
TARGET = Gaussian(mean=MU.tolist(), cov=LAM.tolist())

PROCS = {
    "vp": VP(sch.LinearBeta()),
    "subvp": SubVP(sch.LinearBeta()),
    "ve": VE(sch.GeometricSigma(0.01, 20.0)),
    "edm": EDM(),
    "vp-cosine": VP(sch.CosineBeta(clip_max=50.0), sigma_inf=1.3),
}


def _run(kind, proc, grid, n, seed=1, **params):
    return generate(
        TARGET.score_model(proc),
        proc,
        (3,),
        sampler=kind,
        grid=grid,
        n=n,
        seed=seed,
        dtype=F64,
        **params,
    )


STOCHASTIC_CASES = [
    ("euler_maruyama", "vp", {}),
    ("euler_maruyama", "vp", {"eval_point": "right"}),
    ("euler_maruyama", "ve", {}),
    ("euler_maruyama", "edm", {"eval_point": "right"}),
    ("euler_maruyama", "subvp", {}),
    ("exponential_integrator", "vp", {}),
    ("exponential_integrator", "vp-cosine", {}),
    ("ddim", "vp", {"eta": 1.0}),
    ("ddim", "edm", {"eta": 0.5}),
]


@pytest.mark.parametrize(("kind", "proc", "params"), STOCHASTIC_CASES)
def test_stochastic_samplers_match_exact_gaussian_recursions(kind, proc, params):
    """10⁵ samples of the sampler against the exact law of its recursion, N(mean, var) per
    direction with independent directions (the oracle): the mean and variance within 5 Monte
    Carlo standard errors (SE √(var/n) and var·√(2/n)), and the standardised samples
    z = (x − mean)/√var with the skewness E z³, the excess kurtosis E z⁴ − 3 and the
    correlations E z_i z_j of a standard normal vector, within 5 SE (√(15/n), √(96/n), 1/√n)."""
    assert META[kind]["oracle"] is not None  # the law below is the one the sampler registered
    p = PROCS[proc]
    grid = TimeGrid("edm" if proc == "edm" else "uniform", steps=20)
    x = _run(kind, p, grid, 100_000, **params).samples.numpy()
    mean, var = oracles.sampler_moments(kind, p, grid.times(p), LAM, MU, **params)
    n = x.shape[0]
    assert np.all(np.abs(x.mean(0) - mean) < 5 * np.sqrt(var / n))
    assert np.all(np.abs(x.var(0) - var) < 5 * var * np.sqrt(2 / n))
    z = (x - mean) / np.sqrt(var)
    assert np.all(np.abs((z**3).mean(0)) < 5 * np.sqrt(15 / n))
    assert np.all(np.abs((z**4).mean(0) - 3) < 5 * np.sqrt(96 / n))
    corr = (z.T @ z) / n
    assert np.all(np.abs(corr[np.triu_indices(3, 1)]) < 5 / np.sqrt(n))


EXACT_AFFINE = sorted(set(_with("deterministic")) - set(_with("oracle", None)))


def test_every_registered_oracle_is_checked():
    """Each sampler that registers an oracle is checked against it: by its Monte Carlo law
    (above) or, deterministic, by its exact affine map (below)."""
    checked = {kind for kind, _, _ in STOCHASTIC_CASES} | set(EXACT_AFFINE)
    assert set(SAMPLERS) - set(_with("oracle", None)) <= checked


@pytest.mark.parametrize("proc", list(PROCS))
@pytest.mark.parametrize("kind", EXACT_AFFINE)
def test_deterministic_samplers_equal_their_exact_affine_maps(kind, proc):
    params = {}
    p = PROCS[proc]
    grid = TimeGrid("edm", steps=12)
    g = torch.Generator().manual_seed(0)
    xT = p.prior_std * torch.randn(50, 3, generator=g, dtype=F64)
    res = SAMPLERS[kind](TARGET.score_model(p), p, grid, xT, **params)
    M, c = oracles.affine_flow(kind, p, grid.times(p), LAM, MU, **params)
    assert np.allclose(res.samples.numpy(), M * xT.numpy() + c, rtol=1e-10, atol=1e-10)
    assert res.nfe == (24 if kind == "heun" else 12)


def test_oracles_agree_with_the_continuous_limits():
    """Two independent derivations: the discrete recursions converge to the continuous exact
    laws (reverse SDE by quadrature; PF-ODE flow map) as the grid is refined."""
    p = VP(sch.LinearBeta())
    times = TimeGrid("uniform", steps=4000).times(p)
    mean, var = oracles.sampler_moments("euler_maruyama", p, times, LAM, MU)
    mean_c, var_c = oracles.reverse_sde_exact(p, p.T, p.t_min, LAM, MU)
    assert np.allclose(mean, mean_c, atol=3e-3) and np.allclose(var, var_c, rtol=3e-3)
    M, c = oracles.affine_flow("heun", p, TimeGrid("uniform", steps=1600).times(p), LAM, MU)
    x = np.array([0.3, -1.0, 2.0])
    assert np.allclose(M * x + c, oracles.pf_ode_exact(p, p.T, p.t_min, LAM, MU, x), atol=5e-6)
    # with exact score and continuous time, the reverse SDE from the exact marginal at T lands
    # on the exact marginal at t_min
    m_T, v_T = float(p.scale(p.T)), float(p.variance(p.T))
    mean_x, var_x = oracles.reverse_sde_exact(
        p, p.T, p.t_min, LAM, MU, m_T * MU, m_T**2 * LAM + v_T
    )
    m1, v1 = float(p.scale(p.t_min)), float(p.variance(p.t_min))
    assert np.allclose(mean_x, m1 * MU, atol=1e-10) and np.allclose(var_x, m1**2 * LAM + v1)


@pytest.mark.parametrize(
    ("kind", "order", "steps"),
    [
        ("ode_euler", 1, (40, 80, 160, 320)),
        ("heun", 2, (40, 80, 160, 320)),
        ("dpmpp_2m", 2, (40, 80, 160, 320)),
        ("rk4", 4, (10, 20, 40, 80)),
    ],
)
def test_convergence_orders_on_the_gaussian_flow(kind, order, steps):
    p = VP(sch.LinearBeta(), t_min=0.05)
    g = torch.Generator().manual_seed(0)
    xT = torch.randn(20, 3, generator=g, dtype=F64)
    exact = oracles.pf_ode_exact(p, p.T, p.t_min, LAM, MU, xT.numpy())
    errors = []
    for n in steps:
        res = SAMPLERS[kind](TARGET.score_model(p), p, TimeGrid("uniform", steps=n), xT)
        errors.append(float(np.abs(res.samples.numpy() - exact).max()))
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.2, (errors, slope)


def _process_for(kind: str):
    """EDM's process, or the first of ours the sampler is derived for."""
    return next(p for p in (PROCS["edm"], *PROCS.values()) if _applies(kind, p))


@pytest.mark.parametrize("kind", [n for n, m in META.items() if m.get("batch_invariant", True)])
def test_same_seed_same_sample_whatever_the_batch_size(kind):
    p = _process_for(kind)
    grid = TimeGrid("edm", steps=6)
    runs = [_run(kind, p, grid, 700, seed=3, batch_size=b).samples for b in (256, 512, None)]
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])
    sub = _run(kind, p, grid, 300, seed=3).samples
    assert torch.equal(sub, runs[0][:300])
    other = _run(kind, p, grid, 300, seed=4).samples
    assert not torch.equal(sub, other)


def test_dopri5_reaches_the_exact_flow_and_reports_nfe():
    p = VE(sch.GeometricSigma(0.01, 20.0))
    xT = torch.randn(10, 3, generator=torch.Generator().manual_seed(0), dtype=F64) * 20
    res = SAMPLERS["dopri5"](TARGET.score_model(p), p, TimeGrid(steps=1), xT, rtol=1e-8, atol=1e-8)
    exact = oracles.pf_ode_exact(p, p.T, p.t_min, LAM, MU, xT.numpy())
    assert np.allclose(res.samples.numpy(), exact, atol=1e-5)
    assert res.nfe > 10


def test_edm_stochastic_and_pc_sample_the_target_with_many_steps():
    """With fine grids both land near the exact law at t_min (tolerance = MC noise + the
    discretisation, measured loose on purpose)."""
    p = EDM()
    m1v = float(p.variance(p.t_min))
    for kind, params, steps in (
        ("edm_stochastic", {"s_churn": 40.0}, 64),
        ("pc", {"predictor": "euler_maruyama", "snr": 0.16}, 100),
    ):
        x = _run(kind, p, TimeGrid("edm", steps=steps), 20_000, **params).samples.numpy()
        assert np.allclose(x.mean(0), MU, atol=0.05), kind
        assert np.allclose(x.var(0), LAM + m1v, rtol=0.08), kind


@pytest.mark.parametrize("kind", [n for n, m in META.items() if not m.get("batch_invariant", True)])
def test_a_sampler_registered_batch_dependent_is(kind):
    """``batch_invariant=False`` is true of the sampler (dopri5's step sizes are chosen for the
    whole batch): the same seed in other batches gives other samples, close but not equal."""
    p = _process_for(kind)
    grid = TimeGrid("edm", steps=6)
    runs = [_run(kind, p, grid, 2048, seed=3, batch_size=b).samples for b in (512, None)]
    assert not torch.equal(runs[0], runs[1])
    assert torch.allclose(runs[0], runs[1], atol=1e-3)


@pytest.mark.parametrize("kind", list(SAMPLERS))
def test_deterministic_metadata_says_whether_noise_is_drawn(kind):
    """A sampler registered ``deterministic`` gives the same samples whatever its noise (with
    its default options); any other draws noise and its samples follow the seed."""
    p = _process_for(kind)
    grid = TimeGrid("edm", steps=6)
    xT = p.prior_sample((32, 3), torch.Generator().manual_seed(0), dtype=F64)
    a, b = (
        integrate(kind, TARGET.score_model(p), p, grid, xT, noise=torch.Generator().manual_seed(s))
        for s in (1, 2)
    )
    assert torch.equal(a.samples, b.samples) == bool(META[kind].get("deterministic"))


@pytest.mark.parametrize("proc", list(PROCS))
@pytest.mark.parametrize("grid_kind", names("grid"))
def test_every_sampler_is_finite_down_to_sigma_zero(proc, grid_kind):
    """Every registered sampler that applies to the process (its ``processes`` metadata), run
    through ``integrate`` down to σ = 0: finite samples, and the step to σ = 0 costs one NFE
    more than stopping at t_min."""
    p = PROCS[proc]
    target = ring8()
    score = target.score_model(p)
    ran = []
    for kind in SAMPLERS:
        if not _applies(kind, p):
            continue
        runs = {}
        for final in ("none", "denoise"):
            grid = TimeGrid(grid_kind, steps=6, final=final)
            x = p.prior_sample((64, 2), torch.Generator().manual_seed(0), dtype=torch.float32)
            runs[final] = integrate(kind, score, p, grid, x, noise=torch.Generator().manual_seed(1))
        assert torch.isfinite(runs["denoise"].samples).all(), (kind, grid_kind, proc)
        assert runs["denoise"].nfe == runs["none"].nfe + 1, kind
        ran.append(kind)
    assert "exponential_integrator" in ran or "vp" not in families(p)


@pytest.mark.parametrize("kind", _with("own_final_step", None))
def test_the_final_step_of_a_sampler_without_its_own_is_tweedies(kind):
    """For every sampler not registered with ``own_final_step``, ``final="denoise"`` ends with
    Tweedie's E[X₀ | X_{t_N} = x], checked against the target's own closed-form denoiser on the
    samples that stop at t_N (the same noise)."""
    p = _process_for(kind)
    xT = p.prior_sample((16, 3), torch.Generator().manual_seed(0), dtype=F64)
    res = {}
    for final in ("none", "denoise"):
        grid = TimeGrid("edm", steps=5, final=final)
        noise = torch.Generator().manual_seed(1)
        res[final] = integrate(kind, TARGET.score_model(p), p, grid, xT, noise=noise)
    t_last = float(TimeGrid("edm", steps=5).times(p)[-1])
    expected = TARGET.denoise(res["none"].samples, t_last, p)
    assert torch.allclose(res["denoise"].samples, expected, rtol=1e-12, atol=1e-12)


def test_integrate_equals_a_direct_call_of_every_built_in():
    """A built-in called directly takes the final step itself; through ``integrate`` the caller
    takes it: the samples, the NFE and every callback agree bit for bit."""
    p = PROCS["edm"]
    grid = TimeGrid("edm", steps=5, final="denoise")
    for kind, fn in SAMPLERS.items():
        if not _applies(kind, p):
            continue
        xT = p.prior_sample((8, 3), torch.Generator().manual_seed(0), dtype=F64)
        seen: dict[str, list] = {"direct": [], "integrate": []}

        def record(where, seen=seen):
            return lambda k, t, x, d: seen[where].append((k, t, x.clone()))

        direct = fn(
            TARGET.score_model(p),
            p,
            grid,
            xT,
            noise=torch.Generator().manual_seed(1),
            callback=record("direct"),
        )
        via = integrate(
            kind,
            TARGET.score_model(p),
            p,
            grid,
            xT,
            noise=torch.Generator().manual_seed(1),
            callback=record("integrate"),
        )
        assert torch.equal(direct.samples, via.samples) and direct.nfe == via.nfe, kind
        assert len(seen["direct"]) == len(seen["integrate"]), kind
        for a, b in zip(seen["direct"], seen["integrate"], strict=True):
            assert a[:2] == b[:2] and torch.equal(a[2], b[2]), kind


@pytest.mark.parametrize("predictor", predictors())
def test_pc_takes_every_registered_predictor(predictor):
    """Each sampler registered ``predictor=True`` serves as pc's predictor: n_corrector + 1 NFE
    a step, finite samples; anything else is refused, listing the predictors."""
    p = _process_for(predictor)
    grid = TimeGrid("edm", steps=4)
    res = _run("pc", p, grid, 64, predictor=predictor, n_corrector=2)
    assert res.nfe == 4 * 3 and torch.isfinite(res.samples).all()
    with pytest.raises(InvalidParameter, match=f"predictor: is not a predictor.*{predictor}"):
        _run("pc", p, grid, 8, predictor="rk4" if predictor != "rk4" else "heun")


def test_callback_sees_every_step():
    p, seen = PROCS["vp"], []
    grid = TimeGrid("uniform", steps=5, final="denoise")
    x = torch.randn(4, 3, dtype=F64)
    SAMPLERS["heun"](
        TARGET.score_model(p),
        p,
        grid,
        x,
        callback=lambda k, t, x, d: seen.append((k, t, x.shape, d.shape)),
    )
    assert [s[0] for s in seen] == [0, 1, 2, 3, 4, 5] and seen[-1][1] == 0.0


def test_grids():
    p = VP(sch.LinearBeta())
    for kind in names("grid"):
        t = TimeGrid(kind, steps=10).times(p)
        assert tuple(t.shape) == (11,) and float(t[0]) == 1.0 and float(t[-1]) == p.t_min
        assert torch.all(t[1:] < t[:-1])
    s = p.sigma(TimeGrid("edm", steps=10, rho=7.0).times(p))
    rho_spaced = s ** (1 / 7)
    assert torch.allclose(
        rho_spaced[1:] - rho_spaced[:-1], (rho_spaced[1] - rho_spaced[0]).expand(10), rtol=1e-8
    )
    geo = p.sigma(TimeGrid("geometric", steps=10).times(p))
    assert torch.allclose(geo[1:] / geo[:-1], (geo[1] / geo[0]).expand(10), rtol=1e-8)
    assert torch.allclose(
        TimeGrid("logsnr", steps=10).times(p), TimeGrid("geometric", steps=10).times(p)
    )
    for kind in names("grid"):
        with pytest.raises(InvalidParameter, match="coefficients are infinite"):
            TimeGrid(kind).times(VP(sch.CosineBeta(clip_max=None)))
    assert TimeGrid("uniform", t_max=0.99).times(VP(sch.CosineBeta(clip_max=None))).isfinite().all()
    with pytest.raises(InvalidParameter, match="must be > 0"):
        TimeGrid("geometric", t_min=0.0).times(p)


def test_bad_sampler_inputs():
    p = PROCS["ve"]
    with pytest.raises(InvalidParameter, match="derived for the vp process"):
        _run("exponential_integrator", p, TimeGrid(steps=3), 10)
    with pytest.raises(InvalidParameter, match="is not a registered sampler"):
        _run("euler", p, TimeGrid(steps=3), 10)
    with pytest.raises(InvalidParameter, match="eta: is not a parameter of sampler 'heun'"):
        _run("heun", p, TimeGrid(steps=3), 10, eta=1.0)
    with pytest.raises(InvalidParameter, match="eval_point"):
        _run("euler_maruyama", p, TimeGrid(steps=3), 10, eval_point="middle")
    assert math.isfinite(_run("euler_maruyama", p, TimeGrid(steps=3), 10).samples.sum())


def test_option_values_a_sampler_refuses_are_refused_before_a_run():
    """An option value that only the sampler can judge (pc's predictor, read from the registry;
    dopri5's tolerance) is refused by the checks made before a run, naming the key and the
    allowed values, as the sampler itself would refuse it."""
    from scorelab.config import parse_config
    from scorelab.preflight import check

    bad = {"kind": "pc", "predictor": "rk4", "steps": 5}
    with pytest.raises(InvalidParameter, match=r"sampler\.predictor: is not a predictor") as info:
        check(parse_config({"sampler": bad}), ("sample",))
    assert info.value.allowed == ", ".join(predictors())
    compared = {"run": {"samplers": [{"kind": "dopri5", "rtol": -1.0}]}}
    with pytest.raises(InvalidParameter, match=r"run\.samplers\[0\]\.rtol: must be"):
        check(parse_config(compared), ("sample",))
    assert check(parse_config({"sampler": {**bad, "predictor": "ddim"}}), ("sample",))
