"""The study framework: a :class:`Study` context that collects results, claim verdicts,
figures and report sections, and writes ``results.json`` and a self-contained ``report.html``.

A study is a function ``run(study: Study) -> None`` registered in the registry group ``study``
(``scorelab.register("study", NAME)``): it fills ``study.results`` (JSON-able, finite
numbers), adds one :meth:`Study.claim` per claim of the paper it tests, and figures/sections for
the report. :func:`run_study` builds the Study (title: the entry's ``title`` metadata, else its
docstring's first line; paper: its ``paper`` metadata), runs it with one intra-op thread and
writes both files into ``OUT/NAME/``; ``scorelab study NAME`` calls it. Everything random is
drawn from streams named by keys under ``study.seed`` (``study.generator("mg25", "data")``, or
``study.seed_for(...)`` where a function takes an integer seed; both ``seeding.derive_seed`` of
the seed, the study's name and the keys), so a study is deterministic for a seed and its
streams are independent; ``study.quick`` selects the CI-sized mode (≤ 2 min on 2 cores).

The five paper studies live in :mod:`scorelab.studies`, the provider of the ``study`` group (the
core never imports it; the registry loads it when the study group is first looked up).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import registry
from .errors import InvalidParameter
from .report import Report, save_figure
from .seeding import derive_seed
from .storage import write_json
from .verdicts import Effect, Margin, exact_verdict, paired_effect, verdict

SOURCES = ("paper", "extrapolation")


@dataclass
class Claim:
    """One claim, its provenance, and the paired evidence over seeds for it.

    ``source`` is "paper" (``where`` names the abstract, theorem, section or figure, and
    ``paper_value`` the paper's own number when it gives one) or "extrapolation" (our reading,
    ``where`` saying what it extends). ``verdict`` is one of four (docs/studies/protocol.md):
    ``effect`` is the mean paired difference over ``seeds`` with its 95 % interval, or — for
    an ``exact`` claim, a seed-free closed form — the value alone (``seeds`` is then None).
    ``margin`` carries the rule that fixed it before the run."""

    id: str
    statement: str
    source: str
    where: str
    verdict: str
    seeds: int | None
    effect: Effect | None
    measured: str
    paper_value: str | None = None
    margin: Margin | None = None

    @property
    def exact(self) -> bool:
        return self.effect is not None and self.effect.exact

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "statement": self.statement,
            "source": self.source,
            "where": self.where,
            "paper_value": self.paper_value,
            "verdict": self.verdict,
            "exact": self.exact,
            "seeds": None if self.exact else self.seeds,
            "effect": None if self.effect is None else self.effect.to_json(),
            "margin": None if self.margin is None else self.margin.to_json(),
            "measured": self.measured,
        }


@dataclass
class Study:
    name: str
    title: str
    paper: str
    out_dir: Path
    quick: bool = False
    seed: int = 0
    log: Callable[[str], None] = lambda msg: None
    progress: bool = False
    n_seeds: int | None = None  # None: 2 in quick mode, 5 in full mode
    executor: str = "local"
    workers: int = 1
    address: str | None = None
    results: dict[str, Any] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    sections: list[tuple[str, list[tuple[str, Any]]]] = field(default_factory=list)

    def __post_init__(self):
        self.out_dir = Path(self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.n_seeds is None:
            self.n_seeds = 2 if self.quick else 5
        if int(self.n_seeds) < 2:
            raise InvalidParameter(
                "--seeds", "must be ≥ 2 (a verdict needs a paired CI)", self.n_seeds
            )

    # --- randomness ---------------------------------------------------------------------
    def seed_for(self, *keys: int | str) -> int:
        """The seed of the study's stream named by ``keys`` (``derive_seed(seed, name,
        *keys)``): independent streams for the study's parts."""
        return derive_seed(self.seed, self.name, *keys)

    def generator(self, *keys: int | str) -> torch.Generator:
        """A CPU generator seeded by ``seed_for(*keys)``."""
        return torch.Generator().manual_seed(self.seed_for(*keys))

    # --- content --------------------------------------------------------------------------
    def claim(
        self,
        id: str,
        statement: str,
        *,
        source: str,
        where: str,
        a: Sequence[float],
        b: Sequence[float] | None = None,
        direction: str,
        margin: float | Margin = 0.0,
        margin_rule: str | None = None,
        measured: str = "",
        paper_value: str | None = None,
        method: str = "t",
    ) -> Claim:
        """Decide a claim from per-seed values: the paired difference a_i − b_i (or a_i
        alone) over the study's seeds, its interval, and the verdict against ``direction``
        ("less", "greater", "within", "at_most") and ``margin`` — a :class:`Margin`, or a
        number with ``margin_rule``, the rule that fixed it before the run (the paired
        difference's own noise for "better than" claims, the tolerance δ and its reason for
        "within"/"at_most")."""
        eff = paired_effect(a, b, method=method)
        text = measured or (
            f"effect {eff.value:.4g}, 95 % CI [{eff.ci[0]:.4g}, {eff.ci[1]:.4g}] over "
            f"{eff.seeds} seeds"
        )
        return self._decide(id, statement, source, where, eff, direction,
                            _margin(margin, margin_rule), text, paper_value, eff.seeds)  # fmt: skip

    def exact_claim(
        self,
        id: str,
        statement: str,
        *,
        source: str,
        where: str,
        value: float,
        direction: str,
        margin: float | Margin = 0.0,
        margin_rule: str | None = None,
        measured: str = "",
        paper_value: str | None = None,
    ) -> Claim:
        """Decide a claim about a quantity that does not depend on the seed (a closed form,
        a bound evaluated exactly): computed once, labelled ``exact`` — no interval, no seed
        count — and decided by where ``value`` lies against ``direction`` and ``margin``."""
        v = float(value)
        eff = Effect(v, (v, v), 0, "exact")
        text = measured or f"exact value {v:.4g}"
        m = _margin(margin, margin_rule)
        claim = self._decide(id, statement, source, where, eff, direction, m, text,
                             paper_value, None)  # fmt: skip
        claim.verdict = exact_verdict(v, direction, m)
        return claim

    def _decide(self, id, statement, source, where, eff, direction, margin, text,
                paper_value, seeds) -> Claim:  # fmt: skip
        if source not in SOURCES:
            raise InvalidParameter("source", "is not a claim source", source, ", ".join(SOURCES))
        if any(c.id == id for c in self.claims):
            raise InvalidParameter("id", "is already a claim of this study", id)
        claim = Claim(id, statement, source, where, verdict(eff, direction, margin), seeds, eff,
                      text, paper_value, margin)  # fmt: skip
        self.claims.append(claim)
        return claim

    @property
    def seeds(self) -> list[int]:
        """The seeds of every claim: ``n_seeds`` of them (≥ 5 in full mode, ≥ 2 in quick),
        starting at the study's seed."""
        return [self.seed + k for k in range(self.n_seeds)]

    def map(self, fn: Callable[..., Any], items: Sequence[dict]) -> list[Any]:
        """``[fn(**item) for item in items]`` as cached cells under ``<out>/cells/`` on the
        study's executor (``scorelab study --executor --workers --address``): an interrupted
        study resumes, and independent parts run in parallel. ``fn`` is a top-level function
        of JSON-able arguments returning JSON-able results."""
        from .sweep.mapping import map_cells

        return map_cells(
            fn,
            list(items),
            self.out_dir,
            executor=self.executor,
            workers=self.workers,
            address=self.address,
            progress=self.progress,
            log=self.log,
        )

    def section(self, heading: str) -> None:
        self.sections.append((heading, []))

    def _add(self, kind: str, payload) -> None:
        if not self.sections:
            self.section("Results")
        self.sections[-1][1].append((kind, payload))

    def text(self, text: str) -> None:
        self._add("text", text)

    def table(self, header: list[str], rows: list[list]) -> None:
        self._add("table", (header, rows))

    def figure(self, fig, name: str) -> Path:
        """Save a matplotlib figure as ``<out>/<name>.png`` and show it in the report."""
        path = save_figure(fig, self.out_dir / f"{name}.png")
        self._add("image", path)
        return path

    # --- output ---------------------------------------------------------------------------
    def write(self, seconds: float) -> Path:
        payload = {
            "study": self.name,
            "paper": self.paper,
            "quick": self.quick,
            "seed": self.seed,
            "seeds": self.seeds,
            "seconds": round(seconds, 2),
            "claims": [c.to_json() for c in self.claims],
            "results": _finite(self.results, "results"),
        }
        write_json(self.out_dir / "results.json", payload)
        report = Report(f"{self.title} — scorelab study '{self.name}'")
        mode = "quick" if self.quick else "full"
        report.text(f"{self.paper}. Mode: {mode}, seeds {self.seeds}, {seconds:.1f} s.", "note")
        report.headline("Verdicts", _verdicts_html(self.claims, self.quick))
        report.heading("Claims")
        report.raw(_claims_html(self.claims))
        for heading, items in self.sections:
            report.heading(heading)
            for kind, payload_ in items:
                if kind == "text":
                    report.text(payload_)
                elif kind == "table":
                    report.table(*payload_)
                else:
                    report.image(payload_)
        return report.write(self.out_dir / "report.html")


def _margin(margin: float | Margin, rule: str | None) -> Margin:
    """A claim's margin with its rule; a bare number must come with the rule that fixed it
    (a margin of 0 means "the sign alone decides", which is itself a rule to state)."""
    if isinstance(margin, Margin):
        if rule is not None:
            raise ValueError("give the rule inside the Margin or as margin_rule, not both")
        return margin
    if rule is None:
        raise InvalidParameter(
            "margin_rule", "is required: state the rule that fixed the margin", float(margin)
        )
    return Margin(abs(float(margin)), rule)


_VERDICT_CSS = {"holds": "ok", "below margin": "below", "fails": "no", "inconclusive": "maybe"}
_VERDICT_MARK = {"holds": "✓", "below margin": "≈", "fails": "✗", "inconclusive": "?"}


def _effect_text(c: Claim) -> str:
    if c.effect is None:
        return "—"
    e = c.effect
    if e.exact:
        return f"{_num(e.value)} (exact)"
    return f"{_num(e.value)} [{_num(e.ci[0])}, {_num(e.ci[1])}]"


def _seeds_text(c: Claim) -> str:
    return "exact" if c.exact else str(c.seeds)


def _margin_text(c: Claim) -> str:
    return "—" if c.margin is None else _num(c.margin.value)


def _num(v: float) -> str:
    return f"{v:.3g}".replace("-", "−")


def _verdict_html(verdict: str) -> str:
    import html

    mark = _VERDICT_MARK.get(verdict, "")
    return f'<span class="{_VERDICT_CSS.get(verdict, "")}">{mark} {html.escape(verdict)}</span>'


def _verdicts_html(claims: list[Claim], quick: bool) -> str:
    """The headline of a study: how many claims have each of the four verdicts (and how many
    are exact), then each claim's verdict with its paired effect and 95 % interval (or its
    exact value) and its margin."""
    from collections import Counter

    from .report import HTML, maths, table_html

    counts = Counter(c.verdict for c in claims)
    plural = {
        "holds": "hold",
        "below margin": "below margin",
        "fails": "fail",
        "inconclusive": "inconclusive",
    }
    summary = ", ".join(
        f"{counts[v]} {v if counts[v] == 1 else plural[v]}" for v in plural if counts.get(v)
    )
    noun = "claim" if len(claims) == 1 else "claims"
    exact = sum(c.exact for c in claims)
    exact_text = f" ({exact} exact)" if exact else ""
    parts = [f"<p><b>{len(claims)} {noun}{exact_text}: {summary or 'none'}.</b> "]
    parts.append(
        "A verdict compares the paired effect's 95 % interval over the seeds with the claim's "
        "direction and margin (docs/studies/protocol.md): <i>holds</i> when the interval lies "
        "on the claimed side of the margin, <i>below margin</i> when it excludes 0 on the "
        "claimed side but not the margin, <i>fails</i> when the claimed direction is ruled "
        "out (or a tolerance exceeded), <i>inconclusive</i> otherwise. An <i>exact</i> claim "
        "is a closed form, decided once.</p>"
    )
    if quick:
        parts.append(
            '<p class="note"><b>Quick mode</b>: smaller settings and fewer seeds, so these '
            "verdicts may differ from the full run's (<code>scorelab study NAME</code> without "
            "<code>--quick</code>).</p>"
        )
    rows = [
        [HTML(_verdict_html(c.verdict)), HTML(f"<b>{maths(c.id)}</b>"), c.statement,
         HTML(_effect_text(c), num=True), HTML(_margin_text(c), num=True), _seeds_text(c)]
        for c in claims
    ]  # fmt: skip
    header = ["verdict", "id", "claim", "effect [95 % CI]", "margin", "seeds"]
    parts.append(table_html(header, rows))
    return "".join(parts)


_LONG_FLOAT = re.compile(r"(?<![\w.])[−-]?\d+\.\d{5,}(?:e[−+-]?\d+)?")


def _tidy(text: str) -> str:
    """Measured prose as a reader wants it: long floats (also inside Python lists) to four
    significant digits, list brackets kept."""
    return _LONG_FLOAT.sub(lambda m: f"{float(m.group(0).replace('−', '-')):.4g}", text)


def _claims_html(claims: list[Claim]) -> str:
    from .report import HTML, table_html

    rows = []
    for c in claims:
        source = c.source + (f" ({c.where})" if c.where else "")
        if c.paper_value:
            source += f"; paper: {c.paper_value}"
        margin = "—" if c.margin is None else f"{_num(c.margin.value)}: {c.margin.rule}"
        rows.append(
            [c.id, c.statement, source, _tidy(c.measured), HTML(_effect_text(c), num=True),
             margin, _seeds_text(c), HTML(_verdict_html(c.verdict))]
        )  # fmt: skip
    header = ["id", "claim", "source", "measured", "effect [95 % CI]", "margin (rule)", "seeds",
              "verdict"]  # fmt: skip
    return table_html(header, rows, cls="claims")


def _finite(obj, where: str):
    """Convert tensors/numpy scalars to plain floats and refuse NaN/inf (results.json promises
    finite numbers; None marks a value that was not measured)."""
    if isinstance(obj, dict):
        return {str(k): _finite(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, torch.Tensor):
        obj = obj.item() if obj.numel() == 1 else obj.tolist()
        return _finite(obj, where)
    if hasattr(obj, "item") and not isinstance(obj, str | bool | int | float):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"study result {where} is not finite: {obj}")
    return obj


@contextmanager
def one_thread():
    """One intra-op thread, the caller's setting restored afterwards. Studies run small
    networks and small tensors, for which a second thread buys nothing, and on a busy 2-core
    machine (CI beside test workers) threads spinning against each other made training steps
    and small matmuls 20–70× slower (measured by three of the studies' authors)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_entry(
    entry: registry.Entry,
    out_dir: str | Path,
    *,
    quick: bool = False,
    seed: int = 0,
    log: Callable[[str], None] = lambda msg: None,
    progress: bool = False,
    seeds: int | None = None,
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
) -> Study:
    """Run the registered study ``entry`` into ``out_dir`` and write its files."""
    title = entry.meta.get("title") or entry.doc or entry.name
    study = Study(
        entry.name,
        title,
        entry.meta.get("paper", ""),
        Path(out_dir),
        quick=quick,
        seed=seed,
        log=log,
        progress=progress,
        n_seeds=seeds,
        executor=executor,
        workers=workers,
        address=address,
    )
    start = time.perf_counter()
    with one_thread():
        entry.obj(study)
    study.write(time.perf_counter() - start)
    return study


def run_study(
    name: str,
    out: str | Path = "studies",
    *,
    quick: bool = False,
    seed: int = 0,
    log: Callable[[str], None] = lambda msg: None,
    progress: bool = False,
    **options,
) -> list[Study]:
    """Run the registered study ``name`` (or ``"all"`` of them) into ``out/<name>/``; returns
    the finished studies."""
    registered = registry.entries("study")
    names = list(registered) if name == "all" else [name]
    for n in names:
        if n not in registered:
            allowed = ", ".join([*registered, "all"])
            raise InvalidParameter("study", "unknown study", name, allowed)
    done = []
    for n in names:
        log(f"study {n} ({'quick' if quick else 'full'} mode)")
        done.append(
            run_entry(
                registered[n],
                Path(out) / n,
                quick=quick,
                seed=seed,
                log=log,
                progress=progress,
                **options,
            )
        )
    return done


TABLE_START = "<!-- claims-table:start (generated by `scorelab study table`; do not edit) -->"
TABLE_END = "<!-- claims-table:end -->"
SUMMARY_START = "<!-- claims-summary:start (generated by `scorelab study table`; do not edit) -->"
SUMMARY_END = "<!-- claims-summary:end -->"

# a study page's headline finding: the paragraph that starts with this mark
HEADLINE = "**Headline.**"


def _study_results(out: str | Path, names: Sequence[str] | None) -> list[tuple[str, dict]]:
    """(name, results.json) of every study in ``out`` that has one, in registry order."""
    import json

    out = Path(out)
    names = list(names) if names is not None else list(registry.entries("study"))
    found = [
        (name, json.loads((out / name / "results.json").read_text()))
        for name in names
        if (out / name / "results.json").is_file()
    ]
    if not found:
        raise InvalidParameter(
            "--out", "holds no study results (run `scorelab study all` first)", str(out)
        )
    return found


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(v.replace("|", "\\|") for v in cells) + " |"


def claims_table(out: str | Path, names: Sequence[str] | None = None) -> str:
    """A markdown table of every claim in ``out/<study>/results.json`` (verdict, effect with
    its interval or ``exact``, margin, seeds, source): docs/studies/claims.md, generated,
    never edited by hand."""
    lines = [
        "| study | claim | source | effect [95 % CI] | margin | seeds | mode | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, data in _study_results(out, names):
        mode = "quick" if data.get("quick") else "full"
        for c in data.get("claims", []):
            eff = c.get("effect") or {}
            ci = eff.get("ci") or [None, None]
            if eff.get("value") is None:
                effect = "—"
            elif c.get("exact"):
                effect = f"{_g(eff['value'])} (exact)"
            else:
                effect = f"{_g(eff['value'])} [{_g(ci[0])}, {_g(ci[1])}]"
            source = c.get("source", "?") + (f" ({c['where']})" if c.get("where") else "")
            verdict = c.get("verdict", "?")
            verdict = f"**{verdict}**" if verdict != "holds" else verdict
            margin = (c.get("margin") or {}).get("value")
            seeds = "exact" if c.get("exact") else str(c.get("seeds", "?"))
            lines.append(
                _row([name, c.get("statement", ""), source, effect, _g(margin), seeds, mode,
                      verdict])
            )  # fmt: skip
    return "\n".join(lines)


def claims_summary(
    out: str | Path,
    names: Sequence[str] | None = None,
    *,
    pages: str | Path | None = None,
    link_from: str | Path = ".",
) -> str:
    """A markdown table with one row per study: how many of its claims have each of the four
    outcomes and how many are exact, the mode of its run, its headline finding and a link to
    its page — what the README shows (the full table is :func:`claims_table`).

    The page of study ``NAME`` is ``pages/NAME_WITH_UNDERSCORES.md`` (``pages`` defaults to
    the folder above ``out``), linked relative to ``link_from``; its headline is the paragraph
    of the page that starts with ``**Headline.**``."""
    import os

    from .verdicts import VERDICTS

    pages = Path(pages) if pages is not None else Path(out).resolve().parent
    header = ["study", "claims", *VERDICTS, "exact", "mode", "headline"]
    lines = [_row(header), _row(["---"] * len(header))]
    for name, data in _study_results(out, names):
        claims = data.get("claims", [])
        page = pages / f"{name.replace('-', '_')}.md"
        link = Path(os.path.relpath(page.resolve(), Path(link_from).resolve())).as_posix()
        counts = [str(sum(c.get("verdict") == v for c in claims)) for v in VERDICTS]
        exact = str(sum(bool(c.get("exact")) for c in claims))
        mode = "quick" if data.get("quick") else "full"
        lines.append(
            _row([f"[{name}]({link})", str(len(claims)), *counts, exact, mode, _headline(page)])
        )
    return "\n".join(lines)


def _headline(page: Path) -> str:
    """The paragraph of ``page`` that starts with the headline mark, on one line."""
    if not page.is_file():
        return "—"
    for para in page.read_text().split("\n\n"):
        para = para.strip()
        if para.startswith(HEADLINE):
            return " ".join(para[len(HEADLINE) :].split())
    return "—"


def _g(v) -> str:
    return "—" if v is None else f"{v:.3g}"


def write_claims_table(
    readme: str | Path,
    table: str,
    *,
    start: str = TABLE_START,
    end: str = TABLE_END,
    option: str = "--write",
) -> Path:
    """Replace the generated region of ``readme`` between the markers ``start`` and ``end``
    (the claims table's by default; the README's summary uses ``SUMMARY_START``/``_END``)."""
    path = Path(readme)
    text = path.read_text()
    if start not in text or end not in text:
        raise InvalidParameter(
            option, "has no generated-table markers", str(path), f"{start} … {end}"
        )
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{table}\n{end}{tail}")
    return path
