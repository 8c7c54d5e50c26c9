"""Running a sweep's cells: skip what is finished, run the rest on an executor, summarise.

Two executors share one contract — run ``jobs.run_cell`` for each pending cell, report each
outcome as it arrives — so a cell's result is the same, bit for bit, whichever runs it:

* ``local``: a process pool of N workers (forked from a clean forkserver, one torch
  thread each). A worker that dies breaks the pool; the engine starts a new pool and re-runs the
  cells that had not finished (three attempts each).
* ``dask``: a ``distributed.Client`` — a ``LocalCluster`` of N single-threaded worker
  processes, or the running scheduler at ``address`` (``dask scheduler`` / ``dask worker``,
  dask-jobqueue, dask-kubernetes). Dask itself re-runs a cell whose worker died (up to its
  ``allowed-failures``); with CUDA workers started with ``--resources GPU=1``, each cell asks
  for one GPU.

Finished cells are never re-run: a cell is finished when its ``cell.json`` says "done" (or
"failed", unless ``retry_failed``). Interrupting the command, or losing the scheduler, loses
only the cells in flight; the same command resumes.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..display import Column, Table, Tabular, frame
from ..errors import InvalidParameter, ScorelabError
from ..storage import write_json
from .jobs import read_cell, run_cell
from .spec import Cell

EXECUTORS = ("local", "dask")
MAX_ATTEMPTS = 3  # per cell, when its worker process dies (local executor)


@dataclass(frozen=True)
class Task:
    """One unit of work for an executor: ``fn(*args)`` returns the cell's record (a dict
    with a ``status``) and writes it to ``cell_dir/cell.json``."""

    key: str
    label: str
    fn: Callable[..., dict]
    args: tuple
    cell_dir: Path


#: the lead table's columns: a metric's best cell against its floor
LEAD_COLUMNS = [
    Column("metric", "text"),
    Column("best cell", "text", "best"),
    Column("centre"),
    Column("95% CI", "interval", "ci"),
    Column("floor"),
    Column("centre / floor", "ratio", "ratio"),
    Column("seeds"),
]


@dataclass
class SweepOutcome(Tabular):
    """A sweep's cells and their records (``cell.json``). Shown (Jupyter, Rich) as the
    report's lead table: per metric the best cell, its centre over seeds with a 95 %
    interval within the metric's range, the floor and the ratio (``scorelab.figures``);
    ``to_frame()`` is one row per cell (summary.csv's columns), ``to_dict()`` the counts and
    those rows."""

    out_dir: Path
    cells: list[Cell]
    records: dict[str, dict] = field(default_factory=dict)  # cell key → cell.json
    skipped: int = 0
    seconds: float = 0.0

    def counts(self) -> Counter:
        return Counter(r.get("status", "missing") for r in self.records.values())

    def _table(self) -> Table:
        from ..figures import lead_rows
        from .summary import measured_metrics, rows

        table = rows(self)
        keys = list(self.cells[0].values) if self.cells else []
        lead = lead_rows(table, keys, measured_metrics(table, keys))
        body = [
            [r["metric"], r["best"], r["centre"], r["ci"], r["floor"], r["ratio"], r["seeds"]]
            for r in lead
        ]
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.counts().items()))
        title = f"sweep: {len(self.cells)} cells ({counts or 'none run'}); best cell per metric"
        notes = sorted({f"{r['metric']}: {r['interval']}, best is {r['direction']}" for r in lead})
        return Table(title, LEAD_COLUMNS, body, notes)

    def to_dict(self) -> dict:
        from .summary import rows

        return {"out_dir": str(self.out_dir), "counts": dict(self.counts()), "cells": rows(self)}

    def to_frame(self):
        from .summary import rows

        table = rows(self)
        columns: list[str] = []
        for row in table:
            columns += [k for k in row if k not in columns]
        return frame(table, columns)


def cell_dir(out_dir: Path, cell: Cell) -> Path:
    return Path(out_dir) / "cells" / cell.key


def run_sweep(
    cells: Sequence[Cell],
    out_dir: str | Path,
    *,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    retry_failed: bool = False,
    gpus: bool = False,
    progress: bool = False,
    log: Callable[[str], None] = print,
    spec: dict | None = None,
) -> SweepOutcome:
    """Run every unfinished cell into ``out_dir/cells/<hash>/`` and write the summary."""
    if executor not in EXECUTORS:
        raise InvalidParameter("--executor", "is not an executor", executor, ", ".join(EXECUTORS))
    if workers is not None and int(workers) < 1:
        raise InvalidParameter("--workers", "must be ≥ 1", workers)
    if address is not None and executor != "dask":
        raise InvalidParameter("--address", "needs --executor dask", address)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidParameter("--out", "is a file, not a directory", str(out))
    (out / "cells").mkdir(parents=True, exist_ok=True)
    if spec is not None:
        write_json(out / "sweep.json", spec)
    t0 = time.perf_counter()
    result = SweepOutcome(out, list(cells))
    pending = []
    earlier = Counter()
    for cell in cells:
        rec = read_cell(cell_dir(out, cell))
        status = None if rec is None else rec.get("status")
        if status == "done" or (status == "failed" and not retry_failed):
            result.records[cell.key] = rec
            earlier[status] += 1
        else:
            pending.append(cell)
    result.skipped = sum(earlier.values())
    if result.skipped:
        note = f"{earlier['done']} cells finished earlier (skipped)"
        if earlier["failed"]:
            note += f", {earlier['failed']} failed earlier (kept; --retry-failed re-runs them)"
        log(note)
    n_workers = int(workers or os.cpu_count() or 1)
    if pending:
        log(f"running {len(pending)} of {len(cells)} cells on {executor} ({n_workers} workers)")
        tasks = [
            Task(c.key, c.label(), run_cell, _submit_args(c, out), cell_dir(out, c))
            for c in pending
        ]
        result.records.update(
            execute(
                tasks, executor, n_workers, address=address, gpus=gpus, progress=progress, log=log
            )
        )
    result.seconds = time.perf_counter() - t0
    from .summary import write_summary

    write_summary(result, spec or {})
    return result


def _submit_args(cell: Cell, out: Path) -> tuple:
    info = {"key": cell.key, "values": cell.values, "seed": cell.seed}
    return (cell.job, cell.config, str(cell_dir(out, cell)), info)


def execute(
    tasks: Sequence[Task],
    executor: str = "local",
    workers: int = 1,
    *,
    address: str | None = None,
    gpus: bool = False,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, dict]:
    """Run every task on the executor; return each task's record by key."""
    if executor not in EXECUTORS:
        raise InvalidParameter("--executor", "is not an executor", executor, ", ".join(EXECUTORS))
    records: dict[str, dict] = {}
    bar = _Progress(len(tasks), progress, log)
    try:
        if executor == "local":
            _run_local(list(tasks), int(workers), records, bar)
        else:
            _run_dask(list(tasks), int(workers), address, gpus, records, bar)
    finally:
        bar.close()
    return records


def _init_worker(parent: int | None = None) -> None:
    import torch

    torch.set_num_threads(1)
    if parent is not None:
        threading.Thread(target=_exit_when_gone, args=(parent,), daemon=True).start()


def _exit_when_gone(parent: int, every: float = 1.0) -> None:
    """End this worker once the sweep's process is gone. A pool worker's parent is the
    forkserver, not the sweep, so a sweep killed hard (SIGKILL, or SIGTERM before Python can
    clean up) would otherwise leave its workers computing cells nobody collects."""
    while True:
        time.sleep(every)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # alive, owned by someone else (a reused PID)
            pass


def _run_local(todo: list[Task], workers: int, records: dict, bar) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    attempts: Counter = Counter()
    # forkserver: workers fork from a clean single-threaded server that imported scorelab
    # once, so a pool starts in a fraction of a second (spawn re-imports torch per worker)
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["scorelab.sweep.jobs", "scorelab.metrics"])
    while todo:
        with ProcessPoolExecutor(
            min(workers, len(todo)), ctx, initializer=_init_worker, initargs=(os.getpid(),)
        ) as pool:
            futures = {pool.submit(t.fn, *t.args): t for t in todo}
            bar.running(min(workers, len(todo)))
            todo = []
            for fut in as_completed(futures):
                task = futures[fut]
                try:
                    record = fut.result()
                except BrokenProcessPool:
                    attempts[task.key] += 1
                    if attempts[task.key] < MAX_ATTEMPTS:
                        todo.append(task)
                        continue
                    record = _failed(task, f"the worker process died {attempts[task.key]} times")
                records[task.key] = record
                bar.done(task.label, record)
        if todo:
            bar.note(f"a worker process died: re-running {len(todo)} unfinished cells")


def _failed(task: Task, error: str) -> dict:
    """Record a cell as failed for a reason outside it (its worker died)."""
    record = read_cell(task.cell_dir) or {"key": task.key}
    record.update(status="failed", error=error)
    write_json(task.cell_dir / "cell.json", record)
    return record


def _run_dask(todo: list[Task], workers, address, gpus, records: dict, bar) -> None:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ScorelabError(
            "--executor dask needs the optional 'distributed' package: "
            'pip install -e ".[distributed]"'
        ) from None
    cluster = None
    try:
        if address is None:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=40,
            )
            client = Client(cluster)
        else:
            client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise ScorelabError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    resources = {"GPU": 1} if gpus else None
    try:
        futures = {
            client.submit(
                t.fn,
                *t.args,
                key=f"scorelab-cell-{t.key}",
                pure=False,
                retries=2,
                resources=resources,
            ): t
            for t in todo
        }
        bar.running(min(workers, len(todo)))
        for fut in as_completed(futures):
            task = futures[fut]
            try:
                record = fut.result()
            except Exception as exc:  # KilledWorker after Dask's own retries, and the like
                if _scheduler_gone(exc):
                    raise
                record = _failed(task, f"{type(exc).__name__}: {exc}")
            records[task.key] = record
            bar.done(task.label, record)
    except Exception as exc:
        if _scheduler_gone(exc):
            raise ScorelabError(
                f"the Dask scheduler{' at ' + address if address else ''} went away "
                f"({type(exc).__name__}); finished cells are kept — rerun the same command "
                "to resume"
            ) from None
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _scheduler_gone(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name in ("CommClosedError", "FutureCancelledError", "CancelledError") or isinstance(
        exc, OSError | TimeoutError
    )


class _Progress:
    """Cells done / running / failed with an ETA: a bar on a terminal, a line per finished
    cell otherwise (logs, CI, batch jobs)."""

    def __init__(self, total: int, interactive: bool, log: Callable[[str], None]):
        self.total, self.log = total, log
        self.finished = self.failed = self.in_flight = 0
        self.t0 = time.perf_counter()
        self.bar = None
        if interactive and sys.stderr.isatty():
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("cells"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("{task.fields[status]}"),
                TimeRemainingColumn(),
                transient=False,
            )
            self.task = self.bar.add_task("cells", total=total, status="")
            self.bar.start()

    def _status(self) -> str:
        return (
            f"done {self.finished - self.failed} · running {self.in_flight} · failed {self.failed}"
        )

    def running(self, n: int) -> None:
        self.in_flight = n
        if self.bar is not None:
            self.bar.update(self.task, status=self._status())

    def done(self, label: str, record: dict) -> None:
        self.finished += 1
        self.failed += record.get("status") != "done"
        self.in_flight = min(self.in_flight, self.total - self.finished)
        if self.bar is not None:
            self.bar.update(self.task, advance=1, status=self._status())
            return
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / self.finished * (self.total - self.finished)
        word = record.get("status", "?")
        extra = f": {record.get('error')}" if word != "done" else ""
        self.log(
            f"[{self.finished}/{self.total}] {word} {label}{extra} "
            f"({self._status()}; ETA {eta:.0f} s)"
        )

    def note(self, text: str) -> None:
        (self.bar.console.print if self.bar is not None else self.log)(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
