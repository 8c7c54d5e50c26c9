"""The component groups, the modules that define each group's built-ins, and where plugins come
from: plain data, importing nothing, so that ``scorelab --help`` and ``scorelab list`` read them
without loading pydantic or torch. ``scorelab.registry`` holds the entries themselves."""

GROUPS: dict[str, str] = {
    "schedule": "β(t) or σ(t) of a forward process",
    "process": "the forward SDE",
    "target": "the data law (exact scores where known)",
    "sampler": "turns a score model into samples",
    "grid": "the spacing of a sampler's time grid",
    "loss": "per-example training loss",
    "weighting": "the loss weighting λ(t)",
    "noise": "the training noise distribution p(t) or p(σ)",
    "network": "the neural network",
    "parameterisation": "what the network predicts (score, ε, x₀, EDM denoiser, flow velocity)",
    "metric": "a distance between samples and the target, with floor and CI",
    "reparam": "a monotone map of flow time [0, 1] onto itself (SD3/Flux's resolution shift)",
    "coupling": "how a batch's noise is paired with its data in flow matching",
    "study": "a paper's claims reproduced end to end",
}

# The modules whose import registers each group's built-ins, imported on the group's first
# look-up (a module may register into several groups, so a group lists its entries in the
# order they were registered, not necessarily this one). The studies sit on top of the library (no
# core module imports them): they load only when the study group itself is looked up.
BUILTINS: dict[str, tuple[str, ...]] = {
    "schedule": ("scorelab.schedules", "scorelab.ddpm", "scorelab.interpolants"),
    "process": ("scorelab.processes", "scorelab.ddpm", "scorelab.interpolants"),
    "target": ("scorelab.targets",),
    "sampler": ("scorelab.samplers", "scorelab.flow_sampling"),
    "grid": ("scorelab.grids", "scorelab.time_shift"),
    "loss": ("scorelab.losses", "scorelab.fokker_planck", "scorelab.flow_matching"),
    "weighting": ("scorelab.losses", "scorelab.flow_matching"),
    "noise": ("scorelab.losses", "scorelab.flow_matching"),
    "network": ("scorelab.networks",),
    "parameterisation": ("scorelab.parameterisations", "scorelab.flow_matching"),
    "metric": ("scorelab.metrics",),  # POT and scikit-learn
    "study": ("scorelab.studies",),
    "reparam": ("scorelab.time_shift",),
    "coupling": ("scorelab.couplings",),
}

# Groups loaded only when they are looked up themselves: nothing built from the registries (the
# configuration schema, keyed on ``registry.version``) reads them, so building it loads no study.
ON_LOOKUP_ONLY = frozenset({"study"})

PLUGIN_GROUP = "scorelab.plugins"  # entry points: name = "module" or "module:object"
PLUGIN_ENV = "SCORELAB_PLUGINS"  # comma-separated module names
