"""A function mapped over items as cached cells: how studies run their independent parts
(seeds, arms, grid points) on the sweep engine.

``map_cells(fn, items, out_dir)`` runs ``fn(**item)`` for each item — on a local process pool
or a Dask cluster — caching each result in ``out_dir/cells/<hash>/cell.json``, the hash of the
function's name and the item. An interrupted study resumes where it stopped, and the result is
the same, bit for bit, whichever executor ran it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter, ScorelabError
from ..progress import tracker
from .engine import Task, execute
from .jobs import read_cell, run_function


def cell_key(fn: Callable, item: dict) -> str:
    text = json.dumps({"fn": f"{fn.__module__}:{fn.__qualname__}", "item": item}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cell_label(fn: Callable[..., Any], item: dict) -> str:
    """What a log line calls a cell: the function and the arguments that tell cells apart at a
    glance (short scalars; the settings shared by every cell and the derived seeds are left
    out, the cell's hash names it exactly)."""
    shown = [
        f"{k}={v}"
        for k, v in item.items()
        if isinstance(v, bool | int | float | str) and not k.endswith("_seed") and len(str(v)) <= 24
    ]
    return f"{fn.__name__}({', '.join(shown)})"


def map_cells(
    fn: Callable[..., Any],
    items: Sequence[dict],
    out_dir: str | Path,
    *,
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
    progress: bool = False,
    log: Callable[[str], None] = lambda msg: None,
) -> list[Any]:
    """``[fn(**item) for item in items]``, each computed once and cached; failures raise
    after every cell has run (naming the failed cells)."""
    if "." in fn.__qualname__ or "<" in fn.__qualname__:
        raise InvalidParameter(
            "fn", "must be a top-level function (it is sent to workers)", fn.__qualname__
        )
    out = Path(out_dir) / "cells"
    keys = [cell_key(fn, item) for item in items]
    results: dict[str, Any] = {}
    tasks = []
    for key, item in zip(keys, items, strict=True):
        record = read_cell(out / key)
        if record is not None and record.get("status") == "done" and key not in results:
            results[key] = record["result"]
        elif key not in {t.key for t in tasks}:
            info = {"key": key, "function": fn.__qualname__, "item": item}
            args = (fn.__module__, fn.__qualname__, item, str(out / key), info)
            tasks.append(Task(key, cell_label(fn, item), run_function, args, out / key))
    if tasks:
        if len(items) > len(tasks):
            log(f"{len(items) - len(tasks)} of {len(items)} {fn.__name__} cells cached")
        if executor == "local" and workers == 1:  # in process: no pool to start
            import torch

            threads = torch.get_num_threads()
            bar = tracker(progress, len(tasks), f"{fn.__name__} cells", "cells")
            records = {}
            try:
                for t in tasks:
                    bar.update(len(records), info=t.label[:70])
                    records[t.key] = t.fn(*t.args)
                bar.update(len(records), info="")
            finally:
                bar.close()
                torch.set_num_threads(threads)
        else:
            records = execute(tasks, executor, workers, address=address, progress=progress, log=log)
        failed = [
            t.label + ": " + str(records[t.key].get("error"))
            for t in tasks
            if records[t.key].get("status") != "done"
        ]
        if failed:
            raise ScorelabError(f"{len(failed)} cells failed: " + "; ".join(failed[:3]))
        results.update({t.key: records[t.key]["result"] for t in tasks})
    return [results[k] for k in keys]
