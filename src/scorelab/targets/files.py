"""Reading a user's examples from ``.npy``, ``.npz`` or ``.csv`` files (data sets and
empirical measures both start here)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import InvalidParameter

_NPZ_KEYS = ("samples", "x", "data", "points")


def load_array(path: str | Path, key: str | None = None, field: str = "path") -> torch.Tensor:
    """Read an ``.npy``, ``.npz`` or ``.csv`` file into a float64 tensor ``[n, ...]``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise InvalidParameter(field, "file not found", str(path))
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                names = list(z.keys())
                if key is None:
                    key = next(
                        (k for k in _NPZ_KEYS if k in names), names[0] if len(names) == 1 else None
                    )
                if key not in names:
                    raise InvalidParameter(
                        "key", "names no array in the .npz file", key, ", ".join(names)
                    )
                arr = z[key]
        elif suffix == ".csv":
            arr = _read_csv(p)
        else:
            raise InvalidParameter(
                field, "has an unsupported extension", str(path), ".npy, .npz, .csv"
            )
    except InvalidParameter:
        raise
    except Exception as exc:  # truncated or foreign files: zipfile, EOF, decoding, numpy errors
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise InvalidParameter(
            field, f"could not be read as numbers ({detail})", str(path)
        ) from None
    arr = np.asarray(arr)
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InvalidParameter(field, "does not hold real numbers", str(path))
    data = torch.from_numpy(arr.astype(np.float64))
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim < 2 or data.shape[0] == 0:
        raise InvalidParameter(field, "holds no examples", str(path))
    if not bool(torch.isfinite(data).all()):
        raise InvalidParameter(field, "holds NaN or inf values", str(path))
    return data


def _read_csv(path: Path) -> np.ndarray:
    with path.open() as fh:
        first = fh.readline()
    try:
        [float(v) for v in first.strip().split(",")]
        skip = 0
    except ValueError:
        skip = 1  # a header line
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty file: "holds no examples" says it below
        return np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2)
