"""The certificate against past diffusers releases that shipped numerical scheduler bugs: for
each bug, the release with it and the release that fixed it, the check that must fail at the
first and pass at the second (docs/audit.md, "Old releases").

Each release runs in its own Python environment: by default a venv per release under
``--root`` (created on first use, as the README says: releases up to 0.32 with
``huggingface_hub<0.26`` and ``numpy<2``), or any command given by ``--python`` with
``{release}`` in it, e.g. ``--python "env PYTHONPATH=/opt/dv/{release} /opt/dv/base/bin/python"``.
In each, ``scorelab audit diffusers:CLASS --json`` certifies the configuration.

    python benchmarks/audit_releases.py [--root /tmp/scorelab-releases] [--python CMD]
        [--only 1,3] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = "{kind: gaussian, dim: 2, mean: 0.5, cov: 0.25}"
# each bug: the configuration that shows it, the releases before and after its fix, the check
# that catches it, and the upstream change that fixed it
BUGS = [
    {
        "bug": "DDPM with fewer steps than training steps stepped one training timestep per call",
        "scheduler": "DDPMScheduler",
        "config": {},
        "steps": "5,10,20,40,80,160,320",
        "buggy": "0.12.1",
        "fixed": "0.13.0",
        "check": "timestep_noise_level",
        "upstream": "huggingface/diffusers#2076",
    },
    {
        "bug": "DDIM with prediction_type='sample' used the predicted x0 as the noise",
        "scheduler": "DDIMScheduler",
        "config": {"prediction_type": "sample"},
        "steps": "5,10,20,40,80",
        "buggy": "0.14.0",
        "fixed": "0.15.0",
        "check": "prediction_types",
        "upstream": "huggingface/diffusers#2094",
    },
    {
        "bug": "DPM-Solver multistep with Karras sigmas repeated its last sigma: a no-op last step",
        "scheduler": "DPMSolverMultistepScheduler",
        "config": {"use_karras_sigmas": True},
        "steps": "5,10,20,40,80,160,320",
        "buggy": "0.25.1",
        "fixed": "0.26.0",
        "check": "sigma_sequence",
        "upstream": "huggingface/diffusers#6477",
    },
    {
        "bug": "DPM-Solver singlestep (order 2) kept a second-order last step for even N: inf",
        "scheduler": "DPMSolverSinglestepScheduler",
        "config": {},
        "steps": "5,10,20,40,80,160,320",
        "buggy": "0.26.2",
        "fixed": "0.26.3",
        "check": "runs",
        "upstream": "huggingface/diffusers#6953",
    },
    {
        "bug": "DPM-Solver singlestep order 3 took a second-order last step for N = 3k − 1: NaN",
        "scheduler": "DPMSolverSinglestepScheduler",
        "config": {"solver_order": 3},
        "steps": "5,10,20,40,80,160,320",
        "buggy": "0.31.0",
        "fixed": "0.32.0",
        "check": "runs",
        "upstream": "huggingface/diffusers#9104",
    },
    {
        "bug": "DDPM's previous timestep t − 1000 // N was right for 'leading' spacing only",
        "scheduler": "DDPMScheduler",
        "config": {"timestep_spacing": "linspace"},
        "steps": "5,10,20,40,80,160,320",
        "buggy": "0.31.0",
        "fixed": "0.32.0",
        "check": "timestep_noise_level",
        "upstream": "huggingface/diffusers#9384",
    },
    {
        "bug": "FlowMatch Euler's stochastic sampling drew its noise without the generator",
        "scheduler": "FlowMatchEulerDiscreteScheduler",
        "config": {"stochastic_sampling": True},
        "steps": "5,10,20,40,80,160,320",
        "buggy": "0.38.0",
        "fixed": "0.39.0",
        "check": "generator",
        "upstream": "huggingface/diffusers#13678",
    },
    {
        "bug": "Euler's add_noise after set_begin_index and steps noised to the begin index's σ",
        "scheduler": "EulerDiscreteScheduler",
        "config": {},
        "steps": "5,10,20,40,80",
        "buggy": "0.27.1",
        "fixed": "0.27.2",
        "check": "add_noise_mid_run",
        "upstream": "huggingface/diffusers#7386",
    },
]


def _venv_python(root: Path, release: str) -> list[str]:
    env = root / release
    python = env / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        pins = ["-c", str(ROOT / "constraints-cpu.txt"), "-e", str(ROOT), f"diffusers=={release}"]
        major, minor = (int(v) for v in release.split(".")[:2])
        old = ["huggingface_hub<0.26"] if (major, minor) <= (0, 32) else []
        cmd = [str(python), "-m", "pip", "install", "-q", *pins, *old, "numpy<2"]
        subprocess.run(cmd, check=True)
    return [str(python)]


def certify_in(python: list[str], bug: dict) -> dict:
    """The certificate of the bug's configuration in one environment, as JSON."""
    cmd = [*python, "-m", "scorelab", "audit", f"diffusers:{bug['scheduler']}"]
    for k, v in bug["config"].items():
        cmd += ["--scheduler-config", f"{k}={json.dumps(v)}"]
    cmd += ["--target", TARGET, "--steps", bug["steps"], "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr else "failed"}
    return json.loads(res.stdout)


def verdict(cert: dict, check: str) -> dict:
    if "error" in cert:
        return {"error": cert["error"]}
    found = next((c for c in cert["checks"] if c["id"] == check), None)
    failed = [c["id"] for c in cert["checks"] if c["passed"] is False]
    return {
        "check_passed": None if found is None else found["passed"],
        "check_detail": None if found is None else found["detail"],
        "certificate_passed": cert["passed"],
        "failed": failed,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("/tmp/scorelab-releases"))
    ap.add_argument("--python", default=None, help="command template with {release}")
    ap.add_argument("--only", default=None, help="comma-separated bug numbers (1-based)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    chosen = range(1, len(BUGS) + 1)
    if args.only:
        chosen = [int(v) for v in args.only.split(",")]
    results = []
    for i in chosen:
        bug = BUGS[i - 1]
        row = {"n": i, **bug}
        for side in ("buggy", "fixed"):
            release = bug[side]
            if args.python:
                python = shlex.split(args.python.format(release=release))
            else:
                python = _venv_python(args.root, release)
            row[f"{side}_result"] = verdict(certify_in(python, bug), bug["check"])
        results.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
