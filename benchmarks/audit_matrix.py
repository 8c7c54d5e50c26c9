"""`scorelab audit diffusers:all`: the wall time of the default matrix, end to end.

Runs the command in a fresh process (imports, discovery, every configuration's certificate
on the default ladder, the table) into an empty directory, so no cell is cached, and writes
the time, the machine's load, the counts of the table and the slowest configurations. The
target is ≤ 10 minutes with ``--workers 2`` on 2 cores.

    python benchmarks/audit_matrix.py [--workers 2] [--executor local] [--json OUT.json]
        [--target "{kind: gaussian, dim: 2, mean: 0.5, cov: 0.25}"] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = "{kind: gaussian, dim: 2, mean: 0.5, cov: 0.25}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--executor", default="local")
    ap.add_argument("--target", default=TARGET)
    ap.add_argument("--out", type=Path, default=None, help="keep the matrix here")
    ap.add_argument("--json", type=Path, default=None, help="write the result here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "matrix"
        if out.exists() and any(out.iterdir()):
            sys.exit(f"error: --out {out} is not empty (cached cells would not be timed)")
        load = os.getloadavg()
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable, "-m", "scorelab", "audit", "diffusers:all",
                "--target", args.target, "--workers", str(args.workers),
                "--executor", args.executor, "--out", str(out), "--json",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        matrix = json.loads((out / "matrix.json").read_text())
    rows = matrix["rows"]
    slowest = sorted(rows, key=lambda r: -r["seconds"])[:5]
    result = {
        "seconds": seconds,
        "target_seconds": 600,
        "workers": args.workers,
        "executor": args.executor,
        "cpus": os.cpu_count(),
        "load_average_before": load,
        "load_average_after": os.getloadavg(),
        "diffusers": matrix["diffusers"],
        "configurations": len(rows),
        "counts": matrix["counts"],
        "excluded_classes": len(matrix["excluded"]),
        "cell_seconds_total": sum(r["seconds"] for r in rows),
        "slowest": [
            {"scheduler": r["scheduler"], "configuration": r["configuration"], "s": r["seconds"]}
            for r in slowest
        ],
    }
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
