"""How many intra-op threads torch uses, chosen from the work.

scorelab's typical networks are small (an MLP on 2-D data): their matmuls are microseconds,
and a second thread only adds synchronisation — measured on the 2-core development machine,
one thread was faster even idle (600 quickstart steps: 5.1 s vs 6.2 s), and with three other
busy processes torch's default threads made the same run 2.8× slower (26.2 s vs 9.2 s) while
one thread lost little. Image networks (the U-Net) have convolutions large enough to use
several cores. So: one thread unless the network is a U-Net or the events are images of at
least 16×16; then every core. ``--threads N`` or ``SCORELAB_THREADS=N`` overrides; sweeps and
studies always run one thread per worker.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from .errors import InvalidParameter

ENV = "SCORELAB_THREADS"


def requested() -> int | None:
    """The thread count asked for with ``SCORELAB_THREADS`` (None: choose from the work)."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        raise InvalidParameter(ENV, "must be a whole number ≥ 1", raw) from None
    if n < 1:
        raise InvalidParameter(ENV, "must be ≥ 1", n)
    return n


def choose(network: str | None = None, event_shape: Sequence[int] | None = None) -> int:
    """The thread count for work on ``network`` over events of ``event_shape``."""
    n = requested()
    if n is not None:
        return n
    cores = os.cpu_count() or 1
    images = event_shape is not None and len(event_shape) == 3 and math.prod(event_shape[1:]) >= 256
    return cores if network == "unet" or images else 1


def apply(network: str | None = None, event_shape: Sequence[int] | None = None) -> int:
    """Set torch's intra-op threads by ``choose``; returns the count."""
    import torch

    n = choose(network, event_shape)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


@contextmanager
def scoped(network: str | None = None, event_shape: Sequence[int] | None = None) -> Iterator[int]:
    """``apply`` for the duration of a with-block (yields the count); the caller's thread count
    is restored afterwards, so that library calls (``diagnostics.diagnose``) follow the policy
    without changing the caller's setting."""
    import torch

    before = torch.get_num_threads()
    try:
        yield apply(network, event_shape)
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
