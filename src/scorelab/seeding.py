"""Seeds derived from a run's seed: one rule, instead of ad-hoc arithmetic at every call site.

A part of a computation that needs its own random stream names itself by keys — a study's
name, a part, an index — and gets ``derive_seed(seed, *keys)``, a stable 63-bit hash of the
seed and the keys (blake2b of their canonical JSON). Streams of different keys are independent
for every practical purpose (unlike ``seed·p + k``, whose streams of neighbouring seeds and
keys collide), and the value does not depend on the Python process, the platform or the torch
version. ``generator(seed, *keys)`` is a CPU ``torch.Generator`` seeded by it.

``step_seed`` is the trainer's per-(step, rank) seed of the loss's own draws (the FP
regulariser's probes), kept as the formula it always was so that checkpoints written before
this module existed resume to the bit.
"""

from __future__ import annotations

import hashlib
import json
import math

import torch

from .errors import InvalidParameter

_MASK63 = (1 << 63) - 1


def _key(value) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidParameter("key", "must be an int or a str", value)
    return value if isinstance(value, str) else int(value)


def derive_seed(seed: int, *keys: int | str) -> int:
    """A seed in [0, 2⁶³) for the stream named by ``keys`` under ``seed`` (a hash of both:
    stable across processes and platforms; ``keys`` are ints or strings)."""
    text = json.dumps([_key(seed), *map(_key, keys)], separators=(",", ":"), ensure_ascii=True)
    digest = hashlib.blake2b(text.encode("ascii"), digest_size=8, person=b"scorelab").digest()
    return int.from_bytes(digest, "big") & _MASK63


SEED_LIMIT = 1 << 64


def check_seed(seed, field: str = "seed") -> int:
    """``seed`` as an int in [0, 2⁶⁴) (what torch's generators take), or an
    ``InvalidParameter``: larger seeds would wrap round to other runs' seeds (2⁶⁴ gave the
    samples of seed 0)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        try:
            value = float(seed)
        except (TypeError, ValueError):
            value = math.nan
        if not value.is_integer():
            raise InvalidParameter(field, "must be an integer", seed, "0 ≤ seed < 2^64")
        seed = int(value)
    if not 0 <= seed < SEED_LIMIT:
        raise InvalidParameter(field, "is out of range", seed, "0 ≤ seed < 2^64")
    return int(seed)


def generator(seed: int, *keys: int | str) -> torch.Generator:
    """A CPU generator seeded by ``derive_seed(seed, *keys)``."""
    return torch.Generator().manual_seed(derive_seed(seed, *keys))


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """The trainer's seed of the loss's own draws at ``step`` on ``rank``:
    seed·1 000 003 + step·1009 + rank mod 2⁶⁴ (unchanged since the first checkpoints, so they
    resume exactly — torch reads a seed mod 2⁶⁴ — and valid for 63-bit derived seeds too;
    distinct for every step and rank of a run with fewer than 1009 ranks)."""
    return (int(seed) * 1_000_003 + int(step) * 1009 + int(rank)) % (1 << 64)


__all__ = ["SEED_LIMIT", "check_seed", "derive_seed", "generator", "step_seed"]
