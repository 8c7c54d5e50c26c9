"""What a user sees: progress without a terminal, the files' modes, the reports' headline and
tables, the command line's messages and --help."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from scorelab.cli import app
from scorelab.progress import duration, tracker

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
runner = CliRunner()
TINY = [
    "train.steps=6",
    "train.batch_size=32",
    "train.log_every=3",
    "network.width=16",
    "sampler.n=200",
    "sampler.steps=4",
]


def _sets(items):
    return [arg for item in items for arg in ("--set", item)]


# --- progress -------------------------------------------------------------------------------
def test_progress_lines_without_a_terminal():
    stream = io.StringIO()
    bar = tracker("lines", 10, "training", "steps", every=0.0)
    bar.stream = stream
    for k in range(1, 11):
        bar.update(k, info=f"loss {1 / k:.3g}")
    bar.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("training: 1/10 steps (10 %), ") and "ETA" in lines[0]
    assert "loss 1" in lines[0] and "nan" not in stream.getvalue()
    assert lines[-1].startswith("training: 10/10 steps (100 %)") and "done in" in lines[-1]
    assert duration(3725) == "1 h 02 min" and duration(42.4) == "42 s"


def test_progress_is_quiet_for_short_loops_and_when_disabled(capsys):
    bar = tracker(True, 5, "sampling", "samples", every=60.0)  # pytest's stderr: no TTY
    for _ in range(5):
        bar.advance(1)
    bar.close()
    off = tracker(False, 5, "x")
    off.update(3)
    off.close()
    assert capsys.readouterr().err == ""  # under a minute: no line; disabled: nothing


def test_training_and_sampling_print_plain_progress_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("SCORELAB_PROGRESS_SECONDS", "0")
    res = runner.invoke(
        app, ["train", str(CONFIGS / "quickstart.yaml"), "--out", str(tmp_path), *_sets(TINY)]
    )
    assert res.exit_code == 0, res.output
    assert "training: 1/6 steps" in res.output and "training: 6/6 steps (100 %)" in res.output
    assert "loss nan" not in res.output
    assert "wrote:" in res.output and "checkpoint.safetensors" in res.output
    res = runner.invoke(
        app,
        [
            "train",
            str(CONFIGS / "quickstart.yaml"),
            "--out",
            str(tmp_path),
            "--resume",
            *_sets(TINY),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "nothing to train" in res.output and "trained 6 steps" not in res.output

    out = tmp_path / "s.npz"
    args = ["sample", str(CONFIGS / "quickstart.yaml"), "--out", str(out), *_sets(TINY)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    # counted in samples, advanced step by step (not "0/1 batches")
    assert re.search(r"sampling: \d+/200 samples", res.output) and "batches" not in res.output
    assert "exact score" in res.output and "s.npz" in res.output
    quiet = runner.invoke(app, ["--quiet", *args])
    assert quiet.exit_code == 0 and "sampling:" not in quiet.output


def test_evaluate_shows_its_metrics_and_json_stays_clean(tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("SCORELAB_PROGRESS_SECONDS", "0")
    out = tmp_path / "s.npz"
    sample = ["sample", str(CONFIGS / "quickstart.yaml"), "--out", str(out), *_sets(TINY)]
    assert runner.invoke(app, ["--quiet", *sample]).exit_code == 0
    args = ["evaluate", str(out), "--target", "{kind: gmm, preset: ring8}", "--metrics", "w2,mmd"]
    res = runner.invoke(app, [*args, "--n-boot", "10", "--n-boot-ot", "10"])
    assert res.exit_code == 0, res.output
    assert "evaluating: 1/2 metrics" in res.output or "evaluating: 2/2 metrics" in res.output
    res = runner.invoke(app, [*args, "--n-boot", "10", "--n-boot-ot", "10", "--json"])
    assert set(json.loads(res.output)) == {"w2", "mmd", "_skipped"}  # nothing else printed


# --- files ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_files_follow_the_umask_not_mkstemp(tmp_path, umask, mode):
    from scorelab.storage import save_samples, write_json

    old = os.umask(umask)
    try:
        a = write_json(tmp_path / "a.json", {"x": 1})
        b = save_samples(tmp_path / "b.npz", torch.zeros(3, 2))
    finally:
        os.umask(old)
    assert (a.stat().st_mode & 0o777) == mode and (b.stat().st_mode & 0o777) == mode


# --- reports --------------------------------------------------------------------------------
def _evaluation(**metrics):
    js = {k: {"value": v, "floor": f, "ci": ci} for k, (v, f, ci) in metrics.items()}
    js["_skipped"] = {}
    return SimpleNamespace(to_json=lambda: js, results=[])


def test_ratios_only_for_positive_floors_and_cis_that_exclude_their_value_are_marked():
    from scorelab.report import metric_rows, ratio

    assert ratio(0.3, 0.2) == pytest.approx(1.5)
    assert ratio(0.001, -0.0007) is None and ratio(-0.1, 0.2) is None and ratio(1, 0) is None
    ev = _evaluation(
        w2=(0.3, 0.2, [0.25, 0.35]),
        mmd=(0.001, -0.0007, [-0.001, 0.004]),
        tv=(0.0793, 0.05, [0.0437, 0.0780]),
    )
    rows, notes = metric_rows(ev.to_json())
    by_name = {r[0]: r for r in rows}
    assert str(by_name["w2"][4]) == "1.50×"
    assert str(by_name["mmd"][4]) == "—*"  # no −1.4 "ratio" for a negative floor
    assert "†" in str(by_name["tv"][2])  # the CI [0.0437, 0.0780] excludes 0.0793
    assert notes == {"ratio", "ci"}


def test_run_headline_and_tables_in_the_html(tmp_path):
    from scorelab.report import Report, _headline, bounds_html

    outcome = SimpleNamespace(
        sampler="heun",
        nfe=49,
        seconds=1.25,
        evaluation=_evaluation(w2=(0.09, 0.06, [0.08, 0.1]), nll=(2.41, 2.40, [2.3, 2.5])),
    )
    result = SimpleNamespace(
        outcomes=[outcome],
        train_seconds=12.0,
        diagnostics={
            "nll": {"value": 2.5, "ci": [2.4, 2.6], "nfe": 300},
            "nll_exact": {"value": 2.45},
        },
    )
    cfg = SimpleNamespace(sampler=SimpleNamespace(n=2000))
    trainer = SimpleNamespace(step=3000)
    rep = Report("scorelab run — gmm under vp")
    rep.headline("Result", _headline(cfg, result, trainer, [{"loss": 1.5}] * 20))
    bounds = {"kl": {"mixing": 0.1, "total": 80.17}, "w2": {"refused": "needs a Gaussian target"}}
    measured = {"kl": {"metric": "kl_knn_reverse", "value": 0.05, "ci": [0.03, 0.07]}}
    rep.raw(bounds_html(bounds, measured))
    page = rep.write(tmp_path / "report.html").read_text()
    head = page.split('class="headline"')[1].split("</div>")[0]
    assert "W2 / floor" in head and "1.50×" in head and "NFE" in head and "heun" in head
    assert page.index('class="headline"') < page.index("<h2>Result")
    assert "80.17" in page and "0.05" in page  # measured beside its bound
    assert "<td><i>refused:</i> needs a Gaussian target</td>" in page  # left-aligned text


def test_maths_is_rendered_offline():
    from scorelab.report import maths

    assert maths("W1 ≤ (1 − e^{−ε})E‖X₀‖") == "W1 ≤ (1 − e<sup>−ε</sup>)E‖X₀‖"
    assert maths("σ_{k+1}² in R^d, γ_d") == "σ<sub>k+1</sub>² in R<sup>d</sup>, γ<sub>d</sub>"
    assert maths("kl_knn and n_boot <b>") == "kl_knn and n_boot &lt;b&gt;"
    assert maths("ratio ≈ 10^0.35, α = 10^-4, 2^d") == (
        "ratio ≈ 10<sup>0.35</sup>, α = 10<sup>-4</sup>, 2<sup>d</sup>"
    )


def test_config_section_shows_what_differs_from_the_defaults():
    from scorelab.config import load_config
    from scorelab.report import config_differences

    cfg = load_config(CONFIGS / "quickstart.yaml")
    rows = {k: (v, d) for k, v, d in config_differences(cfg, skip=("score",))}
    assert rows["process.schedule.kind"] == ("cosine", "linear")
    assert not any(k.startswith("score.") for k in rows)
    assert len(rows) < 40


def test_study_report_leads_with_the_verdicts(tmp_path):
    from scorelab.study import Study

    study = Study("demo", "A demo", "A paper", tmp_path, quick=True)
    study.claim(
        "c1",
        "the error decays like e^{−t}",
        source="paper",
        where="Thm 1",
        a=[0.1, 0.12],
        b=[0.2, 0.21],
        direction="less",
        margin_rule="the sign alone decides (a demo)",
        measured="per seed [0.123456789, 0.2345678]",
    )
    page = study.write(1.0).read_text()
    head = page.split('class="headline"')[1].split("</div>")[0]
    assert "1 claim: 1 holds." in head and "Quick mode" in head and "e<sup>−t</sup>" in head
    assert "[0.1235, 0.2346]" in page and "0.123456789" not in page


# --- the command line -----------------------------------------------------------------------
def test_help_has_no_type_labels_on_flags_and_wraps_paragraphs():
    import typer

    names = list(typer.main.get_command(app).commands)
    for args in [[], *([n] for n in names)]:
        res = runner.invoke(app, [*args, "--help"], terminal_width=100)
        assert res.exit_code == 0, (args, res.output)
        assert "<bool>" not in res.output, args
    res = runner.invoke(app, ["--help"], terminal_width=100)
    assert "--quiet" in res.output and "plot" in res.output
    # a docstring's source line breaks are not kept ("(VP,\n cosine schedule)")
    assert not re.search(r"\(VP,\s*│\s*\n", res.output)


def test_plot_draws_samples_over_the_target(tmp_path):
    out = tmp_path / "s.npz"
    sample = ["sample", str(CONFIGS / "quickstart.yaml"), "--out", str(out), *_sets(TINY)]
    assert runner.invoke(app, ["--quiet", *sample]).exit_code == 0
    res = runner.invoke(app, ["plot", str(out)])
    assert res.exit_code == 0, res.output
    png = tmp_path / "s.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
    x = tmp_path / "x.npy"
    import numpy as np

    np.save(x, np.random.default_rng(0).normal(size=(100, 5)))
    res = runner.invoke(app, ["plot", str(x), "--out", str(tmp_path / "pairs.png")])
    assert res.exit_code == 0 and (tmp_path / "pairs.png").is_file()
    bad = runner.invoke(app, ["plot", str(x), "--out", str(tmp_path / "p.jpg")])
    assert bad.exit_code == 2 and "png" in bad.output


# --- a report as a browser shows it ---------------------------------------------------------
CHECK_JS = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  const wide = document.documentElement.scrollWidth > window.innerWidth + 1;
  const headline = document.querySelector('.headline') !== null;
  document.title = `CHECK images=${imgs.length} broken=${broken} wide=${wide} headline=${headline}`;
});
</script>"""


def _chromium() -> str | None:
    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None)


@pytest.mark.skipif(
    _chromium() is None, reason="needs Debian's chromium (apt-get install chromium)"
)
def test_a_report_in_headless_chromium(tmp_path):
    """The run report as a browser shows it: no broken image, nothing wider than the page,
    the headline present."""
    from scorelab.report import Report, samples_figure

    g = torch.Generator().manual_seed(0)
    rep = Report("scorelab run — browser check")
    rep.headline("Result", "<p>W2 1.2× its floor</p>")
    x, ref = torch.randn(300, 2, generator=g), torch.randn(300, 2, generator=g)
    fig = samples_figure({"heun": x}, ref, tmp_path / "samples.png")
    rep.image(fig)
    rep.table(["metric", "a very long note"], [["w2", "x" * 400], ["mmd", 0.001]])
    page = rep.write(tmp_path / "report.html")
    checked = tmp_path / "checked.html"
    checked.write_text(page.read_text().replace("</body>", CHECK_JS + "</body>"))
    res = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--window-size=800,1200",
         "--virtual-time-budget=5000", "--dump-dom", checked.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    title = re.search(r"<title>(CHECK[^<]*)</title>", res.stdout)
    assert title, res.stderr[-2000:]
    assert title.group(1) == "CHECK images=1 broken=0 wide=false headline=true"


def test_diagnose_shows_its_parts_and_draws_as_one_call_would(monkeypatch, capsys):
    from scorelab import build_process, build_target
    from scorelab.diagnostics import diagnose
    from scorelab.fokker_planck import residual_profile

    monkeypatch.setenv("SCORELAB_PROGRESS_SECONDS", "0")
    target = build_target({"kind": "gmm", "preset": "ring8"})
    process = build_process({"kind": "vp"})
    score = target.score_model(process)
    kw = dict(times=[0.1, 0.5], n_residual=16, n_conservativity=8, n_nll=8, seed=3)
    d64 = torch.float64
    d = diagnose(score, target, process, progress=True, **kw)
    err = capsys.readouterr().err
    assert "diagnosing: 0/5 parts" in err and "PF-ODE likelihood" in err
    assert "diagnosing: 5/5 parts (100 %)" in err
    # the residual time by time draws exactly what one call over all the times draws
    g = torch.Generator().manual_seed(3)
    whole = residual_profile(score, process, target, [0.1, 0.5], n=16, generator=g, dtype=d64)
    assert [p["value"] for p in d["fpe_profile"]] == [p.mean for p in whole]
