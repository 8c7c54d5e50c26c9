"""Drawing n samples: chunks of bounded size, per-sample noise streams, NFE and wall time.

``generate`` (``scorelab.generate``) is what the CLI, the pipeline and scripts call. Sample i's
prior draw and every noise increment come from its own stream (``noise.SampleNoise``), so the
same seed gives the same sample whatever ``batch_size`` is (batches are rounded to whole noise
blocks). Each chunk is run by ``samplers.integrate``, which counts the NFE and takes the final
step to σ = 0 for every sampler, built-in or plugin alike.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from .errors import InvalidParameter, NonFinite
from .grids import TimeGrid
from .noise import DEFAULT_BLOCK, SampleNoise
from .processes import ForwardProcess, families
from .progress import tracker
from .protocols import SampleResult, ScoreModel
from .registry import entries, entry
from .resources import itemsize, require_memory
from .samplers import integrate
from .seeding import check_seed

Generated = SampleResult  # the name ``generate``'s result had before the two types merged

#: ``prior(z, rows) -> x_T``: starting points from the standard-normal draws z of the samples
#: ``rows`` (a slice of the n)
Prior = Callable[[torch.Tensor, slice], torch.Tensor]


def sampler_parameters(kind: str) -> dict[str, object]:
    """The keyword parameters (and defaults) a registered sampler accepts."""
    return entry("sampler", kind).parameters


def get_sampler(kind: str, process: ForwardProcess | None = None):
    """The registered sampler ``kind``, checked against the processes it applies to."""
    e = entry("sampler", kind)
    allowed = e.meta.get("processes")
    kinds = families(process)
    if process is not None and allowed and not kinds & set(allowed):
        fits = [
            name
            for name, other in entries("sampler").items()
            if not other.meta.get("processes") or kinds & set(other.meta["processes"])
        ]
        raise InvalidParameter(
            "sampler.kind",
            f"'{kind}' is derived for the {', '.join(allowed)} process only; "
            f"this process is '{process.kind}'",
            kind,
            ", ".join(fits),
        )
    return e.obj


@torch.no_grad()
def generate(
    score: ScoreModel,
    process: ForwardProcess,
    event_shape: tuple[int, ...],
    *,
    sampler: str = "heun",
    grid: TimeGrid | None = None,
    n: int = 1000,
    seed: int = 0,
    batch_size: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    progress: bool = False,
    check_finite: bool = True,
    prior: Prior | None = None,
    **params,
) -> SampleResult:
    """Draw ``n`` samples with ``sampler`` on ``grid``, from the process's prior at the grid's
    first time down to its last (to σ = 0 when ``grid.final == "denoise"``).

    The samples are drawn in chunks, each sample with its own noise stream, so that sample i is
    the same whatever the batch size (seeded by ``seed`` and i). Nothing is estimated here: the
    samples carry the sampler's discretisation error and the score model's error, which
    ``scorelab.evaluate`` and ``scorelab.budget`` then measure.

    Args:
        score: The score model ``s(x, t)`` ≈ ∇ log p_t(x), called on a batch
            ``[B, *event_shape]`` and a time in the process's time t (not σ; a float or a ``[B]``
            tensor). ``target.score_model(process)`` is a target's exact score; a trained
            checkpoint (``scorelab.load_score_model``) or a wrapped denoiser or ε-predictor
            (``scorelab.interfaces.from_denoiser``, ``from_eps``) works alike.
        process: The forward process whose reverse is sampled (``VP``, ``VE``, ``EDM``, …).
        event_shape: The shape of one sample, ``(d,)`` or ``(C, H, W)``.
        sampler: A registered sampler (``scorelab list sampler``); one derived for another
            process family is refused with the list of those that apply.
        grid: The times to step through (default ``TimeGrid()``: 100 uniform steps in t, from
            ``process.T`` to ``process.t_min``).
        n: The number of samples.
        seed: Seeds the prior draws and the sampler's noise.
        batch_size: Samples per chunk (default: all n at once), rounded up to whole noise blocks.
        dtype: ``torch.float32`` or ``torch.float64`` (for comparisons with an exact oracle).
        device: Where the samples and the score run (default: the CPU).
        progress: Show the progress on stderr.
        check_finite: Refuse non-finite samples (``NonFinite``, naming how many, the sampler and
            the first step where they appeared).
        prior: ``prior(z, rows) -> x_T`` maps each chunk's standard-normal draws z (the rows
            ``rows`` of the n samples, a ``slice``) to the starting points; the default is
            ``prior_std · z``. A prior that reuses z (e.g. m_T x₀ + s_T z, the exact marginal)
            starts every sample from the same draw as the default prior: the two runs are
            coupled.
        **params: The sampler's own parameters (``eta`` for ``ddim``, …), checked against its
            registered signature.

    Returns:
        A ``SampleResult``: ``samples`` ``[n, *event_shape]`` in ``dtype`` on ``device``,
        ``nfe`` (score evaluations of one chunk's run) and ``seconds`` (wall time).

    Raises:
        InvalidParameter: An unknown sampler parameter, ``n < 1``, a sampler that does not
            apply to ``process``, or a request whose samples cannot fit in memory.

    Examples:
        Heun on EDM's grid with the ring's exact score (25 steps, 50 score evaluations):

        >>> import scorelab
        >>> target = scorelab.build_target({"kind": "gmm", "preset": "ring8"})
        >>> cosine = {"kind": "cosine", "clip_max": 20.0}
        >>> process = scorelab.build_process({"kind": "vp", "schedule": cosine})
        >>> grid = scorelab.TimeGrid("edm", steps=25)
        >>> score = target.score_model(process)  # the exact score
        >>> result = scorelab.generate(score, process, target.event_shape, sampler="heun",
        ...                            grid=grid, n=2000)
        >>> tuple(result.samples.shape), result.nfe
        ((2000, 2), 50)
    """
    get_sampler(sampler, process)  # refuses a sampler derived for another process
    seed = check_seed(seed)
    unknown = set(params) - set(sampler_parameters(sampler))
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidParameter(
            name,
            f"is not a parameter of sampler '{sampler}'",
            params[name],
            ", ".join(sampler_parameters(sampler)) or "none",
        )
    if int(n) < 1:
        raise InvalidParameter("n", "must be ≥ 1", n)
    grid = grid or TimeGrid()
    block = DEFAULT_BLOCK
    batch = int(n) if batch_size is None else int(batch_size)
    if batch < 1:
        raise InvalidParameter("batch_size", "must be ≥ 1", batch_size)
    batch = max(block, (batch + block - 1) // block * block)  # whole noise blocks
    _require_memory(int(n), min(batch, int(n)), event_shape, dtype, device)
    starts = list(range(0, int(n), batch))
    out, nfe = [], 0
    t0 = time.perf_counter()
    # progress in samples, advanced after every step of every batch
    bar = tracker(progress, int(n), "sampling", "samples")
    steps = max(1, grid.n_steps)
    try:
        for start in starts:
            size = min(batch, int(n) - start)
            noise = SampleNoise(
                seed, start, size, event_shape, dtype=dtype, device=device, block=block
            )
            x = _start(process, prior, noise, slice(start, start + size))
            kw = dict(params)
            if progress:
                kw["callback"] = lambda k, *_, s=start, b=size: bar.update(
                    s + b * min(1.0, (k + 1) / steps)
                )
            res = integrate(sampler, score, process, grid, x, noise=noise, **kw)
            out.append(res.samples)
            nfe = res.nfe
            bar.update(start + size)
    finally:
        bar.close()
    samples = torch.cat(out)
    if check_finite:
        bad = ~torch.isfinite(samples.reshape(samples.shape[0], -1)).all(1)
        if bool(bad.any()):
            first = int(torch.nonzero(bad)[0]) // batch * batch
            size = min(batch, int(n) - first)
            noise = SampleNoise(seed, first, size, event_shape, dtype=dtype, device=device)
            rows = slice(first, first + size)
            where = _first_bad_step(sampler, score, process, grid, noise, params, prior, rows)
            raise NonFinite(
                f"sampler '{sampler}' produced NaN or inf in {int(bad.sum())} of {int(n)} "
                f"samples{where}; nothing was written. Check the score model (its weights or "
                "its scale), or use more steps or a smaller step size"
            )
    return SampleResult(samples, nfe, time.perf_counter() - t0)


def _require_memory(n, batch, event_shape, dtype, device) -> None:
    """Refuse a draw whose samples cannot fit in memory (the output twice over while it is
    concatenated, and a working set of a few copies of one batch)."""
    per = math.prod(event_shape) * itemsize(dtype)
    need = per * (2 * n + 4 * batch)
    what = f"{n} samples of shape {tuple(event_shape)} in {str(dtype).removeprefix('torch.')}"
    require_memory(need, "n", n, what, device)


def _start(process: ForwardProcess, prior: Prior | None, noise: SampleNoise, rows: slice):
    """The starting points x_T of the samples ``rows`` from their standard-normal draws."""
    z = noise()
    if prior is None:
        return process.prior_std * z
    x = prior(z, rows)
    if not isinstance(x, torch.Tensor) or x.shape != z.shape:
        raise InvalidParameter(
            "prior",
            "must return a tensor shaped like its draws z",
            tuple(getattr(x, "shape", ())),
            str(tuple(z.shape)),
        )
    return x.to(dtype=z.dtype, device=z.device)


def _first_bad_step(sampler, score, process, grid, noise, params, prior=None, rows=None) -> str:
    """' (first at step k of N, t = …)': where a chunk's samples first became non-finite (the
    chunk is drawn again, with the same noise, watching every step)."""
    first: list = []

    def watch(k, t, x, *_):
        if not first and not bool(torch.isfinite(x).all()):
            first.append((k, float(t)))

    try:
        x = _start(process, prior, noise, rows)
        if not bool(torch.isfinite(x).all()):
            return " (already in the prior draw)"
        integrate(sampler, score, process, grid, x, noise=noise, **{**params, "callback": watch})
    except Exception:  # the diagnosis must never hide the error it explains
        return ""
    if not first:
        return ""
    k, t = first[0]
    return f" (first after step {k + 1} of {grid.n_steps}, at t = {t:.4g})"
