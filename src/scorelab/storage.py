"""Files scorelab writes: every write goes to a temporary file first and is renamed into
place, so an interrupted run never leaves a half-written file where a good one was."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import InvalidParameter, NonFinite


def atomic_write(path: str | Path, write) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        # mkstemp makes the file 0600: give it the mode a plain open() would (0666 less the
        # umask), so that others on a shared machine can read results as the user intends
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _umask() -> int:
    """The process's umask, read without changing it where the system says it
    (/proc/self/status), else by setting and restoring it."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_samples(path: str | Path, samples: torch.Tensor, **metadata: Any) -> Path:
    """Write ``samples`` (``[n, ...]``) and JSON metadata (config, NFE, wall time) to ``.npz``."""
    path = Path(path)
    if path.suffix != ".npz":
        raise InvalidParameter("out", "must end in .npz", str(path))
    if samples.is_floating_point() and not bool(torch.isfinite(samples).all()):
        bad = int((~torch.isfinite(samples.reshape(samples.shape[0], -1))).any(1).sum())
        raise NonFinite(f"{path}: not written: {bad} of {samples.shape[0]} samples hold NaN or inf")
    arrays = {"samples": samples.detach().cpu().numpy(), "metadata": np.array(json.dumps(metadata))}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    return atomic_write(path, write)


def load_samples(path: str | Path) -> tuple[np.ndarray, dict]:
    """(samples, metadata) from a file written by ``save_samples`` (or any .npz with
    ``samples``)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidParameter("samples", "file not found", str(path))
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise InvalidParameter("samples", "is a .npy array, not an .npz file", str(path))
            if "samples" not in z:
                raise InvalidParameter("samples", "has no 'samples' array", str(path), ", ".join(z))
            samples = z["samples"]
            if not isinstance(samples, np.ndarray) or not np.issubdtype(samples.dtype, np.number):
                raise InvalidParameter("samples", "holds no numeric 'samples' array", str(path))
            meta = json.loads(str(z["metadata"])) if "metadata" in z else {}
            if not isinstance(meta, dict):
                meta = {"metadata": meta}
            return samples, meta
    except InvalidParameter:
        raise
    except Exception as exc:  # a truncated or foreign file: zipfile, numpy, json errors
        raise InvalidParameter(
            "samples", f"is not a readable .npz file ({type(exc).__name__}: {exc})", str(path)
        ) from None


def write_json(path: str | Path, data: Any) -> Path:
    """Atomically write JSON (NaN and infinities become null, so any reader can parse it)."""

    def clean(v):
        if isinstance(v, float) and not np.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    text = json.dumps(clean(data), indent=2, ensure_ascii=False)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n"))
