"""Component sections ``{kind, **params}`` built from the registries: each kind's parameters
are validated as that kind declares them, reach the built component from YAML and ``--set``,
and may not be named like a key of their section; plugins get the same treatment."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from typing import Literal, get_args, get_origin

import pytest
import torch

from scorelab import registry
from scorelab import schedules as sch
from scorelab.config import (
    apply_overrides,
    build_grid,
    build_process,
    build_target,
    current,
    parse_config,
    sampler_options,
)
from scorelab.config.schema import _BASES, compared_sampler
from scorelab.errors import ConfigError, InvalidParameter
from scorelab.grids import TimeGrid
from scorelab.losses import sample_times
from scorelab.models import build_model
from scorelab.processes import VP
from scorelab.registry import SECTION_KEYS
from scorelab.sampling import generate
from scorelab.training import Trainer


@pytest.fixture
def plugin():
    """Register components for one test (removed afterwards)."""
    added = []

    def add(group, name, **meta):
        def decorate(obj):
            registry.register(group, name, **meta)(obj)
            added.append((group, name))
            return obj

        return decorate

    yield add
    for group, name in added:
        registry.unregister(group, name)


def _config(*sets, base=None):
    return parse_config(apply_overrides(base or {}, list(sets)))


# --------------------------------------------------------------------------------------------
# options are validated against the chosen kind only
# --------------------------------------------------------------------------------------------


def test_a_plugin_option_named_like_another_kinds_takes_its_own_type(plugin):
    @plugin("sampler", "labelled_euler")
    def labelled_euler(score, process, grid, x, *, noise=None, callback=None, eta: str = "fast"):
        """A sampler whose ``eta`` is a label, not DDIM's number."""
        raise NotImplementedError

    cfg = _config("sampler.kind=labelled_euler", "sampler.eta=turbo")
    assert sampler_options(cfg.sampler) == {"eta": "turbo"}
    ddim = _config("sampler.kind=ddim", "sampler.eta=0.25")
    assert sampler_options(ddim.sampler) == {"eta": 0.25}
    with pytest.raises(ConfigError, match=r"sampler\.eta: Input should be a valid number"):
        _config("sampler.kind=ddim", "sampler.eta=turbo")
    # an option of another kind is refused, naming the keys this kind takes
    with pytest.raises(ConfigError) as info:
        _config("sampler.kind=heun", "sampler.eta=0.5")
    msg = str(info.value)
    assert "sampler.eta: does not apply to sampler 'heun'" in msg
    kinds = msg.split("it is a parameter of ")[1].split(")")[0].split(", ")
    assert {"ddim", "labelled_euler"} <= set(kinds)
    assert "allowed keys here: kind, steps, n, batch_size, dtype, grid" in msg
    # compared samplers of other kinds, each with its own options
    both = _config(
        "sampler.kind=euler_maruyama",
        "sampler.eval_point=right",
        "run.samplers=[{kind: ddim, eta: 0.5}, {kind: labelled_euler, eta: slow}, {steps: 7}]",
    )
    got = [compared_sampler(both, i) for i in range(3)]
    assert [sampler_options(s) for s in got] == [
        {"eta": 0.5},
        {"eta": "slow"},
        {"eval_point": "right"},
    ]
    assert got[2].steps == 7 and got[0].steps == both.sampler.steps


def test_a_plugin_grid_parameter_is_settable_and_spaces_the_grid(plugin):
    @plugin("grid", "power", space="t")
    def power(u, hi, lo, p: float = 3.0):
        """t_max down to t_min as (1 − u)^p."""
        return lo + (hi - lo) * (1 - u) ** p

    cfg = _config("sampler.grid.kind=power", "sampler.grid.p=2.0", "sampler.steps=8")
    grid = build_grid(cfg.sampler)
    assert grid.params == (("p", 2.0),) and grid.p == 2.0
    process = VP(sch.LinearBeta())
    k = torch.arange(9, dtype=torch.float64)
    expected = process.t_min + (process.T - process.t_min) * (1 - k / 8) ** 2
    torch.testing.assert_close(grid.times(process), expected, rtol=1e-15, atol=1e-15)
    with pytest.raises(ConfigError, match=r"sampler\.grid\.p: Input should be a valid number"):
        _config("sampler.grid.kind=power", "sampler.grid.p=steep")
    # rho is the edm grid's parameter only
    assert build_grid(_config("sampler.grid.kind=edm", "sampler.grid.rho=3").sampler).rho == 3.0
    with pytest.raises(ConfigError, match=r"sampler\.grid\.rho: does not apply to grid 'power'"):
        _config("sampler.grid.kind=power", "sampler.grid.rho=3")
    with pytest.raises(InvalidParameter, match="rhoo: is not a parameter of grid 'edm'"):
        TimeGrid("edm", 10, rhoo=3.0)


def test_a_plugin_noise_law_parameter_reaches_the_training_times(plugin):
    @plugin("noise", "capped")
    def capped(process, n, generator=None, cap: float = 5.0):
        """t uniform on [t_min, min(cap, T)]."""
        hi = min(cap, process.T)
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        return process.t_min + (hi - process.t_min) * u

    cfg = _config("train.noise.kind=capped", "train.noise.cap=0.25")
    process = VP(sch.LinearBeta())
    t = sample_times(process, 20_000, torch.Generator().manual_seed(0), cfg.train.noise)
    assert float(t.max()) <= 0.25
    # the mean of U(t_min, 0.25), to 5 standard errors
    se = (0.25 - process.t_min) / math.sqrt(12 * 20_000)
    assert abs(float(t.mean()) - (process.t_min + 0.25) / 2) < 5 * se
    with pytest.raises(ConfigError, match=r"train\.noise\.p_mean: does not apply to noise"):
        _config("train.noise.kind=capped", "train.noise.p_mean=0")


def test_a_bare_kind_is_shorthand_and_set_descends_into_it():
    cfg = _config("train.loss=fp_dsm", "train.loss.alpha=0.5", "train.noise=lognormal")
    assert cfg.train.loss.kind == "fp_dsm" and cfg.train.loss.alpha == 0.5
    assert (cfg.train.noise.p_mean, cfg.train.noise.p_std) == (-1.2, 1.2)
    assert _config("sampler=ddim").sampler.kind == "ddim"
    assert cfg.train.weighting.kind == "s2" and cfg.network.kind == "mlp"
    with pytest.raises(ConfigError, match=r"train\.loss\.kind: unknown kind 'fpdsm'; allowed: dsm"):
        _config("train.loss=fpdsm")
    with pytest.raises(ConfigError, match=r"train\.loss\.alpha: Input should be greater than"):
        _config("train.loss=fp_dsm", "train.loss.alpha=-1")
    with pytest.raises(ConfigError, match=r"network\.blocks: does not apply to network 'mlp'"):
        _config("network.blocks=2")


# --------------------------------------------------------------------------------------------
# names clashing with a section's keys are refused at registration
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "param"),
    [
        ("sampler", "steps"),
        ("sampler", "grid"),
        ("grid", "final"),
        ("network", "sigma_data"),
        ("noise", "kind"),
        ("process", "T"),
    ],
)
def test_a_parameter_named_like_a_section_key_is_refused_at_registration(plugin, group, param):
    def component(*args, **kwargs):
        raise NotImplementedError

    component.__signature__ = inspect.Signature(
        [
            inspect.Parameter("x", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY, default=1.0),
        ]
    )
    with pytest.raises(InvalidParameter) as info:
        plugin(group, "clashing")(component)
    assert f"clashes with the section key {group}.{param}" in str(info.value)
    assert "clashing" not in registry.names(group)


def test_the_section_keys_are_the_keys_of_every_section():
    """Every kind's section holds exactly the documented keys besides the kind's own
    parameters (docs/architecture.md), and each of them is reserved: a parameter may not take
    its name, except a process's t_min and sigma_inf, which a process kind may declare."""
    documented = {
        "sampler": {"kind", "steps", "n", "batch_size", "dtype", "grid"},
        "grid": {"kind", "t_min", "t_max", "final", "sigmas"},
        "network": {"kind", "parameterisation", "sigma_data"},
        "process": {"kind", "T", "t_min", "sigma_inf", "schedule"},
    }
    declarable = {"process": {"t_min", "sigma_inf", "schedule"}}
    schema = current()
    assert set(_BASES) == set(documented)
    for group, keys in documented.items():
        for kind, model in schema.sections[group].items():
            assert set(model.model_fields) - set(model.__own__) == keys, (group, kind)
        assert keys - declarable.get(group, set()) <= set(SECTION_KEYS[group]), group


# --------------------------------------------------------------------------------------------
# every parameter `scorelab list` shows is settable and reaches the component
# --------------------------------------------------------------------------------------------


class Arrived(BaseException):  # a signal, not an error: nothing on the way may catch it
    def __init__(self, args, kwargs):
        super().__init__("arrived")
        self.call_args, self.call_kwargs = args, kwargs


def _spy(*args, **kwargs):
    raise Arrived(args, kwargs)


def _candidate_values(entry, name):
    """A value other than the default that the parameter's type allows, then the default."""
    fields = entry.config_model.model_fields
    field = fields[name]
    default = None if field.is_required() else field.get_default()
    ann = field.annotation
    required = _required(entry, name)
    out = []
    if get_origin(ann) is Literal:
        out += [c for c in get_args(ann) if c != default][:1]
    elif isinstance(default, bool):
        out.append(not default)
    elif isinstance(default, int):
        out.append(default + 1)
    elif isinstance(default, float) and math.isfinite(default):
        out.append(default + 0.5)
    elif field.is_required():
        out.append("scorelab_fixture_value:x" if ann is str else 1.0)
    out.append(default)
    for value in out:
        try:
            entry.validate({**required, name: value})
            return value
        except InvalidParameter:
            continue
    pytest.fail(f"no valid value for {entry.group} {entry.name}.{name}")


def _required(entry, name):
    """A placeholder for each required parameter but ``name`` (the spy never reads them)."""
    fields = entry.config_model.model_fields
    return {
        k: "scorelab_fixture_value:x" for k, f in fields.items() if f.is_required() and k != name
    }


def _schedule_prefix(name):
    family = registry.entry("schedule", name).meta["family"]
    return ["process.kind=" + ("vp" if family == "beta" else "ve"), f"process.schedule.kind={name}"]


def _sampler_context(name):
    procs = registry.entry("sampler", name).meta.get("processes") or ("vp",)
    return [f"process.kind={procs[0]}"]


# group → (the --set prefix of its section, the keys that select the kind, how to reach it)
def _drive(group, cfg):
    if group in ("schedule", "process"):
        build_process(cfg.process)
    elif group == "target":
        build_target(cfg.target)
    elif group == "grid":
        build_grid(cfg.sampler).times(build_process(cfg.process))
    elif group == "network":
        build_model(cfg, (2,), build_process(cfg.process))
    elif group == "sampler":
        process = build_process(cfg.process)
        target = build_target(cfg.target)
        generate(
            target.score_model(process),
            process,
            (2,),
            sampler=cfg.sampler.kind,
            grid=build_grid(cfg.sampler),
            n=2,
            **sampler_options(cfg.sampler),
        )
    else:  # loss, noise, weighting: one training step
        process = build_process(cfg.process)
        target = build_target(cfg.target)
        model = build_model(cfg, (2,), process)
        Trainer(model, target, process, cfg.train, seed=0).train_step()


WALKED = {
    "schedule": lambda n: ("process.schedule", _schedule_prefix(n)),
    "process": lambda n: ("process", [f"process.kind={n}"]),
    "target": lambda n: ("target", [f"target={{kind: {n}}}"]),
    "sampler": lambda n: ("sampler", [f"sampler.kind={n}", *_sampler_context(n)]),
    "grid": lambda n: ("sampler.grid", [f"sampler.grid.kind={n}"]),
    "network": lambda n: ("network", [f"network={{kind: {n}, sigma_data: 1.0}}"]),
    "loss": lambda n: ("train.loss", [f"train.loss.kind={n}"]),
    "noise": lambda n: ("train.noise", [f"train.noise.kind={n}"]),
    "weighting": lambda n: ("train.weighting", [f"train.weighting.kind={n}"]),
}
BASE = {
    "target": {"kind": "gaussian", "dim": 2},
    "network": {"kind": "mlp", "width": 8, "depth": 1, "sigma_data": 1.0},
    "train": {"batch_size": 4, "steps": 1},
    "sampler": {"steps": 2, "n": 2},
}


def _parameters():
    for group in WALKED:
        for name, entry in registry.entries(group).items():
            for param in entry.parameters:
                yield group, name, param


@pytest.mark.parametrize(("group", "name", "param"), list(_parameters()), ids=lambda v: str(v))
def test_every_listed_parameter_is_settable_and_reaches_its_component(
    monkeypatch, group, name, param
):
    """Set the parameter through `--set` (to a valid non-default value where its type gives
    one), build what the config describes, and catch the call into the component: the value
    must be among its arguments. The component is swapped for a spy that keeps its config
    model, so the schema is the real one."""
    entry = registry.entry(group, name)
    spy = dataclasses.replace(entry, obj=_spy, config=entry.config_model)
    monkeypatch.setitem(registry._REGISTRY[group], name, spy)
    value = _candidate_values(entry, param)
    prefix, select = WALKED[group](name)
    others = [f"{prefix}.{k}={_yaml(v)}" for k, v in _required(entry, param).items()]
    sets = [*select, *others, f"{prefix}.{param}={_yaml(value)}"]
    cfg = parse_config(apply_overrides(BASE, sets))
    with pytest.raises(Arrived) as info:
        _drive(group, cfg)
    got = info.value.call_kwargs
    assert param in got, f"{group} {name}: {param} did not reach the component ({got})"
    assert _plain(got[param]) == _plain(value), (group, name, param, got[param], value)


def _yaml(value) -> str:
    """A value as `--set` reads it (JSON is YAML, but for infinities)."""
    if isinstance(value, float) and math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def _plain(value):
    return list(value) if isinstance(value, tuple) else value
