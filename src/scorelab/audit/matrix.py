"""The conformance matrix (``scorelab audit diffusers:all``): every scheduler class the
installed diffusers exports that samples, × its main options, one certificate per
configuration, run as cells on the sweep engine; a table (CSV, self-contained HTML, and a
terminal table) of which configurations pass, which checks fail for the others, and the
fitted order of accuracy beside the nominal one.

The classes are found in diffusers' exports, not in a list kept here: a class named
``*Scheduler`` with ``set_timesteps`` and ``step(model_output, timestep, sample, …)`` that
builds with its defaults and steps a float latent. Every other exported scheduler class is
listed in the table's "excluded" part with the reason. Inverse schedulers (``*Inverse*``) are
certified as maps from the target law to the prior law.

The options are read from each class: an option of ``MAIN_OPTIONS`` present in the class's
``__init__`` is varied one at a time away from its default — a boolean to its negation, a
string through the values of its ``Literal[…]`` annotation (``DOMAINS`` where a release does
not annotate it), a number through ``DOMAINS``. Each configuration is the class's default
plus one changed option, so a failing row names the option that breaks it.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidParameter
from .ladder import DEFAULT_STEPS as DEFAULT_LADDER

# the options varied by the matrix, in the order they are tried. prediction_type is not among
# them: every certificate drives each prediction type the class accepts with the exact model
# of that type and checks that the laws agree (its prediction_types check), so a row per type
# would repeat the same certificate
MAIN_OPTIONS = (
    "timestep_spacing",
    "use_karras_sigmas",
    "use_exponential_sigmas",
    "use_beta_sigmas",
    "final_sigmas_type",
    "solver_order",
    "lower_order_final",
    "algorithm_type",
    "solver_type",
    "rescale_betas_zero_snr",
    "shift",
    "sigma_schedule",
    "stochastic_sampling",
)
# values of an option where the class's signature does not list them (no Literal annotation,
# or a number); only values other than the class's default are tried
DOMAINS = {
    "timestep_spacing": ("linspace", "leading", "trailing"),
    "final_sigmas_type": ("zero", "sigma_min"),
    "prediction_type": ("epsilon", "v_prediction", "sample"),
    "solver_order": (1, 2, 3),
    "shift": (1.0, 3.0),
}
# prediction types an exact model can be given in; others (a flow velocity on a ᾱ table,
# learned variances) need a configuration the matrix does not build
DRIVEN_PREDICTIONS = frozenset(DOMAINS["prediction_type"])
# options whose other values need more than one change to be meaningful
NEEDS_ANOTHER_OPTION = {"algorithm_type": {"deis", "data_prediction", "noise_prediction"}}
# a value that the class accepts only together with another option's value (DPM-Solver's
# noise-prediction algorithms refuse the default final σ of 0): the companion is set too,
# where the class has that option
COMPANIONS = {
    ("algorithm_type", "dpmsolver"): {"final_sigmas_type": "sigma_min"},
    ("algorithm_type", "sde-dpmsolver"): {"final_sigmas_type": "sigma_min"},
}
FLOAT_LATENT = (1, 4, 8, 8)  # what a pipeline's step sees: a float image latent


@dataclass
class Excluded:
    """An exported scheduler class that the matrix does not certify, and why."""

    name: str
    reason: str


def _step_parameters(cls) -> list[inspect.Parameter]:
    return list(inspect.signature(cls.step).parameters.values())[1:]


def _required(params) -> list[str]:
    """The parameters among ``params`` that have no default (``*args``/``**kw`` aside)."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in params if p.default is inspect.Parameter.empty and p.kind in named]


def _structural_reason(name: str, cls) -> str | None:
    """Why ``cls`` is not a sampler the matrix can drive, from its API alone (None: it is)."""
    if not isinstance(cls, type):
        return "not a class"
    for attr in ("set_timesteps", "step"):
        if not callable(getattr(cls, attr, None)):
            return f"has no {attr}()"
    params = _step_parameters(cls)
    first = [p.name for p in params[:3]]
    if first != ["model_output", "timestep", "sample"]:
        return f"step({', '.join(first)}, …) is not step(model_output, timestep, sample, …)"
    needed = _required(params[3:])
    if needed:
        return f"step() needs {', '.join(needed)} (not a sampler of a noise law alone)"
    needed = _required(list(inspect.signature(cls.__init__).parameters.values())[1:])
    if needed:
        return f"needs {', '.join(needed)} to be built"
    return None


def _steps_a_latent(cls) -> str | None:
    """None when the class, built with its defaults, takes four steps on a float latent with
    a zero model output (what any sampler of a Gaussian law does); else the reason."""
    import torch

    try:
        sch = cls()
        sch.set_timesteps(4)
        x = torch.zeros(FLOAT_LATENT)
        for t in list(sch.timesteps)[:4]:
            out = sch.step(torch.zeros(FLOAT_LATENT), t, x)
            x = out[0] if isinstance(out, tuple) else out.prev_sample
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            return "step() does not return a float sample"
    except ImportError as exc:
        return f"needs an optional package: {str(exc).strip().splitlines()[0]}"
    except Exception as exc:
        return f"does not step a float latent with its defaults ({type(exc).__name__}: {exc})"[:240]
    return None


def exported_schedulers(module=None) -> tuple[list[str], list[Excluded]]:
    """(the sampling scheduler classes ``module`` — diffusers — exports, the other exported
    ``*Scheduler`` classes with why they are left out), each sorted by name."""
    if module is None:
        import diffusers as module
    found, excluded = [], []
    for name in sorted(n for n in dir(module) if n.endswith("Scheduler")):
        if name.startswith("Flax"):
            excluded.append(Excluded(name, "a JAX (Flax) class"))
            continue
        try:
            cls = getattr(module, name)
            reason = _structural_reason(name, cls) or _steps_a_latent(cls)
        except ImportError as exc:  # a class whose optional dependency is missing
            reason = f"needs an optional package: {str(exc).strip().splitlines()[0]}"
        if reason is None:
            found.append(name)
        else:
            excluded.append(Excluded(name, reason))
    return found, excluded


def _literal_values(annotation) -> tuple | None:
    """The values of a ``Literal[…]`` annotation (also inside ``Optional``), else None."""
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    for arg in typing.get_args(annotation):
        values = _literal_values(arg)
        if values is not None:
            return values
    return None


def option_values(cls, options: Sequence[str] = MAIN_OPTIONS) -> dict[str, list]:
    """For each of ``options`` in the class's ``__init__``: the values other than its
    default that the matrix tries (read from the signature; ``DOMAINS`` where it is silent)."""
    try:  # annotations written as strings (``from __future__ import annotations``)
        params = inspect.signature(cls.__init__, eval_str=True).parameters
    except Exception:
        params = inspect.signature(cls.__init__).parameters
    out = {}
    for opt in options:
        p = params.get(opt)
        if p is None or p.default is inspect.Parameter.empty:
            continue
        default = p.default
        if isinstance(default, bool):
            values = [not default]
        else:
            domain = _literal_values(p.annotation) or DOMAINS.get(opt, ())
            values = [v for v in domain if v != default and v is not None]
        if opt == "prediction_type":
            values = [v for v in values if v in DRIVEN_PREDICTIONS]
        values = [v for v in values if v not in NEEDS_ANOTHER_OPTION.get(opt, ())]
        if values:
            out[opt] = values
    return out


def configurations(cls, options: Sequence[str] = MAIN_OPTIONS) -> list[dict]:
    """The default configuration ({}) and each one-option change of it (with its companion
    option where the class needs one, ``COMPANIONS``)."""
    params = inspect.signature(cls.__init__).parameters
    configs = [{}]
    for opt, values in option_values(cls, options).items():
        for v in values:
            extra = COMPANIONS.get((opt, v), {})
            configs.append({opt: v, **{k: w for k, w in extra.items() if k in params}})
    return configs


def label(config: dict) -> str:
    """How the table names a configuration: "default" or "option=value"."""
    if not config:
        return "default"
    return ", ".join(f"{k}={v}" for k, v in config.items())


# --------------------------------------------------------------------------------------------
# the cells: one certificate per configuration
# --------------------------------------------------------------------------------------------

VERDICTS = ("pass", "fail", "refused", "not certified", "error")
CSV_COLUMNS = (
    "scheduler",
    "configuration",
    "verdict",
    "failed_checks",
    "fitted_order",
    "fitted_order_ci",
    "nominal_order",
    "limit_kl",
    "limit_w2",
    "kl_at_most_steps",
    "most_steps",
    "seconds",
    "details",
)


@contextlib.contextmanager
def quiet_diffusers():
    """diffusers warns (its logger and Python warnings) on every configuration it adjusts
    and every deprecated call; the certificate says what matters, so they are silenced while
    the matrix runs, and restored after."""
    import logging
    import warnings

    logger = logging.getLogger("diffusers")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def certify_cell(scheduler: str, config: dict, target: dict, steps, seed: int, diffusers: str):
    """One configuration's row (a JSON-able dict): the certificate's verdict and numbers.
    Never raises: a configuration the class refuses, or an error of the audit, is the row's
    verdict. ``diffusers`` (the installed version) keys the cell's cache."""
    import time

    from ..config import build_target
    from ..errors import ScorelabError
    from .certify import certify

    t0 = time.perf_counter()
    row = {"scheduler": scheduler, "configuration": label(config), "config": config}
    tgt = build_target(target, seed=seed)  # validated before the cells: not a finding
    ladder = {} if steps is None else {"steps": steps}
    try:
        with quiet_diffusers():
            cert = certify(
                f"diffusers:{scheduler}", tgt, scheduler_config=config, seed=seed, **ladder
            )
        row.update(_summary(cert.to_json()))
    except ScorelabError as exc:  # the class refuses this configuration (a documented value)
        row.update(verdict="refused", details=str(exc))
    except Exception as exc:  # an error of the audit itself: shown, never hidden
        row.update(verdict="error", details=f"{type(exc).__name__}: {exc}")
    row["seconds"] = time.perf_counter() - t0
    return row


def _summary(cert: dict) -> dict:
    """The matrix's columns from a certificate's JSON."""
    failed = [c for c in cert["checks"] if c["passed"] is False]
    if cert["passed"]:
        verdict = "pass"
    elif failed:
        verdict = "fail"
    else:
        verdict = "not certified"
    fit = cert.get("fitted_order") or {}
    measured = [r for r in cert["ladder"] if r.get("kl") is not None]
    last = measured[-1] if measured else {}
    limit = cert.get("limit_error") or {}
    return {
        "verdict": verdict,
        "failed_checks": [c["id"] for c in failed],
        "details": "; ".join(f"{c['id']}: {c['detail']}" for c in failed),
        "fitted_order": fit.get("value"),
        "fitted_order_ci": fit.get("ci"),
        "nominal_order": cert.get("nominal_order"),
        "limit_kl": limit.get("kl"),
        "limit_w2": limit.get("w2"),
        "kl_at_most_steps": last.get("kl"),
        "most_steps": last.get("steps"),
        "checks": {c["id"]: c["passed"] for c in cert["checks"]},
    }


# --------------------------------------------------------------------------------------------
# the matrix: discovery, cells on the sweep engine, the table
# --------------------------------------------------------------------------------------------


@dataclass
class Matrix:
    """The rows (one per configuration, in class then option order), the exported classes
    left out and why, the installed diffusers version and the wall time."""

    rows: list[dict]
    excluded: list[Excluded]
    diffusers: str
    target: dict
    seconds: float = 0.0

    @classmethod
    def from_json(cls, data: dict) -> Matrix:
        """The matrix written as ``matrix.json``."""
        excluded = [Excluded(e["scheduler"], e["reason"]) for e in data["excluded"]]
        return cls(data["rows"], excluded, data["diffusers"], data["target"], data["seconds"])

    def counts(self) -> dict[str, int]:
        return {v: sum(r["verdict"] == v for r in self.rows) for v in VERDICTS}

    def to_json(self) -> dict:
        return {
            "diffusers": self.diffusers,
            "target": self.target,
            "counts": self.counts(),
            "seconds": self.seconds,
            "rows": self.rows,
            "excluded": [{"scheduler": e.name, "reason": e.reason} for e in self.excluded],
        }


def matrix_items(
    target: dict,
    *,
    steps: Sequence[int] | None = None,
    classes: Sequence[str] | None = None,
    options: Sequence[str] = MAIN_OPTIONS,
    seed: int = 0,
) -> tuple[list[dict], list[Excluded]]:
    """The cells' arguments (one per configuration) and the classes left out."""
    import diffusers

    found, excluded = exported_schedulers(diffusers)
    if classes is not None:
        unknown = [c for c in classes if c not in found]
        if unknown:
            raise InvalidParameter(
                "classes", "are sampling schedulers of this diffusers", unknown, ", ".join(found)
            )
        found = list(classes)
    items = [
        {
            "scheduler": name,
            "config": config,
            "target": target,
            "steps": None if steps is None else [int(n) for n in steps],
            "seed": seed,
            "diffusers": diffusers.__version__,
        }
        for name in found
        for config in configurations(getattr(diffusers, name), options)
    ]
    return items, excluded


def run_matrix(
    target: dict,
    out_dir: str | Path,
    *,
    steps: Sequence[int] | None = None,
    classes: Sequence[str] | None = None,
    options: Sequence[str] = MAIN_OPTIONS,
    seed: int = 0,
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
    progress: bool = False,
    log: Callable[[str], None] = lambda msg: None,
) -> Matrix:
    """Certify every configuration as a cell of the sweep engine (cached in
    ``out_dir/cells``: a rerun computes only what is missing) and write ``matrix.csv``,
    ``matrix.html`` and ``matrix.json`` into ``out_dir``."""
    import time

    import diffusers

    from ..config import build_target
    from ..sweep.mapping import map_cells

    t0 = time.perf_counter()
    build_target(target, seed=seed)  # a bad target is refused here, not in every cell
    with quiet_diffusers():
        items, excluded = matrix_items(
            target, steps=steps, classes=classes, options=options, seed=seed
        )
    log(f"{len(items)} configurations of {len({i['scheduler'] for i in items})} classes")
    rows = map_cells(
        certify_cell,
        items,
        out_dir,
        executor=executor,
        workers=workers,
        address=address,
        progress=progress,
        log=log,
    )
    matrix = Matrix(rows, excluded, diffusers.__version__, target, time.perf_counter() - t0)
    write(matrix, out_dir)
    return matrix


def write(matrix: Matrix, out_dir: str | Path) -> dict[str, Path]:
    """``matrix.csv``, ``matrix.html`` and ``matrix.json`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "matrix.csv", "html": out / "matrix.html", "json": out / "matrix.json"}
    write_csv(matrix, paths["csv"])
    paths["html"].write_text(render_html(matrix), encoding="utf-8")
    paths["json"].write_text(
        json.dumps(matrix.to_json(), indent=2, ensure_ascii=False, default=str), encoding="utf-8"
    )
    return paths


def _cell(row: dict, column: str) -> str:
    v = row.get(column)
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return " ".join(_cell({"v": x}, "v") for x in v)
    return str(v)


def write_csv(matrix: Matrix, path: Path) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for row in matrix.rows:
            w.writerow([_cell(row, c) for c in CSV_COLUMNS])
        for e in matrix.excluded:
            w.writerow([e.name, "", "excluded", "", "", "", "", "", "", "", "", "", e.reason])


def _order_text(row: dict) -> str:
    fit, ci, nominal = row.get("fitted_order"), row.get("fitted_order_ci"), row.get("nominal_order")
    text = "—" if fit is None else f"{fit:.2f}"
    if fit is not None and ci:
        text += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
    return f"{text} / {'—' if nominal is None else nominal}"


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;font-size:13px}"
    "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}"
    "th{background:#f0f0f0}.pass{background:#e3f5e1}.fail{background:#fbe3e3}"
    ".refused,.error{background:#fff1d6}.detail{max-width:46em;font-size:12px}"
)


def render_html(matrix: Matrix) -> str:
    """The table as one self-contained HTML page (inline style, no external file)."""
    from html import escape

    counts = ", ".join(f"{n} {v}" for v, n in matrix.counts().items() if n)
    head = (
        "<tr><th>scheduler</th><th>configuration</th><th>verdict</th>"
        "<th>fitted / nominal order</th><th>KL at most steps (N)</th><th>limit KL</th>"
        "<th>failing checks</th></tr>"
    )
    body = []
    for r in matrix.rows:
        kl = _cell(r, "kl_at_most_steps")
        n = _cell(r, "most_steps")
        body.append(
            f"<tr class='{escape(r['verdict'].replace(' ', '-'))}'>"
            f"<td>{escape(r['scheduler'])}</td><td>{escape(r['configuration'])}</td>"
            f"<td>{escape(r['verdict'])}</td><td>{escape(_order_text(r))}</td>"
            f"<td>{escape(kl)}{f' ({n})' if n else ''}</td><td>{escape(_cell(r, 'limit_kl'))}</td>"
            f"<td class='detail'>{escape(r.get('details') or '')}</td></tr>"
        )
    excluded = "".join(
        f"<li><b>{escape(e.name)}</b>: {escape(e.reason)}</li>" for e in matrix.excluded
    )
    title = f"Conformance matrix: diffusers {matrix.diffusers}"
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f"<p>Target: <code>{escape(json.dumps(matrix.target))}</code>. "
        f"{len(matrix.rows)} configurations: {escape(counts)} "
        f"({matrix.seconds:.0f} s).</p>"
        f"<table>{head}{''.join(body)}</table>"
        f"<h2>Exported scheduler classes not certified</h2><ul>{excluded}</ul>"
        "</body></html>"
    )


def markdown(matrix: Matrix) -> str:
    """The table as Markdown (docs/audit.md's findings): the counts, each configuration that
    does not pass with its failing checks and numbers, the passing ones by class, and the
    classes left out."""
    counts = ", ".join(f"{n} {v}" for v, n in matrix.counts().items() if n)
    lines = [
        f"diffusers {matrix.diffusers}, target `{json.dumps(matrix.target)}`: "
        f"{len(matrix.rows)} configurations — {counts}.",
        "",
        "| scheduler | configuration | verdict | fitted / nominal order | failing checks |",
        "|---|---|---|---|---|",
    ]
    for r in matrix.rows:
        if r["verdict"] != "pass":
            detail = (r.get("details") or "").replace("|", "\\|").replace("\n", " ")
            lines.append(
                f"| {r['scheduler']} | {r['configuration']} | {r['verdict']} | "
                f"{_order_text(r)} | {detail} |"
            )
    passing: dict[str, list[str]] = {}
    for r in matrix.rows:
        if r["verdict"] == "pass":
            passing.setdefault(r["scheduler"], []).append(r["configuration"])
    lines += ["", "Passing configurations:", ""]
    lines += [f"* {name}: {', '.join(configs)}" for name, configs in passing.items()]
    lines += ["", "Exported classes not certified:", ""]
    lines += [f"* {e.name}: {e.reason}" for e in matrix.excluded]
    return "\n".join(lines) + "\n"


def rich_table(matrix: Matrix):
    """The table for the terminal (rich): one line per configuration."""
    from rich.table import Table

    colour = {"pass": "green", "fail": "red", "refused": "yellow", "error": "magenta"}
    table = Table(title=f"Conformance matrix: diffusers {matrix.diffusers}")
    for col in ("scheduler", "configuration", "verdict", "order fit / nominal", "failing"):
        table.add_column(col)
    for r in matrix.rows:
        style = colour.get(r["verdict"], "")
        table.add_row(
            r["scheduler"],
            r["configuration"],
            f"[{style}]{r['verdict']}[/]" if style else r["verdict"],
            _order_text(r),
            ", ".join(r.get("failed_checks") or []) or (r.get("details") or "")[:60],
        )
    return table


def command(
    target: dict,
    steps: Sequence[int],
    out_dir: Path | None,
    *,
    workers: int,
    executor: str,
    json_out: bool,
    console,
    seed: int = 0,
) -> Matrix:
    """``scorelab audit diffusers:all``: the matrix into ``out_dir`` (default
    ``./audit-matrix``), its table on ``console`` (or its JSON on stdout)."""
    from ..sweep.engine import EXECUTORS

    if int(workers) < 1:
        raise InvalidParameter("--workers", "must be ≥ 1", workers)
    if executor not in EXECUTORS:
        raise InvalidParameter("--executor", "is not an executor", executor, ", ".join(EXECUTORS))
    out = Path(out_dir) if out_dir is not None else Path("audit-matrix")
    steps = None if tuple(steps) == tuple(DEFAULT_LADDER) else list(steps)
    log = (lambda msg: None) if json_out else (lambda msg: console.print(msg, highlight=False))
    matrix = run_matrix(
        target, out, steps=steps, seed=seed, executor=executor, workers=workers, log=log
    )
    if json_out:
        print(json.dumps(matrix.to_json(), indent=2, ensure_ascii=False, default=str))
        return matrix
    console.print(rich_table(matrix))
    counts = ", ".join(f"{n} {v}" for v, n in matrix.counts().items() if n)
    console.print(
        f"{len(matrix.rows)} configurations ({counts}); {len(matrix.excluded)} exported classes "
        f"not certified; {matrix.seconds:.0f} s → {out / 'matrix.csv'}, {out / 'matrix.html'}",
        highlight=False,
    )
    return matrix


__all__ = [
    "DOMAINS",
    "MAIN_OPTIONS",
    "Excluded",
    "Matrix",
    "certify_cell",
    "command",
    "configurations",
    "exported_schedulers",
    "label",
    "markdown",
    "matrix_items",
    "option_values",
    "render_html",
    "rich_table",
    "run_matrix",
    "write",
    "write_csv",
]
