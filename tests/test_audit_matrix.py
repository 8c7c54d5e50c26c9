"""The conformance matrix (``scorelab audit diffusers:all``): the classes found in diffusers'
exports, the options read from each class's signature, and a small matrix (2 classes × 2
options) whose CSV and HTML say what the certificates of its configurations say."""

from __future__ import annotations

import csv
import json
import types
from typing import Literal

import pytest

pytest.importorskip("diffusers")

import diffusers

from scorelab.audit import certify
from scorelab.audit.matrix import (
    Matrix,
    configurations,
    exported_schedulers,
    label,
    markdown,
    option_values,
    quiet_diffusers,
    run_matrix,
)
from scorelab.config import build_target
from scorelab.errors import InvalidParameter

TARGET = {"kind": "gaussian", "dim": 2, "mean": 0.5, "cov": 0.25}
STEPS = (10, 20, 40, 80)
CLASSES = ("EulerDiscreteScheduler", "DPMSolverMultistepScheduler")
OPTIONS = ("use_karras_sigmas", "solver_order")


class _Stepper:
    def set_timesteps(self, n):
        import torch

        self.timesteps = torch.arange(n, 0, -1)

    def step(self, model_output, timestep, sample, return_dict=True):
        return (sample - 0.01 * model_output,)


class Good(_Stepper):
    def __init__(self, flag: bool = False, spacing: Literal["a", "b", "c"] = "b", order: int = 2):
        pass


class NoStep:
    def set_timesteps(self, n):
        pass


class NeedsMask(_Stepper):
    def step(self, model_output, timestep, sample, mask):
        return (sample,)


class Breaks(_Stepper):
    def step(self, model_output, timestep, sample):
        raise IndexError("a token scheduler")


def test_classes_are_found_by_their_api_and_the_others_are_listed_with_why():
    module = types.SimpleNamespace(
        GoodScheduler=Good,
        NoStepScheduler=NoStep,
        MaskScheduler=NeedsMask,
        BreaksScheduler=Breaks,
        FlaxGoodScheduler=Good,
        Helper=Good,  # not named *Scheduler: not an export of interest
    )
    found, excluded = exported_schedulers(module)
    assert found == ["GoodScheduler"]
    reasons = {e.name: e.reason for e in excluded}
    assert set(reasons) == {
        "NoStepScheduler",
        "MaskScheduler",
        "BreaksScheduler",
        "FlaxGoodScheduler",
    }
    assert "step()" in reasons["NoStepScheduler"]
    assert "mask" in reasons["MaskScheduler"]
    assert "IndexError" in reasons["BreaksScheduler"]


def test_the_installed_diffusers_sampling_classes_include_the_usual_ones():
    found, excluded = exported_schedulers()
    for name in ("DDIMScheduler", "EulerDiscreteScheduler", "DPMSolverMultistepScheduler"):
        assert name in found
    assert all(not n.startswith("Flax") for n in found)
    assert {e.name for e in excluded}.isdisjoint(found)


def test_options_are_read_from_the_signature():
    values = option_values(Good, ("flag", "spacing", "order", "absent"))
    assert values == {"flag": [True], "spacing": ["a", "c"]}  # order: no domain for "order"
    assert configurations(Good, ("flag",)) == [{}, {"flag": True}]
    # a number's values come from DOMAINS, minus the class's default
    dpm = option_values(diffusers.DPMSolverMultistepScheduler, ("solver_order",))
    assert dpm == {"solver_order": [1, 3]}
    assert label({}) == "default" and label({"solver_order": 3}) == "solver_order=3"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Certificates are many tiny tensor operations: one thread each, as the cells run."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def small_matrix(tmp_path_factory):
    out = tmp_path_factory.mktemp("matrix")
    logs = []
    m = run_matrix(TARGET, out, steps=STEPS, classes=CLASSES, options=OPTIONS, log=logs.append)
    return m, out, logs


def test_the_small_matrix_says_what_its_certificates_say(small_matrix):
    m, out, _ = small_matrix
    target = build_target(TARGET)
    want = [
        (name, config)
        for name in CLASSES
        for config in configurations(getattr(diffusers, name), OPTIONS)
    ]
    assert [(r["scheduler"], r["config"]) for r in m.rows] == want
    assert len(want) == 2 + 4  # Euler: default, Karras; DPM: default, Karras, orders 1 and 3
    for row, (name, config) in zip(m.rows, want, strict=True):
        with quiet_diffusers():
            cert = certify(f"diffusers:{name}", target, scheduler_config=config, steps=STEPS)
        assert row["verdict"] == ("pass" if cert.passed else "fail")
        assert row["failed_checks"] == cert.failed()
        assert row["nominal_order"] == cert.nominal_order
        fit = cert.fitted_order
        assert row["fitted_order"] == (None if fit is None else pytest.approx(fit["value"]))
        assert row["kl_at_most_steps"] == pytest.approx(cert.ladder[-1].kl)
    with open(out / "matrix.csv", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    rows = [r for r in table if r["verdict"] != "excluded"]
    assert [(r["scheduler"], r["configuration"]) for r in rows] == [(n, label(c)) for n, c in want]
    for r, row in zip(rows, m.rows, strict=True):
        assert r["verdict"] == row["verdict"]
        assert r["failed_checks"] == " ".join(row["failed_checks"])
        assert float(r["kl_at_most_steps"]) == pytest.approx(row["kl_at_most_steps"], rel=1e-3)
    assert {r["scheduler"] for r in table if r["verdict"] == "excluded"} == {
        e.name for e in m.excluded
    }
    html = (out / "matrix.html").read_text(encoding="utf-8")
    assert "<script" not in html and "http" not in html.split("</style>")[0]  # self-contained
    for row in m.rows:
        assert f"<td>{row['configuration']}</td><td>{row['verdict']}</td>" in html


def test_the_markdown_lists_every_configuration_that_does_not_pass(small_matrix):
    m, out, _ = small_matrix
    again = Matrix.from_json(json.loads((out / "matrix.json").read_text(encoding="utf-8")))
    assert again.rows == m.rows and again.counts() == m.counts()
    text = markdown(again)
    table = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    failing = [r for r in m.rows if r["verdict"] != "pass"]
    assert len(table) == 1 + len(failing)  # the header, then one line each
    for r, line in zip(failing, table[1:], strict=True):
        assert f"| {r['scheduler']} | {r['configuration']} | {r['verdict']} |" in line
    for r in m.rows:
        if r["verdict"] == "pass":
            assert r["configuration"] in text.split("Passing configurations:")[1]


def test_a_rerun_reads_every_cell_from_its_cache(small_matrix):
    m, out, _ = small_matrix
    logs = []
    again = run_matrix(TARGET, out, steps=STEPS, classes=CLASSES, options=OPTIONS, log=logs.append)
    assert again.rows == m.rows
    assert not any("cells cached" in line for line in logs)  # nothing left to run: no pool


def test_an_unknown_class_is_refused_with_the_found_ones(tmp_path):
    with pytest.raises(InvalidParameter, match="DDIMScheduler"):
        run_matrix(TARGET, tmp_path, classes=["NoSuchScheduler"])
