"""The sweep engine: cells, resume, failures, and the same results on every executor.

The cells are exact-score sample+evaluate jobs on a small Gaussian (a second or two each), so
the real process pool and a real Dask ``LocalCluster`` with two worker processes run here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from scorelab.errors import ConfigError, InvalidParameter
from scorelab.sweep import cells, parse_grid, run_sweep, seed_ci
from scorelab.sweep.jobs import read_cell

BASE = {
    "target": {"kind": "gaussian", "mean": [1.0, -1.0], "cov": [0.5, 2.0]},
    "process": {"kind": "vp"},
    "sampler": {"kind": "heun", "steps": 10, "n": 200, "dtype": "float64"},
    "run": {"metrics": ["w2", "mmd"], "n_boot": 10, "n_boot_ot": 10},
}


def _quiet(msg: str) -> None:
    pass


def _numbers(outcome) -> dict:
    return {k: r["metrics"] for k, r in outcome.records.items()}


def test_parse_grid_values_and_ranges():
    assert parse_grid("process.schedule.a=-10:10:5") == ("process.schedule.a", [-10, -5, 0, 5, 10])
    assert parse_grid("x=0:1:0.25") == ("x", [0.0, 0.25, 0.5, 0.75, 1.0])
    assert parse_grid("sampler.kind=heun,ddim") == ("sampler.kind", ["heun", "ddim"])
    assert parse_grid("a=[1, 2],[3, 4]") == ("a", [[1, 2], [3, 4]])
    assert parse_grid("a=1e-3,null") == ("a", [1e-3, None])
    for bad in ("nokey", "=1,2", "a=0:1:0", "a=1:0:1"):
        with pytest.raises(InvalidParameter):
            parse_grid(bad)


def test_cells_are_the_product_and_hash_their_resolved_config():
    todo = cells(
        BASE,
        [parse_grid("sampler.steps=5,10"), parse_grid("sampler.kind=heun,ddim")],
        [0, 1, 2],
        "sample",
    )
    assert len(todo) == 2 * 2 * 3
    assert len({c.key for c in todo}) == len(todo)
    again = cells(
        BASE,
        [parse_grid("sampler.steps=5,10"), parse_grid("sampler.kind=heun,ddim")],
        [0, 1, 2],
        "sample",
    )
    assert [c.key for c in again] == [c.key for c in todo]  # stable across runs
    # a default written out explicitly is the same resolved config, hence the same cell
    explicit = cells({**BASE, "seed": 0}, [], [0], "sample")[0]
    assert explicit.key == cells(BASE, [], [0], "sample")[0].key
    # a bad value is reported with its cell before anything runs
    with pytest.raises(ConfigError, match=r"cell sampler\.steps=0"):
        cells(BASE, [parse_grid("sampler.steps=5,0")], [0], "sample")
    with pytest.raises(InvalidParameter, match="--job"):
        cells(BASE, [], [0], "train")


def test_seed_ci_is_a_t_interval():
    mean, _lo, hi = seed_ci([1.0, 2.0, 3.0])
    # t_{0.975, 2} = 4.303, sd = 1, n = 3
    assert mean == 2.0 and hi - mean == pytest.approx(4.302653 / 3**0.5, rel=1e-5)
    assert seed_ci([5.0]) == (5.0, 5.0, 5.0)


def test_local_sweep_resumes_and_records_a_failing_cell(tmp_path):
    grid = [parse_grid("sampler.kind=heun,exponential_integrator")]
    base = {**BASE, "process": {"kind": "ve"}}  # the exponential integrator refuses VE
    todo = cells(base, grid, [0, 1], "sample")
    first = run_sweep(todo, tmp_path, workers=2, log=_quiet)
    counts = first.counts()
    assert counts == {"done": 2, "failed": 2}
    failed = [r for r in first.records.values() if r["status"] == "failed"]
    assert all("vp process only" in r["error"] for r in failed)
    rows = json.loads((tmp_path / "summary.json").read_text())["cells"]
    assert [r["status"] for r in rows] == ["done", "done", "failed", "failed"]
    header = (tmp_path / "summary.csv").read_text().splitlines()[0].split(",")
    assert {"sampler.kind", "seed", "status", "seconds", "w2", "w2_floor", "w2_ci_lo"} <= set(
        header
    )
    assert (tmp_path / "report.html").stat().st_size > 1000
    # the report leads with the best cell per metric, then the panels in one grid figure
    assert "Best cell per metric" in (tmp_path / "report.html").read_text()
    assert (tmp_path / "figures" / "metrics.png").is_file()
    # the outcome as data: its frame is summary.json's cells; shown, its lead table
    frame = first.to_frame()
    assert list(frame["status"]) == [r["status"] for r in rows]
    assert list(frame["w2"].dropna()) == [r["w2"] for r in rows if r["status"] == "done"]
    lead = {r[0]: r for r in first._table().rows}
    heun = [r["w2"] for r in rows if r["status"] == "done"]
    assert lead["w2"][1] == "sampler.kind=heun" and lead["w2"][6] == 2
    assert min(heun) < lead["w2"][2] < max(heun)  # the centre of the two seeds
    # a cell is an ordinary run directory
    done_dir = tmp_path / "cells" / todo[0].key
    assert {"cell.json", "config.yaml", "samples.npz", "evaluation.json"} <= {
        p.name for p in done_dir.iterdir()
    }
    # resume: every cell is kept (failed ones too, unless asked)
    logs: list[str] = []
    again = run_sweep(todo, tmp_path, workers=2, log=logs.append)
    assert again.skipped == 4 and "2 cells finished earlier" in logs[0]
    assert _numbers(again) == _numbers(first)
    retried = run_sweep(todo, tmp_path, workers=1, retry_failed=True, log=_quiet)
    assert retried.skipped == 2 and retried.counts() == {"done": 2, "failed": 2}
    # an interrupted cell (left "running") is run again
    record = read_cell(done_dir)
    record["status"] = "running"
    (done_dir / "cell.json").write_text(json.dumps(record))
    third = run_sweep(todo, tmp_path, workers=1, log=_quiet)
    assert third.skipped == 3
    assert _numbers(third)[todo[0].key] == _numbers(first)[todo[0].key]  # bit for bit


def test_dask_local_cluster_matches_the_process_pool(tmp_path):
    pytest.importorskip("distributed")
    todo = cells(BASE, [parse_grid("sampler.steps=4,8")], [0, 1], "sample")
    local = run_sweep(todo, tmp_path / "local", workers=2, log=_quiet)
    dask = run_sweep(todo, tmp_path / "dask", executor="dask", workers=2, log=_quiet)
    one = run_sweep(todo, tmp_path / "one", workers=1, log=_quiet)
    assert local.counts() == {"done": 4}
    assert _numbers(dask) == _numbers(local) == _numbers(one)


def _kill_first_worker_when_a_cell_starts(out: Path, pids: list[int], done: threading.Event):
    """Wait (without a clock) for a cell to be running, then SIGKILL one worker process."""
    for _ in range(6000):
        if done.is_set():
            return
        running = [p for p in (out / "cells").glob("*/cell.json") if '"running"' in p.read_text()]
        if running and pids:
            os.kill(pids[0], signal.SIGKILL)
            return
        threading.Event().wait(0.05)


@pytest.mark.slow
def test_a_worker_killed_mid_sweep_loses_nothing(tmp_path):
    distributed = pytest.importorskip("distributed")
    todo = cells(BASE, [parse_grid("sampler.steps=4,8,16,32")], [0, 1], "sample")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    )
    try:
        client = distributed.Client(cluster)
        pids = list(client.run(os.getpid).values())
        client.close()
        done = threading.Event()
        killer = threading.Thread(
            target=_kill_first_worker_when_a_cell_starts, args=(tmp_path, pids, done)
        )
        killer.start()
        try:
            outcome = run_sweep(
                todo, tmp_path, executor="dask", address=cluster.scheduler_address, log=_quiet
            )
        finally:
            done.set()
            killer.join()
    finally:
        cluster.close()
    assert outcome.counts() == {"done": len(todo)}
    reference = run_sweep(todo, tmp_path / "ref", workers=2, log=_quiet)
    assert _numbers(outcome) == _numbers(reference)


@pytest.mark.slow
def test_local_pool_survives_a_killed_worker(tmp_path):
    """The process pool breaks when a worker dies; the engine re-runs the unfinished cells."""
    todo = cells(BASE, [parse_grid("sampler.steps=4,8,16,32")], [0], "sample")
    done = threading.Event()
    pids: list[int] = []

    def watch():
        for _ in range(6000):
            if done.is_set():
                return
            kids = _children(os.getpid())
            running = [p for p in (tmp_path / "cells").glob("*/cell.json")]
            if kids and any('"running"' in p.read_text() for p in running):
                os.kill(kids[-1], signal.SIGKILL)
                pids.append(kids[-1])
                return
            threading.Event().wait(0.05)

    t = threading.Thread(target=watch)
    t.start()
    try:
        outcome = run_sweep(todo, tmp_path, workers=2, log=_quiet)
    finally:
        done.set()
        t.join()
    assert pids, "no worker was killed"
    assert outcome.counts() == {"done": len(todo)}


def _children(pid: int) -> list[int]:
    """Child processes of ``pid`` (Linux /proc), the pool's workers among them."""
    out = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("PPid:") and int(line.split()[1]) == pid:
                cmd = (status.parent / "cmdline").read_bytes()
                if b"forkserver" in cmd or b"spawn_main" in cmd:
                    out.append(int(status.parent.name))
    return sorted(out)


def test_map_cells_caches_and_is_the_same_on_every_executor(tmp_path):
    from scorelab.sweep.mapping import map_cells
    from tests.helpers.cells import fails_for_negative, noisy_mean

    items = [{"seed": s, "n": 1000, "scale": 2.0} for s in range(4)]
    inline = map_cells(noisy_mean, items, tmp_path / "inline")
    pooled = map_cells(noisy_mean, items, tmp_path / "pool", workers=2)
    assert inline == pooled
    assert all(abs(r["var"] - 4.0) < 0.5 for r in inline)  # N(0, 4): var within ~6 s.e.
    logs: list[str] = []
    again = map_cells(
        noisy_mean,
        [*items, {"seed": 9, "n": 10, "scale": 1.0}],
        tmp_path / "inline",
        log=logs.append,
    )
    assert again[:4] == inline and "4 of 5 noisy_mean cells cached" in logs[0]
    with pytest.raises(Exception, match=r"1 cells failed.*negative value -1"):
        map_cells(fails_for_negative, [{"value": 1.0}, {"value": -1.0}], tmp_path / "f")
    # the good cell is kept: only the failing one runs again
    with pytest.raises(Exception, match="1 cells failed"):
        map_cells(
            fails_for_negative, [{"value": 1.0}, {"value": -1.0}], tmp_path / "f", log=logs.append
        )
    assert "1 of 2 fails_for_negative cells cached" in logs[-1]


@pytest.mark.slow
def test_pool_workers_end_when_the_sweep_is_killed(tmp_path):
    """A worker whose sweep process died (SIGKILL) exits instead of computing on."""
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    code = (
        "import time\n"
        "from scorelab.sweep.engine import _init_worker\n"
        f"_init_worker({parent.pid})\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline().strip() == "ready"
        assert worker.poll() is None  # its sweep is alive: it keeps working
        parent.kill()
        parent.wait()
        assert worker.wait(timeout=60) == 1
    finally:
        for p in (parent, worker):
            if p.poll() is None:
                p.kill()
