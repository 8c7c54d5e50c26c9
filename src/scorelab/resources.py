"""Sizes checked before allocation: a request that cannot fit in memory is refused with the
key that asked for it, instead of ``std::bad_alloc``, the OOM killer, or hours of swapping.

``require_memory(nbytes, field, value, what)`` compares an estimate with the memory available
now (``MemAvailable`` on Linux; the physical memory elsewhere; CUDA's free memory for a CUDA
device). The estimates are lower bounds of what the caller will allocate, so a refusal is
certain to be right; a request that passes can still fail later, and the CLI reports that as
out of memory too.
"""

from __future__ import annotations

import os

import torch

from .errors import InvalidParameter

# what is left to the rest of the process (torch, the model, Python) beside the estimate
HEADROOM = 0.9


def available_memory(device: torch.device | str | None = None) -> int | None:
    """Bytes that can be allocated now on ``device`` (host memory for None or the CPU), or None
    when unknown."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda":
        try:
            free, _ = torch.cuda.mem_get_info(dev)
            return int(free)
        except Exception:  # no CUDA here: the device check will say so
            return None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def human(nbytes: float) -> str:
    """``1.5 GB``, ``80 TB`` (decimal units)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB"):
        if abs(nbytes) < 1000 or unit == "EB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1000
    return f"{nbytes:.3g} EB"  # pragma: no cover


def require_memory(
    nbytes: float,
    field: str,
    value,
    what: str,
    device: torch.device | str | None = None,
) -> None:
    """Refuse (``InvalidParameter`` naming ``field``) an allocation of about ``nbytes`` that
    does not fit in the memory available on ``device``."""
    avail = available_memory(device)
    if avail is None or nbytes <= HEADROOM * avail:
        return
    where = (
        "on this machine"
        if device is None or torch.device(device).type == "cpu"
        else (f"on {device}")
    )
    raise InvalidParameter(
        field,
        f"is too large: {what} would take at least {human(nbytes)}, and {human(avail)} is free "
        f"{where}",
        value,
        f"a value whose data fits in {human(HEADROOM * avail)}",
    )


def itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


__all__ = ["available_memory", "human", "itemsize", "require_memory"]
