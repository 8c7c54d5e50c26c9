"""The configuration schema: typed sections, built from the registries.

Every component section is ``{kind: ..., <parameters>}``. The ``target`` and
``process.schedule`` sections are pydantic unions of the registered components' config models;
``sampler`` and ``network`` are flat sections whose kind-specific keys are the union of the
registered samplers' (networks') keyword parameters; names such as ``train.loss`` are checked
against their registry. The models are rebuilt whenever the registries change (a plugin, a
component registered at run time), so ``config_model()`` always describes what is registered.

Pydantic checks types, kinds and unknown keys; the components' own constructors check the
semantics, so Python users and config users get the same errors. Both are reported with the
dotted path of the offending key (``target.cov``), the value and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .. import registry
from ..errors import ConfigError
from ..registry import ParamsModel

_Model = ParamsModel


def _expected(names: tuple[str, ...]) -> str:
    """pydantic's wording for a list of literals: 'a', 'b' or 'c'."""
    quoted = [repr(n) for n in names]
    if not quoted:
        return "(none registered)"
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def Choice(group: str):
    """A string that must name a registered ``group`` component (checked when validated, so
    plugins loaded later count)."""

    def check(value: str) -> str:
        allowed = registry.names(group)
        if value not in allowed:
            raise PydanticCustomError(
                "literal_error", "Input should be {expected}", {"expected": _expected(allowed)}
            )
        return value

    return Annotated[str, AfterValidator(check)]


def _seed(value: int) -> int:
    # torch's generators take seeds below 2⁶⁴; larger ones wrapped round to other seeds
    # (2⁶⁴ gave the samples of seed 0)
    if not 0 <= value < 1 << 64:
        raise PydanticCustomError(
            "seed_range", "must be an integer in [0, 2^64) (torch's generators take no other)"
        )
    return value


Seed = Annotated[int, AfterValidator(_seed)]


# --------------------------------------------------------------------------------------------
# static sections
# --------------------------------------------------------------------------------------------


class GridConfig(_Model):
    """The time grid: a registered spacing (uniform, edm, geometric, logsnr, quadratic)."""

    kind: Choice("grid") = "uniform"
    t_min: float | None = None
    t_max: float | None = None
    rho: float = 7.0
    final: Literal["none", "denoise"] = "none"
    # the noise levels themselves (k-diffusion's σ list; a trailing 0 means final: denoise);
    # sampler.steps, kind, t_min, t_max and rho are then unused (scorelab.grids)
    sigmas: list[float] | None = None


class ScoreConfig(_Model):
    """Which score model to sample with: the target's exact score, or a trained checkpoint
    (a run directory or its ``checkpoint.safetensors``)."""

    kind: Literal["exact", "checkpoint"] = "exact"
    path: Path | None = None
    use_ema: bool = True

    @model_validator(mode="after")
    def _path_given(self):
        if self.kind == "checkpoint" and self.path is None:
            raise ValueError("score.kind 'checkpoint' needs score.path (a run directory or file)")
        return self


class FPConfig(_Model):
    """The Fokker–Planck regulariser of loss 'fp_dsm' (docs/theory.md §7.5)."""

    alpha: float = Field(0.15, ge=0)
    weighting: Literal["likelihood", "convention", "constant"] = "likelihood"
    points: Literal["perturbed", "data", "box"] = "perturbed"
    div: Literal["exact", "hutchinson"] = "exact"
    n_probes: int = Field(1, ge=1)
    scalar_beta: float = Field(0.0, ge=0)


class TrainConfig(_Model):
    """Training: optimiser, loss, noise distribution, weighting, data and precision."""

    steps: int = Field(2000, ge=1)
    batch_size: int = Field(256, ge=1)  # the global batch (split over the ranks by torchrun)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup: int = Field(100, ge=0)
    decay: Literal["cosine", "none"] = "cosine"
    grad_clip: float | None = Field(1.0, gt=0)
    ema_decay: float = Field(0.999, ge=0, lt=1)
    ema_half_life: float | None = Field(None, gt=0)  # in steps; overrides ema_decay
    # cap the decay at (1 + k)/(10 + k) over the first updates; null: only with ema_decay
    ema_warmup: bool | None = None
    loss: Choice("loss") = "dsm"
    noise: Choice("noise") = "uniform_t"
    weighting: Choice("weighting") = "s2"
    p_mean: float = -1.2
    p_std: float = Field(1.2, gt=0)
    fp: FPConfig = Field(default_factory=FPConfig)
    n_train: int | None = Field(None, ge=2)  # None: fresh target samples every step
    dtype: Literal["float32", "float64", "bfloat16"] = "float32"
    device: str = "cpu"  # cpu, cuda, cuda:N or auto
    compile: bool = False
    log_every: int = Field(50, ge=1)
    checkpoint_every: int = Field(500, ge=1)

    @property
    def ema(self) -> float:
        """The EMA decay per step (from the half-life when one is given)."""
        if self.ema_half_life is not None:
            return 0.5 ** (1.0 / self.ema_half_life)
        return self.ema_decay

    def ema_at(self, step: int) -> float:
        """The EMA decay of update ``step`` (0-based). With the warm-up it is capped at
        (1 + k)/(10 + k), so the zero-output initialisation does not linger: with d = 0.999
        alone, 22 % of it was still in the EMA after 1500 steps, which spoiled short runs'
        samples. By default the warm-up applies to ``ema_decay`` only: a half-life is an
        explicit averaging window, kept as given (and so are the results measured with it)."""
        warmup = self.ema_half_life is None if self.ema_warmup is None else self.ema_warmup
        if not warmup:
            return self.ema
        return min(self.ema, (1.0 + step) / (10.0 + step))

    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine decay to 0 (or constant)."""
        warm = min(1.0, (step + 1) / max(1, self.warmup))
        if self.decay == "none":
            return self.lr * warm
        progress = min(1.0, step / max(1, self.steps))
        return self.lr * warm * 0.5 * (1 + math.cos(math.pi * progress))

    def loss_options(self) -> dict[str, Any]:
        """Extra keywords of the loss: the ``fp`` section for 'fp_dsm' (its weighting named
        apart from the DSM term's)."""
        if self.loss != "fp_dsm":
            return {}
        fp = self.fp.model_dump()
        return {("fp_weighting" if k == "weighting" else k): v for k, v in fp.items()}


class RunConfig(_Model):
    """What ``scorelab run`` does after training: extra samplers to compare, evaluation and
    the bounds."""

    # Samplers compared with `sampler`: each a kind, or a mapping of `sampler` keys to change
    # (e.g. {kind: euler_maruyama, steps: 100}).
    samplers: list[str | dict[str, Any]] = Field(default_factory=list)
    metrics: list[Choice("metric")] | None = None  # None: every metric that applies
    n_boot: int = Field(100, ge=10)
    n_boot_ot: int = Field(25, ge=10)
    max_points: int = Field(2000, ge=2)
    bounds: bool = True
    diagnose: bool = True


# --------------------------------------------------------------------------------------------
# sections built from the registries
# --------------------------------------------------------------------------------------------


class _ProcessBase(_Model):
    """The forward SDE: a registered process with a schedule of its family (β for vp/subvp,
    σ for ve/edm)."""

    kind: Choice("process") = "vp"
    T: float | None = Field(None, description="horizon (default 1; sigma_max for edm)")
    t_min: float | None = Field(None, description="early-stopping time (default per process)")
    sigma_inf: float = Field(1.0, description="stationary std of vp/subvp")

    @model_validator(mode="after")
    def _fill_schedule(self):
        if self.schedule is None:
            name = registry.entry("process", self.kind).meta.get("default_schedule")
            self.schedule = registry.entry("schedule", name).config_model()
        return self


class _SamplerBase(_Model):
    """How to sample: the sampler, its grid, how many samples and in what batches."""

    kind: Choice("sampler") = "heun"
    steps: int = Field(50, ge=1)
    n: int = Field(1000, ge=1)
    batch_size: int | None = Field(None, ge=1)
    dtype: Literal["float32", "float64"] = "float32"
    grid: GridConfig = Field(default_factory=GridConfig)

    def options(self) -> dict[str, Any]:
        """The sampler-specific keys that were given (None means the sampler's default)."""
        return {k: getattr(self, k) for k in sampler_option_names() if getattr(self, k) is not None}


class _NetworkBase(_Model):
    """The network and its parameterisation; unset keys take the network's defaults."""

    kind: Choice("network") = "mlp"
    parameterisation: Choice("parameterisation") = "edm"
    sigma_data: float | None = Field(None, gt=0)  # None: estimated from the training data

    def network_params(self) -> dict[str, Any]:
        skip = set(_NetworkBase.model_fields)
        return {k: v for k, v in self.model_dump().items() if k not in skip and v is not None}


class _ConfigBase(_Model):
    """A scorelab configuration."""

    @model_validator(mode="after")
    def _compared_samplers_valid(self):
        for i, _ in enumerate(self.run.samplers):
            compared_sampler(self, i)
        return self


@dataclass(frozen=True)
class Schema:
    """The models of one state of the registries."""

    Config: type[BaseModel]
    Process: type[BaseModel]
    Sampler: type[BaseModel]
    Network: type[BaseModel]
    targets: dict[str, type[BaseModel]]
    schedules: dict[str, type[BaseModel]]

    @property
    def unions(self) -> dict[str, dict[str, type[BaseModel]]]:
        """Field name → the models of the tagged union it holds (for error paths)."""
        return {"target": self.targets, "source": self.targets, "schedule": self.schedules}


_CACHE: dict[int, Schema] = {}


def current() -> Schema:
    """The schema of what is registered now (rebuilt after any registration)."""
    v = registry.version()
    if v not in _CACHE:
        _CACHE.clear()
        _CACHE[v] = _build_schema()
    return _CACHE[v]


def _union(models: list[type[BaseModel]]):
    return Annotated[Union[tuple(models)], Field(discriminator="kind")]  # noqa: UP007


def _build_schema() -> Schema:
    targets = {n: e.config_model for n, e in registry.entries("target").items()}
    schedules = {n: e.config_model for n, e in registry.entries("schedule").items()}
    target_union, schedule_union = _union(list(targets.values())), _union(list(schedules.values()))
    for model in targets.values():  # targets built from other targets (empirical's source)
        if "source" in model.model_fields or not model.__pydantic_complete__:
            model.model_rebuild(force=True, _types_namespace={"TargetConfig": target_union})
    process = create_model(
        "ProcessConfig",
        __base__=_ProcessBase,
        __doc__=_ProcessBase.__doc__,
        schedule=(schedule_union | None, None),
    )
    sampler = create_model(
        "SamplerConfig",
        __base__=_SamplerBase,
        __doc__=_SamplerBase.__doc__,
        **registry.option_fields(registry.entries("sampler")),
    )
    network = create_model(
        "NetworkConfig",
        __base__=_NetworkBase,
        __doc__=_NetworkBase.__doc__,
        **registry.option_fields(registry.entries("network")),
    )
    ring8 = targets["gmm"]
    config = create_model(
        "Config",
        __base__=_ConfigBase,
        __doc__=_ConfigBase.__doc__,
        seed=(Seed, 0),
        target=(target_union, Field(default_factory=lambda: ring8(preset="ring8"))),
        process=(process, Field(default_factory=process)),
        score=(ScoreConfig, Field(default_factory=ScoreConfig)),
        sampler=(sampler, Field(default_factory=sampler)),
        network=(network, Field(default_factory=network)),
        train=(TrainConfig, Field(default_factory=TrainConfig)),
        run=(RunConfig, Field(default_factory=RunConfig)),
    )
    return Schema(config, process, sampler, network, targets, schedules)


def config_model() -> type[BaseModel]:
    """The ``Config`` model of what is registered now."""
    return current().Config


def sampler_option_names() -> tuple[str, ...]:
    """The kind-specific keys of the ``sampler`` section."""
    return tuple(k for k in current().Sampler.model_fields if k not in _SamplerBase.model_fields)


# --------------------------------------------------------------------------------------------
# validating
# --------------------------------------------------------------------------------------------


def parse_config(data: Mapping | BaseModel) -> BaseModel:
    """Validate a mapping into a ``Config`` (raises ``ConfigError`` listing every problem)."""
    model = config_model()
    if isinstance(data, model):
        return data
    if isinstance(data, _ConfigBase):  # a config of an earlier state of the registries
        data = data.model_dump(mode="json")
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def validate_section(cfg: Any, models: Mapping[str, type[BaseModel]], where: str, single=False):
    """Accept a section's model or a plain mapping (validated here with the same messages)."""
    if isinstance(cfg, BaseModel):
        return cfg
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{where}: must be a mapping with a 'kind', got {type(cfg).__name__}")
    if single:
        model = next(iter(models.values()))
    else:
        kind = cfg.get("kind")
        if kind not in models:
            raise ConfigError(
                f"{where}.kind: "
                + ("missing" if kind is None else f"unknown kind {kind!r}")
                + f"; allowed: {', '.join(models)}"
            )
        model = models[kind]
    try:
        return model.model_validate(dict(cfg))
    except ValidationError as exc:
        msg = format_validation_error(exc, model)
        raise ConfigError("\n".join(f"{where}.{line}" for line in msg.splitlines())) from None


def compared_sampler(cfg: Any, i: int) -> BaseModel:
    """The i-th entry of ``run.samplers`` as a full sampler config (``sampler`` with changes)."""
    entry = cfg.run.samplers[i]
    change = {"kind": entry} if isinstance(entry, str) else dict(entry)
    base = cfg.sampler.model_dump()
    if change.get("kind", base["kind"]) != base["kind"]:  # sampler-specific keys stay behind
        options = set(sampler_option_names())
        base = {k: v for k, v in base.items() if k not in options}
    model = current().Sampler
    try:
        return model.model_validate({**base, **change})
    except ValidationError as exc:
        msg = format_validation_error(exc, model)
        raise ConfigError(
            "\n".join(f"run.samplers.{i}.{line}" for line in msg.splitlines())
        ) from None


def format_validation_error(exc: ValidationError, root: type[BaseModel] | None = None) -> str:
    """One line per problem, each naming the dotted key, the value and what is allowed."""
    root = root or config_model()
    unions = current().unions
    lines: dict[str, str] = {}
    member_types: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        etype, value, loc = err["type"], err.get("input"), err["loc"]
        if etype == "extra_forbidden":
            path, model, _ = _walk(loc[:-1], root, unions)
            where = ".".join([*path, str(loc[-1])])
            keys = sorted(model.model_fields, key=lambda k: k != "kind") if model else ["?"]
            allowed = ", ".join(keys)
            lines.setdefault(where, f"{where}: unknown key; allowed keys here: {allowed}")
            continue
        path, model, members = _walk(loc, root, unions)
        where = ".".join(path) or "config"
        union = unions.get(path[-1] if path else "", {})
        if etype == "union_tag_invalid":
            line = f"{where}.kind: unknown kind {err['ctx']['tag']!r}; allowed: {', '.join(union)}"
        elif etype == "union_tag_not_found":
            line = f"{where}: missing 'kind'; allowed: {', '.join(union)}"
        elif etype == "literal_error":
            line = f"{where}: {value!r} is not allowed; allowed: {err['ctx']['expected']}"
        elif etype == "missing":
            line = f"{where}: required key is missing"
        elif members:
            # one error per member of a plain union (number | list | matrix): merge them
            member_types.setdefault(where, []).append(members[0])
            words = (_TYPE_WORDS.get(m, "a list") for m in member_types[where])
            names = " or ".join(dict.fromkeys(words))
            lines[where] = f"{where}: has the wrong type (got {value!r}); expected {names}"
            continue
        else:
            line = f"{where}: {err['msg'].removeprefix('Value error, ')} (got {value!r})"
        lines.setdefault(where, line)
    return "\n".join(lines.values())


_TYPE_WORDS = {
    "float": "a number",
    "int": "an integer",
    "bool": "true/false",
    "str": "a string",
    "list[float]": "a list of numbers",
    "list[list[float]]": "a matrix (a list of lists)",
}


def _walk(loc: tuple, root: type[BaseModel], unions) -> tuple[list[str], Any, list[str]]:
    """Turn pydantic's error location into the user's dotted path.

    Pydantic puts the kind after a tagged-union field ('target', 'gaussian', 'cov') and the
    member type after a plain-union field ('cov', 'float'); the path keeps neither. Returns the
    path, the model owning its last key, and the plain-union member names met on the way.
    """
    path: list[str] = []
    members: list[str] = []
    model: type[BaseModel] | None = root
    i = 0
    while i < len(loc):
        part = loc[i]
        if members:
            break  # past a plain-union member name we are inside the value itself
        if isinstance(part, int):
            if path:
                path[-1] = f"{path[-1]}[{part}]"
        elif model is not None and part in model.model_fields:
            path.append(part)
            union = unions.get(part)
            if union and i + 1 < len(loc) and loc[i + 1] in union:
                model = union[loc[i + 1]]
                i += 1
            else:
                ann = model.model_fields[part].annotation
                model = _model_in(ann)
        else:
            members.append(str(part))
        i += 1
    return path, model, members


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (``Model`` or ``Model | None``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


_DYNAMIC = {
    "Config": lambda s: s.Config,
    "ProcessConfig": lambda s: s.Process,
    "SamplerConfig": lambda s: s.Sampler,
    "NetworkConfig": lambda s: s.Network,
    "TARGET_MODELS": lambda s: s.targets,
    "SCHEDULE_MODELS": lambda s: s.schedules,
}


def __getattr__(name: str):
    # the models built from the registries, as of now
    if name in _DYNAMIC:
        return _DYNAMIC[name](current())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
