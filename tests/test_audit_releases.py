"""The certificate through an old diffusers release's public scheduler API: a temporary
virtual environment with diffusers 0.12.1 (which needs ``huggingface_hub<0.26`` and
``numpy<2``, as the README says), this checkout installed into it, and DDIM's certificate
there, its exact KL checked against DDIM's closed form computed here from the 0.12 formulas
(``leading`` timesteps t_k = k·⌊1000/N⌋, the previous timestep t − ⌊1000/N⌋, ᾱ = 1 after
the last step) — independent of both diffusers and the certificate — and its one failing
check, ``prediction_types``: 0.12's DDIM used a sample prediction as the noise.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RELEASE = "0.12.1"
STEPS = (10, 20, 40)
TARGET = {"kind": "gaussian", "dim": 1, "mean": 0.5, "cov": 0.09}


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


def _dependencies() -> list[str]:
    """scorelab's own requirements, read from pyproject.toml (torch pinned separately)."""
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return [d for d in deps if not d.startswith(("torch>", "torch=", "numpy"))]


def _venv(tmp: Path) -> Path:
    """A fresh venv with diffusers ``RELEASE`` (old pins) and this checkout."""
    env = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    pip = [str(env / "bin" / "python"), "-m", "pip", "install", "-q"]
    pins = ["-c", str(ROOT / "constraints-cpu.txt"), "torch==2.13.0"]
    old = [f"diffusers=={RELEASE}", "huggingface_hub<0.26", "numpy<2"]
    subprocess.run([*pip, *pins, *old, *_dependencies()], check=True, timeout=1500)
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True, timeout=300)
    return env / "bin" / "python"


SCRIPT = textwrap.dedent(
    """
    import json, sys, warnings
    warnings.filterwarnings("ignore")
    import diffusers, torch
    torch.set_num_threads(1)
    from scorelab.audit import certify
    from scorelab.config import build_target

    target = build_target(json.loads(sys.argv[1]))
    steps = json.loads(sys.argv[2])
    cert = certify("diffusers:DDIMScheduler", target, steps=steps)
    print(json.dumps({"version": diffusers.__version__, "certificate": cert.to_json()}))
    """
)


def ddim_012_law(steps: int, mean: float, var: float) -> tuple[float, float]:
    """(b, a) of DDIM 0.12's deterministic run x ↦ a x + b with the exact ε of N(mean, var),
    from x ~ N(0, 1): ᾱ of the linear β table in float32, as diffusers builds it."""
    import torch

    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float32)
    abar = torch.cumprod(1.0 - betas, 0).double().tolist()
    ratio = 1000 // steps
    a, b = 1.0, 0.0
    for k in reversed(range(steps)):
        t, prev = k * ratio, k * ratio - ratio
        at, ap = abar[t], (abar[prev] if prev >= 0 else 1.0)
        # exact posterior mean x̂0 = mean + g (x − √ᾱ mean), ε̂ = (x − √ᾱ x̂0)/√(1 − ᾱ)
        g = math.sqrt(at) * var / (at * var + 1 - at)
        x0_a, x0_b = g, mean - g * math.sqrt(at) * mean
        eps_a = (1 - math.sqrt(at) * x0_a) / math.sqrt(1 - at)
        eps_b = -math.sqrt(at) * x0_b / math.sqrt(1 - at)
        step_a = math.sqrt(ap) * x0_a + math.sqrt(1 - ap) * eps_a
        step_b = math.sqrt(ap) * x0_b + math.sqrt(1 - ap) * eps_b
        a, b = step_a * a, step_a * b + step_b
    return b, a


def kl_1d(m1: float, v1: float, m2: float, v2: float) -> float:
    """KL(N(m1, v1) ‖ N(m2, v2))."""
    return 0.5 * (v1 / v2 + (m2 - m1) ** 2 / v2 - 1 + math.log(v2 / v1))


def test_the_closed_form_reference_is_right_where_it_can_be_checked():
    """The reference itself: with one step (t = 0, then ᾱ = 1) DDIM returns the exact
    posterior mean x̂0 = mean + g (x − √ᾱ mean), g = √ᾱ var / (ᾱ var + 1 − ᾱ)."""
    import torch

    abar = float(torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), 0)[0])  # N = 1: t = 0
    mean, var = 0.5, 0.09
    b, a = ddim_012_law(1, mean, var)
    g = math.sqrt(abar) * var / (abar * var + 1 - abar)
    assert a == pytest.approx(g, rel=1e-12)
    assert b == pytest.approx(mean - g * math.sqrt(abar) * mean, rel=1e-12)


@pytest.mark.slow
def test_an_old_release_is_certified_and_its_exact_error_matches_the_closed_form(tmp_path):
    if not _pypi_reachable():
        pytest.skip("PyPI is not reachable: an old diffusers release cannot be installed")
    python = _venv(tmp_path)
    res = subprocess.run(
        [str(python), "-c", SCRIPT, json.dumps(TARGET), json.dumps(list(STEPS))],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["version"] == RELEASE
    cert = out["certificate"]
    rungs = {r["steps"]: r for r in cert["ladder"]}
    for n in STEPS:
        b, a = ddim_012_law(n, TARGET["mean"], TARGET["cov"])
        want = kl_1d(TARGET["mean"], TARGET["cov"], b, a * a)
        assert rungs[n]["kl"] == pytest.approx(want, rel=1e-5, abs=1e-12), n
    # 0.12's DDIM read a sample prediction as noise (fixed in 0.15): the one failing check
    failed = [c for c in cert["checks"] if c["passed"] is False]
    assert [c["id"] for c in failed] == ["prediction_types"]
    w2 = float(failed[0]["detail"].split("sample: W2 ")[1].split()[0].rstrip(";,"))
    assert w2 > 0.1  # the sample-prediction law is far from the ε law (W2 0.224 here)
