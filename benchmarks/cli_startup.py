"""CLI start-up: wall time of `scorelab --help`, `scorelab list`, `scorelab list --json` and
`scorelab check configs/quickstart.yaml`, each in a fresh interpreter, beside two baselines
measured in the same run: a bare interpreter (`python -c pass`) and `python -c "import torch"`
(what every command cost before the lazy start-up).

Reported per command: the median over --repeats of the wall time, its ratio to `import torch`,
and the time above the bare interpreter. Goal (issue 18): `--help` and `list` ≤ 0.3 s on an idle
machine, i.e. well under the `import torch` baseline; `check` builds the target and process, so
it loads torch by design.

    python benchmarks/cli_startup.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "bare python": ["-c", "pass"],
    "import torch": ["-c", "import torch"],
    "scorelab --help": ["-m", "scorelab", "--help"],
    "scorelab list": ["-m", "scorelab", "list"],
    "scorelab list --json": ["-m", "scorelab", "list", "--json"],
    "scorelab check": ["-m", "scorelab", "check", str(ROOT / "configs" / "quickstart.yaml")],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {k: [] for k in CASES}
    for _ in range(args.repeats):  # interleaved: every case sees the same machine state
        for name, argv in CASES.items():
            t0 = time.perf_counter()
            subprocess.run([sys.executable, *argv], check=True, capture_output=True)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = {
        k: {
            "seconds": med[k],
            "ratio_to_import_torch": med[k] / med["import torch"],
            "above_bare_python": med[k] - med["bare python"],
        }
        for k in CASES
    }
    out = ROOT / "benchmarks" / "results" / "cli_startup.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"repeats": args.repeats, "rows": rows}, indent=2) + "\n")
    print(f"{'command':24s} {'median s':>9s} {'× import torch':>15s}")
    for k, r in rows.items():
        print(f"{k:24s} {r['seconds']:9.3f} {r['ratio_to_import_torch']:15.2f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
