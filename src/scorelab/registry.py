"""One registry per component kind: ``register`` a definition once, ``get`` it by name anywhere.

Every swappable component — schedule, process, target, sampler, grid, loss, weighting, noise
(the training σ/t distribution), network, parameterisation, metric, reparam, coupling, study —
is one decorated definition in one file::

    @scorelab.register("sampler", "euler_again")
    def euler_again(score, process, grid, x, *, noise=None, callback=None): ...

The entry carries what the rest of the code needs to know about the component: its parameters
and defaults (an explicit pydantic ``config`` model, or else read from the signature), and any
metadata given as keywords (the processes a sampler applies to, a metric's minimum n, …). The
configuration schema is built from the registries (``scorelab.config.schema``), so a registered
component is at once reachable from YAML, ``--set``, ``scorelab list`` and the Python API.

Components of other packages arrive as plugins, loaded on the first look-up: modules named by
the entry-point group ``scorelab.plugins`` and by ``SCORELAB_PLUGINS`` (comma-separated module
names). Each group's built-ins are imported on its first look-up too (``groups.BUILTINS``):
the studies, the provider of the ``study`` group, load only when that group is looked up.
This module imports nothing of scorelab but its errors and the group table (``groups.py``): it
is the bottom layer that the components register into.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from .errors import InvalidParameter, ScorelabError
from .groups import BUILTINS, GROUPS, ON_LOOKUP_ONLY, PLUGIN_ENV, PLUGIN_GROUP

# Signature parameters that are a call's plumbing, never a configurable parameter.
_PLUMBING = frozenset(
    {"self", "noise", "callback", "generator", "progress", "log", "noise_sampler"}
)

# Per group, the arguments its callers supply on every call (a loss receives the batch's times,
# noise and weighting from the trainer; a process receives its schedule): never parameters.
CALL_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "loss": ("noise", "weighting", "sigma_data", "t", "z", "exact_score"),
    "process": ("schedule",),
}

# Per group, the keys of its config section that are not a kind's own parameters: a component
# may not name a parameter after one of them (the key would mean two things). Every group's
# sections have a ``kind``.
SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "sampler": ("kind", "steps", "n", "batch_size", "dtype", "grid"),
    "grid": ("kind", "steps", "t_min", "t_max", "final", "sigmas"),
    "network": ("kind", "parameterisation", "sigma_data"),
    "process": ("kind", "T"),
}

# Per group, the kind of a config section that names none (``sampler: {steps: 20}`` is heun).
DEFAULT_KINDS: dict[str, str] = {
    "process": "vp",
    "grid": "uniform",
    "sampler": "heun",
    "network": "mlp",
    "loss": "dsm",
    "noise": "uniform_t",
    "weighting": "s2",
}


class ParamsModel(BaseModel):
    """Base of every component's config model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    def given(self) -> set[str]:
        """The fields set to something other than their default. A value equal to the
        default counts as not given, so that a resolved config, which writes every field
        out (a run's config.yaml), reads back as the same config."""
        fields = type(self).model_fields
        return {k for k in self.model_fields_set if getattr(self, k) != fields[k].default}


@dataclass(frozen=True)
class Entry:
    """A registered component: the object, its config model (``kind`` plus parameters) and
    the metadata given at registration."""

    group: str
    name: str
    obj: Any
    config: type[BaseModel] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    context: tuple[str, ...] = ()  # arguments the builder supplies, not the user (T, seed…)

    @property
    def doc(self) -> str:
        """The first sentence of the definition's docstring (of its config model's, if it
        has one)."""
        text = (self.obj.__doc__ if self.config is None else self.config.__doc__) or ""
        if not text.strip() and self.config is not None:
            text = self.obj.__doc__ or ""
        paragraph = " ".join(inspect.cleandoc(text).split("\n\n")[0].split())
        end = paragraph.find(". ")
        return paragraph if end < 0 else paragraph[: end + 1]

    @property
    def config_model(self) -> type[BaseModel]:
        """The pydantic model of ``{kind: name, <parameters>}``: the explicit ``config``, or
        one read from the signature (annotations, else the defaults' types)."""
        if self.config is not None:
            return self.config
        key = (self.group, self.name, id(self.obj))
        if key not in _DERIVED:
            fields = {
                p.name: (_annotation(p), p.default)
                for p in _signature_parameters(self.obj)
                if p.name not in self.context
            }
            _DERIVED[key] = create_model(
                _model_name(self.name, self.group),
                __base__=ParamsModel,
                __doc__=self.obj.__doc__,
                kind=(Literal[self.name], self.name),  # type: ignore[valid-type]
                **fields,
            )
        return _DERIVED[key]

    @property
    def parameters(self) -> dict[str, Any]:
        """Each user-settable parameter with its default (``inspect.Parameter.empty`` when
        the parameter is required)."""
        if self.config is not None:
            return {
                name: (inspect.Parameter.empty if f.is_required() else f.get_default())
                for name, f in self.config.model_fields.items()
                if name != "kind"
            }
        return {
            p.name: p.default for p in _signature_parameters(self.obj) if p.name not in self.context
        }

    def validate(self, params: Mapping[str, Any], field: str | None = None) -> BaseModel:
        """``{kind: name, **params}`` validated by the config model; a bad value is an
        ``InvalidParameter`` naming the key (under ``field`` when given)."""
        try:
            return self.config_model.model_validate({**params, "kind": self.name})
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            key = ".".join(str(p) for p in err["loc"]) or "kind"
            if err["type"] == "extra_forbidden":
                problem = f"is not a parameter of {self.group} '{self.name}'"
                allowed = ", ".join(self.parameters) or "none"
            else:
                problem, allowed = err["msg"].removeprefix("Value error, "), None
            where = f"{field}.{key}" if field else key
            raise InvalidParameter(where, problem, err.get("input"), allowed) from None

    def build(self, cfg: Any, **context) -> Any:
        """The component a validated config (or a mapping) describes, with ``context`` (the
        arguments only the caller knows, such as a schedule's horizon T) passed on to the
        definitions that take them. An object with a ``from_config(cfg, **context)``
        classmethod builds itself; anything else is called with the parameters."""
        if self.config is not None and not isinstance(cfg, BaseModel):
            cfg = self.config.model_validate({"kind": self.name, **dict(cfg)})
        # only a class's own from_config: a subclass registered apart builds by its signature
        if inspect.isclass(self.obj) and "from_config" in vars(self.obj):
            return self.obj.from_config(cfg, **context)
        params = cfg.model_dump() if isinstance(cfg, BaseModel) else dict(cfg)
        params.pop("kind", None)
        accepted = {p.name for p in _signature_parameters(self.obj)}
        params.update({k: v for k, v in context.items() if k in accepted})
        return self.obj(**params)


_REGISTRY: dict[str, dict[str, Entry]] = {g: {} for g in GROUPS}
_DERIVED: dict[tuple, type[BaseModel]] = {}
_PROVIDERS: dict[str, list[str]] = {}  # group → modules to import on its first look-up
_PROVIDED: dict[str, set[str]] = {}  # group → every module ever named a provider of it
_version = 0
_plugins_loaded = False


def register(
    group: str,
    name: str,
    *,
    config: type[BaseModel] | None = None,
    context: tuple[str, ...] = (),
    **meta: Any,
) -> Callable[[Any], Any]:
    """Decorator: register the decorated function or class as ``group``/``name``, at once a
    config ``kind``, a ``--set`` value and a row of ``scorelab list``.

    Args:
        group: The component kind (``sampler``, ``target``, ``metric``, …; ``registry.GROUPS``).
        name: The name configs use.
        config: A pydantic model of the user-facing parameters (a ``kind`` field is added when
            it has none); without one the parameters are read from the signature (those with
            defaults, less ``noise``, ``callback``, ``generator`` and the ``context`` names
            that the caller supplies).
        context: Names the caller supplies at call time (e.g. ``("target",)`` for a metric).
        **meta: Metadata that the rest of the code reads (see each group's users), e.g.
            ``own_final_step=True`` or ``oracle=`` for a sampler.

    Examples:
        >>> import scorelab
        >>> @scorelab.register("metric", "mean_gap")
        ... def mean_gap(x, y):  # ‖mean(samples) − mean(target sample)‖
        ...     return (x.mean(0) - y.mean(0)).norm()
        >>> "mean_gap" in scorelab.names("metric")
        True
        >>> scorelab.registry.unregister("metric", "mean_gap")
    """
    _check_group(group)
    if (
        not isinstance(name, str)
        or not name
        or not name.replace("_", "").replace("-", "").isalnum()
    ):
        raise InvalidParameter("name", "must be a non-empty word (letters, digits, _ and -)", name)

    context = (*context, *CALL_ARGUMENTS.get(group, ()))

    def decorate(obj: Any) -> Any:
        global _version
        if not _provided_by(group, getattr(obj, "__module__", None) or ""):
            _load_providers(group)  # built-ins first, so a plugin's entry follows them
        _check_parameter_names(group, name, obj, config, context)
        model = _kinded(config, name) if config is not None else None
        old = _REGISTRY[group].get(name)
        if old is not None and not _same_definition(old.obj, obj):
            raise ScorelabError(
                f"{group} '{name}' is already registered (by {_where(old.obj)}); "
                "choose another name"
            )
        _REGISTRY[group][name] = Entry(group, name, obj, model, dict(meta), tuple(context))
        _version += 1
        return obj

    return decorate


def get(group: str, name: str) -> Any:
    """The object registered as ``group``/``name`` (a function, class or config model)."""
    return entry(group, name).obj


def entry(group: str, name: str) -> Entry:
    """The registry entry of ``group``/``name``; an unknown name is an error that lists the
    registered ones."""
    entries_ = entries(group)
    if name not in entries_:
        raise InvalidParameter(
            f"{group}.kind" if group != "study" else "study",
            f"is not a registered {group}",
            name,
            ", ".join(entries_) or "none",
        )
    return entries_[name]


def entries(group: str) -> dict[str, Entry]:
    """Every registered entry of ``group``, in registration order (plugins loaded first)."""
    _check_group(group)
    load_plugins()
    _load_providers(group)
    return dict(_REGISTRY[group])


def provide(group: str, module: str) -> None:
    """Name a module whose import registers ``group`` components, imported on the group's
    first look-up: heavy built-ins (the metrics pull in POT and scikit-learn) then cost
    nothing to a program that never asks for them."""
    _check_group(group)
    _PROVIDERS.setdefault(group, []).append(module)
    _PROVIDED.setdefault(group, set()).add(module)


def _provided_by(group: str, module: str) -> bool:
    """Whether ``module`` is (inside) one of ``group``'s providers: a built-in registering
    itself, which then counts as imported (importing the other providers from inside its
    import would be a cycle)."""
    mine = [p for p in _PROVIDED.get(group, ()) if module == p or module.startswith(p + ".")]
    pending = _PROVIDERS.get(group, [])
    for p in mine:
        if p in pending:
            pending.remove(p)
    return bool(mine)


def _load_providers(group: str) -> None:
    providers = _PROVIDERS.get(group, [])
    while providers:
        module = providers[0]
        importlib.import_module(module)  # its own registrations take it off the list
        if providers and providers[0] == module:
            providers.pop(0)


def names(group: str) -> tuple[str, ...]:
    """The registered names of ``group``, in registration order (plugins loaded first)."""
    return tuple(entries(group))


def version() -> int:
    """A counter that changes whenever something is registered (caches built from the
    registries key on it). Every group's built-ins are loaded first, but for the groups no such
    cache reads (``groups.ON_LOOKUP_ONLY``: the studies)."""
    load_plugins()
    for group in list(_PROVIDERS):
        if group not in ON_LOOKUP_ONLY:
            _load_providers(group)
    return _version


def load_plugins(force: bool = False) -> None:
    """Import the plugin modules once: entry points of ``scorelab.plugins``, then the modules
    named in ``SCORELAB_PLUGINS``. A plugin that fails to import is an error naming it."""
    global _plugins_loaded
    if _plugins_loaded and not force:
        return
    _plugins_loaded = True  # before importing: plugins call register and get themselves
    from importlib.metadata import entry_points

    for ep in entry_points(group=PLUGIN_GROUP):
        if _own_entry_point(ep):
            continue
        try:
            ep.load()
        except Exception as exc:
            raise ScorelabError(
                f"plugin entry point {ep.name!r} ({ep.value}) failed: {exc}"
            ) from None
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGIN_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise ScorelabError(
                f"{PLUGIN_ENV}: module {module!r} could not be imported ({exc})"
            ) from None


def _own_entry_point(ep: Any) -> bool:
    """Whether an entry point is scorelab's own: an install made before the studies became the
    study group's provider still declares them a plugin, and loading them on every look-up
    would pull the study modules into programs that never run one."""
    dist = getattr(ep, "dist", None)
    return dist is not None and dist.metadata["Name"] == "scorelab"


def unregister(group: str, name: str) -> None:
    """Remove an entry (for tests and interactive sessions)."""
    global _version
    _check_group(group)
    if _REGISTRY[group].pop(name, None) is not None:
        _version += 1


ALLOW_CODE_ENV = "SCORELAB_ALLOW_CODE"
_allow_code = False


def allow_code(enabled: bool = True) -> None:
    """Allow (or forbid again) importing code that a config names (``schedule.kind: callable``
    and the like); what the CLI's ``--allow-code`` calls. The environment variable
    ``SCORELAB_ALLOW_CODE=1`` allows it too."""
    global _allow_code
    _allow_code = bool(enabled)


def code_allowed() -> bool:
    """Whether code named in a config may be imported (``allow_code`` or the environment)."""
    env = os.environ.get(ALLOW_CODE_ENV, "").strip().lower()
    return _allow_code or env in ("1", "true", "yes", "on")


def import_callable(spec: str, field: str) -> Callable:
    """'package.module:attr' → the object (a user's schedule function, say).

    A config is data, and may come from someone else (a run directory's config.yaml), so the
    import happens only where code is allowed (``code_allowed``): ``--allow-code`` or
    ``SCORELAB_ALLOW_CODE=1``. Python callers pass the function object itself instead (e.g.
    ``CallableBeta(fn)``), which needs no import."""
    if not isinstance(spec, str) or ":" not in spec:
        raise InvalidParameter(field, "must look like 'package.module:function'", spec)
    if not code_allowed():
        raise InvalidParameter(
            field,
            "names code to import, and code named in a config is not loaded unless allowed: "
            "pass --allow-code (scorelab --allow-code COMMAND ...) or set "
            f"{ALLOW_CODE_ENV}=1 if you trust this config",
            spec,
        )
    mod_name, attr = spec.split(":", 1)
    try:
        obj = getattr(importlib.import_module(mod_name), attr)
    except Exception as exc:  # ImportError, AttributeError, or the module's own failure
        raise InvalidParameter(
            field, f"cannot be imported ({type(exc).__name__}: {exc})", spec
        ) from None
    if not callable(obj):
        raise InvalidParameter(field, "does not name a callable", spec)
    return obj


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _check_group(group: str) -> None:
    if group not in GROUPS:
        raise InvalidParameter("group", "is not a component group", group, ", ".join(GROUPS))


def _check_parameter_names(group, name, obj, config, context) -> None:
    """Refuse a parameter named like a key of the group's config section (``steps`` of a
    sampler, ``final`` of a grid): in ``{kind, <section keys>, <parameters>}`` it would mean
    two things. Read from the bare signature (type hints may not resolve yet)."""
    if config is not None:
        params = [k for k in config.model_fields if k != "kind"]
    else:
        target = obj.__init__ if inspect.isclass(obj) else obj
        try:
            sig = inspect.signature(target)
        except (TypeError, ValueError):
            return
        params = [
            p.name
            for p in sig.parameters.values()
            if p.name not in _PLUMBING
            and p.name not in context
            and p.default is not p.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
    reserved = SECTION_KEYS.get(group, ("kind",))
    clash = [p for p in params if p in reserved]
    if clash:
        raise InvalidParameter(
            f"{group} '{name}' parameter '{clash[0]}'",
            f"clashes with the section key {group}.{clash[0]}; rename the parameter",
            None,
            "any name but " + ", ".join(reserved),
        )


def _kinded(config: type[BaseModel], name: str) -> type[BaseModel]:
    """``config`` with a ``kind: Literal[name]`` field (kept if it has one already)."""
    if "kind" in config.model_fields:
        return config
    return create_model(
        config.__name__,
        __base__=config,
        __module__=config.__module__,
        __doc__=config.__doc__,
        kind=(Literal[name], name),  # type: ignore[valid-type]
    )


def _model_name(name: str, group: str) -> str:
    words = f"{name}_{group}".replace("-", "_").split("_")
    return "".join(w[:1].upper() + w[1:] for w in words)


@functools.cache
def _signature_parameters(obj: Any) -> tuple[inspect.Parameter, ...]:
    """The configurable parameters of a function or class: those with defaults, minus the
    plumbing. Cached: reading a signature and its type hints costs ~0.3 ms, and hot paths (the
    training step's noise draw) ask an entry for its parameters on every call."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return ()
    try:
        # with extras: ``Annotated[float, Field(ge=0)]`` carries its constraint to the config
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # unresolvable annotations: fall back to the defaults' types
        hints = {}
    out = []
    for p in sig.parameters.values():
        if p.name in _PLUMBING or p.default is p.empty:
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out.append(p.replace(annotation=hints.get(p.name, p.annotation)))
    return tuple(out)


def _annotation(p: inspect.Parameter) -> Any:
    ann = p.annotation
    if ann is not p.empty and not isinstance(ann, str):
        return ann
    if p.default is None or p.default is p.empty:
        return Any
    return type(p.default) if type(p.default) in (bool, int, float, str) else Any


def _same_definition(a: Any, b: Any) -> bool:
    """A module imported twice (reload, tests) registers the same definition again."""
    return getattr(a, "__module__", None) == getattr(b, "__module__", None) and getattr(
        a, "__qualname__", None
    ) == getattr(b, "__qualname__", None)


def _where(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


for _group, _modules in BUILTINS.items():
    for _module in _modules:
        provide(_group, _module)
del _group, _modules, _module

__all__ = [
    "GROUPS",
    "Entry",
    "ParamsModel",
    "allow_code",
    "code_allowed",
    "entries",
    "entry",
    "get",
    "import_callable",
    "load_plugins",
    "names",
    "provide",
    "register",
    "unregister",
    "version",
]
