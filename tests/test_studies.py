"""The study framework: the registry and CLI, results.json (finite numbers, claims), the
self-contained report. (The fokker-planck study's own tests are in
tests/test_study_fokker_planck.py.)"""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from scorelab.cli import app
from scorelab.errors import InvalidParameter
from scorelab.studies import STUDIES, run_study
from scorelab.studies.common import Study

pytestmark = pytest.mark.studies

runner = CliRunner()


def test_unknown_study_names_the_allowed_ones(tmp_path):
    with pytest.raises(InvalidParameter, match="noise-schedule") as exc:
        run_study("nope", tmp_path)
    assert "study" in str(exc.value)
    res = runner.invoke(app, ["study", "nope", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "unknown study" in res.output


def test_every_registered_study_module_exists():
    import importlib.util

    for module in STUDIES.values():
        assert importlib.util.find_spec(f"scorelab.studies.{module}") is not None, module


def test_studies_are_registered_and_imported_only_when_they_run():
    import subprocess
    import sys

    from scorelab import registry

    # the core never imports scorelab.studies (tests/test_architecture.py): the registry loads
    # it as the study group's provider, and looking the studies up, as `scorelab study` and
    # `scorelab list` do, imports no study package
    assert registry.names("study") == tuple(STUDIES)
    code = (
        "import sys, scorelab.cli, scorelab.registry as r; r.entries('study'); "
        "print([m for m in sys.modules if m.startswith('scorelab.studies.')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_study_writes_finite_results_claims_and_an_embedded_report(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = Study("demo", "Demo", "paper X", tmp_path / "demo", quick=True, seed=3)
    g1, g2 = s.generator(1), s.generator(1)
    assert torch.equal(torch.randn(4, generator=g1), torch.randn(4, generator=g2))
    s.results = {"a": torch.tensor(1.5), "b": [1, 2.5], "c": None}
    assert s.seeds == [3, 4]  # quick mode: two seeds from the study's seed
    s.claim(
        "x",
        "x beats y",
        source="paper",
        where="Thm 1",
        a=[1.0, 1.2],
        b=[0.0, 0.1],
        direction="greater",
        margin_rule="the sign alone decides (a test of the framework)",
    )
    s.claim(
        "y",
        "y equals z",
        source="extrapolation",
        where="ours",
        a=[0.5, -0.5],
        direction="within",
        margin=0.1,
        margin_rule="a stated tolerance",
    )
    with pytest.raises(InvalidParameter, match="source"):
        s.claim("z", "no source", source="folklore", where="", a=[1, 2], direction="less",
                margin_rule="the sign alone decides")  # fmt: skip
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    s.figure(fig, "line")
    s.write(1.0)
    js = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert js["results"] == {"a": 1.5, "b": [1, 2.5], "c": None}
    first, second = js["claims"]
    assert first["verdict"] == "holds" and first["seeds"] == 2 and first["source"] == "paper"
    assert first["effect"]["value"] == pytest.approx(1.05)
    # two seeds: the t quantile at one degree of freedom is tan(0.475π) (the Cauchy law), and
    # the paired differences 1.0 and 1.1 have standard error 0.05
    half = math.tan(0.475 * math.pi) * 0.05
    assert first["effect"]["ci"] == pytest.approx([1.05 - half, 1.05 + half], rel=1e-9)
    assert second["verdict"] == "inconclusive"  # 2 seeds of ±0.5: the CI straddles ±0.1
    assert second["margin"] == {"value": 0.1, "rule": "a stated tolerance"}
    assert js["quick"] is True and js["seed"] == 3
    html = (tmp_path / "demo" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 1 and "x beats y" in html

    s.results = {"bad": float("nan")}
    with pytest.raises(ValueError, match="bad"):
        s.write(1.0)
