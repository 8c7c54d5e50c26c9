"""The examples in the docstrings of the main entry points run and print what they say
(doctest), so the API reference's examples cannot go stale."""

from __future__ import annotations

import doctest
import importlib

import pytest

# (module, name): the entry points whose docstrings carry an example
ENTRY_POINTS = [
    ("scorelab.sampling", "generate"),
    ("scorelab.samplers", "integrate"),
    ("scorelab.grids", "TimeGrid"),
    ("scorelab.metrics.evaluate", "evaluate"),
    ("scorelab.config.build", "build_target"),
    ("scorelab.config.build", "build_process"),
    ("scorelab.config.io", "load_config"),
    ("scorelab.bounds.paper_a", "kl_bound"),
    ("scorelab.bounds.paper_a", "w2_bound"),
    ("scorelab.bounds", "all_bounds"),
    ("scorelab.budget.core", "error_budget"),
    ("scorelab.registry", "register"),
]


@pytest.mark.parametrize(("module", "name"), ENTRY_POINTS, ids=[n for _, n in ENTRY_POINTS])
def test_the_docstring_example_runs(module, name):
    obj = getattr(importlib.import_module(module), name)
    tests = doctest.DocTestFinder(recurse=False).find(obj, name, globs={})
    assert tests and tests[0].examples, f"{module}.{name} has no example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
