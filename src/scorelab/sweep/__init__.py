"""Sweeps: a config × grids of values × seeds, run as cached cells on a local process pool
or a Dask cluster, summarised per cell and per swept key (``scorelab sweep``)."""

from .engine import EXECUTORS, SweepOutcome, run_sweep
from .jobs import run_cell
from .spec import JOBS, Cell, cells, parse_grid
from .summary import seed_ci, write_summary

__all__ = [
    "EXECUTORS",
    "JOBS",
    "Cell",
    "SweepOutcome",
    "cells",
    "parse_grid",
    "run_cell",
    "run_sweep",
    "seed_ci",
    "write_summary",
]
