"""Progress of a long loop, with or without a terminal.

``tracker(enabled, total, what, unit)`` returns an object with ``update(completed, info=...)``,
``advance(k, info=...)`` and ``close()``:

* ``enabled`` false: nothing is shown (``--no-progress``, ``--quiet``, library calls);
* on a terminal (stderr is a TTY): a rich bar with the count, the rate, the ETA and ``info``;
* otherwise (logs, CI, ``nohup``, a cluster job): a plain line on stderr every few seconds,
  ``training: 1200/3000 steps (40 %), 150 steps/s, ETA 12 s, loss 0.43``, and one at the end.
  The interval is ``SCORELAB_PROGRESS_SECONDS`` (default 10; 0 prints every update).

``enabled`` may also be ``"bar"`` or ``"lines"`` to choose the form whatever stderr is.
Progress never goes to stdout, so ``--json`` output stays clean.
"""

from __future__ import annotations

import os
import sys
import time

DEFAULT_SECONDS = 10.0


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("SCORELAB_PROGRESS_SECONDS", DEFAULT_SECONDS)))
    except ValueError:
        return DEFAULT_SECONDS


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 20 s``, ``1 h 05 min``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _rate(per_s: float, unit: str) -> str:
    if per_s >= 10:
        return f"{per_s:.0f} {unit}/s"
    if per_s >= 0.1:
        return f"{per_s:.2g} {unit}/s"
    return f"{1 / per_s:.0f} s per {unit.rstrip('s') or unit}" if per_s > 0 else f"— {unit}/s"


class _Null:
    def update(self, completed: float, info: str | None = None) -> None:
        pass

    def advance(self, k: float = 1, info: str | None = None) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Lines(_Null):
    """A plain line every ``every`` seconds (and one at the end) on ``stream``."""

    def __init__(self, total, what, unit, done=0, every=None, stream=None):
        self.total, self.what, self.unit = total, what, unit
        self.start_done = self.done = done
        self.every = _interval() if every is None else every
        self.stream = stream
        self.t0 = self.last = time.perf_counter()
        self.info = None
        self.printed = False
        self.closed = False

    def _line(self, now: float) -> str:
        elapsed = now - self.t0
        rate = (self.done - self.start_done) / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.what}: {self.done:.0f}/{self.total:.0f} {self.unit}"]
        if self.total:
            parts[0] += f" ({100 * self.done / self.total:.0f} %)"
        parts.append(_rate(rate, self.unit))
        if self.done >= self.total:
            parts.append(f"done in {duration(elapsed)}")
        elif rate > 0:
            parts.append(f"ETA {duration((self.total - self.done) / rate)}")
        if self.info:
            parts.append(self.info)
        return ", ".join(parts)

    def _emit(self, now: float) -> None:
        stream = self.stream or sys.stderr
        try:
            print(self._line(now), file=stream, flush=True)
        except (OSError, ValueError):  # a closed pipe: progress is never worth a crash
            pass
        self.last, self.printed = now, True

    def update(self, completed: float, info: str | None = None) -> None:
        self.done = completed
        if info is not None:
            self.info = info
        now = time.perf_counter()
        if now - self.last >= self.every and self.done < self.total:
            self._emit(now)

    def advance(self, k: float = 1, info: str | None = None) -> None:
        self.update(self.done + k, info)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        now = time.perf_counter()
        # the closing line: always after a line was printed, else only for a long loop
        if self.printed or now - self.t0 >= self.every:
            self._emit(now)


class _Bar(_Null):
    """A rich bar: count, percentage, rate, elapsed and remaining time, ``info``."""

    def __init__(self, total, what, unit, done=0):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn(what),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} " + unit),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self.task = self.bar.add_task(what, total=total, completed=done, info="")
        self.bar.start()
        self.closed = False

    def update(self, completed: float, info: str | None = None) -> None:
        kw = {} if info is None else {"info": info}
        self.bar.update(self.task, completed=completed, **kw)

    def advance(self, k: float = 1, info: str | None = None) -> None:
        kw = {} if info is None else {"info": info}
        self.bar.update(self.task, advance=k, **kw)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.bar.stop()


def tracker(
    enabled: bool | str, total: float, what: str, unit: str = "", *, done: float = 0, every=None
):
    """The progress display of a loop of ``total`` units (see the module docstring)."""
    if not enabled:
        return _Null()
    mode = enabled if isinstance(enabled, str) else ("bar" if _isatty() else "lines")
    if mode == "bar":
        return _Bar(total, what, unit, done)
    return _Lines(total, what, unit, done, every)


def _isatty() -> bool:
    """A terminal, or a Jupyter kernel (where rich draws its bar as a widget)."""
    if "ipykernel" in sys.modules:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
