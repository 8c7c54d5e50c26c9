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
    "parameterisation": "what the network predicts (score, ε, x₀, EDM denoiser)",
    "metric": "a distance between samples and the target, with floor and CI",
    "study": "a paper's claims reproduced end to end",
}

# The modules whose import registers each group's built-ins, imported on the group's first
# look-up, in the order `scorelab list` shows them. (The studies arrive through scorelab's own
# plugin entry point, being a plugin of the package.)
BUILTINS: dict[str, tuple[str, ...]] = {
    "schedule": ("scorelab.schedules", "scorelab.ddpm", "scorelab.interpolants"),
    "process": ("scorelab.processes", "scorelab.ddpm", "scorelab.interpolants"),
    "target": ("scorelab.targets",),
    "sampler": ("scorelab.samplers",),
    "grid": ("scorelab.grids",),
    "loss": ("scorelab.losses", "scorelab.fokker_planck"),
    "weighting": ("scorelab.losses",),
    "noise": ("scorelab.losses",),
    "network": ("scorelab.networks",),
    "parameterisation": ("scorelab.parameterisations", "scorelab.velocity"),
    "metric": ("scorelab.metrics",),  # POT and scikit-learn
}

PLUGIN_GROUP = "scorelab.plugins"  # entry points: name = "module" or "module:object"
PLUGIN_ENV = "SCORELAB_PLUGINS"  # comma-separated module names
