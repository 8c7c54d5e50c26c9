"""The contracts (``scorelab.protocols``), the Target base class's definition-time check, the one
sample-result type and the researcher's top-level API (the README's tour, run as written)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

import scorelab
from scorelab import protocols
from scorelab.processes import VP
from scorelab.schedules import LinearBeta
from scorelab.targets import Empirical, Gaussian, Target
from scorelab.targets.base import IncompleteTarget

ROOT = Path(__file__).resolve().parents[1]
F64 = torch.float64


def test_the_score_model_type_is_defined_once():
    """No module but ``protocols`` defines a score-model type (an alias of a Callable, or a
    Protocol): the others import it."""
    defined = []
    for path in (ROOT / "src" / "scorelab").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Subscript):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                if any(re.fullmatch(r"Score(Fn|Model|Function)", n) for n in names):
                    defined.append(f"{path.name}: {names}")
            if isinstance(node, ast.ClassDef) and node.name in ("ScoreModel", "ScoreFn"):
                defined.append(f"{path.name}: class {node.name}")
    assert defined == ["protocols.py: class ScoreModel"], defined


def test_components_meet_their_protocols():
    process = VP(LinearBeta())
    target = Gaussian([0.0, 1.0], [1.0, 2.0])
    assert isinstance(target, protocols.TargetLike)
    assert isinstance(target.score_model(process), protocols.ScoreModel)
    assert isinstance(lambda x, t: -x, protocols.ScoreModel)
    assert not isinstance(3.0, protocols.ScoreModel)


def test_a_target_claiming_a_score_it_does_not_implement_is_refused_when_defined():
    with pytest.raises(IncompleteTarget, match=r"Silent: has_score = True.*_score.*_denoise"):

        class Silent(Target):
            has_score = True

            def _sample(self, n, generator):
                return torch.zeros(n, 1)

    assert issubclass(IncompleteTarget, scorelab.ScorelabError)

    class PointMass(Target):
        """All mass at a: E[X₀ | X_t] = a, given as the denoiser only."""

        has_score = True
        singular = True

        def __init__(self, a):
            super().__init__((len(a),))
            self.a = torch.tensor(a, dtype=F64)

        def _sample(self, n, generator):
            return self.a.expand(n, -1)

        def _denoise(self, x, m, v):
            return self.a.to(x).expand_as(x)

    # the score follows by Tweedie's formula: the empirical measure on the one atom agrees
    process = VP(LinearBeta())
    target, reference = PointMass([1.0, -2.0]), Empirical(torch.tensor([[1.0, -2.0]]))
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    for t in (0.1, 0.7):
        expected = reference.score(x, t, process)
        assert torch.allclose(target.score(x, t, process), expected, rtol=1e-10, atol=1e-10)


def test_one_sample_result_type():
    process = VP(LinearBeta())
    target = Gaussian([0.0], [1.0])
    grid = scorelab.TimeGrid(steps=3)
    result = scorelab.generate(target.score_model(process), process, (1,), grid=grid, n=5)
    direct = scorelab.integrate(
        "heun", target.score_model(process), process, grid, torch.zeros(5, 1)
    )
    from scorelab.interop import SchedulerRun
    from scorelab.sampling import Generated

    assert type(result) is type(direct) is scorelab.SampleResult is Generated
    assert issubclass(SchedulerRun, scorelab.SampleResult)
    assert result.x is result.samples and result.seconds > 0 and direct.seconds is None
    result.x = result.samples[:2]  # the old name writes through too
    assert result.samples.shape == (2, 1)


def test_the_researcher_api_is_at_the_top_level():
    from scorelab import config, metrics, models, sampling

    assert scorelab.generate is sampling.generate and scorelab.evaluate is metrics.evaluate
    assert scorelab.build_grid is config.build_grid and scorelab.build_score is config.build_score
    assert scorelab.load_score_model is models.load_score_model
    assert {"generate", "integrate", "TimeGrid", "evaluate", "SampleResult"} <= set(dir(scorelab))


def test_the_readme_tour_runs_as_written(capsys):
    """The README's tour, executed: one import site (``scorelab``) for building, sampling and
    measuring. Its samples' W2 is within 2× the finite-sample floor (Heun, 25 steps, the exact
    score: 1.45× here), where the prior's draws are at 5.5×."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = text.split("## A short tour", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    imports = set()
    for n in ast.walk(ast.parse(tour)):
        if isinstance(n, ast.Import):
            imports.update(a.name for a in n.names)
        elif isinstance(n, ast.ImportFrom):
            imports.add(n.module)
    assert imports <= {"torch", "scorelab"}, imports
    torch.set_num_threads(1)
    namespace: dict = {}
    exec(compile(tour, "README.md (tour)", "exec"), namespace)
    out = capsys.readouterr().out
    assert "NFE 50" in out
    ev = scorelab.evaluate(namespace["result"].samples, namespace["target"], ["w2"])
    assert ev["w2"].value < 2 * ev["w2"].floor, ev.to_json()
