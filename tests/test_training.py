"""The trainer: it lowers the score error, resumes to the bit, survives interruption, and
refuses checkpoints of another architecture."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from scorelab import schedules as sch
from scorelab.config import TrainConfig
from scorelab.errors import ConfigError, InvalidParameter
from scorelab.parameterisations import ScoreNetwork
from scorelab.processes import VP
from scorelab.targets import ring8
from scorelab.training import Trainer, load_model_weights

F64 = torch.float64


class TinyNet(nn.Module):
    """(x, c) → like x: an MLP on [x, c] (the library's networks are tested on their own)."""

    def __init__(self, dim=2, width=64, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.l1, self.l2, self.l3 = (
            nn.Linear(dim + 1, width),
            nn.Linear(width, width),
            nn.Linear(width, dim),
        )
        for layer in (self.l1, self.l2, self.l3):
            with torch.no_grad():
                layer.weight.copy_(
                    torch.randn(layer.weight.shape, generator=g) / layer.in_features**0.5
                )
                layer.bias.zero_()

    def forward(self, x, c):
        c = c.expand(x.shape[0]) if c.ndim == 0 else c
        h = torch.nn.functional.silu(self.l1(torch.cat([x, c[:, None].to(x.dtype)], 1)))
        return self.l3(torch.nn.functional.silu(self.l2(h)))


def _setup(run_dir=None, steps=40, dtype="float64", width=64, **kw):
    process = VP(sch.CosineBeta(clip_max=20.0))
    target = ring8()
    model = ScoreNetwork(TinyNet(width=width), process, "edm", sigma_data=1.4)
    train = {
        "steps": steps,
        "batch_size": 64,
        "lr": 3e-3,
        "warmup": 5,
        "log_every": 5,
        "checkpoint_every": 10,
        "dtype": dtype,
        **kw,
    }
    trainer = Trainer(model, target, process, train, run_dir, seed=3, sigma_data=0.5)
    return trainer, target, process


def _score_error(model, target, process, n=4000):
    g = torch.Generator().manual_seed(11)
    x0 = target.sample(n, g, dtype=F64)
    t = 0.05 + 0.9 * torch.rand(n, generator=g, dtype=F64)
    x = process.sample_marginal(x0, t, g)
    with torch.no_grad():
        diff = model(x, t) - target.score(x, t, process)
    v = process.variance(t)
    return float((v * (diff**2).sum(1)).mean())  # s²-weighted, comparable across t


def test_short_training_lowers_the_score_error():
    trainer, target, process = _setup(steps=300, noise="lognormal", weighting="edm")
    before = _score_error(trainer.model, target, process)
    trainer.fit()
    after = _score_error(trainer.model, target, process)
    assert after < 0.5 * before, (before, after)


def _interrupt_at(step):
    def on_log(record):
        if record["step"] == step:
            raise KeyboardInterrupt  # what Ctrl-C does mid-run

    return on_log


def test_resume_ends_where_an_uninterrupted_run_ends(tmp_path):
    straight, _, _ = _setup(tmp_path / "a", steps=40)
    straight.fit()
    first, _, _ = _setup(tmp_path / "b", steps=40)
    with pytest.raises(KeyboardInterrupt):
        first.fit(on_log=_interrupt_at(20))
    second, _, _ = _setup(tmp_path / "b", steps=40)
    second.resume()
    assert second.step == 20
    second.fit()
    for (k, a), (_, b) in zip(
        straight.model.state_dict().items(), second.model.state_dict().items(), strict=True
    ):
        assert torch.allclose(a, b, rtol=0, atol=1e-6), k
    for k in straight.ema:
        assert torch.allclose(straight.ema[k], second.ema[k], atol=1e-6), k
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 8 and '"grad_norm"' in lines[0]


def test_resume_with_a_finite_training_set(tmp_path):
    a, _, _ = _setup(tmp_path / "a", steps=30, n_train=100)
    a.fit()
    b, _, _ = _setup(tmp_path / "b", steps=30, n_train=100)
    with pytest.raises(KeyboardInterrupt):
        b.fit(on_log=_interrupt_at(10))
    c, _, _ = _setup(tmp_path / "b", steps=30, n_train=100)
    c.resume()
    c.fit()
    assert torch.equal(a.data, c.data)
    for k, v in a.model.state_dict().items():
        assert torch.allclose(v, c.model.state_dict()[k], atol=1e-6), k


def test_ctrl_c_writes_a_checkpoint(tmp_path):
    trainer, _, _ = _setup(tmp_path, steps=1000)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(on_log=_interrupt_at(15))
    again, _, _ = _setup(tmp_path, steps=1000)
    again.resume()
    assert again.step == 15


def test_interrupted_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    trainer, _, _ = _setup(tmp_path, steps=10)
    trainer.fit()
    good = (tmp_path / "checkpoint.safetensors").read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("scorelab.training.save_file", boom)
    trainer.step = 99
    with pytest.raises(OSError):
        trainer.save()
    assert (tmp_path / "checkpoint.safetensors").read_bytes() == good
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    monkeypatch.undo()
    again, _, _ = _setup(tmp_path, steps=10)
    again.resume()
    assert again.step == 10


def test_checkpoint_errors(tmp_path):
    trainer, _, _ = _setup(tmp_path, steps=5)
    trainer.fit()
    other, _, _ = _setup(tmp_path, steps=5, width=32)
    with pytest.raises(InvalidParameter, match="another architecture"):
        other.resume()
    with pytest.raises(InvalidParameter, match="another architecture"):
        load_model_weights(other.model, tmp_path / "checkpoint.safetensors")
    with pytest.raises(InvalidParameter, match="no checkpoint found"):
        load_model_weights(other.model, tmp_path / "missing.safetensors")
    fresh, _, _ = _setup(tmp_path / "empty", steps=5)
    with pytest.raises(InvalidParameter, match="no checkpoint"):
        fresh.resume()
    with pytest.raises(ConfigError, match=r"train\.lr"):
        _setup(lr=0)


def test_settings_pydantic_cannot_check_are_refused_at_construction():
    with pytest.raises(InvalidParameter, match=r"train\.device: is not a device"):
        _setup(device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidParameter, match=r"train\.device: CUDA is not available"):
            _setup(device="cuda:0")
    with pytest.raises(InvalidParameter, match=r"train\.compile: is not supported"):
        _setup(loss="fp_dsm", compile=True)


@pytest.mark.parametrize("warmup", [True, False])
def test_ema_follows_its_recursion_with_and_without_warm_up(warmup):
    trainer, _, _ = _setup(steps=5, ema_decay=0.9, ema_warmup=warmup)
    ema = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for k in range(5):
        trainer.train_step()
        d = min(0.9, (1 + k) / (10 + k)) if warmup else 0.9
        for name, v in trainer.model.state_dict().items():
            ema[name] = d * ema[name] + (1 - d) * v
    for name, v in ema.items():
        torch.testing.assert_close(trainer.ema[name], v, rtol=1e-12, atol=1e-12)
    # with the warm-up the zero-output initialisation is mostly gone after 5 steps
    if warmup:
        assert trainer.train.ema_at(0) == pytest.approx(0.1)
        assert trainer.train.ema_at(10**6) == 0.9


def test_ema_warm_up_is_on_by_default_with_a_decay_and_off_with_a_half_life():
    assert TrainConfig(ema_decay=0.9).ema_at(0) == pytest.approx(0.1)
    half = TrainConfig(ema_half_life=10.0)
    assert half.ema_at(0) == pytest.approx(0.5**0.1)
    assert TrainConfig(ema_half_life=10.0, ema_warmup=True).ema_at(0) == pytest.approx(0.1)
