"""The configuration schema: typed sections, built from the registries.

Every component section is ``{kind: ..., <the kind's own parameters>}``, a pydantic union of
one model per registered kind, tagged by ``kind``: ``target``, ``process`` (and its
``schedule``), ``sampler`` (and its ``grid``), ``network``, and ``train.loss``,
``train.noise``, ``train.weighting``. A section's model holds the keys every section of its
group has (``registry.SECTION_KEYS``: a sampler's ``steps``, ``n``, ``grid``…) and the chosen
kind's parameters, read from its registered definition — so a parameter is validated as the
kind that owns it declares it, and an option of another kind is refused, naming the keys this
kind takes. A kind name alone (``loss: dsm``) is shorthand for ``{kind: dsm}``; a section
without ``kind`` takes the group's default kind. The models are rebuilt whenever the
registries change (a plugin, a component registered at run time), so ``config_model()`` always
describes what is registered. Configs written in the earlier spelling are translated first
(``scorelab.config.legacy``).

Pydantic checks types, kinds and unknown keys; the components' own constructors check the
semantics, so Python users and config users get the same errors. Both are reported with the
dotted path of the offending key (``target.cov``), the value and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from copy import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .. import registry
from ..errors import ConfigError
from ..registry import DEFAULT_KINDS, ParamsModel
from . import legacy

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


class _TrainBase(_Model):
    """Training: optimiser, loss, noise distribution, weighting, data and precision.

    ``loss``, ``noise`` (the distribution of the training times) and ``weighting`` are
    sections of their own, ``{kind, <its parameters>}``: ``noise: {kind: lognormal, p_mean:
    -1.2, p_std: 1.2}``, ``loss: {kind: fp_dsm, alpha: 0.15}``."""

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
        """The loss's own parameters (its section less ``kind``), as keywords of the loss."""
        return params_of(self.loss)


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

    kind: str = DEFAULT_KINDS["process"]
    T: float | None = Field(None, description="horizon (default 1; sigma_max for edm)")
    t_min: float | None = Field(None, description="early-stopping time (default per process)")
    sigma_inf: float = Field(1.0, description="stationary std of vp/subvp")

    @model_validator(mode="after")
    def _fill_schedule(self):
        if self.schedule is None:
            name = registry.entry("process", self.kind).meta.get("default_schedule")
            self.schedule = registry.entry("schedule", name).config_model()
        return self


class _GridBase(_Model):
    """The time grid: a registered spacing (uniform, edm, geometric, logsnr, quadratic) and its
    own parameters (edm's ``rho``)."""

    kind: str = DEFAULT_KINDS["grid"]
    t_min: float | None = None
    t_max: float | None = None
    final: Literal["none", "denoise"] = "none"
    # the noise levels themselves (k-diffusion's σ list; a trailing 0 means final: denoise);
    # sampler.steps, kind, t_min, t_max and the spacing's parameters are then unused
    sigmas: list[float] | None = None

    def params(self) -> dict[str, Any]:
        """The spacing's own parameters."""
        return params_of(self)


class _SamplerBase(_Model):
    """How to sample: the sampler and its own options, its grid, how many samples and in what
    batches."""

    kind: str = DEFAULT_KINDS["sampler"]
    steps: int = Field(50, ge=1)
    n: int = Field(1000, ge=1)
    batch_size: int | None = Field(None, ge=1)
    dtype: Literal["float32", "float64"] = "float32"

    def options(self) -> dict[str, Any]:
        """The sampler's own options (every one, defaults included)."""
        return params_of(self)


class _NetworkBase(_Model):
    """The network and its parameterisation; the network's own keys default to its
    definition's."""

    kind: str = DEFAULT_KINDS["network"]
    parameterisation: Choice("parameterisation") = "edm"
    sigma_data: float | None = Field(None, gt=0)  # None: estimated from the training data

    def network_params(self) -> dict[str, Any]:
        """The network's own parameters."""
        return params_of(self)


class _ConfigBase(_Model):
    """A scorelab configuration."""

    @model_validator(mode="after")
    def _compared_samplers_valid(self):
        for i, _ in enumerate(self.run.samplers):
            compared_sampler(self, i)
        return self


# the base model of each group's sections (the keys every section of the group has); groups
# absent here are {kind} plus the kind's parameters
_BASES: dict[str, type[BaseModel]] = {
    "process": _ProcessBase,
    "grid": _GridBase,
    "sampler": _SamplerBase,
    "network": _NetworkBase,
}
# the fields that hold a component section ({kind, ...}; a bare kind name is shorthand)
SECTION_FIELDS = frozenset(
    {"target", "source", "process", "schedule", "grid", "sampler", "network"}
    | {"loss", "noise", "weighting"}
)
# parameters of a kind that its group's base model already holds (a process's t_min)
_SHARED = {"process": ("t_min", "sigma_inf")}


def params_of(section: BaseModel) -> dict[str, Any]:
    """A section's kind-specific parameters: its keys less ``kind`` and the keys every section
    of its group has."""
    own = getattr(type(section), "__own__", None)
    if own is None:
        own = [k for k in type(section).model_fields if k != "kind"]
    return {k: getattr(section, k) for k in own}


@dataclass(frozen=True)
class Schema:
    """The models of one state of the registries: ``sections[group][kind]`` is the model of a
    ``group`` section of that kind."""

    Config: type[BaseModel]
    Train: type[BaseModel]
    sections: dict[str, dict[str, type[BaseModel]]]

    @property
    def targets(self) -> dict[str, type[BaseModel]]:
        return self.sections["target"]

    @property
    def schedules(self) -> dict[str, type[BaseModel]]:
        return self.sections["schedule"]

    @property
    def unions(self) -> dict[str, dict[str, type[BaseModel]]]:
        """Field name → the models of the tagged union it holds (for error paths)."""
        return {"source": self.targets, **self.sections}

    def kind_of(self, model: Any) -> tuple[str, str] | None:
        """(group, kind) of a section model, or None for another model."""
        for group, models in self.sections.items():
            for kind, m in models.items():
                if m is model:
                    return group, kind
        return None


_CACHE: dict[int, Schema] = {}


def current() -> Schema:
    """The schema of what is registered now (rebuilt after any registration)."""
    v = registry.version()
    if v not in _CACHE:
        _CACHE.clear()
        _CACHE[v] = _build_schema()
    return _CACHE[v]


def _union(models: dict[str, type[BaseModel]], default: str | None = None):
    """A union of section models tagged by ``kind`` (``default`` when the section gives
    none); a bare kind name reads as ``{kind: name}``."""

    def tag(value: Any) -> Any:
        if isinstance(value, Mapping):
            return value.get("kind", default)
        return getattr(value, "kind", default)

    members = tuple(Annotated[m, Tag(k)] for k, m in models.items())
    union = Annotated[Union[members], Discriminator(tag)]  # noqa: UP007
    return Annotated[union, BeforeValidator(_shorthand)]


def _shorthand(value: Any) -> Any:
    return {"kind": value} if isinstance(value, str) else value


def _section_models(group: str, **extra_fields) -> dict[str, type[BaseModel]]:
    """One model per registered kind of ``group``: the group's base model (its common keys)
    plus the kind's own parameters, as its registered definition declares them."""
    base = _BASES.get(group)
    out: dict[str, type[BaseModel]] = {}
    for name, entry in registry.entries(group).items():
        if base is None:
            out[name] = entry.config_model
            continue
        shared = set(base.model_fields) | set(_SHARED.get(group, ()))
        own = {
            k: (f.annotation, copy(f))
            for k, f in entry.config_model.model_fields.items()
            if k != "kind" and k not in shared
        }
        bases = (base,) if entry.config is None else (base, entry.config)
        model = create_model(
            registry._model_name(name, group + "_section"),
            __base__=bases,
            __doc__=entry.doc or base.__doc__,
            kind=(Literal[name], name),  # type: ignore[valid-type]
            **extra_fields,
            **({} if entry.config is not None else own),
        )
        common = shared | set(extra_fields)
        model.__own__ = tuple(k for k in model.model_fields if k != "kind" and k not in common)
        out[name] = model
    return out


def _build_schema() -> Schema:
    sections = {
        "target": {n: e.config_model for n, e in registry.entries("target").items()},
        "schedule": {n: e.config_model for n, e in registry.entries("schedule").items()},
    }
    target_union, schedule_union = _union(sections["target"]), _union(sections["schedule"])
    for model in sections["target"].values():  # targets built from other targets (empirical)
        if "source" in model.model_fields or not model.__pydantic_complete__:
            model.model_rebuild(force=True, _types_namespace={"TargetConfig": target_union})
    sections["process"] = _section_models("process", schedule=(schedule_union | None, None))
    sections["grid"] = _section_models("grid")
    grid = _union(sections["grid"], "uniform")
    sections["sampler"] = _section_models("sampler", grid=(grid, Field(default_factory=dict)))
    sections["network"] = _section_models("network")
    for group in ("loss", "noise", "weighting"):
        sections[group] = _section_models(group)
    field = {g: _field(sections[g], DEFAULT_KINDS[g]) for g in DEFAULT_KINDS}
    train = create_model(
        "TrainConfig",
        __base__=_TrainBase,
        __doc__=_TrainBase.__doc__,
        loss=field["loss"],
        noise=field["noise"],
        weighting=field["weighting"],
    )
    ring8 = sections["target"]["gmm"]
    config = create_model(
        "Config",
        __base__=_ConfigBase,
        __doc__=_ConfigBase.__doc__,
        seed=(Seed, 0),
        target=(target_union, Field(default_factory=lambda: ring8(preset="ring8"))),
        process=field["process"],
        score=(ScoreConfig, Field(default_factory=ScoreConfig)),
        sampler=field["sampler"],
        network=field["network"],
        train=(train, Field(default_factory=train)),
        run=(RunConfig, Field(default_factory=RunConfig)),
    )
    return Schema(config, train, sections)


def _field(models: dict[str, type[BaseModel]], default: str) -> tuple[Any, Any]:
    """The field of a section: the union of its kinds, defaulting to the default kind's
    model with its defaults."""
    return (_union(models, default), Field(default_factory=lambda: models[default]()))


def config_model() -> type[BaseModel]:
    """The ``Config`` model of what is registered now."""
    return current().Config


def train_config(train: Any = None) -> BaseModel:
    """A validated ``train`` section from a section model, a mapping of its keys (errors name
    the key, ``train.lr``; the earlier spelling is translated), or None (every default)."""
    model = current().Train
    if isinstance(train, model):
        return train
    if isinstance(train, BaseModel):  # of an earlier state of the registries
        train = train.model_dump()
    data = legacy.translate({"train": dict(train or {})})["train"]
    return validate_section(data, {"train": model}, "train", single=True)


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
    data = legacy.translate(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def validate_section(
    cfg: Any,
    models: Mapping[str, type[BaseModel]],
    where: str,
    single: bool = False,
    default: str | None = None,
):
    """Accept a section's model or a plain mapping (validated here with the same messages);
    ``default`` is the kind of a mapping that gives none, and a bare kind name reads as
    ``{kind: name}``."""
    if isinstance(cfg, BaseModel):
        return cfg
    if isinstance(cfg, str) and not single:
        cfg = {"kind": cfg}
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{where}: must be a mapping with a 'kind', got {type(cfg).__name__}")
    if single:
        model = next(iter(models.values()))
    else:
        kind = cfg.get("kind", default)
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
    """The i-th entry of ``run.samplers`` as a full sampler section: ``sampler`` with the
    entry's changes (a kind, or a mapping of keys). An entry of another kind keeps the
    sections' common keys (steps, n, grid…) and leaves the main sampler's own options behind."""
    entry = cfg.run.samplers[i]
    change = {"kind": entry} if isinstance(entry, str) else dict(entry)
    base = cfg.sampler.model_dump()
    kind = change.get("kind", base["kind"])
    if kind != base["kind"]:
        base = {k: v for k, v in base.items() if k in _SamplerBase.model_fields or k == "grid"}
    merged = legacy.drop_nulls({**base, **change}, "sampler")
    return validate_section(merged, current().sections["sampler"], f"run.samplers.{i}")


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
            lines.setdefault(where, _unknown_key(where, str(loc[-1]), model))
            continue
        path, model, members = _walk(loc, root, unions)
        where = ".".join(path) or "config"
        union = unions.get(path[-1] if path else "", {})
        if etype == "union_tag_invalid":
            tag = err["ctx"]["tag"]
            line = f"{where}.kind: unknown kind {tag!r}; allowed: {', '.join(union)}"
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


def _unknown_key(where: str, key: str, model: type[BaseModel] | None) -> str:
    """An unknown key's line; a parameter of another kind of the section's group says whose."""
    keys = sorted(model.model_fields, key=lambda k: k != "kind") if model else ["?"]
    allowed = ", ".join(keys)
    owner = current().kind_of(model)
    if owner is not None:
        group, kind = owner
        others = [n for n, e in registry.entries(group).items() if key in e.parameters]
        if others:
            return (
                f"{where}: does not apply to {group} '{kind}' (it is a parameter of "
                f"{', '.join(others)}); allowed keys here: {allowed}"
            )
    return f"{where}: unknown key; allowed keys here: {allowed}"


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
    "TrainConfig": lambda s: s.Train,
    "TARGET_MODELS": lambda s: s.targets,
    "SCHEDULE_MODELS": lambda s: s.schedules,
}


def __getattr__(name: str):
    # the models built from the registries, as of now
    if name in _DYNAMIC:
        return _DYNAMIC[name](current())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
