"""Results as tables (``scorelab.display``): the HTML that Jupyter shows, the Rich table a
terminal shows and the pandas frame hold the result's own numbers — read back from the
rendered text and compared with the result's fields, not just checked for tags."""

from __future__ import annotations

import math
import re
import sys
from html.parser import HTMLParser

import pytest
import torch

import scorelab
from scorelab.config.build import build_target
from scorelab.display import Column, Table, Tabular, verdict_style

F64 = torch.float64


class _Cells(HTMLParser):
    """The text of every <th>/<td>, row by row, and the tags seen."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _parse(html: str) -> _Cells:
    p = _Cells()
    p.feed(html)
    return p


def _num(text: str) -> float:
    return float(text.replace("−", "-"))


@pytest.fixture(scope="module")
def evaluation():
    torch.set_num_threads(1)
    target = build_target({"kind": "gaussian", "dim": 2, "mean": 1.0, "cov": 0.5})
    x = target.sample(300, torch.Generator().manual_seed(1), dtype=F64) + 0.3
    return scorelab.evaluate(
        x,
        target,
        ["w2", "mmd", "kl_gaussian"],
        n_boot=30,
        generator=torch.Generator().manual_seed(0),
    )


def test_an_evaluation_renders_as_an_html_table_of_its_numbers(evaluation):
    page = evaluation._repr_html_()
    cells = _parse(page)
    assert {"table", "thead", "tbody", "td"} <= set(cells.tags)
    assert "<link" not in page and "<style" not in page  # self-contained: inline styles only
    header, *body = cells.rows
    assert header == ["metric", "value", "95% CI", "floor", "value / floor"]
    assert [row[0] for row in body] == [r.name for r in evaluation.results]
    for row, r in zip(body, evaluation.results, strict=True):
        assert _num(row[1]) == pytest.approx(r.value, rel=5e-4)
        lo, hi = (_num(v) for v in re.fullmatch(r"\[(.+), (.+)\]", row[2]).groups())
        assert (lo, hi) == (pytest.approx(r.ci[0], rel=5e-4), pytest.approx(r.ci[1], rel=5e-4))
        assert _num(row[3]) == pytest.approx(r.floor, rel=5e-4)
        if r.floor > 0 and r.value >= 0:
            assert _num(row[4].rstrip("×")) == pytest.approx(r.value / r.floor, rel=2e-3)
        else:
            assert row[4] == "—"
    # the W2 of a shifted Gaussian: well above its floor, and the table says so
    w2 = evaluation["w2"]
    assert w2.value > 2 * w2.floor


def test_a_frame_holds_the_same_numbers_as_to_dict(evaluation):
    frame = evaluation.to_frame()
    data = evaluation.to_dict()
    assert list(frame.columns) == ["metric", "value", "ci_lo", "ci_hi", "floor", "ratio"]
    assert list(frame["metric"]) == [k for k in data if k != "_skipped"]
    for _, row in frame.iterrows():
        d = data[row["metric"]]
        assert row["value"] == d["value"] and row["floor"] == d["floor"]
        assert [row["ci_lo"], row["ci_hi"]] == d["ci"]
        expected = d["value"] / d["floor"] if d["floor"] > 0 and d["value"] >= 0 else None
        assert (
            (row["ratio"] is None or math.isnan(row["ratio"]))
            if expected is None
            else (row["ratio"] == pytest.approx(expected))
        )


def test_rich_renders_the_values(evaluation):
    from rich.console import Console

    console = Console(record=True, width=160)
    console.print(evaluation)
    out = console.export_text()
    for r in evaluation.results:
        line = next(ln for ln in out.splitlines() if f" {r.name} " in f" {ln} ")
        assert f"{r.value:.4g}" in line and f"{r.floor:.4g}" in line
        assert f"[{r.ci[0]:.4g}, {r.ci[1]:.4g}]" in line


def test_without_pandas_to_frame_names_the_extra(evaluation, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` raises ImportError
    with pytest.raises(ImportError, match=r"scorelab\[frames\]"):
        evaluation.to_frame()
    assert evaluation._repr_html_().startswith("<div>")  # rendering needs no pandas


def test_text_is_escaped_and_verdicts_are_coloured():
    class Result(Tabular):
        def _table(self):
            cols = [Column("claim", "text"), Column("verdict", "verdict")]
            rows = [["<b>x</b> & y", v] for v in ("holds", "below margin", "fails", "inconclusive")]
            return Table("a <title>", cols, rows, ["note <i>"])

    page = Result()._repr_html_()
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt; &amp; y" in page
    assert "a &lt;title&gt;" in page and "note &lt;i&gt;" in page
    colours = [verdict_style(v)[0] for v in ("holds", "below margin", "fails", "inconclusive")]
    assert len(set(colours)) == 4
    for v, c in zip(("holds", "below margin", "fails", "inconclusive"), colours, strict=True):
        assert re.search(rf"color:{c};[^>]*>[^<]*{v}</td>", page), v
    assert verdict_style("below_margin") == verdict_style("below margin")


def test_a_sample_result_shows_its_moments_and_frames_its_points():
    from scorelab.protocols import SampleResult

    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    res = SampleResult(x, nfe=12, seconds=0.5)
    body = _parse(res._repr_html_()).rows[1:]
    for j, row in enumerate(body):
        assert row[0] == f"x{j}"
        assert _num(row[1]) == pytest.approx(float(x[:, j].mean()), rel=5e-4, abs=1e-12)
        assert _num(row[2]) == pytest.approx(float(x[:, j].std()), rel=5e-4)
    frame = res.to_frame()
    assert frame.shape == (50, 3) and list(frame.columns) == ["x0", "x1", "x2"]
    assert frame.to_numpy() == pytest.approx(x.numpy())
    assert res.to_dict()["nfe"] == 12 and res.to_dict()["shape"] == [50, 3]


def test_a_bound_shows_its_terms_and_their_shares():
    from scorelab.bounds import manifold_w1_bound

    b = manifold_w1_bound(2.0, eps=1e-3, T=5.0, steps=50, d=2, second_moment_value=1.0)
    frame = b.to_frame()
    terms = b.terms()
    assert list(frame["term"]) == list(terms)
    for _, row in frame.iterrows():
        assert row["value"] == pytest.approx(terms[row["term"]])
        if row["term"] != "total":
            assert row["share"] == pytest.approx(terms[row["term"]] / terms["total"])
    assert b.to_dict() == b.as_dict() and b.to_dict()["steps"] == 50
    assert "paper E" in b._repr_html_()


def test_a_tuning_result_marks_its_optimum():
    from scorelab.bounds import TuneResult

    res = TuneResult("rho", 6.5, 0.2, 7.0, 0.25, [5.0, 7.0, 9.0], [0.3, 0.25, 0.4])
    frame = res.to_frame()
    assert list(frame["parameter"]) == [5.0, 6.5, 7.0, 9.0]
    assert dict(zip(frame["mark"], frame["bound"], strict=True))["best"] == 0.2
    assert dict(zip(frame["mark"], frame["bound"], strict=True))["reference"] == 0.25


def test_a_study_shows_its_claims_with_their_verdicts(tmp_path):
    from scorelab.study import Study

    st = Study("demo", "Demo", "paper", tmp_path, quick=True)
    rule = "the sign alone decides (a demo)"
    st.claim("c1", "A is lower", source="paper", where="§1", a=[1.0, 1.1, 0.9],
             b=[2.0, 2.1, 2.0], direction="less", margin_rule=rule)  # fmt: skip
    st.claim("c2", "A is higher", source="extrapolation", where="", a=[1.0, 1.1, 0.9],
             b=[2.0, 2.1, 2.0], direction="greater", margin_rule=rule)  # fmt: skip
    st.claim("c3", "A is lower by 2", source="extrapolation", where="", a=[1.0, 1.1, 0.9],
             b=[2.0, 2.1, 2.0], direction="less", margin=2.0, margin_rule=rule)  # fmt: skip
    st.exact_claim("c4", "a closed form is positive", source="extrapolation", where="",
                   value=0.25, direction="greater", margin_rule=rule)  # fmt: skip
    cells = _parse(st._repr_html_()).rows
    assert [row[0] for row in cells[1:]] == ["✓ holds", "✗ fails", "≈ below margin", "✓ holds"]
    frame = st.to_frame()
    for (_, row), c in zip(frame.iterrows(), st.claims[:3], strict=False):
        assert row["effect"] == pytest.approx(c.effect.value)
        assert (row["ci_lo"], row["ci_hi"]) == pytest.approx(c.effect.ci)
        assert row["seeds"] == "3"
    exact = frame.iloc[3]
    assert exact["effect"] == 0.25 and exact["seeds"] == "exact"
    assert exact["ci_lo"] is None or exact["ci_lo"] != exact["ci_lo"]  # no interval
    assert st.to_dict()["claims"][0]["verdict"] == "holds"
    assert st.claims[0].to_dict() == st.claims[0].to_json()


def test_a_budget_shows_each_part_beside_the_bound_term():
    from scorelab.budget.core import Budget

    parts = {p: {"value": v, "ci": [v - 0.01, v + 0.01]} for p, v in
             [("score", 0.1), ("discretisation", 0.2), ("prior", 0.0), ("early_stopping", 0.05),
              ("remainder", 0.01)]}  # fmt: skip
    metrics = {"w2": {"label": "W2", "parts": parts, "total": {"value": 0.36, "ci": [0.3, 0.4]}}}
    bound = {"metric": "w2", "title": "paper A: W2", "total": {"term": 0.9, "ratio": 2.5},
             "parts": {"score": {"term": 0.3, "ratio": 3.0}}}  # fmt: skip
    b = Budget("samples", ("score",), metrics, {}, {}, [bound], {}, {}, None, {})
    frame = b.to_frame()
    assert list(frame["part"]) == [
        "score",
        "discretisation",
        "prior",
        "early stopping",
        "remainder",
        "total",
    ]
    score = frame[frame["part"] == "score"].iloc[0]
    assert (score["measured"], score["ci_lo"], score["ci_hi"]) == pytest.approx((0.1, 0.09, 0.11))
    assert (score["bound0_term"], score["bound0_ratio"]) == (0.3, 3.0)
    total = frame[frame["part"] == "total"].iloc[0]
    assert (total["measured"], total["bound0_term"]) == (0.36, 0.9)
    assert b.to_dict() == b.to_json()


def test_a_run_shows_each_sampler_s_metrics(evaluation, tmp_path):
    from scorelab.pipeline import RunOutcome, SamplerOutcome

    outcomes = [
        SamplerOutcome("heun", torch.zeros(3, 2), 20, 0.1, evaluation),
        SamplerOutcome("euler_maruyama", torch.zeros(3, 2), 10, 0.1, evaluation),
    ]
    run = RunOutcome(tmp_path, 1.5, outcomes, seconds=3.0)
    frame = run.to_frame()
    names = [r.name for r in evaluation.results]
    assert list(frame["sampler"]) == ["heun"] * len(names) + ["euler_maruyama"] * len(names)
    assert list(frame["nfe"]) == [20] * len(names) + [10] * len(names)
    assert list(frame["value"]) == [r.value for r in evaluation.results] * 2
    records = run.to_dict()["metrics"]
    assert [r["metric"] for r in records] == list(frame["metric"]) == names * 2
    for col in ("value", "ci_lo", "ci_hi", "floor", "ratio"):
        assert [math.nan if r[col] is None else r[col] for r in records] == pytest.approx(
            list(frame[col]), nan_ok=True
        )


def test_library_figures_leave_a_notebook_backend_alone():
    """In a Jupyter kernel (ipykernel imported) the figure code keeps the user's backend;
    elsewhere it selects Agg (files only, no GUI toolkit). Checked in fresh interpreters."""
    import subprocess
    import sys

    code = (
        "import sys, types, matplotlib\n"
        "{fake}"
        "matplotlib.use('svg')\n"
        "from scorelab.report import pyplot\n"
        "pyplot()\n"
        "print(matplotlib.get_backend())\n"
    )
    fake = "sys.modules['ipykernel'] = types.ModuleType('ipykernel')\n"
    outside = subprocess.run([sys.executable, "-c", code.format(fake="")], capture_output=True,
                             text=True, check=True).stdout.strip()  # fmt: skip
    inside = subprocess.run([sys.executable, "-c", code.format(fake=fake)], capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    assert outside.lower() == "agg" and inside == "svg"
