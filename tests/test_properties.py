"""Property-based checks: whatever a user feeds scorelab — a YAML tree, a --set
string, the bytes of an .npz, .npy, .csv or checkpoint — it either works or raises scorelab's
own error (``ScorelabError``, which the CLI prints as one line); never anything else. And every
sampler × process × grid at extreme settings gives finite samples or a clear refusal."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scorelab import registry
from scorelab import schedules as sch
from scorelab.config import (
    apply_overrides,
    build,
    build_grid,
    load_yaml,
    parse_config,
    sampler_options,
)
from scorelab.errors import ScorelabError
from scorelab.grids import TimeGrid
from scorelab.processes import EDM, VE, VP, SubVP
from scorelab.safeyaml import safe_load
from scorelab.sampling import generate
from scorelab.storage import load_samples
from scorelab.targets import Gaussian, load_array

FAST = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# the config's own words, so that random trees reach past the first unknown key
KEYS = [
    "seed", "target", "process", "score", "sampler", "network", "train", "run", "kind",
    "dim", "mean", "cov", "means", "covs", "weights", "preset", "radius", "std", "n_components",
    "schedule", "beta_min", "beta_max", "clip_max", "sigma_min", "sigma_max", "T", "t_min",
    "sigma_inf", "steps", "n", "batch_size", "grid", "rho", "final", "sigmas", "t_max", "rtol",
    "atol", "eta", "lr", "loss", "noise", "weighting", "metrics", "samplers", "path", "points",
    "source", "width", "depth", "parameterisation", "dtype", "function", "a", "s",
]  # fmt: skip
WORDS = [
    "gmm", "gaussian", "ring8", "mg25", "random", "vp", "ve", "edm", "subvp", "linear",
    "cosine", "geometric", "heun", "ddim", "dopri5", "uniform", "logsnr", "exact",
    "checkpoint", "dsm", "mlp", "eps", "float64", "w2", "[/]", "", "nan", "1e400",
]  # fmt: skip
NUMBERS = st.one_of(
    st.integers(-3, 40),
    st.sampled_from([0, 1, 2**63, 2**64, -(2**64), 10**30]),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([1e-300, 1e300, -0.0, 5e-324]),
)
SCALARS = st.one_of(NUMBERS, st.booleans(), st.none(), st.sampled_from(WORDS), st.text(max_size=8))


def _trees(max_leaves: int = 30):
    return st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(
                st.one_of(st.sampled_from(KEYS), st.text(max_size=4)), inner, max_size=5
            ),
        ),
        max_leaves=max_leaves,
    )


def _own_error_or_ok(fn, *args, **kwargs):
    """Call fn: success, or a ScorelabError; anything else fails the test."""
    try:
        return fn(*args, **kwargs)
    except ScorelabError:
        return None


def _small_sizes(cfg) -> bool:
    """Random trees may ask for a 10³⁰-dimensional target: the size checks own that case, so
    the tree test builds only configs of modest sizes."""
    sizes = [v for k, v in _leaves(cfg.model_dump()) if k in ("dim", "n_components", "n", "k")]
    return all(not isinstance(v, int) or v <= 64 for v in sizes)


def _leaves(tree, key=None):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _leaves(v, k)
    elif isinstance(tree, list):
        for v in tree:
            yield from _leaves(v, key)
    else:
        yield key, tree


def _build_everything(cfg) -> None:
    """What `scorelab check` does short of building networks: target, process, sampler."""
    if not _small_sizes(cfg):
        return
    _, process = build(cfg)
    sampler_options(cfg.sampler)
    build_grid(cfg.sampler).times(process)


# --------------------------------------------------------------------------------------------


@FAST
@given(tree=st.dictionaries(st.sampled_from(KEYS), _trees(), max_size=6))
def test_random_yaml_trees_parse_or_raise_our_error(tmp_path_factory, tree):
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    try:
        text = yaml.safe_dump(tree, allow_unicode=True)
    except yaml.YAMLError:
        return
    path.write_text(text, encoding="utf-8")
    data = _own_error_or_ok(load_yaml, path)
    if data is None:
        return
    cfg = _own_error_or_ok(parse_config, data)
    if cfg is not None:
        _own_error_or_ok(_build_everything, cfg)


@FAST
@given(text=st.text(max_size=200))
def test_random_text_as_a_config_file(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    data = _own_error_or_ok(load_yaml, path)
    if data is not None:
        _own_error_or_ok(parse_config, data)


@FAST
@given(raw=st.binary(max_size=300))
def test_random_bytes_as_a_config_file(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_bytes(raw)
    data = _own_error_or_ok(load_yaml, path)
    if data is not None:
        _own_error_or_ok(parse_config, data)


SET_KEYS = st.one_of(
    st.sampled_from(
        [
            "seed", "target", "target.kind", "target.dim", "target.means", "process.kind",
            "process.schedule", "process.schedule.beta_max", "process.t_min", "sampler.kind",
            "sampler.n", "sampler.steps", "sampler.grid.kind", "sampler.rtol", "train.lr",
            "train.steps", "run.metrics", "network.width", "score.path", "a.b.c", "",
        ]
    ),
    st.text(max_size=12),
)  # fmt: skip
SET_VALUES = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        ["1e13", "nan", "-inf", "[1, [2]]", "{kind: gmm, means: []}", "*a", "&a [*a]", "[/]",
         "{kind: ve}", "2001-02-30", "!!python/object:os.system", "'", "0x10", "1_000"]
    ),
    NUMBERS.map(str),
)  # fmt: skip


@FAST
@given(items=st.lists(st.tuples(SET_KEYS, st.sampled_from(["=", ""]), SET_VALUES), max_size=4))
def test_random_set_strings_parse_or_raise_our_error(items):
    overrides = [f"{k}{eq}{v}" for k, eq, v in items]
    data = _own_error_or_ok(apply_overrides, {}, overrides)
    if data is None:
        return
    cfg = _own_error_or_ok(parse_config, data)
    if cfg is not None:
        _own_error_or_ok(_build_everything, cfg)


def _npz_bytes(arrays: dict) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


GOOD_NPZ = _npz_bytes({"samples": np.zeros((4, 2))})
GOOD_NPY = b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (4, 2), }"


@FAST
@given(
    raw=st.one_of(
        st.binary(max_size=400),
        st.integers(0, len(GOOD_NPZ)).map(lambda k: GOOD_NPZ[:k]),  # truncated files
        st.binary(max_size=64).map(lambda b: GOOD_NPY.ljust(128, b" ") + b),
        st.binary(min_size=1, max_size=64).map(lambda b: GOOD_NPZ[:-40] + b),
    ),
    suffix=st.sampled_from([".npz", ".npy", ".csv"]),
)
def test_random_bytes_as_sample_files(tmp_path_factory, raw, suffix):
    path = tmp_path_factory.mktemp("arr") / f"x{suffix}"
    path.write_bytes(raw)
    x = _own_error_or_ok(load_array, path, field="samples")
    if x is not None:
        assert x.dtype == torch.float64 and x.ndim >= 2 and bool(torch.isfinite(x).all())
    if suffix == ".npz":
        _own_error_or_ok(load_samples, path)


@FAST
@given(rows=st.lists(st.lists(st.sampled_from(["1", "2.5", "nan", "x", "", "1e400", "-3"]),
                              max_size=4), max_size=6))  # fmt: skip
def test_random_csv_tables(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("csv") / "x.csv"
    path.write_text("\n".join(",".join(r) for r in rows), encoding="utf-8")
    x = _own_error_or_ok(load_array, path, field="samples")
    if x is not None:
        assert bool(torch.isfinite(x).all())


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A real training checkpoint (5 steps), whose metadata the next test garbles."""
    from scorelab.pipeline import train

    cfg = parse_config(
        {
            "network": {"width": 8, "depth": 1},
            "train": {"steps": 5, "batch_size": 16, "checkpoint_every": 5, "log_every": 5},
        }
    )
    run_dir = tmp_path_factory.mktemp("ckpt")
    train(cfg, run_dir)
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(run_dir / "checkpoint.safetensors"), framework="pt") as fh:
        meta = fh.metadata()
    from scorelab.pipeline import make_trainer

    trainer, _ = make_trainer(cfg, run_dir)
    return load_file(str(run_dir / "checkpoint.safetensors")), meta, trainer


META_TEXT = st.one_of(
    st.text(max_size=30),
    _trees(8).map(lambda t: json.dumps(t, allow_nan=True)),
    st.sampled_from(["{", "[1, 2]", '"x"', "null", "-1", "1e400", '{"kind": 3}', "[2]", "[0]"]),
)


@FAST
@given(key=st.sampled_from(["config", "event_shape", "step", "settings"]), value=META_TEXT,
       drop=st.sampled_from([None, "rng", "ema.network.out.weight", "opt.0.step"]))  # fmt: skip
def test_random_checkpoint_metadata(tmp_path_factory, checkpoint, key, value, drop):
    from safetensors.torch import save_file

    from scorelab.models import load_score_model

    tensors, meta, trainer = checkpoint
    tensors = {k: v for k, v in tensors.items() if k != drop}
    run_dir = tmp_path_factory.mktemp("bad")
    save_file(tensors, str(run_dir / "checkpoint.safetensors"), {**meta, key: value})
    _own_error_or_ok(load_score_model, run_dir / "checkpoint.safetensors", VP(sch.LinearBeta()))
    trainer.run_dir = run_dir
    _own_error_or_ok(trainer.resume)


@FAST
@given(text=st.text(max_size=60))
def test_safe_yaml_never_raises_anything_else(text):
    _own_error_or_ok(safe_load, text, "text")


def test_yaml_limits():
    with pytest.raises(ScorelabError, match="nested more than"):
        safe_load("[" * 500 + "]" * 500, "x")
    bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n"
        for p, c in zip("abcdefg", "bcdefgh", strict=True)
    )
    with pytest.raises(ScorelabError, match="aliases"):
        safe_load(bomb, "x")
    with pytest.raises(ScorelabError, match="recursive alias"):
        safe_load("&a [*a]", "x")
    assert safe_load("a: &x [1, 2]\nb: *x\n", "x") == {"a": [1, 2], "b": [1, 2]}


# --------------------------------------------------------------------------------------------
# every sampler × process × grid at extreme settings: finite samples or a clear refusal
# --------------------------------------------------------------------------------------------

EXTREME = {
    "vp": lambda: VP(sch.LinearBeta(), t_min=1e-8),
    "subvp": lambda: SubVP(sch.LinearBeta(), t_min=1e-8),
    "ve": lambda: VE(sch.GeometricSigma(sigma_min=1e-6, sigma_max=1e4), t_min=1e-8),
    "edm": lambda: EDM(sch.EDMSigma(sigma_min=1e-6, sigma_max=1e4), t_min=1e-6),
}


def _sweep(cases, loose_dopri: bool) -> dict[str, int]:
    target = Gaussian(mean=[0.5, -1.0], cov=[1.0, 0.01])
    counts = {"finite": 0, "refused": 0}
    for pname, sampler, grid, final, dtype in cases:
        process = EXTREME[pname]()
        opts = {"rtol": 1e-2, "atol": 1e-2} if sampler == "dopri5" and loose_dopri else {}
        try:
            out = generate(
                target.score_model(process),
                process,
                (2,),
                sampler=sampler,
                grid=TimeGrid(grid, 8, final=final),
                n=16,
                seed=1,
                dtype=dtype,
                **opts,
            )
        except ScorelabError:  # a clear refusal (e.g. a VP-only sampler on VE)
            counts["refused"] += 1
            continue
        assert bool(torch.isfinite(out.samples).all()), (pname, sampler, grid, final, dtype)
        counts["finite"] += 1
    return counts


def test_every_sampler_on_every_process_at_extreme_settings():
    """Each sampler on each process (VP and sub-VP with t_min = 1e-8, VE and EDM with σ from
    1e-6 to 1e4), the grid and the final step cycling through their kinds (every grid meets
    eight samplers); float32, dopri5 at loose tolerances. The whole product is the slow test
    below."""
    samplers, grids = registry.names("sampler"), registry.names("grid")
    cases = []
    for i, s in enumerate(samplers):
        for j, p in enumerate(EXTREME):
            cases.append(
                (p, s, grids[(i + j) % len(grids)], ("none", "denoise")[j % 2], torch.float32)
            )
    counts = _sweep(cases, loose_dopri=True)
    assert counts["finite"] >= len(cases) - 3 * len(EXTREME)  # only VP-only samplers refused


@pytest.mark.slow
def test_the_whole_product_at_extreme_settings():
    """Every sampler × process × grid × final step × dtype (800 cases)."""
    cases = [
        (p, s, g, f, d)
        for p in EXTREME
        for s in registry.names("sampler")
        for g in registry.names("grid")
        for f in ("none", "denoise")
        for d in (torch.float32, torch.float64)
    ]
    counts = _sweep(cases, loose_dopri=False)
    assert counts["finite"] + counts["refused"] == len(cases)
    restricted = [s for s, e in registry.entries("sampler").items() if e.meta.get("processes")]
    assert counts["refused"] <= len(restricted) * 3 * len(registry.names("grid")) * 4


def test_seeds_beyond_2_64_are_refused_not_wrapped():
    process = VP(sch.LinearBeta())
    target = Gaussian(dim=2)
    with pytest.raises(ScorelabError, match="seed"):
        generate(target.score_model(process), process, (2,), n=4, seed=2**64)
    with pytest.raises(ScorelabError, match="seed"):
        parse_config({"seed": 2**64})
    assert math.isfinite(float(parse_config({"seed": 2**64 - 1}).seed))


def test_a_zip_that_is_no_npz(tmp_path):
    path = tmp_path / "x.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("samples.npy", b"not an array")
    with pytest.raises(ScorelabError):
        load_array(path)
    with pytest.raises(ScorelabError):
        load_samples(path)
    assert Path(path).exists()
