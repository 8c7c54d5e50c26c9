"""Derived seeds: stable values, independent streams per key, and the trainer's step seed."""

from __future__ import annotations

import pytest
import torch

from scorelab.errors import InvalidParameter
from scorelab.seeding import derive_seed, generator, step_seed


def test_derived_seeds_are_stable_63_bit_and_differ_by_key():
    # pinned: a derived seed must not change between versions, processes or platforms
    assert derive_seed(0) == 2402082677306129327
    assert derive_seed(0, "a", 1) == 5845674459695196460
    seeds = {derive_seed(s, *k) for s in range(3) for k in [(), ("a",), ("a", 1), (1, "a"), (1,)]}
    assert len(seeds) == 15 and all(0 <= s < 2**63 for s in seeds)
    # "1" and 1 are different keys
    assert derive_seed(0, "1") != derive_seed(0, 1)


def test_generator_is_seeded_by_the_derived_seed():
    a = torch.randn(3, generator=generator(4, "x", 2))
    b = torch.randn(3, generator=torch.Generator().manual_seed(derive_seed(4, "x", 2)))
    assert torch.equal(a, b)


def test_keys_must_be_ints_or_strings():
    for bad in (1.5, None, True, (1, 2)):
        with pytest.raises(InvalidParameter, match="key"):
            derive_seed(0, bad)


def test_step_seed_is_the_trainers_historical_formula():
    # checkpoints written before the seeding module resume to the bit only with this formula
    assert step_seed(3, 7, 1) == 3 * 1_000_003 + 7 * 1009 + 1
    assert len({step_seed(0, k, r) for k in range(100) for r in range(8)}) == 800
    # a 63-bit derived seed gives a seed torch accepts (torch reads seeds mod 2⁶⁴)
    big = derive_seed(0, "x")
    torch.Generator().manual_seed(step_seed(big, 10**6, 3))
    a = torch.randn(2, generator=torch.Generator().manual_seed(step_seed(-2, 1)))
    b = torch.randn(2, generator=torch.Generator().manual_seed(-2 * 1_000_003 + 1009))
    assert torch.equal(a, b)
