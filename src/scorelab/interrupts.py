"""SIGINT and SIGTERM deferred to a loop's step boundary.

A signal arriving in the middle of a training step would leave a half-finished step (the batch
drawn, the optimiser stepped, the step counter not yet advanced); a checkpoint written from
there does not resume exactly. Inside ``StopSignals`` the first SIGINT (Ctrl-C) or SIGTERM
(what schedulers send before preemption) only records the request; the loop finishes its step,
writes a checkpoint and stops. A second signal means "now": it raises ``KeyboardInterrupt``
at once, and the loop then keeps the last checkpoint instead of writing a half step.

Handlers can only be installed from the main thread; elsewhere ``StopSignals`` does nothing
and Python's default behaviour stands.
"""

from __future__ import annotations

import signal
import threading

SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None)


class StopSignals:
    """A context in which SIGINT/SIGTERM set ``requested`` (the signal's number) instead of
    interrupting; a second one raises ``KeyboardInterrupt``."""

    def __init__(self, enabled: bool = True, signals: tuple[int, ...] = SIGNALS):
        self.enabled = enabled
        self.signals = signals
        self.requested: int | None = None
        self._previous: dict[int, object] = {}

    def _handler(self, signum, frame):
        if self.requested is not None:  # the second one: stop now
            raise KeyboardInterrupt
        self.requested = signum

    def __enter__(self) -> StopSignals:
        if not self.enabled or threading.current_thread() is not threading.main_thread():
            return self
        for s in self.signals:
            try:
                self._previous[s] = signal.signal(s, self._handler)
            except (ValueError, OSError):  # not allowed here (embedded interpreters)
                pass
        return self

    def __exit__(self, *exc) -> None:
        for s, previous in self._previous.items():
            try:
                signal.signal(s, previous)
            except (ValueError, OSError, TypeError):
                pass
        self._previous.clear()

    @property
    def name(self) -> str:
        if self.requested is None:
            return ""
        try:
            return signal.Signals(self.requested).name
        except ValueError:
            return str(self.requested)


__all__ = ["SIGNALS", "StopSignals"]
