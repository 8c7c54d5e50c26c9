"""Interruptions: SIGINT or SIGTERM at a random moment of `scorelab train`, then
--resume, ends bit for bit where an uninterrupted run ends, in float32 and float64 (every
tensor of the checkpoint — parameters, EMA, optimiser state, generator — and every logged
loss). SIGKILL with periodic atomic checkpoints resumes exactly too. A second signal stops at
once and keeps the last checkpoint rather than a half-finished step.

The signals are sent to a real `scorelab train` process when its metrics.jsonl reaches a
randomly chosen step (a condition, not a wall-clock sleep), so they land at an arbitrary
point inside a step. Two trials run by default; the slow test runs twelve.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file

from scorelab.config import load_config
from scorelab.errors import Interrupted
from scorelab.pipeline import train

STEPS = 300
CONFIG = {
    "seed": 3,
    "target": {"kind": "gmm", "preset": "ring8"},
    "process": {"kind": "vp", "schedule": {"kind": "cosine", "clip_max": 20.0}},
    "network": {"kind": "mlp", "width": 32, "depth": 2},
    "train": {
        "steps": STEPS,
        "batch_size": 64,
        "warmup": 10,
        "log_every": 1,  # one metrics line per step: the condition the signals wait for
        "checkpoint_every": 40,
    },
}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -signal.SIGKILL}


@pytest.fixture(autouse=True)
def one_thread():
    """The in-process runs use one thread like the subprocesses (OMP_NUM_THREADS=1), so the
    arithmetic, and hence every bit, is the same."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _config(tmp_path: Path, dtype: str) -> Path:
    path = tmp_path / f"tiny-{dtype}.yaml"
    cfg = json.loads(json.dumps(CONFIG))
    cfg["train"]["dtype"] = dtype
    path.write_text(yaml.safe_dump(cfg))
    return path


def _reference(tmp_path: Path, config: Path) -> Path:
    out = tmp_path / f"reference-{config.stem}"
    if not (out / "checkpoint.safetensors").exists():
        train(load_config(config), out)
    return out


def _last_step(metrics: Path) -> int:
    try:
        lines = metrics.read_text().splitlines()
    except FileNotFoundError:
        return -1
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError):
            continue  # a line being written
    return -1


def _interrupt(config: Path, out: Path, sig: int, at_step: int, resume: bool = False):
    """Start `scorelab train`, wait until it logged ``at_step``, send ``sig``; return
    (exit code, stderr)."""
    cmd = [sys.executable, "-m", "scorelab", "train", str(config), "--out", str(out)]
    cmd += ["--no-progress"] + (["--resume"] if resume else [])
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600  # generous: only a hung process reaches it
    try:
        while _last_step(out / "metrics.jsonl") < at_step:
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.002)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stderr


def _checkpoint_step(path: Path) -> int:
    with safe_open(str(path / "checkpoint.safetensors"), framework="pt") as fh:
        return int(fh.metadata()["step"])


def _assert_same_run(reference: Path, resumed: Path) -> None:
    a = load_file(str(reference / "checkpoint.safetensors"))
    b = load_file(str(resumed / "checkpoint.safetensors"))
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"tensors differ after resume: {differ[:5]}"
    assert _checkpoint_step(reference) == _checkpoint_step(resumed) == STEPS

    def losses(run):
        rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
        return [(r["step"], r["loss"], r["lr"], r["grad_norm"]) for r in rows]

    assert losses(reference) == losses(resumed)  # every step logged once, with the same loss


def _trial(tmp_path: Path, dtype: str, sig: int, seed: int, twice: bool = False) -> dict:
    """Interrupt (and, with ``twice``, interrupt the resumed run again), resume in process,
    compare with the uninterrupted reference. Returns what happened."""
    rng = random.Random(seed)
    config = _config(tmp_path, dtype)
    reference = _reference(tmp_path, config)
    out = tmp_path / f"trial-{seed}"
    every = CONFIG["train"]["checkpoint_every"]
    # SIGKILL leaves only the periodic checkpoints: send it after the first one
    at = rng.randint(every + 2, STEPS // 2) if sig == signal.SIGKILL else rng.randint(5, STEPS // 3)
    code, stderr = _interrupt(config, out, sig, at)
    assert code == EXIT[sig], (code, stderr)
    stopped = _checkpoint_step(out)
    if sig == signal.SIGKILL:
        assert stopped % every == 0 and stopped >= every  # the last periodic one
    else:
        assert "checkpoint written" in stderr and f"after step {stopped}" in stderr
        assert stopped >= at  # sent after step `at` was logged: no step is lost
    record = {"signal": signal.Signals(sig).name, "dtype": dtype, "sent_at": at, "stopped": stopped}
    if twice:
        at2 = rng.randint(stopped + 5, stopped + STEPS // 3)
        code, stderr = _interrupt(config, out, signal.SIGTERM, at2, resume=True)
        assert code == 143, (code, stderr)
        record["stopped_again"] = _checkpoint_step(out)
    train(load_config(config), out, resume=True)
    _assert_same_run(reference, out)
    resumes = (out / "resumes.jsonl").read_text().splitlines()
    assert len(resumes) == (2 if twice else 1)
    return record


@pytest.mark.parametrize(
    ("dtype", "sig"),
    [("float32", signal.SIGINT), ("float64", signal.SIGTERM)],
    ids=["float32-SIGINT", "float64-SIGTERM"],
)
def test_a_signal_at_a_random_moment_then_resume_is_bit_exact(tmp_path, dtype, sig):
    _trial(tmp_path, dtype, sig, seed=int(sig) * 7 + len(dtype))


@pytest.mark.slow
def test_twelve_interruptions_all_resume_bit_exact(tmp_path):
    """SIGINT, SIGTERM and SIGKILL at random steps, in both dtypes, some runs interrupted
    twice; every one resumes to the bit."""
    sigs = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
    records = [
        _trial(tmp_path, ("float32", "float64")[i % 2], sigs[i % 3], seed=100 + i, twice=i % 4 == 3)
        for i in range(12)
    ]
    assert len(records) == 12
    print(json.dumps(records, indent=1))


# --- in process: where the step boundary is --------------------------------------------------


def _trainer(run_dir, steps=40, **kw):
    from tests.test_training import _setup

    trainer, _, _ = _setup(run_dir, steps=steps, **kw)
    return trainer


def _signal_inside_the_loss(trainer, at_step: int, times: int):
    """Make the loss send SIGINT to this process ``times`` times during step ``at_step``."""
    loss_fn = trainer.loss_fn

    def loss(*args, **kwargs):
        if trainer.step + 1 == at_step:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)
        return loss_fn(*args, **kwargs)

    trainer.loss_fn = loss


def test_sigint_inside_a_step_finishes_the_step_and_resumes_exactly(tmp_path):
    straight = _trainer(tmp_path / "a")
    straight.fit()
    first = _trainer(tmp_path / "b")
    _signal_inside_the_loss(first, at_step=17, times=1)
    with pytest.raises(Interrupted, match="stopped after step 17 of 40"):
        first.fit()
    second = _trainer(tmp_path / "b")
    second.resume()
    assert second.step == 17
    second.fit()
    for k, v in straight.model.state_dict().items():
        assert torch.equal(v, second.model.state_dict()[k]), k
    for k in straight.ema:
        assert torch.equal(straight.ema[k], second.ema[k]), k
    assert torch.equal(straight.gen.get_state(), second.gen.get_state())


def test_a_second_signal_stops_at_once_and_keeps_the_last_checkpoint(tmp_path):
    # the handler the run found: default_int_handler, or SIG_IGN in a background job
    before = signal.getsignal(signal.SIGINT)
    trainer = _trainer(tmp_path, steps=40)  # checkpoints every 10 steps
    _signal_inside_the_loss(trainer, at_step=17, times=2)
    with pytest.raises(KeyboardInterrupt) as info:
        trainer.fit()
    assert not isinstance(info.value, Interrupted)  # stopped mid-step: no checkpoint of it
    again = _trainer(tmp_path, steps=40)
    again.resume()
    assert again.step == 10
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored
