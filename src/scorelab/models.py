"""Score models from configs and checkpoints: a config's network wrapped by its
parameterisation, and a trained checkpoint rebuilt as a frozen score model ``score(x, t)``.

A model may also be given as a denoiser D(x̂, σ), an ε-predictor ε(x, t) or a velocity v(x, t):
``from_denoiser``, ``from_eps``, ``from_score``, ``as_model`` (defined in
``scorelab.interfaces``) and ``from_velocity`` (``scorelab.velocity``), re-exported here, give
any of them every face."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from pydantic import BaseModel

from .config.schema import parse_config
from .errors import InvalidParameter, NonFinite, ScorelabError
from .interfaces import Model, as_model, from_denoiser, from_eps, from_score  # noqa: F401
from .networks import build_network
from .parameterisations import ScoreNetwork, estimate_sigma_data
from .processes import ForwardProcess
from .targets import Target
from .training import load_model_weights, read_checkpoint
from .velocity import from_velocity  # noqa: F401

SIGMA_DATA_SAMPLES = 10_000


def resolve_sigma_data(cfg: BaseModel, target: Target) -> float:
    """σ_data from the config, or estimated from the training data (n_train points, or 10⁴
    fresh draws) with the run's seed."""
    if cfg.network.sigma_data is not None:
        return float(cfg.network.sigma_data)
    n = cfg.train.n_train or SIGMA_DATA_SAMPLES
    g = torch.Generator().manual_seed(cfg.seed)
    return estimate_sigma_data(target.sample(n, g, dtype=torch.float64))


def build_model(
    cfg: BaseModel, event_shape: tuple[int, ...], process: ForwardProcess
) -> ScoreNetwork:
    """The config's network, wrapped by its parameterisation; its initial weights drawn from
    a generator seeded by ``cfg.seed`` (the global generator is not touched).

    ``cfg.network.sigma_data`` must be resolved (see ``resolve_sigma_data``)."""
    net_cfg = cfg.network
    if net_cfg.sigma_data is None:
        raise InvalidParameter("network.sigma_data", "must be resolved before building", None)
    network = build_network(
        net_cfg.kind,
        tuple(event_shape),
        generator=torch.Generator().manual_seed(cfg.seed),
        **net_cfg.network_params(),
    )
    return ScoreNetwork(network, process, net_cfg.parameterisation, net_cfg.sigma_data)


def load_score_model(
    path: str | Path,
    process: ForwardProcess,
    use_ema: bool = True,
    dtype: torch.dtype = torch.float32,
) -> ScoreNetwork:
    """A trained checkpoint's network as a score model ``s(x, t)`` under ``process`` (frozen,
    eval mode).

    The network is rebuilt from the config stored in the checkpoint. It conditions on
    c = ¼ ln σ(t), so it may be sampled under another process with the same σ range.

    Args:
        path: A run directory (``scorelab train --out DIR``) or its ``checkpoint.safetensors``.
        process: The process whose time t the returned model takes.
        use_ema: The EMA weights (the default) or the last step's.
        dtype: The network's dtype.

    Raises:
        InvalidParameter: The file is not a scorelab training checkpoint.
    """
    tensors, meta = read_checkpoint(path)
    if "config" not in meta or "event_shape" not in meta:
        raise InvalidParameter(
            "score.path", "is not a scorelab training checkpoint (no stored config)", str(path)
        )
    try:
        stored, shape = json.loads(meta["config"]), json.loads(meta["event_shape"])
        if not isinstance(stored, dict):
            raise ValueError(f"the stored config is a {type(stored).__name__}, not a mapping")
        if not (
            isinstance(shape, list)
            and shape
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)
        ):
            raise ValueError(f"event_shape {shape!r} is not a list of sizes")
    except ValueError as exc:  # json's errors are ValueErrors
        raise InvalidParameter("score.path", f"has malformed metadata ({exc})", str(path)) from None
    try:
        cfg = parse_config(stored)
    except ScorelabError as exc:
        raise InvalidParameter(
            "score.path", f"stores a config that is not valid ({exc})", str(path)
        ) from None
    prefix = "ema." if use_ema else "model."
    for k, v in tensors.items():
        if k.startswith(prefix) and v.is_floating_point() and not bool(torch.isfinite(v).all()):
            bad = int((~torch.isfinite(v)).sum())
            raise NonFinite(
                f"score.path: the checkpoint's weights are not finite ({bad} of {v.numel()} "
                f"values of {k} are NaN or inf): {path}; its training diverged, so it cannot "
                "sample"
            )
    try:
        model = build_model(cfg, tuple(shape), process)
        load_model_weights(model, path, use_ema=use_ema)
    except (TypeError, OverflowError, MemoryError, RuntimeError) as exc:
        # a tampered event_shape builds a network the weights do not fit (or none at all)
        raise InvalidParameter(
            "score.path",
            f"stores an event_shape {shape} that its weights do not fit "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]})",
            str(path),
        ) from None
    model.to(dtype).eval().requires_grad_(False)
    del tensors
    return model
