"""One certificate's wall time (``scorelab.audit.certify``, the default ladder 5…320 and every
check), against the 15 s budget on 2 cores.

Each scheduler is certified in-process after one warm-up certificate (so that diffusers'
import is not counted: the command's start-up is measured by ``benchmarks/cli_startup.py``)
on Gaussian targets of dimension 2 and 10, with torch on one thread; the wall time, its ratio
to the budget, the fitted and the nominal order are printed, and written as JSON with --json.

    python benchmarks/audit_certificate.py [--dims 2,10] [--json OUT.json]
        [--schedulers EulerDiscreteScheduler,HeunDiscreteScheduler,...]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

BUDGET_S = 15.0
DEFAULT = (
    "DDIMScheduler",
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "HeunDiscreteScheduler",
    "DPMSolverMultistepScheduler",
    "UniPCMultistepScheduler",
    "FlowMatchEulerDiscreteScheduler",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", default="2,10")
    parser.add_argument("--schedulers", default=",".join(DEFAULT))
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from scorelab.audit import certify
    from scorelab.config import build_target

    rows = []
    for d in [int(v) for v in args.dims.split(",")]:
        cov = torch.linspace(0.25, 4.0, d).tolist()
        target = build_target({"kind": "gaussian", "dim": d, "mean": 1.0, "cov": cov})
        certify("diffusers:DDIMScheduler", target, steps=(5, 10))  # warm-up
        for name in args.schedulers.split(","):
            t0 = time.perf_counter()
            cert = certify(f"diffusers:{name}", target)
            seconds = time.perf_counter() - t0
            fit = cert.fitted_order
            rows.append(
                {
                    "scheduler": name,
                    "dim": d,
                    "seconds": round(seconds, 2),
                    "ratio_to_budget": round(seconds / BUDGET_S, 3),
                    "fitted_order": None if fit is None else round(fit["value"], 3),
                    "nominal_order": cert.nominal_order,
                    "passed": cert.passed,
                    "failed": cert.failed(),
                }
            )
            r = rows[-1]
            print(
                f"d={d:2d} {name:34s} {seconds:6.2f} s ({r['ratio_to_budget']:.2f} of "
                f"{BUDGET_S:.0f} s)  order {r['fitted_order']} (nominal {r['nominal_order']})  "
                f"{'passed' if cert.passed else 'failed: ' + ', '.join(cert.failed())}",
                flush=True,
            )
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as fh:
            json.dump({"budget_s": BUDGET_S, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
