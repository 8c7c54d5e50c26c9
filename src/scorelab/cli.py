"""The ``scorelab`` command line. Errors are printed as one clear message, never a traceback
(set SCORELAB_DEBUG=1 to see one)."""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from . import __version__
from .errors import Interrupted, InvalidParameter, ScorelabError

# torch, matplotlib and the components load inside the commands that use them: `--help`,
# `--version` and `list` answer without them (a tenth of the start-up time).


def load_config(*args, **kwargs):
    from .config import load_config

    return load_config(*args, **kwargs)


def build(cfg):
    from .config import build

    return build(cfg)


app = typer.Typer(
    name="scorelab",
    help="Score-based generative models: exact oracles, samplers, metrics and error bounds.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


def _flags_without_type() -> None:
    """--help shows no "<bool>" type beside a flag (--json, --quiet, --help): a flag takes no
    value. (Typer's rich help labels every option with its type.)"""
    cls = getattr(getattr(typer, "core", None), "TyperOption", None)
    original = getattr(cls, "display_type_rich", None)
    if original is None or getattr(original, "_scorelab", False):
        return

    def display_type_rich(self, ctx):
        return None if getattr(self, "is_flag", False) else original(self, ctx)

    display_type_rich._scorelab = True
    cls.display_type_rich = display_type_rich


_flags_without_type()

SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Override a config key, e.g. --set process.schedule.a=4 (repeatable).",
    ),
]
SeedOption = Annotated[
    int | None,
    typer.Option(metavar="N", help="The run's seed (the config's `seed`; same as --set seed=N)."),
]
DeviceOption = Annotated[
    str | None,
    typer.Option(metavar="DEVICE", help="cpu, cuda, cuda:1 or auto (default: the config's)."),
]
ProgressOption = Annotated[
    bool,
    typer.Option(
        metavar="",
        help="Show progress on stderr: a bar on a terminal, else a line every 10 s "
        "(SCORELAB_PROGRESS_SECONDS).",
    ),
]
ConfigArgument = Annotated[Path, typer.Argument(metavar="CONFIG", help="A YAML config file.")]

_state = {"quiet": False}


def _sets(set_: list[str] | None, seed: int | None = None, **keys) -> list[str]:
    """The --set overrides with --seed and other options as overrides of their keys."""
    extra = [] if seed is None else [f"seed={seed}"]
    extra += [f"{k}={v}" for k, v in keys.items() if v is not None]
    return [*(set_ or []), *extra]


def _say(msg: str) -> None:
    """A status line on stderr (silent under --quiet)."""
    if not _state["quiet"]:
        err.print(msg, highlight=False, markup=False, soft_wrap=True)


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _wrote(paths, since: float | None = None) -> None:
    """List the files a command wrote (a directory: its files, those modified since
    ``since`` when given), with their sizes."""
    files = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files += sorted(
                f
                for f in p.iterdir()
                if f.is_file()
                and not f.name.startswith(".")
                and (since is None or f.stat().st_mtime >= since)
            )
        elif p.is_file():
            files.append(p)
    if not files:
        return
    out.print("wrote:", highlight=False)
    width = max(len(str(f)) for f in files)
    for f in files:
        size = _size(f.stat().st_size)
        line = f"  {str(f).ljust(width)}  {size:>8}"
        out.print(line, highlight=False, markup=False, soft_wrap=True)


def _plain_doc(fn):
    """Join each paragraph of a command's docstring into one line, so that --help wraps
    it to the terminal rather than keeping the source's line breaks."""
    if fn.__doc__:
        paragraphs = inspect.cleandoc(fn.__doc__).split("\n\n")
        fn.__doc__ = "\n\n".join(" ".join(p.split()) for p in paragraphs)
    return fn


def _friendly(fn):
    """Turn scorelab's errors into a message and exit code 2; anything else into exit 1."""

    @_plain_doc
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except Interrupted as exc:  # SIGINT/SIGTERM at a step boundary, checkpoint written
            err.print(Text.assemble(("interrupted: ", "yellow"), str(exc)), soft_wrap=True)
            raise typer.Exit(128 + exc.signum) from None
        except ScorelabError as exc:
            # the message is text, never markup ("[n, 2]" or "[/]" in it must print as is),
            # and one logical line per problem, however narrow the terminal
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None
        except BrokenPipeError:  # output piped into `head` and the like: not an error
            sys.stderr.close()
            raise typer.Exit(0) from None
        except Exception as exc:
            if os.environ.get("SCORELAB_DEBUG"):
                raise
            message = _user_error(exc)
            if message is not None:  # a file, memory or size problem of the user's input
                err.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)
                raise typer.Exit(2) from None
            err.print(
                f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}\n"
                "Please report it; set SCORELAB_DEBUG=1 to see the traceback.",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    return wrapper


def _user_error(exc: Exception) -> str | None:
    """One line for the errors a user's input or machine causes that reach the CLI without
    a scorelab message of their own (a file that cannot be written, memory); None for bugs."""
    if isinstance(exc, OSError) and (exc.strerror or exc.filename):
        names = " → ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        what = exc.strerror or str(exc)
        return f"{names}: {what}" if names else what
    text = str(exc)
    if (
        isinstance(exc, MemoryError)
        or ("torch" in sys.modules and isinstance(exc, sys.modules["torch"].OutOfMemoryError))
        or (
            isinstance(exc, RuntimeError)
            and any(k in text for k in ("can't allocate memory", "bad_alloc", "out of memory"))
        )
    ):
        first = text.splitlines()[0][:200] if text else type(exc).__name__
        return (
            f"out of memory ({first}); lower the sizes the config asks for (target.dim, "
            "sampler.n, sampler.batch_size, train.batch_size, train.n_train, network.width)"
        )
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply to process"
    return None


def _version(value: bool):
    if value:
        out.print(f"scorelab {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, metavar="", help="Print the version."
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", metavar="", help="No progress and no status lines on stderr."
        ),
    ] = False,
    threads_: Annotated[
        int | None,
        typer.Option(
            "--threads",
            help="Torch threads (default: 1 for small networks, every core for image "
            "networks; also SCORELAB_THREADS).",
        ),
    ] = None,
    allow_code: Annotated[
        bool,
        typer.Option(
            "--allow-code",
            metavar="",
            help="Let a config name Python code to import (schedule kinds callable and "
            "sigma_callable). Off by default: a config or run directory may come from someone "
            "else. Also SCORELAB_ALLOW_CODE=1.",
        ),
    ] = False,
):
    """scorelab: every design choice of a diffusion model as a swappable, tested component."""
    if threads_ is not None:
        if threads_ < 1:
            raise typer.BadParameter("must be ≥ 1", param_hint="--threads")
        os.environ["SCORELAB_THREADS"] = str(threads_)  # read by scorelab.threads
    _state["quiet"] = quiet
    _allow_code(allow_code)


def _allow_code(enabled: bool) -> None:
    """--allow-code for this command (and, through the environment, its worker processes)."""
    if not enabled and "scorelab.registry" not in sys.modules:
        return  # nothing allowed yet, nothing to undo (and --help need not load the registry)
    from . import registry

    registry.allow_code(enabled)
    if enabled and os.environ.get(registry.ALLOW_CODE_ENV) is None:
        os.environ[registry.ALLOW_CODE_ENV] = "1"
        _state["code_env"] = True
    elif not enabled and _state.pop("code_env", False):
        os.environ.pop(registry.ALLOW_CODE_ENV, None)


@app.command("list")
@_friendly
def list_components(
    group: Annotated[
        str | None,
        typer.Argument(help="One group (schedule, target, sampler, metric, …); default: all."),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print {group: {kind: {parameter: default}}}.")
    ] = False,
):
    """List every registered component (built-in and plugin) with its parameters and defaults."""
    from .groups import GROUPS
    from .manifest import listing

    groups = list(GROUPS) if group is None else [group]
    for g in groups:
        if g not in GROUPS:
            raise InvalidParameter("GROUP", "is not a component group", g, ", ".join(GROUPS))
    known = listing()
    if json_out:
        listed = {g: {k: e["parameters"] for k, e in known[g].items()} for g in groups}
        print(json.dumps(listed, indent=2, ensure_ascii=False))
        return
    for g in groups:
        table = Table(title=f"{g}: {GROUPS[g]}", title_justify="left")
        table.add_column("kind", style="bold cyan", no_wrap=True)
        table.add_column("parameters (default)")
        table.add_column("what it is")
        for name, e in known[g].items():
            table.add_row(name, escape(e["text"] or "—"), escape(e["doc"]))
        out.print(table)


@app.command()
@_friendly
def check(
    config: ConfigArgument,
    set_: SetOption = None,
    full: Annotated[
        bool, typer.Option("--full", metavar="", help="Print the whole resolved config (YAML).")
    ] = False,
):
    """Validate a config and check everything `run` would use (the target, process, network,
    training settings, every sampler with its grid, the score, the metrics, the memory they
    need); print what it sets (the keys that differ from the defaults) and what it builds."""
    import yaml

    from .preflight import check as preflight

    cfg = load_config(config, set_ or [])
    target, process = build(cfg)
    checked = preflight(cfg)
    if full:
        out.print(
            yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), end="", highlight=False
        )
    else:
        from .report import config_differences

        rows = config_differences(cfg)
        table = Table(
            title=f"{escape(str(config))}: {len(rows)} keys differ from the defaults (--full: all)",
            title_justify="left",
        )
        for col in ("key", "value", "default"):
            table.add_column(col)
        for key, value, default in rows:
            table.add_row(key, escape(value), escape(default))
        out.print(table)
    for line in checked[1:]:
        _say(f"checked {line}")
    err.print(
        f"[green]ok[/]: target {escape(repr(target))}; process {escape(repr(process))}",
        highlight=False,
    )


@app.command()
@_friendly
def sample(
    config: ConfigArgument,
    out_path: Annotated[
        Path, typer.Option("--out", metavar="FILE.npz", help="Where to write the samples.")
    ] = Path("samples.npz"),
    set_: SetOption = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    progress: ProgressOption = True,
):
    """Draw samples with the configured sampler and score (the target's exact score, or a
    trained checkpoint with --set score.kind=checkpoint --set score.path=RUN); write them to
    an .npz file (`scorelab plot` draws it, `scorelab evaluate` measures it)."""
    import torch

    from .config import build_score
    from .pipeline import sample_with
    from .preflight import check as preflight
    from .rundir import check_output_file
    from .storage import save_samples
    from .training import resolve_device

    cfg = load_config(config, _sets(set_, seed))
    check_output_file(out_path, "--out", ".npz")
    preflight(cfg, ("sample",), compared=False)
    target, process = build(cfg)
    score = build_score(cfg, target, process)
    dev = resolve_device(device or cfg.train.device, "--device")
    if isinstance(score, torch.nn.Module):
        score.to(dev)
    sc = cfg.sampler
    if cfg.score.kind == "exact":
        _say(f"score: the exact score of the target '{cfg.target.kind}' (no network)")
    else:
        _say(f"score: the trained network of {cfg.score.path}")
    result = sample_with(
        cfg, sc, score, process, target.event_shape, progress=_interactive(progress), device=dev
    )
    save_samples(
        out_path,
        result.samples,
        config=cfg.model_dump(mode="json"),
        nfe=result.nfe,
        seconds=result.seconds,
    )
    out.print(
        f"{sc.n} samples from {sc.kind} ({sc.grid.kind} grid, {sc.steps} steps) with the "
        f"{'exact' if cfg.score.kind == 'exact' else 'trained'} score: NFE {result.nfe}, "
        f"wall time {result.seconds:.2f} s",
        highlight=False,
        soft_wrap=True,
    )
    _wrote([out_path])


def _target_mapping(text: str) -> dict:
    """A target from a config file (a target mapping, or a full config with a ``target`` key)
    or an inline YAML mapping such as '{kind: gmm, preset: ring8}'."""

    from .safeyaml import safe_load

    path = Path(text).expanduser()
    try:
        raw = path.read_bytes() if path.is_file() else text
    except OSError as exc:
        raise InvalidParameter("--target", f"cannot be read ({exc.strerror})", text) from None
    try:
        cfg = safe_load(raw, "--target")
    except ScorelabError as exc:
        detail = str(exc).removeprefix("--target: ")
        raise InvalidParameter(
            "--target", f"is neither a config file nor valid YAML ({detail})", text
        ) from None
    if isinstance(cfg, dict) and "target" in cfg and "kind" not in cfg:
        cfg = cfg["target"]
    if not isinstance(cfg, dict):
        raise InvalidParameter("--target", "must be a config file or a mapping with a 'kind'", text)
    return cfg


@app.command()
@_friendly
def evaluate(
    samples: Annotated[
        Path,
        typer.Argument(metavar="SAMPLES", help=".npz (from `scorelab sample`), .npy or .csv."),
    ],
    target: Annotated[
        str,
        typer.Option(
            metavar="CONFIG|YAML",
            help="Target: a config file, or inline YAML '{kind: gmm, preset: ring8}'.",
        ),
    ],
    json_out: Annotated[
        bool, typer.Option("--json", metavar="", help="Print JSON instead of a table.")
    ] = False,
    metrics: Annotated[
        str | None, typer.Option(help="Comma-separated subset (default: all that apply).")
    ] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for the CIs.")] = 200,
    n_boot_ot: Annotated[
        int, typer.Option(help="Resamples for the Sinkhorn and sliced-W2 CIs.")
    ] = 25,
    n_exact_ot: Annotated[
        int,
        typer.Option(
            help="Resamples solved exactly for the W1/W2 CIs (the others are linearised "
            "around the optimal potentials; ≥ 3)."
        ),
    ] = 6,
    max_points: Annotated[int, typer.Option(help="Cap per side for exact OT and MMD.")] = 2000,
    permutations: Annotated[int, typer.Option(help="MMD permutation test size (0: off).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    key: Annotated[str | None, typer.Option(help="Array name inside an .npz.")] = None,
    progress: ProgressOption = True,
):
    """How far samples are from a target: every metric with its finite-sample floor and CI."""
    import torch

    from .config import build_target
    from .metrics import evaluate as run_evaluate
    from .metrics.evaluate import check_metric_names
    from .seeding import check_seed
    from .targets import load_array

    seed = check_seed(seed, "--seed")
    chosen = check_metric_names(metrics.split(","), "--metrics") if metrics else None
    tgt = build_target(_target_mapping(target), seed=seed)
    x = load_array(samples, key, field="samples")
    ev = run_evaluate(
        x,
        tgt,
        chosen,
        n_boot=n_boot,
        generator=torch.Generator().manual_seed(seed),
        max_points=max_points,
        n_boot_ot=n_boot_ot,
        n_exact_ot=n_exact_ot,
        n_permutations=permutations,
        progress=_interactive(progress and not json_out),  # --json: stdout and stderr clean
    )
    if json_out:
        print(json.dumps(ev.to_json(), indent=2, ensure_ascii=False))
    else:
        out.print(ev.table(), highlight=False)


@app.command()
@_friendly
def plot(
    samples: Annotated[
        Path,
        typer.Argument(metavar="SAMPLES", help=".npz (from `scorelab sample`), .npy or .csv."),
    ],
    target: Annotated[
        str | None,
        typer.Option(
            metavar="CONFIG|YAML",
            help="Target to draw beneath: a config file or inline YAML (default: the target "
            "of the config stored in the .npz, if any; 'none': the samples alone).",
        ),
    ] = None,
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="FILE.png",
            help="Where to write the figure (default: SAMPLES with .png).",
        ),
    ] = None,
    dims: Annotated[int, typer.Option(help="Coordinates in the pair plot (d > 2).")] = 4,
    key: Annotated[str | None, typer.Option(help="Array name inside an .npz.")] = None,
):
    """Plot samples: a 2-D scatter over the target's density, an image grid for images, a
    pair plot of the first coordinates otherwise (PNG)."""
    from .config import build_target
    from .report import plot_samples
    from .targets import load_array

    x = load_array(samples, key, field="samples")
    stored = None
    if samples.suffix.lower() == ".npz":
        from .storage import load_samples

        try:
            stored = load_samples(samples)[1].get("config")
        except (InvalidParameter, ValueError):
            stored = None
    tgt, title = None, samples.name
    if target is not None and target.strip().lower() != "none":
        tgt = build_target(_target_mapping(target))
    elif target is None and stored and isinstance(stored.get("target"), dict):
        tgt = build_target(stored["target"], seed=stored.get("seed", 0))
        _say(f"target: {stored['target'].get('kind')} (from the config stored in {samples})")
    if stored and isinstance(stored.get("sampler"), dict):
        sc = stored["sampler"]
        title = f"{samples.name}: {sc.get('kind')}, {sc.get('steps')} steps"
    if dims < 2:
        raise InvalidParameter("--dims", "must be ≥ 2", dims)
    path = out_path if out_path is not None else samples.with_suffix(".png")
    if path.suffix.lower() != ".png":
        raise InvalidParameter("--out", "must end in .png", str(path))
    plot_samples(x, path, tgt, title=title, dims=dims)
    _wrote([path])


@app.command()
@_friendly
def bound(
    config: ConfigArgument,
    json_out: Annotated[
        bool, typer.Option("--json", metavar="", help="Print JSON instead of a table.")
    ] = False,
    score_error: Annotated[
        float, typer.Option(help="ε: a uniform L² bound on the score error (0 = exact score).")
    ] = 0.0,
    set_: SetOption = None,
    seed: SeedOption = None,
):
    """Every theoretical error bound that applies to the configuration, with its terms.

    N is sampler.steps; a bound whose assumptions fail is reported as refused, with why."""
    import torch

    from .bounds import all_bounds

    cfg = load_config(config, _sets(set_, seed))
    target, process = build(cfg)
    result = all_bounds(
        target,
        process,
        cfg.sampler.steps,
        score_error=score_error,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    if json_out:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"bounds for N = {cfg.sampler.steps} steps", title_justify="left")
    table.add_column("bound", style="bold cyan")
    table.add_column("term")
    table.add_column("value", justify="right")
    for family, terms in result.items():
        if "refused" in terms:
            table.add_row(family, "refused", Text(terms["refused"], justify="left"))
            continue
        for name, value in terms.items():
            table.add_row(family, name, "—" if value is None else f"{value:.6g}")
    out.print(table)


@app.command("tune-schedule")
@_friendly
def tune_schedule(
    config: ConfigArgument,
    family: Annotated[
        str, typer.Option(help="parametric (paper A's β_a, VP) or edm (the ρ of EDM's grid, VE).")
    ] = "parametric",
    bound_kind: Annotated[str, typer.Option("--bound", help="kl or w2 (parametric).")] = "kl",
    score_error: Annotated[float, typer.Option(help="ε, the score error in the bound.")] = 0.0,
    json_out: Annotated[bool, typer.Option("--json", metavar="", help="Print JSON.")] = False,
    set_: SetOption = None,
    seed: SeedOption = None,
):
    """Minimise a bound over a schedule family's parameter; report the optimum, the bound there
    and at the default (a = 0, i.e. linear; ρ = 7)."""
    from .bounds import tune

    cfg = load_config(config, _sets(set_, seed))
    target, process = build(cfg)
    res = tune(
        family,
        target,
        process,
        cfg.sampler.steps,
        bound=bound_kind,
        score_error=score_error,
        seed=cfg.seed,
    )
    summary = {
        "family": family,
        "parameter": res.parameter,
        "best": res.best,
        "bound_at_best": res.value,
        "default": res.reference,
        "bound_at_default": res.value_at_reference,
        "grid": res.grid,
        "grid_values": res.grid_values,
    }
    if json_out:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        out.print(
            f"{family}: best {res.parameter} = {res.best:.4g} with bound {res.value:.6g}; "
            f"at the default {res.parameter} = {res.reference:g}: {res.value_at_reference:.6g}",
            highlight=False,
        )


def _run_dir(config: Path, out_dir: Path | None) -> Path:
    return out_dir if out_dir is not None else Path("runs") / config.stem


OutOption = Annotated[
    Path | None,
    typer.Option("--out", metavar="DIR", help="Run directory (default: runs/<config name>)."),
]
ResumeOption = Annotated[
    bool, typer.Option("--resume", metavar="", help="Continue the run directory's checkpoint.")
]
AllowChangesOption = Annotated[
    str | None,
    typer.Option(
        "--allow-changes",
        metavar="KEY,...",
        help="With --resume: config keys that may differ from the checkpoint's (e.g. "
        "train.steps); others are refused. Every resume is recorded in resumes.jsonl.",
    ),
]


def _keys(text: str | None) -> list[str]:
    return [k.strip() for k in (text or "").split(",") if k.strip()]


@app.command()
@_friendly
def train(
    config: ConfigArgument,
    out_dir: OutOption = None,
    resume: ResumeOption = False,
    set_: SetOption = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    progress: ProgressOption = True,
    allow_changes: AllowChangesOption = None,
):
    """Train the config's network (checkpoints, metrics.jsonl and config.yaml in the run
    directory). Runs data-parallel under `torchrun --nproc_per_node=K -m scorelab train`.
    Ctrl-C or SIGTERM stops at the next step with a checkpoint; --resume continues exactly."""
    from . import pipeline

    cfg = load_config(config, _sets(set_, seed, **{"train.device": device}))
    run_dir = _run_dir(config, out_dir)
    since = time.time()
    trainer, _ = pipeline.train(
        cfg,
        run_dir,
        resume=resume,
        progress=_interactive(progress),
        allow_changes=_keys(allow_changes),
        log=_say,
    )
    if trainer.world.is_main:
        start, steps = trainer.resumed_from, cfg.train.steps
        if resume and start >= steps:
            out.print(
                f"nothing to train: the checkpoint is already at step {start} of {steps} "
                f"(to train longer: --resume --set train.steps=N --allow-changes train.steps, "
                f"N > {start})",
                highlight=False,
                soft_wrap=True,
            )
        elif resume:
            out.print(
                f"resumed at step {start}, trained {trainer.step - start} more steps "
                f"({trainer.step} in all) on {trainer.device}",
                highlight=False,
                soft_wrap=True,
            )
        else:
            out.print(f"trained {trainer.step} steps on {trainer.device}", highlight=False)
        _wrote([run_dir], since)
    trainer.world.close()


def _interactive(progress: bool) -> bool:
    """Whether to show progress: a bar on a terminal, plain lines otherwise
    (``scorelab.progress``); nothing under --quiet."""
    return progress and not _state["quiet"]


@app.command()
@_friendly
def run(
    config: ConfigArgument,
    out_dir: OutOption = None,
    resume: ResumeOption = False,
    set_: SetOption = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    progress: ProgressOption = True,
    allow_changes: AllowChangesOption = None,
):
    """The whole job: train → sample (every sampler) → evaluate → bounds → report.html.
    Training and sampling run on --device (train.device); metrics, bounds and diagnostics on
    the CPU."""
    from . import pipeline

    cfg = load_config(config, _sets(set_, seed, **{"train.device": device}))
    since = time.time()
    result = pipeline.run(
        cfg,
        _run_dir(config, out_dir),
        resume=resume,
        progress=_interactive(progress),
        log=_say,
        allow_changes=_keys(allow_changes),
    )
    if result.report is not None:
        _print_run_summary(result, since)


def _print_run_summary(result, since: float | None = None) -> None:
    """Per sampler a table of metrics (value, floor, CI, value / floor where the floor is
    positive), then the headline (W2 against its floor per sampler), what the run wrote and
    where the report is."""
    from .report import CI_EXCLUDES_NOTE, RATIO_NOTE, ci_excludes, ratio

    notes = set()
    for o in result.outcomes:
        js = o.evaluation.to_json()
        table = Table(
            title=f"{o.sampler}: NFE {o.nfe}, {o.seconds:.2f} s sampling", title_justify="left"
        )
        table.add_column("metric")
        for col in ("value", "95% CI", "floor", "value / floor"):
            table.add_column(col, justify="right")
        for name, v in js.items():
            if name == "_skipped":
                continue
            r = ratio(v["value"], v["floor"])
            if r is None and v["value"] is not None and v["floor"] is not None:
                shown = "—*"
                notes.add(RATIO_NOTE)
            else:
                shown = "—" if r is None else f"{r:.2f}×"
            ci = "—" if v["ci"] is None else f"[{v['ci'][0]:.4g}, {v['ci'][1]:.4g}]"
            if ci_excludes(v["value"], v["ci"]):
                ci += " †"
                notes.add(CI_EXCLUDES_NOTE)
            table.add_row(name, _g(v["value"]), ci, _g(v["floor"]), shown)
        out.print(table)
    for note in sorted(notes):
        out.print(note, highlight=False, style="dim", soft_wrap=True)
    if since is not None and result.run_dir is not None:
        _wrote([result.run_dir], since)
    out.print(
        f"training {result.train_seconds:.1f} s, whole run {result.seconds:.1f} s",
        highlight=False,
    )
    for o in result.outcomes:
        w2 = o.evaluation.to_json().get("w2")
        if w2 is not None and w2["value"] is not None:
            r = ratio(w2["value"], w2["floor"])
            at = "" if r is None else f" = {r:.2f}× its floor {w2['floor']:.4g}"
            out.print(
                f"result: {o.sampler} (NFE {o.nfe}): W2 {w2['value']:.4g}{at}",
                highlight=False,
                style="bold",
                soft_wrap=True,
            )
    d = getattr(result, "diagnostics", None)
    if d and d.get("fpe_relative_residual"):
        rel = d["fpe_relative_residual"]
        out.print(
            f"score Fokker–Planck relative residual {rel['value']:.3g} "
            f"[{rel['ci'][0]:.3g}, {rel['ci'][1]:.3g}] (0 = exact score, 1 = the equation's "
            "two sides unrelated)",
            highlight=False,
            soft_wrap=True,
        )
    out.print(f"report: {result.report}", highlight=False, markup=False, soft_wrap=True)


def _g(v) -> str:
    return "—" if v is None else f"{v:.4g}"


@app.command()
@_friendly
def quickstart(
    out_dir: Annotated[
        Path, typer.Option("--out", metavar="DIR", help="Directory for the run.")
    ] = Path("scorelab-quickstart"),
    seed: SeedOption = None,
    device: DeviceOption = None,
    progress: ProgressOption = True,
):
    """The main job on embedded defaults: train a small MLP on a 2-D Gaussian mixture (VP,
    cosine schedule), sample with two samplers, evaluate against the exact target, report."""
    from . import quickstart as qs

    since = time.time()
    result = qs.run(
        out_dir,
        progress=_interactive(progress),
        log=_say,
        overrides=_sets(None, seed, **{"train.device": device}),
    )
    _print_run_summary(result, since)


@app.command()
@_friendly
def diagnose(
    source: Annotated[
        Path,
        typer.Argument(
            metavar="CONFIG|RUN",
            help="A YAML config (its score) or a run directory (its checkpoint).",
        ),
    ],
    json_out: Annotated[
        bool, typer.Option("--json", metavar="", help="Print JSON instead of a table.")
    ] = False,
    set_: SetOption = None,
    n: Annotated[int, typer.Option(help="Points per time for the FPE residual.")] = 512,
    seed: SeedOption = None,
    progress: ProgressOption = True,
):
    """Paper D's diagnostics: FPE residual (mean and profile over t), conservativity, PF-ODE
    NLL on target samples and, where the target has a density, the exact NLL."""
    import torch

    from .diagnostics import diagnose as run_diagnose

    if source.is_dir():
        from .models import load_score_model
        from .training import CHECKPOINT

        cfg = load_config(source / "config.yaml", _sets(set_, seed))
        target, process = build(cfg)
        score = load_score_model(source / CHECKPOINT, process, dtype=torch.float64)
        what = f"the trained network of {source}"
    else:
        from .config import build_score

        cfg = load_config(source, _sets(set_, seed))
        target, process = build(cfg)
        score = build_score(cfg, target, process)
        what = (
            f"the exact score of the target '{cfg.target.kind}'"
            if cfg.score.kind == "exact"
            else f"the trained network of {cfg.score.path}"
        )
    if n < 2:
        raise InvalidParameter("--n", "must be ≥ 2", n)
    if not json_out:  # --json: stdout and stderr clean
        _say(f"score: {what}")
    d = run_diagnose(
        score,
        target,
        process,
        n_residual=n,
        seed=cfg.seed,
        progress=_interactive(progress and not json_out),
    )
    if json_out:
        print(json.dumps(d, indent=2, ensure_ascii=False))
        return
    table = Table(title="Fokker–Planck diagnostics", title_justify="left")
    for col in ("diagnostic", "value", "95% CI"):
        table.add_column(col, justify="right")
    for key, label in (
        ("fpe_relative_residual", "FPE relative residual (0 exact, 1 unrelated)"),
        ("fpe_residual", "FPE residual E‖ε‖²/D (units of ∂ₜs)"),
    ):
        ci = d[key]["ci"]
        table.add_row(label, _g(d[key]["value"]), f"[{ci[0]:.3g}, {ci[1]:.3g}]")
    table.add_row("non-conservativity", _g(d["conservativity"]["value"]), "—")
    ci = d["nll"]["ci"]
    table.add_row(
        f"PF-ODE NLL (nats, NFE {d['nll']['nfe']})",
        _g(d["nll"]["value"]),
        f"[{ci[0]:.4g}, {ci[1]:.4g}]",
    )
    if d["nll_exact"] is not None:
        table.add_row(f"exact NLL of {d['nll_exact']['of']}", _g(d["nll_exact"]["value"]), "—")
    out.print(table)


def _study_tables(out_dir: Path, write: Path | None, full: Path | None) -> None:
    """`scorelab study table`: the per-study summary into WRITE's marked region and the table
    of every claim into FULL's; both printed when neither file is given."""
    from .study import (
        SUMMARY_END,
        SUMMARY_START,
        claims_summary,
        claims_table,
        write_claims_table,
    )

    table = claims_table(out_dir)
    if write is None and full is None:
        print(claims_summary(out_dir) + "\n\n" + table)
        return
    if write is not None:
        summary = claims_summary(out_dir, link_from=write.resolve().parent)
        write_claims_table(write, summary, start=SUMMARY_START, end=SUMMARY_END)
        out.print(f"claims summary written into {write}", highlight=False)
    if full is not None:
        write_claims_table(full, table, option="--full")
        out.print(f"claims table written into {full}", highlight=False)


@app.command()
@_friendly
def study(
    name: Annotated[
        str,
        typer.Argument(
            help="A registered study (noise-schedule, dimension-free, design-space, "
            "fokker-planck, manifold; `scorelab list study`), all, or table (OUT/*/results.json "
            "as markdown: a summary per study, and every claim)."
        ),
    ],
    quick: Annotated[bool, typer.Option("--quick", help="CI-sized mode (≤ 2 min each).")] = False,
    out_dir: Annotated[Path, typer.Option("--out", help="Writes into OUT/NAME/.")] = Path(
        "studies"
    ),
    seed: Annotated[int, typer.Option(help="The first seed (seeds are SEED, SEED+1, …).")] = 0,
    seeds: Annotated[
        int | None, typer.Option(help="Seeds per claim (default 2 quick, 5 full; ≥ 2).")
    ] = None,
    executor: Annotated[str, typer.Option(help="local (process pool) or dask.")] = "local",
    workers: Annotated[int, typer.Option(help="Worker processes for the study's cells.")] = 1,
    address: Annotated[
        str | None, typer.Option(help="A running Dask scheduler, e.g. tcp://host:8786.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    write: Annotated[
        Path | None,
        typer.Option(
            help="With NAME 'table': write the per-study summary into this file's marked "
            "region (the README)."
        ),
    ] = None,
    full: Annotated[
        Path | None,
        typer.Option(
            help="With NAME 'table': write the table of every claim into this file's marked "
            "region (docs/studies/claims.md)."
        ),
    ] = None,
):
    """Reproduce a paper's claims with paired verdicts over seeds: results.json, PNG figures
    and report.html in OUT/NAME/ (cells cached: an interrupted study resumes)."""
    from .study import run_study

    if name == "table":  # every study's results.json: the README's summary, claims.md's table
        _study_tables(out_dir, write, full)
        return
    if executor not in ("local", "dask"):
        raise InvalidParameter("--executor", "is not an executor", executor, "local, dask")
    if workers < 1:
        raise InvalidParameter("--workers", "must be ≥ 1", workers)
    since = time.time()
    done = run_study(
        name,
        out_dir,
        quick=quick,
        seed=seed,
        log=_say,
        progress=_interactive(progress),
        seeds=seeds,
        executor=executor,
        workers=workers,
        address=address,
    )
    from .verdicts import VERDICTS

    marks = {
        "holds": "[green]✓ holds[/]",
        "below margin": "[blue]≈ below margin[/]",
        "fails": "[red]✗ fails[/]",
    }
    for s in done:
        # one line per claim (verdict, id, effect, seeds), its statement below: readable at
        # any width, where a table squeezed the statements into a column of single words
        out.print(f"[bold]{escape(s.name)}: {escape(s.title)}[/]", highlight=False)
        for c in s.claims:
            if c.effect is None:
                eff = "—"
            elif c.exact:
                eff = f"{c.effect.value:.3g} (exact)"
            else:
                eff = f"{c.effect.value:.3g} [{c.effect.ci[0]:.3g}, {c.effect.ci[1]:.3g}]"
            over = "" if c.exact else f" over {c.seeds} seeds"
            if c.margin is not None:
                over += f", margin {c.margin.value:.3g}"
            claim = c.statement if len(c.statement) <= 150 else c.statement[:149] + "…"
            verdict = marks.get(c.verdict, f"[yellow]? {escape(c.verdict)}[/]")
            out.print(
                f"{verdict}  [bold]{escape(c.id)}[/]  effect {eff}{over}",
                highlight=False,
                soft_wrap=True,
            )
            out.print(Padding(Text(claim, style="dim"), (0, 0, 0, 4)))
        _wrote([s.out_dir], since)
        counts = {v: sum(c.verdict == v for c in s.claims) for v in VERDICTS}
        out.print(
            f"result: {s.name}: {counts['holds']} of {len(s.claims)} claims hold, "
            f"{counts['below margin']} below margin, {counts['fails']} fail, "
            f"{counts['inconclusive']} inconclusive"
            + (" (quick mode: may differ from the full run)" if s.quick else ""),
            highlight=False,
            style="bold",
            soft_wrap=True,
        )
        out.print(f"report: {s.out_dir / 'report.html'}", highlight=False, soft_wrap=True)


@app.command()
@_friendly
def sweep(
    config: Annotated[Path, typer.Argument(help="YAML config file: the base of every cell.")],
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid",
            help="KEY=V1,V2,... or KEY=START:STOP:STEP (repeatable; the cells are the product).",
        ),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Seeds 0..K−1 for every grid point.")] = 1,
    seed_list: Annotated[
        str | None, typer.Option(help="Explicit seeds, comma-separated (instead of --seeds).")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="The sweep's directory.")] = Path("sweep"),
    job: Annotated[
        str,
        typer.Option(help="run (train+sample+evaluate), sample, bound, or budget (train+budget)."),
    ] = "sample",
    executor: Annotated[str, typer.Option(help="local (process pool) or dask.")] = "local",
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default: the cores).")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="A running Dask scheduler, e.g. tcp://host:8786.")
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Re-run cells that failed before.")
    ] = False,
    gpus: Annotated[
        bool, typer.Option("--gpus", help="Ask Dask for one GPU per cell (resources GPU=1).")
    ] = False,
    set_: SetOption = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
):
    """Run a config over grids of values × seeds as cached cells (resumable); write
    summary.csv, summary.json and report.html."""
    from .config import load_yaml
    from .sweep import cells as make_cells
    from .sweep import parse_grid, run_sweep

    base = load_yaml(config)
    grids = [parse_grid(g) for g in grid or []]
    if seed_list is not None:
        try:
            seed_values = [int(s) for s in seed_list.split(",") if s.strip()]
        except ValueError:
            raise InvalidParameter(
                "--seed-list", "must be integers, comma-separated", seed_list
            ) from None
    else:
        if seeds < 1:
            raise InvalidParameter("--seeds", "must be ≥ 1", seeds)
        seed_values = list(range(seeds))
    todo = make_cells(base, grids, seed_values, job, set_ or [])
    spec = {
        "config": str(config),
        "job": job,
        "grids": {k: v for k, v in grids},
        "seeds": seed_values,
        "set": list(set_ or []),
    }
    result = run_sweep(
        todo,
        out_dir,
        executor=executor,
        workers=workers,
        address=address,
        retry_failed=retry_failed,
        gpus=gpus,
        progress=_interactive(progress),
        log=lambda m: err.print(m, highlight=False, markup=False),
        spec=spec,
    )
    counts = result.counts()
    out.print(
        f"{len(todo)} cells: {counts.get('done', 0)} done, {counts.get('failed', 0)} failed "
        f"({result.skipped} finished earlier) in {result.seconds:.1f} s → "
        f"{out_dir / 'summary.csv'}, {out_dir / 'report.html'}",
        highlight=False,
    )
    if counts.get("failed"):
        raise typer.Exit(1)


def _key_values(items: list[str] | None, option: str) -> dict:
    """KEY=V pairs (V read as YAML: numbers, true/false, strings, lists)."""
    outd = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidParameter(option, "must look like KEY=VALUE", item)
        from .safeyaml import safe_load

        outd[key.strip()] = safe_load(value, f"{option} {key.strip()}")
    return outd


@app.command()
@_friendly
def audit(
    scheduler: Annotated[
        str,
        typer.Argument(
            help="diffusers:CLASS (e.g. diffusers:DDIMScheduler), diffusers:all, or "
            "kdiffusion:sample_X."
        ),
    ],
    target: Annotated[
        str,
        typer.Option(help="Target: a config file, or inline YAML '{kind: gaussian, dim: 2}'."),
    ],
    steps: Annotated[
        str, typer.Option(help="Comma-separated step counts (the ladder).")
    ] = "5,10,20,40,80,160,320",
    scheduler_config: Annotated[
        list[str] | None,
        typer.Option("--scheduler-config", help="KEY=V for the scheduler's config (repeatable)."),
    ] = None,
    step_kwarg: Annotated[
        list[str] | None,
        typer.Option(
            "--step-kwarg", help="KEY=V passed to scheduler.step, e.g. eta=1 (repeatable)."
        ),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the certificate as JSON instead of a summary.")
    ] = False,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write certificate.json and certificate.html here."),
    ] = None,
    n: Annotated[
        int, typer.Option(help="Samples per step count (targets with no closed form).")
    ] = 2000,
    samplers: Annotated[
        str | None,
        typer.Option(
            help="scorelab samplers to run beside it on its noise levels, comma-separated "
            "(default: none; any of scorelab.audit.comparable())."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    workers: Annotated[
        int, typer.Option(help="diffusers:all: worker processes for the configurations.")
    ] = 1,
    executor: Annotated[
        str, typer.Option(help="diffusers:all: local (process pool) or dask.")
    ] = "local",
):
    """The conformance certificate of a diffusers scheduler configuration, run with the
    target's exact model: exact KL and W2 against the number of steps (closed form on Gaussian
    targets, by samples otherwise), the fitted order beside the nominal one, the limit error,
    and checks (docs/audit.md). diffusers:all certifies every sampling class × its main
    options (a table: matrix.csv, matrix.html); kdiffusion:sample_X a k-diffusion sampler."""
    from . import threads
    from .audit import certify, parse_steps
    from .audit import report as audit_report
    from .config import build_target

    counts = parse_steps(steps)
    if n < 2:
        raise InvalidParameter("--n", "must be an integer ≥ 2", n)
    tgt = build_target(_target_mapping(target), seed=seed)
    # a certificate's tensors are a handful of probe rows: one thread unless asked (--threads)
    threads.apply(event_shape=tgt.event_shape)
    config = _key_values(scheduler_config, "--scheduler-config")
    kwargs = _key_values(step_kwarg, "--step-kwarg")
    if scheduler == "diffusers:all":
        from .audit import matrix

        matrix.command(
            _target_mapping(target), counts, out_dir, workers=workers, executor=executor,
            json_out=json_out, console=out, seed=seed,
        )  # fmt: skip
        return
    if scheduler.startswith("kdiffusion:"):
        from .audit.kdiffusion import certify_kdiffusion

        if config:
            raise InvalidParameter(
                "--scheduler-config",
                "does not apply to a k-diffusion sampler (--step-kwarg)",
                config,
            )
        cert = certify_kdiffusion(
            scheduler, tgt, steps=counts, sampler_kwargs=kwargs, n=n, seed=seed
        )
    else:
        cert = certify(
            scheduler,
            tgt,
            scheduler_config=config,
            step_kwargs=kwargs,
            steps=counts,
            n=n,
            seed=seed,
        )
    extra = {}
    if samplers:
        extra["beside"] = _audit_beside(scheduler, tgt, counts, config, kwargs, samplers, n, seed)
    data = {**cert.to_json(), **extra}
    if out_dir is not None:
        written = audit_report.write(cert, out_dir, extra)
    if json_out:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return
    audit_report.show(cert, out)
    for name, rows in extra.get("beside", {}).items():
        line = ", ".join(f"N={r['steps']}: W2 {_g(r['w2'])}" for r in rows)
        out.print(f"scorelab {name} on its levels: {line}", highlight=False)
    if out_dir is not None:
        out.print(f"wrote {written[0]} and {written[1]}", highlight=False)


def _audit_beside(scheduler, tgt, counts, config, kwargs, samplers, n, seed) -> dict:
    """scorelab's samplers on the scheduler's own noise levels (``audit.compare``)."""
    from .audit import compare

    names = [v.strip() for v in samplers.split(",") if v.strip() not in ("", "none")]
    result = compare.audit(
        scheduler, tgt, counts, scheduler_config=config, step_kwargs=kwargs,
        samplers=names, n_mc=n, seed=seed,
    )  # fmt: skip
    return {k: [r.to_json() for r in v] for k, v in result.scorelab.items()}


@app.command()
@_friendly
def budget(
    source: Annotated[
        Path,
        typer.Argument(
            metavar="RUN_DIR|CONFIG",
            help="A run directory (its trained model) or a YAML config (its score: the "
            "target's exact one unless score.kind is checkpoint).",
        ),
    ],
    order: Annotated[
        str | None,
        typer.Option(
            metavar="PARTS",
            help="The order of the swaps (default: score,discretisation,prior,early_stopping).",
        ),
    ] = None,
    n: Annotated[
        int | None,
        typer.Option(help="Samples per arm (default: sampler.n, at most run.max_points)."),
    ] = None,
    seed: SeedOption = None,
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="FILE.json",
            help="Where to write the budget (default: RUN_DIR/budget.json, or budget.json for "
            "a config); the figure is written beside it (.png).",
        ),
    ] = None,
    refine: Annotated[
        int, typer.Option(help="How many times finer the resolved reference's grid is (≥ 2).")
    ] = 8,
    interactions: Annotated[
        bool,
        typer.Option(
            "--interactions",
            help="Also run the reversed order and report how much each part moves "
            "(always done in closed form).",
        ),
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", metavar="", help="Print JSON instead of tables.")
    ] = False,
    set_: SetOption = None,
):
    """The error budget of a run: its measured error split into score, discretisation, prior
    and early-stopping parts, beside each bound's matching term; budget.json and budget.png.

    Each part is measured by swapping one piece for its exact counterpart with every random
    draw held fixed (W2, and KL where defined), with a paired 95 % interval; in closed form for
    a Gaussian target with its exact score."""
    _budget(source, order, n, seed, out_path, refine, interactions, json_out, set_)


def _budget(source, order, n, seed, out_path, refine, interactions, json_out, set_) -> None:
    """`scorelab budget`: options checked first (each named), then the budget, its files and
    its tables."""
    from .budget import parse_order
    from .budget.samples import check_n
    from .budget.source import BUDGET_JSON, budget_of, load, write
    from .rundir import check_output_file
    from .seeding import check_seed

    chosen = parse_order(order, "--order")
    if n is not None:
        check_n(n, "--n")
    if seed is not None:
        check_seed(seed, "--seed")
    if refine < 2:
        raise InvalidParameter("--refine", "must be an integer ≥ 2", refine)
    cfg, target, process, score, bounds = load(source, set_ or [])
    if out_path is None:
        out_path = (source / BUDGET_JSON) if source.is_dir() else Path(BUDGET_JSON)
    check_output_file(out_path, "--out", ".json")
    result = budget_of(
        cfg,
        target,
        process,
        score,
        n=n,
        seed=seed,
        order=chosen,
        refine=refine,
        bounds=bounds,
        interactions=True if interactions else None,
        log=(lambda msg: None) if json_out else _say,
    )
    data = result.to_json()
    json_path, png = write(result, out_path)
    if json_out:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return
    _print_budget(data)
    _wrote([json_path, png])


def _print_budget(data: dict) -> None:
    """One table per metric: each part with its interval, beside each bound's term."""
    from .budget.chain import LABELS, PARTS, REMAINDER

    closed = data["method"] == "closed_form"
    st = data["settings"]
    out.print(
        f"{st['sampler']}, {st['steps']} steps ({st['grid']} grid) to t_min = {st['t_min']:.3g}"
        + ("" if closed else f", n = {st['n']}")
        + f", seed {st['seed']}: "
        + ("closed form" if closed else f"on samples ({st['why_not_closed_form']})"),
        highlight=False,
        soft_wrap=True,
    )
    for metric, m in data["metrics"].items():
        table = Table(title=f"error budget: {m['label']}", title_justify="left")
        table.add_column("part")
        table.add_column("measured", justify="right")
        if not closed:
            table.add_column("95 % CI", justify="right")
        rows_b = [r for r in data["bounds"] if r["metric"] == metric]
        for r in rows_b:
            table.add_column(f"{r['title']}", justify="right")
            table.add_column("bound / measured", justify="right")
        for part in (*PARTS, REMAINDER, "total"):
            e = m["total"] if part == "total" else m["parts"][part]
            cells = [LABELS.get(part, part) + (" *" if part in data["folded"] else "")]
            cells.append(_g(e["value"]))
            if not closed:
                ci = e["ci"]
                cells.append("—" if ci is None else f"[{ci[0]:.3g}, {ci[1]:.3g}]")
            for r in rows_b:
                c = r["total"] if part == "total" else r["parts"].get(part)
                if c is None:  # the remainder: no bound has a term for it
                    cells += ["", ""]
                    continue
                cells += [_g(c["term"]), "—" if c["ratio"] is None else f"{c['ratio']:.3g}×"]
            table.add_row(*cells)
        out.print(table)
    for part, why in data["folded"].items():
        out.print(f"* {LABELS[part]}: not swapped — {why}", highlight=False, soft_wrap=True)
    res = (data.get("reference") or {}).get("residual")
    if res:
        txt = ", ".join(f"{k} {_g(v['value'])}" for k, v in res.items())
        out.print(f"resolved reference's residual: {txt}", highlight=False, soft_wrap=True)
    for metric, per in (data.get("interactions") or {}).items():
        txt = ", ".join(f"{LABELS[p]} {_g(v)}" for p, v in per.items())
        out.print(f"interactions ({metric}): {txt}", highlight=False, soft_wrap=True)
    for note in data["notes"]:
        out.print(f"note: {note}", highlight=False, soft_wrap=True)


def main() -> None:
    args = sys.argv[1:]
    end = args.index("--") if "--" in args else len(args)
    if "--allow-code" in args[:end]:  # a global option, accepted anywhere on the line
        args.remove("--allow-code")
        args.insert(0, "--allow-code")
    app(args=args, prog_name="scorelab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
