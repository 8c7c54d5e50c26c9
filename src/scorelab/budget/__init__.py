"""The error budget of a run: its measured error split into score, discretisation, prior and
early-stopping parts by swapping one learned or approximate piece at a time for its exact
counterpart, with every random draw held fixed; beside each part, the matching term of every
bound that applies (docs/budget.md; the decomposition: docs/theory.md §13).

* ``chain``: the parts, the order of the swaps, the arms and the links;
* ``exact``: every arm in closed form (Gaussian target, exact score, a sampler's Gaussian
  oracle);
* ``samples``: every arm on samples, coupled, with paired intervals;
* ``terms``: the bounds' terms matched to the parts;
* ``core``: ``error_budget``, which runs the chain;
* ``source``: the budget of a run directory or a config, and its files;
* ``view``: the figure, the report section and the sweep's figure.
"""

from .chain import PARTS, parse_order
from .core import Budget, error_budget

__all__ = ["PARTS", "Budget", "error_budget", "parse_order"]
