"""Networks: plain ``nn.Module``s called as ``net(x, c_noise)`` that a parameterisation wraps.

``x`` is a batch ``[B, *event_shape]`` (vectors ``[B, d]`` or images ``[B, C, H, W]``) and
``c_noise`` is the conditioning ¼ ln σ, a tensor ``[B]`` or 0-d (broadcast to the batch), with
values typically in [-3, 2]; the output has exactly x's shape and dtype, on x's device, in float32
or float64 alike (after ``.to(torch.float64)``). A network never sees the process: the wrapper in
:mod:`scorelab.parameterisations` supplies c_noise and converts the output. Every network's final
layer is initialised to zero, so an untrained network outputs exactly 0: under the EDM
parameterisation the model then starts as the c_skip-only denoiser D = c_skip x̂ (the exact
denoiser for data N(0, σ_data² I)), under ``x0`` with the score −x/s² of N(0, s² I), under
``eps`` and ``score`` with score 0, rather than as a random function whose large, arbitrary
outputs the first steps of training must undo. Every random number of the construction (the
weights, the Fourier frequencies) is drawn from the ``generator`` passed in (``build_network(...,
generator=torch.Generator().manual_seed(seed))``), never from torch's global generator, so the
weights are a function of that generator's state alone. Without one, the draws come from the
global generator (like PyTorch's own modules).

The MLP's linear layers start from N(0, 1/fan_in) weights and zero biases, with its first layer
drawn as two projections, of x (fan-in = the event size) and of the time embedding (fan-in =
``embed_dim``), summed: see :class:`MLP` for why PyTorch's default init stalls it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from .errors import InvalidParameter
from .registry import entry, register

EMBEDDINGS = ("sinusoidal", "fourier")
ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}
NORMS = ("layernorm", "none")

# Sinusoidal frequencies in radians per unit of c = ¼ ln σ, geometric between these ends. c spans
# about 5 units, so the slowest feature is nearly linear there (a monotone "which noise level"
# coordinate) while the fastest separates noise levels ~2% apart in σ; transformer-style
# 1/10000^(k/n) frequencies would leave most features constant over that range.
_SIN_MAX_FREQ = 64.0
_SIN_MIN_FREQ = 0.25


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _positive_int(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidParameter(field, "must be an integer ≥ 1", value)
    return int(value)


def _positive_float(field: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(field, "must be a number", value) from None
    if not (v > 0 and math.isfinite(v)):
        raise InvalidParameter(field, "must be > 0", value)
    return v


def _event_shape(value: Any) -> tuple[int, ...]:
    shape = (value,) if isinstance(value, int) else value
    try:
        shape = tuple(shape)
    except TypeError:
        raise InvalidParameter("event_shape", "must be a sequence of sizes", value) from None
    if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise InvalidParameter("event_shape", "must be a non-empty list of integers ≥ 1", value)
    return tuple(int(s) for s in shape)


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise InvalidParameter("activation", "is not known", name, ", ".join(ACTIVATIONS))
    return ACTIVATIONS[name]()


def _fan_in_normal_(
    weight: torch.Tensor, bias: torch.Tensor | None = None, generator: torch.Generator | None = None
) -> None:
    """LeCun-normal init in place: weight N(0, 1/fan_in) (fan_in = its column count), bias 0."""
    nn.init.normal_(weight, 0.0, 1.0 / math.sqrt(weight.shape[1]), generator=generator)
    if bias is not None:
        nn.init.zeros_(bias)


def _layer(cls: type[nn.Module], *args, generator: torch.Generator | None, **kwargs) -> nn.Module:
    """An ``nn.Linear`` or ``nn.Conv2d`` with PyTorch's default init (weight kaiming-uniform
    with a = √5, bias U(±1/√fan_in)) drawn from ``generator``: the layer is built uninitialised
    (``skip_init``: no draw from the global generator) and then initialised by the same calls as
    its ``reset_parameters``, in the same order, so a generator seeded like the global one gives
    the same numbers as constructing the layer after ``torch.manual_seed``."""
    layer = nn.utils.skip_init(cls, *args, **kwargs)
    with torch.no_grad():
        nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
        if layer.bias is not None:
            fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return layer


def _zero_(layer: nn.Module) -> nn.Module:
    # The zero-initialised output layer: see the module docstring.
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def _zero_layer(cls: type[nn.Module], *args, **kwargs) -> nn.Module:
    """A zero-initialised ``nn.Linear`` or ``nn.Conv2d`` (built without drawing anything)."""
    return _zero_(nn.utils.skip_init(cls, *args, **kwargs))


def _batch_c(x: torch.Tensor, c_noise: torch.Tensor | float, event_shape: tuple[int, ...]):
    """Check x against the network's event shape; c_noise as a ``[B]`` tensor like x."""
    if tuple(x.shape[1:]) != event_shape or x.ndim != len(event_shape) + 1:
        raise InvalidParameter(
            "x",
            f"must have shape [B, {', '.join(map(str, event_shape))}] for this network",
            tuple(x.shape),
        )
    c = torch.as_tensor(c_noise, dtype=x.dtype, device=x.device)
    if c.ndim == 0:
        return c.expand(x.shape[0])
    if c.ndim != 1 or c.shape[0] != x.shape[0]:
        raise InvalidParameter(
            "c_noise", f"must be 0-d or have shape [B] = [{x.shape[0]}]", tuple(c.shape)
        )
    return c


# --------------------------------------------------------------------------------------------
# time embedding
# --------------------------------------------------------------------------------------------


class TimeEmbedding(nn.Module):
    """Features [cos(ω c), sin(ω c)] of the conditioning c, ``dim`` in all.

    ``sinusoidal``: fixed geometric frequencies (see ``_SIN_MAX_FREQ``). ``fourier``: Gaussian
    random Fourier features ω = 2π·N(0, fourier_scale²) (Tancik et al.; EDM's NCSN++ uses scale
    16 with c = ¼ ln σ), drawn once and kept as a buffer so checkpoints carry them.
    """

    def __init__(
        self,
        dim: int,
        kind: str = "sinusoidal",
        fourier_scale: float = 16.0,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        dim = _positive_int("embed_dim", dim)
        if dim % 2:
            raise InvalidParameter("embed_dim", "must be even (cos and sin pairs)", dim)
        if kind not in EMBEDDINGS:
            raise InvalidParameter("embedding", "is not known", kind, ", ".join(EMBEDDINGS))
        half = dim // 2
        self.dim, self.kind = dim, kind
        if kind == "sinusoidal":
            k = torch.arange(half, dtype=torch.float64) / max(half - 1, 1)
            freqs = _SIN_MAX_FREQ * (_SIN_MIN_FREQ / _SIN_MAX_FREQ) ** k
            # Computed from constants, so not saved: the state dict holds only what is drawn.
            self.register_buffer("freqs", freqs.to(torch.get_default_dtype()), persistent=False)
        else:
            scale = _positive_float("fourier_scale", fourier_scale)
            # Drawn from the network's generator like the weights.
            freqs = 2 * math.pi * scale * torch.randn(half, generator=generator)
            self.register_buffer("freqs", freqs)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        arg = c[:, None] * self.freqs.to(c.dtype)[None, :]
        return torch.cat([torch.cos(arg), torch.sin(arg)], dim=1)


# --------------------------------------------------------------------------------------------
# MLPs
# --------------------------------------------------------------------------------------------


@register("network", "mlp")
class MLP(nn.Module):
    """Flattened x concatenated with the time embedding, ``depth`` hidden layers of ``width``,
    a zero-initialised linear output reshaped to ``event_shape``.

    Initialisation: the first layer's W·[x; emb] is the sum of a projection of x and one of the
    embedding, drawn as such, x columns N(0, 1/d) (d = the event size) and embedding columns
    N(0, 1/embed_dim); the other hidden layers N(0, 1/fan_in); biases 0. Inputs of unit scale
    (EDM's c_in x̂) so give pre-activations of unit scale from x, and the network is nonlinear
    in x from the start. PyTorch's default init (variance 1/(3·fan_in), fan_in = d + embed_dim)
    gave x weights of std 0.07 for 2-D data, a network 99.8 % linear in x at init; EDM's target
    F* = (D − c_skip x̂)/c_out is uncorrelated with every linear function of x̂ (c_skip is the
    best linear denoiser) and, on symmetric data like the 8-Gaussian ring, with every quadratic
    one, so the output layer's gradient was almost pure minibatch noise and training sat at the
    zero-output saddle for thousands of steps (tests/test_networks.py guards against this).
    """

    def __init__(
        self,
        event_shape: Sequence[int] | int,
        width: int = 128,
        depth: int = 3,
        embed_dim: int = 64,
        embedding: Literal["sinusoidal", "fourier"] = "sinusoidal",
        fourier_scale: float = 16.0,
        activation: str = "silu",
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        g = generator
        self.event_shape = _event_shape(event_shape)
        width = _positive_int("width", width)
        depth = _positive_int("depth", depth)
        self.embed = TimeEmbedding(embed_dim, embedding, fourier_scale, generator=g)
        d = math.prod(self.event_shape)
        layers: list[nn.Module] = []
        fan_in = d + embed_dim
        for i in range(depth):
            # The default init's draw is kept (then overwritten) so that the weights of a seed
            # are those of earlier versions.
            layer = _layer(nn.Linear, fan_in, width, generator=g)
            with torch.no_grad():
                if i == 0:
                    # Two projections, of x and of the embedding, each with its own fan-in (see
                    # the class docstring).
                    _fan_in_normal_(layer.weight[:, :d], layer.bias, g)
                    _fan_in_normal_(layer.weight[:, d:], None, g)
                else:
                    _fan_in_normal_(layer.weight, layer.bias, g)
            layers += [layer, _activation(activation)]
            fan_in = width
        self.hidden = nn.Sequential(*layers)
        self.out = _zero_layer(nn.Linear, width, d)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        c = _batch_c(x, c_noise, self.event_shape)
        h = torch.cat([x.flatten(1), self.embed(c)], dim=1)
        return self.out(self.hidden(h)).reshape(x.shape)


class _ResidualBlock(nn.Module):
    """h + W₂ act(W₁ norm(h) + P emb): a pre-norm residual block conditioned on the embedding."""

    def __init__(
        self, width: int, embed_dim: int, activation: str, norm: str, g: torch.Generator | None
    ):
        super().__init__()
        self.norm = nn.LayerNorm(width) if norm == "layernorm" else nn.Identity()
        self.lin1 = _layer(nn.Linear, width, width, generator=g)
        self.emb = _layer(nn.Linear, embed_dim, width, generator=g)
        self.act = _activation(activation)
        self.lin2 = _layer(nn.Linear, width, width, generator=g)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return h + self.lin2(self.act(self.lin1(self.norm(h)) + self.emb(emb)))


@register("network", "resmlp")
class ResidualMLP(nn.Module):
    """Input projection, ``blocks`` residual blocks each conditioned on the time embedding,
    final norm and activation, zero-initialised output projection (the layout of paper A's score
    network)."""

    def __init__(
        self,
        event_shape: Sequence[int] | int,
        width: int = 256,
        blocks: int = 3,
        embed_dim: int = 64,
        embedding: Literal["sinusoidal", "fourier"] = "sinusoidal",
        fourier_scale: float = 16.0,
        activation: str = "silu",
        norm: str = "layernorm",
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        g = generator
        self.event_shape = _event_shape(event_shape)
        width = _positive_int("width", width)
        blocks = _positive_int("blocks", blocks)
        if norm not in NORMS:
            raise InvalidParameter("norm", "is not known", norm, ", ".join(NORMS))
        _activation(activation)  # validate before building anything
        self.embed = TimeEmbedding(embed_dim, embedding, fourier_scale, generator=g)
        d = math.prod(self.event_shape)
        self.inp = _layer(nn.Linear, d, width, generator=g)
        self.blocks = nn.ModuleList(
            _ResidualBlock(width, embed_dim, activation, norm, g) for _ in range(blocks)
        )
        self.norm = nn.LayerNorm(width) if norm == "layernorm" else nn.Identity()
        self.act = _activation(activation)
        self.out = _zero_layer(nn.Linear, width, d)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        c = _batch_c(x, c_noise, self.event_shape)
        emb = self.embed(c)
        h = self.inp(x.flatten(1))
        for block in self.blocks:
            h = block(h, emb)
        return self.out(self.act(self.norm(h))).reshape(x.shape)


# --------------------------------------------------------------------------------------------
# U-Net
# --------------------------------------------------------------------------------------------


class _ResBlock2d(nn.Module):
    """GroupNorm → SiLU → conv, plus the embedding added per channel, GroupNorm → SiLU →
    dropout → conv, with a 1×1 skip when the channel count changes. GroupNorm normalises each
    sample on its own, so samples in a batch never mix."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        embed_dim: int,
        groups: int,
        dropout: float,
        g: torch.Generator | None,
    ):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = _layer(nn.Conv2d, c_in, c_out, 3, padding=1, generator=g)
        self.emb = _layer(nn.Linear, embed_dim, c_out, generator=g)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.drop = nn.Dropout(dropout)
        self.conv2 = _layer(nn.Conv2d, c_out, c_out, 3, padding=1, generator=g)
        self.skip = (
            _layer(nn.Conv2d, c_in, c_out, 1, generator=g) if c_in != c_out else nn.Identity()
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return self.skip(x) + h


@register("network", "unet")
class UNet(nn.Module):
    """A small U-Net for small images (8×8 digits, 28×28 MNIST).

    One residual block per level; level i has ``channels × channel_mult[i]`` channels and half
    the resolution of level i − 1 (stride-2 convolution down, nearest-neighbour ×2 plus a
    convolution up), two blocks at the bottom, skip connections by concatenation. The image
    sides must be divisible by 2^(levels − 1) so every halving is exact (28 → 14 → 7 with three
    levels; 8 → 4 → 2 → 1 with four).
    """

    def __init__(
        self,
        event_shape: Sequence[int],
        channels: int = 32,
        channel_mult: Sequence[int] = (1, 2),
        groups: int = 8,
        embed_dim: int = 128,
        dropout: float = 0.0,
        embedding: Literal["sinusoidal", "fourier"] = "sinusoidal",
        fourier_scale: float = 16.0,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        g = generator
        shape = _event_shape(event_shape)
        if len(shape) != 3:
            raise InvalidParameter(
                "event_shape",
                "must be an image shape [C, H, W]: the unet needs images; for the digits "
                "target set target.flatten: false, or use network.kind mlp (or resmlp)",
                list(shape),
            )
        self.event_shape = shape
        ch = _positive_int("channels", channels)
        groups = _positive_int("groups", groups)
        try:
            mult = tuple(channel_mult)
        except TypeError:
            raise InvalidParameter(
                "channel_mult", "must be a list of integers", channel_mult
            ) from None
        if not mult:
            raise InvalidParameter("channel_mult", "must name at least one level", list(mult))
        for m in mult:
            _positive_int("channel_mult", m)
        if not (0 <= float(dropout) < 1):
            raise InvalidParameter("dropout", "must lie in [0, 1)", dropout)
        widths = [ch * m for m in mult]
        if any(w % groups for w in [ch, *widths]):
            raise InvalidParameter(
                "groups",
                f"must divide channels ({ch}) and every channels × channel_mult ({widths})",
                groups,
            )
        C, H, W = shape
        factor = 2 ** (len(mult) - 1)
        if H % factor or W % factor:
            raise InvalidParameter(
                "channel_mult",
                f"has {len(mult)} levels, so the image's height and width must be divisible by "
                f"2^{len(mult) - 1} = {factor}, but the image is {H}×{W}; use fewer levels",
                list(mult),
            )
        self.channel_mult = mult

        # Built in the order the draws were always made: conv and linear layers in
        # construction order (not the order of the module tree).
        self.embed = TimeEmbedding(embed_dim, embedding, fourier_scale, generator=g)
        self.embed_mlp = nn.Sequential(
            _layer(nn.Linear, embed_dim, embed_dim, generator=g),
            nn.SiLU(),
            _layer(nn.Linear, embed_dim, embed_dim, generator=g),
        )
        self.conv_in = _layer(nn.Conv2d, C, ch, 3, padding=1, generator=g)

        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        prev = ch
        for i, w in enumerate(widths):
            self.down.append(_ResBlock2d(prev, w, embed_dim, groups, dropout, g))
            if i < len(widths) - 1:
                self.downsample.append(_layer(nn.Conv2d, w, w, 3, stride=2, padding=1, generator=g))
            prev = w
        self.mid = nn.ModuleList(
            _ResBlock2d(prev, prev, embed_dim, groups, dropout, g) for _ in range(2)
        )
        # Built deepest level first, the order forward runs them.
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(widths))):
            w = widths[i]
            self.up.append(_ResBlock2d(prev + w, w, embed_dim, groups, dropout, g))
            if i > 0:
                self.upsample.append(_layer(nn.Conv2d, w, w, 3, padding=1, generator=g))
            prev = w
        self.norm_out = nn.GroupNorm(groups, prev)
        self.conv_out = _zero_layer(nn.Conv2d, prev, C, 3, padding=1)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        c = _batch_c(x, c_noise, self.event_shape)
        emb = F.silu(self.embed_mlp(self.embed(c)))
        h = self.conv_in(x)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        for block in self.mid:
            h = block(h, emb)
        for j, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if j < len(self.upsample):
                h = self.upsample[j](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------


def network_parameters(kind: str) -> tuple[str, ...]:
    """The keyword parameters the registered network ``kind`` accepts (besides
    ``event_shape``)."""
    return tuple(entry("network", kind).parameters)


def build_network(
    kind: str,
    event_shape: Sequence[int] | int,
    *,
    generator: torch.Generator | None = None,
    **params: Any,
) -> nn.Module:
    """The network ``kind`` for events of ``event_shape``, with ``params`` overriding its
    defaults and its initial weights drawn from ``generator`` (a seeded
    ``torch.Generator().manual_seed(seed)`` makes them a function of the seed; the global
    generator is never touched then). Errors name the full config key (``network.width``), so
    callers should not add a ``network`` prefix of their own."""
    accepted = network_parameters(kind)
    for key, value in params.items():
        if key not in accepted:
            raise InvalidParameter(
                f"network.{key}", f"does not apply to network '{kind}'", value, ", ".join(accepted)
            )
    try:
        return entry("network", kind).obj(event_shape, generator=generator, **params)
    except InvalidParameter as exc:
        raise exc.at("network") from None


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """The number of scalar parameters in ``module`` (buffers such as Fourier frequencies are
    not parameters); with ``trainable_only``, only those that require gradients."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
