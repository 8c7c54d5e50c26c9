"""Score models from configs and checkpoints: a config's network wrapped by its
parameterisation, and a trained checkpoint rebuilt as a frozen score model ``score(x, t)``.

A model may also be given as a denoiser D(x̂, σ) or an ε-predictor ε(x, t): ``from_denoiser``,
``from_eps``, ``from_score`` and ``as_model`` (defined in ``scorelab.interfaces``, re-exported
here) give any of them all three faces."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from pydantic import BaseModel

from .config.schema import parse_config
from .errors import InvalidParameter
from .interfaces import Model, as_model, from_denoiser, from_eps, from_score  # noqa: F401
from .networks import build_network
from .parameterisations import ScoreNetwork, estimate_sigma_data
from .processes import ForwardProcess
from .targets import Target
from .training import load_model_weights, read_checkpoint

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
    """A trained checkpoint's network as a score model under ``process`` (frozen, eval mode).

    The network is rebuilt from the config stored in the checkpoint. It conditions on
    c = ¼ ln σ(t), so it may be sampled under another process with the same σ range."""
    tensors, meta = read_checkpoint(path)
    if "config" not in meta or "event_shape" not in meta:
        raise InvalidParameter(
            "score.path", "is not a scorelab training checkpoint (no stored config)", str(path)
        )
    cfg = parse_config(json.loads(meta["config"]))
    model = build_model(cfg, tuple(json.loads(meta["event_shape"])), process)
    load_model_weights(model, path, use_ema=use_ema)
    model.to(dtype).eval().requires_grad_(False)
    del tensors
    return model
