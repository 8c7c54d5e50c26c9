"""The thread policy: one thread for small networks, every core for image networks, and the
user's choice over both."""

from __future__ import annotations

import os

import pytest

from scorelab import threads
from scorelab.errors import InvalidParameter


def test_small_work_gets_one_thread_images_get_the_cores(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    cores = os.cpu_count() or 1
    assert threads.choose("mlp", (2,)) == 1
    assert threads.choose("resmlp", (64,)) == 1
    assert threads.choose("mlp", (1, 8, 8)) == 1  # 8×8 digits: small enough for one
    assert threads.choose("unet", (1, 8, 8)) == cores
    assert threads.choose("mlp", (1, 28, 28)) == cores


def test_the_environment_overrides(monkeypatch):
    monkeypatch.setenv(threads.ENV, "3")
    assert threads.choose("mlp", (2,)) == 3
    monkeypatch.setenv(threads.ENV, "zero")
    with pytest.raises(InvalidParameter, match="SCORELAB_THREADS"):
        threads.choose()
    monkeypatch.setenv(threads.ENV, "0")
    with pytest.raises(InvalidParameter, match="≥ 1"):
        threads.choose()


def test_apply_sets_torch(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv(threads.ENV, "1")
    try:
        assert threads.apply("unet", (1, 28, 28)) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
