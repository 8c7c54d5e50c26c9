"""Interoperability (docs/interop.md): the three model faces, σ lists and the steps/levels
convention, the ddpm process, the noise-sampler hook, and k-diffusion's and diffusers'
samplers run on the same exact model, the same σ's and the same noise as scorelab's.

Tolerances: 1e-10 in float64 where the reference computes in float64 (k-diffusion; diffusers'
DDIM once its ᾱ table is cast to float64); float32 round-off (5e-6 of the sample's scale)
where the reference casts the sample to float32 inside ``step`` (diffusers' Euler, EDM Euler
and DPM-Solver multistep schedulers all do ``sample = sample.to(torch.float32)``).
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import types

import numpy as np
import pytest
import torch

from scorelab import oracles
from scorelab.ddpm import DDPM, DiscreteBeta, beta_table
from scorelab.errors import InvalidParameter
from scorelab.grids import TimeGrid
from scorelab.interfaces import as_model, from_denoiser, from_eps, from_score
from scorelab.interop import (
    exact_denoiser,
    from_diffusers,
    run_scheduler,
    scheduler_process,
    to_kdiffusion,
)
from scorelab.processes import EDM, VP
from scorelab.registry import get
from scorelab.schedules import EDMSigma, LinearBeta
from scorelab.targets import Gaussian

F64 = torch.float64
TARGET = Gaussian(mean=[1.0, -0.5, 0.3], cov=[0.5, 0.05, 2.0])
LAM, MU = np.array([0.5, 0.05, 2.0]), np.array([1.0, -0.5, 0.3])
D_EXACT = exact_denoiser(TARGET).fn  # D(x̂, σ) for every σ > 0
BIG = EDM(EDMSigma(sigma_max=200.0))  # EDM's process with room for diffusers' σ_max ≈ 157
F32_RTOL = 5e-6


def _x(n=16, scale=1.0, seed=0):
    return scale * torch.randn(n, 3, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _close(a, b, rtol):
    scale = float(b.abs().max()) + 1.0
    err = float((a - b).abs().max())
    assert err <= rtol * scale, (err, scale)


# --------------------------------------------------------------------------------------------
# model interfaces
# --------------------------------------------------------------------------------------------


def test_the_three_faces_agree_whichever_is_given():
    """A score, a denoiser and an ε-predictor of the same exact Gaussian under VP give the same
    score, denoiser, ε and D(x̂, σ) (Tweedie, docs/theory.md §3.1), to 1e-12."""
    p = VP(LinearBeta())
    score = TARGET.score_model(p)

    def eps(x, t):
        return -p.std(torch.as_tensor(t, dtype=F64)).reshape(-1, 1) * score(x, t)

    models = [from_score(score, p), from_denoiser(D_EXACT, p), from_eps(eps, p)]
    assert [m.prediction for m in models] == ["score", "denoiser", "eps"]
    x, t = _x(), torch.linspace(0.05, 0.9, 16, dtype=F64)
    s_ref, d_ref = TARGET.score(x, t, p), TARGET.denoise(x, t, p)
    e_ref = -p.std(t)[:, None] * s_ref
    sig = p.sigma(t)
    xh = x / p.scale(t)[:, None]
    for m in models:
        assert torch.allclose(m(x, t), s_ref, rtol=1e-12, atol=1e-12), m.prediction
        assert torch.allclose(m.denoise(x, t), d_ref, rtol=1e-12, atol=1e-12), m.prediction
        assert torch.allclose(m.eps(x, t), e_ref, rtol=1e-12, atol=1e-12), m.prediction
        assert torch.allclose(m.denoiser(xh, sig), d_ref, rtol=1e-12, atol=1e-12), m.prediction
    assert as_model(models[1], p) is models[1]


def test_sigma_space_samplers_call_a_denoiser_directly_at_the_given_sigmas():
    """ddim and dpmpp_2m ask a denoiser for D at exactly the grid's σ's (a [B] tensor, as
    k-diffusion passes it), never for a score; the samples equal those of the score model."""
    seen = []

    def D(xh, sigma):
        assert sigma.shape == (xh.shape[0],)
        seen.append(float(sigma[0]))
        return D_EXACT(xh, sigma)

    sigmas = [80.0, 20.0, 3.0, 0.5, 0.02, 0.0]
    grid = TimeGrid(sigmas=sigmas)
    for name in ("ddim", "dpmpp_2m", "edm_stochastic"):
        seen.clear()
        out = get("sampler", name)(from_denoiser(D, EDM()), EDM(), grid, _x(scale=80))
        ref = get("sampler", name)(TARGET.score_model(EDM()), EDM(), grid, _x(scale=80))
        assert out.nfe == ref.nfe == (5 if name != "edm_stochastic" else 9)
        if name != "edm_stochastic":
            assert seen == sigmas[:-1]
        _close(out.x, ref.x, 1e-10)


def test_time_grid_sigmas_and_the_steps_levels_convention():
    g = TimeGrid(sigmas=[3.0, 2.0, 1.0, 0.0])
    assert g.final == "denoise" and g.steps == 2 and g.n_steps == 3 and g.sigmas == (3.0, 2.0, 1.0)
    assert TimeGrid(sigmas=[3.0, 2.0, 1.0]).final == "none"
    assert TimeGrid(steps=9, final="denoise").n_steps == 10
    k = TimeGrid.karras(10, 0.002, 80.0)
    assert k.n_steps == 10 and len(k.sigmas) == 10 and k.final == "denoise"
    assert math.isclose(k.sigmas[0], 80.0, rel_tol=1e-13) and math.isclose(k.sigmas[-1], 0.002)
    assert torch.equal(k.noise_levels(EDM()), torch.tensor(k.sigmas, dtype=F64))
    assert torch.equal(k.times(EDM()), torch.tensor(k.sigmas, dtype=F64))  # σ(t) = t
    for bad in ([1.0, 2.0, 0.0], [1.0, 0.0, 0.5], [0.0]):
        with pytest.raises(InvalidParameter, match="sigmas"):
            TimeGrid(sigmas=bad)
    with pytest.raises(InvalidParameter, match="largest noise level"):
        TimeGrid(sigmas=[100.0, 1.0, 0.0]).times(EDM())


def test_dpmpp_2m_keeps_second_order_until_the_step_to_zero():
    """With final="denoise" the step to σ = 0 is the run's last (first-order) step, so the step
    before it is second order: the same as the run without the final step and without
    lowering, followed by D (DPM-Solver++(2M), k-diffusion, diffusers)."""
    fn, p = get("sampler", "dpmpp_2m"), EDM()
    model = from_denoiser(D_EXACT, p)
    x = _x(scale=80)
    full = fn(model, p, TimeGrid.karras(8, 0.002, 80.0), x)
    loop = fn(model, p, TimeGrid.karras(8, 0.002, 80.0, final="none"), x, lower_order_final=False)
    _close(full.x, D_EXACT(loop.x, 0.002), 1e-12)
    lowered = fn(model, p, TimeGrid.karras(8, 0.002, 80.0, final="none"), x)
    assert not torch.allclose(lowered.x, loop.x)  # final="none": the last step is first order


def test_edm_stochastic_counts_the_step_to_zero_in_its_churn():
    """γ = S_churn/N with N the number of steps, the step to σ = 0 included, and the last
    level churns too (EDM's Algorithm 2); a denoiser is called at σ̂ uncapped."""
    seen = []

    def D(xh, sigma):
        seen.append(float(sigma[0]))
        return D_EXACT(xh, sigma)

    sigmas = [80.0, 10.0, 1.0, 0.1, 0.0]
    out = get("sampler", "edm_stochastic")(
        from_denoiser(D, EDM()), EDM(), TimeGrid(sigmas=sigmas), _x(), s_churn=0.4,
        noise=torch.Generator().manual_seed(0),
    )  # fmt: skip
    gamma = 0.4 / 4
    hats = [s * (1 + gamma) for s in sigmas[:-1]]
    assert seen[0] == pytest.approx(hats[0]) and hats[0] > 80.0  # above σ(T): not capped
    assert seen[-1] == pytest.approx(hats[-1])  # the last level churns before the step to 0
    assert out.nfe == 7


def test_noise_sampler_hook_replaces_the_noise_streams():
    """A noise_sampler returning a generator's draws gives the samples that generator gives as
    ``noise``; it is asked with the step's (σ, σ')."""
    p = VP(LinearBeta())
    score = TARGET.score_model(p)
    grid = TimeGrid("uniform", steps=6)
    for name, params in (("ddim", {"eta": 1.0}), ("euler_maruyama", {}), ("pc", {})):
        fn = get("sampler", name)
        asked, g1 = [], torch.Generator().manual_seed(7)

        def hook(s0, s1, g1=g1, asked=asked):
            asked.append((s0, s1))
            return torch.randn(16, 3, generator=g1, dtype=F64)

        a = fn(score, p, grid, _x(), noise_sampler=hook, **params)
        b = fn(score, p, grid, _x(), noise=torch.Generator().manual_seed(7), **params)
        assert torch.equal(a.x, b.x), name
        assert asked and all(s0 >= s1 > 0 for s0, s1 in asked), name


# --------------------------------------------------------------------------------------------
# the ddpm process
# --------------------------------------------------------------------------------------------


def test_ddpm_process_marginals_oracles_and_bounds():
    p = DDPM()
    betas = beta_table("linear")
    abar = torch.cumprod(1 - betas, 0)
    k = torch.arange(1000, dtype=F64)
    assert torch.allclose(p.scale(k + 1) ** 2, abar, rtol=1e-12)
    assert float(p.scale(0.0)) == 1.0 and float(p.variance(0.0)) == 0.0
    t = torch.tensor([0.3, 1.0, 17.5, 999.9], dtype=F64)
    assert torch.allclose(p.t_of_sigma(p.sigma(t)), t, rtol=1e-12)
    ends = torch.tensor([1.0, 1000.0], dtype=F64)
    assert torch.allclose(p.sigmas_at_timesteps([0, 999]), p.sigma(ends))
    # from a given ᾱ table, and diffusers' other named tables
    q = DDPM.from_alphas_cumprod(abar)
    assert torch.allclose(q.sigma(t), p.sigma(t), rtol=1e-12)
    for kind in ("scaled_linear", "squaredcos_cap_v2"):
        assert DDPM(DiscreteBeta(kind)).alphas_cumprod.min() > 0
    # the DDIM oracle (docs/theory.md §5.2) on the ddpm process equals the sampler
    grid = TimeGrid(sigmas=[*p.sigmas_at_timesteps([900, 600, 300, 100, 10, 0]).tolist(), 0.0])
    xT = _x()
    out = get("sampler", "ddim")(TARGET.score_model(p), p, grid, xT)
    times = [*grid.times(p).tolist(), 0.0]
    M, c = oracles.affine_flow("ddim", p, times, LAM, MU)
    assert np.allclose(out.x.numpy(), M * xT.numpy() + c, rtol=1e-10, atol=1e-10)
    # paper A's KL bound applies (β̃ non-decreasing), and so does the exponential integrator
    from scorelab.bounds import kl_bound

    assert math.isfinite(kl_bound(TARGET, p, 50).total)
    ei = get("sampler", "exponential_integrator")(
        TARGET.score_model(p), p, TimeGrid("uniform", steps=5), xT, noise=torch.Generator()
    )
    assert torch.isfinite(ei.x).all()


def test_ddpm_from_config():
    from scorelab import build_process

    p = build_process({"kind": "ddpm"})
    assert isinstance(p, DDPM) and p.T == 1000 and p.t_min == 1.0
    p = build_process(
        {
            "kind": "ddpm",
            "schedule": {
                "kind": "discrete",
                "beta_schedule": "scaled_linear",
                "beta_start": 0.00085,
                "beta_end": 0.012,
            },
        }
    )
    assert math.isclose(float(p.sigma(p.T)), 14.6, rel_tol=0.01)
    with pytest.raises(InvalidParameter, match="fixed by the 'discrete' schedule"):
        build_process({"kind": "ddpm", "T": 10})


# --------------------------------------------------------------------------------------------
# k-diffusion
# --------------------------------------------------------------------------------------------


def _kdiffusion_sampling():
    """k-diffusion's sampling module: imported if it imports; else k-diffusion's own
    ``sampling.py`` from an installed distribution (``pip install --no-deps k-diffusion``),
    executed with stand-ins for the package's unrelated imports. The package itself does not
    import here: its ``__init__`` pulls in torchvision, kornia, clip and wandb, and installing
    them would replace this environment's torch and numpy, so it is not in the test extra."""
    try:
        import k_diffusion.sampling as sampling

        return sampling
    except Exception:
        pass
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = next(iter(spec.submodule_search_locations))
    pkg = types.ModuleType("k_diffusion")
    pkg.__path__ = [root]
    utils = types.ModuleType("k_diffusion.utils")
    utils.append_dims = lambda x, n: x[(...,) + (None,) * (n - x.ndim)]
    pkg.utils = utils
    stubs = {"k_diffusion": pkg, "k_diffusion.utils": utils}
    try:
        import torchsde  # noqa: F401
    except ImportError:
        stubs["torchsde"] = types.ModuleType("torchsde")  # only the Brownian-tree sampler uses it
    saved = {k: sys.modules.get(k) for k in stubs}
    sys.modules.update(stubs)
    try:
        loader = importlib.util.spec_from_file_location(
            "k_diffusion.sampling", f"{root}/sampling.py"
        )
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
        return module
    except Exception:
        return None
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


K = _kdiffusion_sampling()
needs_kdiffusion = pytest.mark.skipif(
    K is None,
    reason="k-diffusion's sampling module is not importable here (the k-diffusion package "
    "imports torchvision/kornia/clip/wandb, which would replace this environment's torch)",
)


@needs_kdiffusion
def test_kdiffusion_samplers_equal_scorelab_on_the_same_denoiser_sigmas_and_noise():
    """sample_euler / sample_heun / sample_dpmpp_2m (and sample_heun with churn, with the same
    draws through the noise-sampler hook) against ode_euler / heun / dpmpp_2m /
    edm_stochastic on EDM's process with the exact denoiser: 1e-10 in float64."""
    x = _x(scale=80)
    model, p = from_denoiser(D_EXACT, EDM()), EDM()
    kd = to_kdiffusion(model, p)
    sig = K.get_sigmas_karras(7, 0.002, 80.0).to(F64)
    assert torch.allclose(
        sig[:-1], torch.tensor(TimeGrid.karras(7, 0.002, 80.0).sigmas, dtype=F64), rtol=2e-6
    )
    grid = TimeGrid(sigmas=sig.tolist())
    pairs = [
        (K.sample_euler, "ode_euler"),
        (K.sample_heun, "heun"),
        (K.sample_dpmpp_2m, "dpmpp_2m"),
        (K.sample_heun, "edm_stochastic"),
    ]
    for kfn, name in pairs:
        ref = kfn(kd, x.clone(), sig, disable=True)
        _close(get("sampler", name)(model, p, grid, x.clone()).x, ref, 1e-10)
    torch.manual_seed(3)
    ref = K.sample_heun(kd, x.clone(), sig, disable=True, s_churn=1.0)
    torch.manual_seed(3)
    out = get("sampler", "edm_stochastic")(
        model, p, grid, x.clone(), s_churn=1.0, noise_sampler=lambda s, s1: torch.randn_like(x)
    )
    _close(out.x, ref, 1e-10)


def test_scorelab_model_as_kdiffusion_denoiser():
    """to_kdiffusion(score model) is the exact denoiser at a [B] σ; from_denoiser inverts it."""
    p = EDM()
    kd = to_kdiffusion(TARGET.score_model(p), p)
    x, sig = _x(scale=5), torch.linspace(0.01, 60, 16, dtype=F64)
    assert torch.allclose(kd(x, sig), D_EXACT(x, sig), rtol=1e-10, atol=1e-10)
    back = from_denoiser(kd, p)
    assert torch.allclose(back(x, sig), TARGET.score(x, sig, p), rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------------------------
# diffusers
# --------------------------------------------------------------------------------------------

try:
    import diffusers
except ImportError:  # the test extra installs it
    diffusers = None
needs_diffusers = pytest.mark.skipif(diffusers is None, reason="diffusers is not installed")


def _f64_tables(s):
    s.alphas_cumprod = s.alphas_cumprod.to(F64)
    if hasattr(s, "final_alpha_cumprod"):
        s.final_alpha_cumprod = torch.as_tensor(s.final_alpha_cumprod, dtype=F64)
    return s


@needs_diffusers
def test_karras_grid_equals_the_k_diffusion_formula_in_diffusers():
    """TimeGrid.karras equals get_sigmas_karras's formula as diffusers copied it from
    k-diffusion (EDMEulerScheduler computes it in float64): to the last bits."""
    s = diffusers.EDMEulerScheduler()
    ramp = torch.linspace(0, 1, 12, dtype=F64)
    ref = s._compute_karras_sigmas(ramp)
    grid = TimeGrid.karras(12, s.config.sigma_min, s.config.sigma_max, s.config.rho)
    assert torch.allclose(torch.tensor(grid.sigmas, dtype=F64), ref, rtol=1e-14, atol=0)


@needs_diffusers
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_scheduler_equals_scorelab_ddim(eta):
    """DDIMScheduler (its ᾱ table cast to float64, so that it computes in float64) driven by the
    exact model equals scorelab's ddim on the ddpm process of that table, at its timesteps' σ's
    then σ = 0; for η = 1 both draw from generators with the same seed: 1e-10."""
    s = _f64_tables(diffusers.DDIMScheduler(clip_sample=False))
    s.set_timesteps(10)
    kwargs = {"eta": eta, "generator": torch.Generator().manual_seed(5)}
    ref = run_scheduler(s, exact_denoiser(TARGET), _x(), step_kwargs=kwargs)
    p = scheduler_process(s)
    grid = TimeGrid(sigmas=[*p.sigmas_at_timesteps(s.timesteps).tolist(), 0.0])
    for model in (from_denoiser(D_EXACT, p), TARGET.score_model(p)):
        out = get("sampler", "ddim")(
            model, p, grid, _x(), eta=eta, noise=torch.Generator().manual_seed(5)
        )
        _close(out.x, ref.x, 1e-10)
        assert out.nfe == ref.nfe == 10


@needs_diffusers
def test_dpm_solver_multistep_equals_dpmpp_2m():
    """DPMSolverMultistepScheduler (dpmsolver++, order 2, final σ = 0): its step casts the sample
    to float32, hence float32 round-off."""
    s = diffusers.DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2)
    for n in (8, 20):
        s.set_timesteps(n)
        ref = run_scheduler(s, exact_denoiser(TARGET), _x())
        p = scheduler_process(s)
        out = get("sampler", "dpmpp_2m")(
            from_denoiser(D_EXACT, p), p, TimeGrid(sigmas=s.sigmas.tolist()), _x()
        )
        _close(out.x, ref.x, F32_RTOL)
        assert out.nfe == ref.nfe == n


@needs_diffusers
@pytest.mark.parametrize("cls", ["EulerDiscreteScheduler", "EDMEulerScheduler"])
def test_euler_schedulers_equal_euler_in_sigma(cls):
    """EulerDiscreteScheduler and EDMEulerScheduler (state x̂, model fed c_in x̂) equal
    ode_euler on EDM's process (Euler in σ) on their σ's: float32 round-off (both cast)."""
    s = getattr(diffusers, cls)()
    s.set_timesteps(10)
    x = _x() * float(s.init_noise_sigma)
    ref = run_scheduler(s, exact_denoiser(TARGET), x.clone())
    out = get("sampler", "ode_euler")(
        from_denoiser(D_EXACT, BIG), BIG, TimeGrid(sigmas=s.sigmas.tolist()), x.clone()
    )
    _close(out.x, ref.x, F32_RTOL)


@needs_diffusers
def test_ddpm_marginals_equal_diffusers_add_noise():
    s = _f64_tables(diffusers.DDPMScheduler())
    p = DDPM.from_alphas_cumprod(s.alphas_cumprod)
    x0, z = _x(), _x(seed=1)
    ts = torch.tensor([0, 1, 10, 500, 999] * 3 + [7])
    ref = s.add_noise(x0, z, ts)
    assert torch.allclose(p.perturb(x0, DDPM.time_of_timestep(ts), z), ref, rtol=1e-12, atol=1e-12)
    assert torch.allclose(DDPM().alphas_cumprod, s.alphas_cumprod, rtol=1e-6)  # float32 table


@needs_diffusers
def test_a_local_unet_as_a_scorelab_model():
    """A tiny UNet2DModel built from a config (nothing downloaded) is a scorelab model: its ε at
    time t is the UNet's output at timestep t − 1; it samples, and it enters evaluate and the
    paper A bound with a measured score error."""
    from scorelab.bounds import kl_bound
    from scorelab.metrics import evaluate
    from scorelab.sampling import generate

    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(
        sample_size=4, in_channels=1, out_channels=1, layers_per_block=1,
        block_out_channels=(8, 8), norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
    ).double().eval()  # fmt: skip
    target = Gaussian(mean=0.0, cov=0.5, dim=16)
    p = DDPM()
    model = from_diffusers(unet, p, event_shape=(1, 4, 4))
    x = torch.randn(4, 16, generator=torch.Generator().manual_seed(0), dtype=F64)
    with torch.no_grad():
        ref = unet(x.reshape(4, 1, 4, 4), torch.full((4,), 41.0, dtype=F64)).sample.reshape(4, 16)
        assert torch.allclose(model.eps(x, 42.0), ref)
        assert torch.allclose(model(x, 42.0), -ref / p.std(42.0))
    samples = generate(
        model, p, (16,), sampler="ddim", grid=TimeGrid.karras(4, 0.01, 150.0), n=64, dtype=F64
    )
    assert torch.isfinite(samples.samples).all() and samples.nfe == 4
    ev = evaluate(samples.samples, target, ["w2_gaussian"], n_boot=10)
    assert math.isfinite(ev["w2_gaussian"].value)
    b = kl_bound(
        target, p, 10, score_model=model, n_mc=8, generator=torch.Generator().manual_seed(0)
    )
    assert math.isfinite(b.total)


@needs_diffusers
def test_audit_of_ddim_equals_its_gaussian_oracle():
    """The audit's closed-form KL for DDIMScheduler equals the one of the DDIM recursion of
    docs/theory.md §5.2 on the same ddpm process and σ's, started from N(0, 1)."""
    from scorelab.audit import audit
    from scorelab.metrics.gaussian import kl_gaussians, w2_gaussians

    res = audit("diffusers:DDIMScheduler", TARGET, [4, 10], samplers=("ddim",))
    for row, scorelab_row in zip(res.rows, res.scorelab["ddim"], strict=True):
        s = _f64_tables(diffusers.DDIMScheduler(clip_sample=False))
        s.set_timesteps(row.steps)
        p = scheduler_process(s)
        times = [*p.t_of_sigma(p.sigmas_at_timesteps(s.timesteps)).tolist(), 0.0]
        mean, var = oracles.sampler_moments("ddim", p, times, LAM, MU)
        kl = kl_gaussians(MU, LAM, mean, var)
        assert row.kl == pytest.approx(kl, rel=1e-5) and row.nfe == row.steps
        assert row.w2 == pytest.approx(w2_gaussians(MU, LAM, mean, var), rel=1e-5)
        assert scorelab_row.kl == pytest.approx(row.kl, rel=1e-5)


@needs_diffusers
def test_audit_cli_json_and_monte_carlo_for_mixtures(tmp_path):
    from typer.testing import CliRunner

    from scorelab.cli import app

    runner = CliRunner()
    res = runner.invoke(
        app,
        ["audit", "diffusers:DDPMScheduler", "--target",
         "{kind: gaussian, dim: 2, mean: 1.0, cov: 0.5}",
         "--steps", "3,6", "--json", "--out", str(tmp_path), "--samplers", "ddim,heun"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["scheduler"] == "diffusers:DDPMScheduler" and data["target"] == "gaussian"
    assert [r["steps"] for r in data["ladder"]] == [3, 6]
    assert all(r["kl"] > 0 and r["w2"] > 0 and r["nfe"] == r["steps"] for r in data["ladder"])
    assert data["ladder"][0]["noise_draws"] == 2  # the ancestral chain draws on all but the last
    assert set(data["beside"]) == {"ddim", "heun"}
    assert (tmp_path / "certificate.html").stat().st_size > 0
    res = runner.invoke(
        app,
        ["audit", "diffusers:DDIMScheduler", "--target", "{kind: gmm, preset: ring8}",
         "--steps", "5", "--json", "--n", "200", "--samplers", "ddim"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    row = json.loads(res.output)["ladder"][0]
    assert row["kl"] is None and row["method"] == "monte_carlo"
    assert row["w2"] > 0 and row["w2_floor"] > 0 and len(row["w2_ci"]) == 2
    bad = runner.invoke(
        app, ["audit", "diffusers:NoSuchScheduler", "--target", "{kind: gaussian, dim: 2}"]
    )
    assert bad.exit_code == 2 and "not a diffusers scheduler" in bad.output


@pytest.mark.parametrize("kind", ["edm", "eps", "score"])
def test_trained_networks_expose_the_three_faces(kind):
    """A ScoreNetwork (here untrained, float64) has prediction, eps and denoiser consistent
    with its score and denoise; with EDM's parameterisation the σ-space samplers call its
    denoise directly (the same samples as through its score, to round-off)."""
    from scorelab.networks import build_network
    from scorelab.parameterisations import ScoreNetwork

    p = VP(LinearBeta())
    net = build_network("mlp", (3,), generator=torch.Generator().manual_seed(0))
    model = ScoreNetwork(net, p, kind, sigma_data=0.5).double().eval()
    assert model.prediction == {"edm": "denoiser", "eps": "eps", "score": "score"}[kind]
    x, t = _x(), torch.linspace(0.1, 0.9, 16, dtype=F64)
    with torch.no_grad():
        s, d = model(x, t), model.denoise(x, t)
        m, sd = p.scale(t)[:, None], p.std(t)[:, None]
        assert torch.allclose(model.eps(x, t), -sd * s, rtol=1e-10, atol=1e-12)
        assert torch.allclose(model.denoiser(x / m, p.sigma(t)), d, rtol=1e-9, atol=1e-10)
        faces = as_model(model, p)
        assert faces.prediction == model.prediction
        assert torch.allclose(faces.eps(x, t), model.eps(x, t), rtol=1e-10, atol=1e-12)
        grid = TimeGrid("edm", steps=5, final="denoise")
        a = get("sampler", "dpmpp_2m")(model, p, grid, _x())
        b = get("sampler", "dpmpp_2m")(from_score(model, p), p, grid, _x())
    assert a.nfe == b.nfe == 6
    _close(a.x, b.x, 1e-9)
