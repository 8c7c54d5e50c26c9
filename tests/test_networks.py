"""Networks: the ``net(x, c_noise)`` contract (shapes, dtypes, 0-d or [B] conditioning), zero
output at initialisation, dependence on x and c once the output layer is nonzero, batch
independence (GroupNorm and LayerNorm must not mix samples), that a few steps fit a tiny
regression, that the MLP learns EDM's network target on the 8-Gaussian ring (an init guard),
deterministic construction, clear errors, and parameter counts by hand."""

from __future__ import annotations

import pytest
import torch

from scorelab.errors import InvalidParameter
from scorelab.networks import (
    MLP,
    ResidualMLP,
    UNet,
    build_network,
    count_parameters,
)
from scorelab.parameterisations import edm_coefficients
from scorelab.processes import VP
from scorelab.registry import names
from scorelab.schedules import CosineBeta
from scorelab.targets import ring8

F64 = torch.float64
NETWORKS = names("network")

# Small variants keep the file fast; the defaults are exercised where they matter.
SMALL = {
    "mlp": {"width": 32, "depth": 2, "embed_dim": 16},
    "resmlp": {"width": 32, "blocks": 2, "embed_dim": 16},
    "unet": {"channels": 8, "groups": 4, "embed_dim": 16},
}
VECTOR_SHAPES = [(2,), (10,)]
IMAGE_SHAPES = [(1, 8, 8), (1, 28, 28)]
CASES = [
    (kind, shape)
    for kind in NETWORKS
    for shape in VECTOR_SHAPES + IMAGE_SHAPES
    if not (kind == "unet" and len(shape) == 1)
]
CASE_IDS = [f"{kind}-{'x'.join(map(str, shape))}" for kind, shape in CASES]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # These networks are far too small to gain from intra-op threads, and on a loaded machine
    # (xdist workers, other jobs) oversubscribed OpenMP threads slow them tenfold or more.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _net(kind, shape, seed=0, dtype=torch.float32, **params):
    g = torch.Generator().manual_seed(seed)
    return build_network(kind, shape, generator=g, **{**SMALL[kind], **params}).to(dtype)


def _output_layer(net):
    return net.conv_out if isinstance(net, UNet) else net.out


def _perturb_output_layer(net, seed=1):
    """Give the zero-initialised output layer random weights, so the output is informative."""
    layer = _output_layer(net)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in (layer.weight, layer.bias):
            p.copy_(0.1 * torch.randn(p.shape, generator=g, dtype=F64).to(p.dtype))
    return net


def _inputs(shape, n=3, dtype=torch.float32, seed=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g, dtype=dtype)
    c = (torch.rand(n, generator=g, dtype=dtype) * 5 - 3).to(dtype)
    return x, c


@pytest.mark.parametrize(("kind", "shape"), CASES, ids=CASE_IDS)
def test_output_has_the_input_shape_and_dtype_for_batch_and_scalar_conditioning(kind, shape):
    for dtype in (torch.float32, F64):
        net = _perturb_output_layer(_net(kind, shape, dtype=dtype))
        x, c = _inputs(shape, dtype=dtype)
        for cond in (c, c[0], torch.tensor(0.5, dtype=dtype)):
            out = net(x, cond)
            assert out.shape == x.shape and out.dtype == dtype
            assert torch.isfinite(out).all()
        # A 0-d c_noise is the same as that value repeated over the batch.
        torch.testing.assert_close(net(x, c[0]), net(x, c[0].expand(3)))


@pytest.mark.parametrize(("kind", "shape"), CASES, ids=CASE_IDS)
def test_untrained_network_outputs_exactly_zero(kind, shape):
    net = _net(kind, shape)
    x, c = _inputs(shape)
    assert torch.equal(net(x, c), torch.zeros_like(x))


@pytest.mark.parametrize("kind", list(NETWORKS))
def test_default_networks_output_zero_at_init(kind):
    shape = (1, 8, 8) if kind == "unet" else (2,)
    torch.manual_seed(0)
    net = build_network(kind, shape)
    x, c = _inputs(shape)
    assert torch.equal(net(x, c), torch.zeros_like(x))


@pytest.mark.parametrize(("kind", "shape"), CASES, ids=CASE_IDS)
def test_output_depends_on_x_and_on_c_noise(kind, shape):
    net = _perturb_output_layer(_net(kind, shape, dtype=F64))
    x, c = _inputs(shape, dtype=F64)
    base = net(x, c)
    other_c = net(x, c + 0.7)
    other_x = net(x + 0.5 * torch.randn_like(x), c)
    for changed in (other_c, other_x):
        per_sample = (changed - base).flatten(1).abs().amax(dim=1)
        assert (per_sample > 1e-6).all()


@pytest.mark.parametrize("embedding", ["sinusoidal", "fourier"])
def test_both_embeddings_condition_on_c(embedding):
    net = _perturb_output_layer(_net("mlp", (2,), dtype=F64, embedding=embedding))
    x, _ = _inputs((2,), dtype=F64)
    assert not torch.allclose(net(x, torch.tensor(-2.0, dtype=F64)), net(x, torch.tensor(1.0)))


@pytest.mark.parametrize(("kind", "shape"), CASES, ids=CASE_IDS)
def test_samples_in_a_batch_do_not_interact(kind, shape):
    net = _perturb_output_layer(_net(kind, shape, dtype=F64)).eval()
    x, c = _inputs(shape, n=4, dtype=F64)
    full = net(x, c)
    for i in range(4):
        torch.testing.assert_close(
            net(x[i : i + 1], c[i : i + 1]), full[i : i + 1], atol=1e-6, rtol=0
        )


def test_unet_handles_odd_sizes_at_the_bottom_and_refuses_inexact_halving():
    x, c = _inputs((1, 28, 28), n=2)
    net = _net("unet", (1, 28, 28), channel_mult=(1, 2, 2))  # 28 → 14 → 7
    assert net(x, c).shape == x.shape
    x8, c8 = _inputs((1, 8, 8), n=2)
    net = _net("unet", (1, 8, 8), channel_mult=(1, 1, 2, 2))  # 8 → 4 → 2 → 1
    assert net(x8, c8).shape == x8.shape
    with pytest.raises(InvalidParameter, match=r"channel_mult.*divisible by 2\^3 = 8.*28×28"):
        build_network("unet", (1, 28, 28), channel_mult=(1, 2, 2, 2))
    with pytest.raises(InvalidParameter, match="channel_mult"):
        UNet((3, 12, 10), channel_mult=(1, 2, 2))  # 10 is not divisible by 4


def test_multichannel_non_square_images():
    net = _perturb_output_layer(_net("unet", (3, 8, 12)))
    x, c = _inputs((3, 8, 12))
    assert net(x, c).shape == x.shape


def _fit(net, shape, steps, batch=128, lr=3e-3):
    """Fit f(x, c) = x·c (per coordinate) with Adam; returns (initial, final) held-out loss."""
    g = torch.Generator().manual_seed(0)

    def draw():
        x = torch.randn(batch, *shape, generator=g)
        c = torch.rand(batch, generator=g) * 5 - 3
        return x, c, x * c.reshape(-1, *[1] * len(shape))

    xe, ce, ye = draw()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    with torch.no_grad():
        before = float(((net(xe, ce) - ye) ** 2).mean())
    for _ in range(steps):
        x, c, y = draw()
        loss = ((net(x, c) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(((net(xe, ce) - ye) ** 2).mean())
    return before, after


@pytest.mark.parametrize(
    ("kind", "shape", "steps", "factor"),
    [("mlp", (2,), 150, 20.0), ("resmlp", (2,), 100, 20.0), ("unet", (1, 8, 8), 60, 2.0)],
)
def test_a_few_gradient_steps_fit_a_tiny_regression(kind, shape, steps, factor):
    # Starting from the zero output, gradients reach the hidden layers only through the output
    # layer's first updates; the fit checks that the zero init does not stall training.
    params = {"unet": SMALL["unet"]}.get(kind, {})
    torch.manual_seed(0)
    net = build_network(kind, shape, **params)
    before, after = _fit(net, shape, steps, batch=128 if kind != "unet" else 32)
    assert after < before / factor


def test_mlp_learns_the_edm_target_at_a_fixed_noise_level():
    # The default MLP regresses EDM's network target F* = (D* − c_skip x̂)/c_out (D* the exact
    # denoiser) from c_in x̂ at σ = 0.3 on the 8-Gaussian ring under a VP cosine process. F* is
    # uncorrelated with every linear function of the input (c_skip is the best linear
    # denoiser) and, by the ring's symmetry, with every quadratic one, so a network nearly
    # linear in x at init gets no signal through its zero output layer: with PyTorch's default
    # init (x weights of std 0.07) the loss stayed at E‖F*‖² ≈ 1.0 for thousands of Adam steps,
    # and EDM training did not learn. With the fan-in init it is ≈ 0.005 after 600 steps.
    target, process = ring8(), VP(CosineBeta(clip_max=20.0))
    sigma = torch.tensor(0.3, dtype=F64)
    sigma_data = (2.0**2 / 2 + 0.2**2) ** 0.5  # the ring's per-coordinate standard deviation
    t = process.t_of_sigma(sigma)
    m, s = process.scale(t), process.std(t)
    c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, sigma_data)
    g = torch.Generator().manual_seed(0)

    def draw(n):
        x = m * target.sample(n, g, dtype=F64) + s * torch.randn(n, 2, generator=g, dtype=F64)
        xh = x / m
        f = (target.denoise(x, t, process) - c_skip * xh) / c_out
        return (c_in * xh).float(), f.float()

    torch.manual_seed(0)
    net = MLP((2,))
    c = c_noise.float()
    xe, fe = draw(4096)
    before = float((fe**2).sum(1).mean())  # the zero network's loss
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(600):
        x, f = draw(512)
        loss = ((net(x, c) - f) ** 2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(((net(xe, c) - fe) ** 2).sum(1).mean())
    assert before > 0.9
    assert after < 0.3


@pytest.mark.parametrize("kind", list(NETWORKS))
def test_construction_draws_from_its_generator_only(kind):
    shape = (1, 8, 8) if kind == "unet" else (2,)
    params = {"embedding": "fourier"}
    state = torch.get_rng_state()
    a = _net(kind, shape, seed=3, **params).state_dict()
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is untouched
    b = _net(kind, shape, seed=3, **params).state_dict()
    c = _net(kind, shape, seed=4, **params).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # The Fourier frequencies are a saved buffer, drawn like the weights.
    assert "embed.freqs" in a
    assert not torch.equal(a["embed.freqs"], c["embed.freqs"])


@pytest.mark.parametrize("kind", list(NETWORKS))
def test_a_seeded_generator_gives_the_weights_of_the_global_seed(kind):
    # Networks drew from the global generator before they took one: the same seed must keep
    # giving the same initial weights (the draws are made in the same order).
    shape = (1, 8, 8) if kind == "unet" else (3,)
    params = {**SMALL[kind], "embedding": "fourier"}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        old = build_network(kind, shape, **params).state_dict()
    new = build_network(kind, shape, generator=torch.Generator().manual_seed(5), **params)
    new = new.state_dict()
    assert old.keys() == new.keys()
    assert all(torch.equal(old[k], new[k]) for k in old)


def test_sinusoidal_frequencies_are_not_saved_but_fourier_ones_are():
    assert "embed.freqs" not in MLP(2).state_dict()
    assert "embed.freqs" in MLP(2, embedding="fourier").state_dict()


def test_float64_conversion_reaches_the_embedding():
    net = _perturb_output_layer(_net("mlp", (2,), embedding="fourier", dtype=F64))
    assert net.embed.freqs.dtype == F64
    x, c = _inputs((2,), dtype=F64)
    assert net(x, c).dtype == F64


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


def test_unknown_kind_names_the_field_and_the_choices():
    with pytest.raises(InvalidParameter) as info:
        build_network("transformer", (2,))
    assert info.value.field == "network.kind"
    assert "mlp, resmlp, unet" in str(info.value)


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        ("mlp", {"width": 0}, "network.width"),
        ("mlp", {"width": -3}, "network.width"),
        ("mlp", {"depth": 0}, "network.depth"),
        ("mlp", {"embedding": "learned"}, "network.embedding"),
        ("mlp", {"embed_dim": 7}, "network.embed_dim"),
        ("mlp", {"fourier_scale": 0.0, "embedding": "fourier"}, "network.fourier_scale"),
        ("mlp", {"activation": "swish2"}, "network.activation"),
        ("mlp", {"channels": 8}, "network.channels"),
        ("resmlp", {"width": 0}, "network.width"),
        ("resmlp", {"blocks": 0}, "network.blocks"),
        ("resmlp", {"norm": "batchnorm"}, "network.norm"),
        ("unet", {"channels": 0}, "network.channels"),
        ("unet", {"groups": 5}, "network.groups"),
        ("unet", {"channel_mult": []}, "network.channel_mult"),
        ("unet", {"channel_mult": [1, 0]}, "network.channel_mult"),
        ("unet", {"dropout": 1.0}, "network.dropout"),
        ("unet", {"width": 64}, "network.width"),
    ],
)
def test_bad_parameters_name_their_field(kind, params, field):
    shape = (1, 8, 8) if kind == "unet" else (2,)
    with pytest.raises(InvalidParameter) as info:
        build_network(kind, shape, **params)
    assert info.value.field == field


def test_unet_on_vectors_explains_what_to_do():
    with pytest.raises(InvalidParameter) as info:
        build_network("unet", (64,))
    msg = str(info.value)
    assert info.value.field == "network.event_shape"
    assert "[C, H, W]" in msg and "flatten: false" in msg and "mlp" in msg


def test_wrong_input_shapes_are_refused():
    net = MLP(2)
    with pytest.raises(InvalidParameter, match="x"):
        net(torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(InvalidParameter, match="c_noise"):
        net(torch.zeros(4, 2), torch.zeros(3))
    with pytest.raises(InvalidParameter, match="event_shape"):
        MLP([])


def test_channel_mult_may_be_a_list():
    # The config gives lists; the network stores a tuple.
    assert _net("unet", (1, 8, 8), channel_mult=[1, 2]).channel_mult == (1, 2)


# --------------------------------------------------------------------------------------------
# parameter counts
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(NETWORKS))
def test_count_parameters_is_the_sum_of_numel(kind):
    shape = (1, 8, 8) if kind == "unet" else (2,)
    net = build_network(kind, shape)
    assert count_parameters(net) == sum(p.numel() for p in net.parameters())
    _output_layer(net).requires_grad_(False)
    frozen = sum(p.numel() for p in _output_layer(net).parameters())
    assert count_parameters(net, trainable_only=True) == count_parameters(net) - frozen


def test_default_residual_mlp_parameter_count_by_hand():
    d, w, e, blocks = 2, 256, 64, 3
    linear = lambda i, o: i * o + o  # noqa: E731
    layernorm = 2 * w
    block = layernorm + linear(w, w) + linear(e, w) + linear(w, w)
    expected = linear(d, w) + blocks * block + layernorm + linear(w, d)
    assert count_parameters(ResidualMLP(d)) == expected == 448_002


def test_default_mlp_parameter_count_by_hand():
    d, w, e, depth = 2, 128, 64, 3
    expected = (d + e) * w + w + (depth - 1) * (w * w + w) + w * d + d
    assert count_parameters(MLP(d)) == expected == 41_858


@pytest.mark.parametrize("kind", list(NETWORKS))
def test_forward_follows_the_inputs_device(kind):
    # The meta device stands in for a GPU: any tensor made on a hard-coded device would clash.
    shape = (1, 8, 8) if kind == "unet" else (2,)
    net = _net(kind, shape, embedding="fourier").to("meta")
    x = torch.empty(3, *shape, device="meta")
    for cond in (torch.empty(3, device="meta"), torch.tensor(0.5)):
        out = net(x, cond)
        assert out.device.type == "meta" and out.shape == x.shape
