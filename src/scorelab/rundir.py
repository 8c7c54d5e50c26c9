"""A run directory's integrity: one writer at a time, outputs checked before work starts, and a
record of every resume.

* ``RunLock``: ``.scorelab.lock`` in the run directory holds the writer's PID, host, start
  time and command, and an advisory ``flock`` for the writer's life. The kernel drops the flock
  when the process dies however it dies (SIGKILL included), so a lock file without a flock is
  stale: it is taken over with a message naming the dead holder. A second writer is refused
  with the holder's PID. Re-entrant within one process (``run`` holds it while ``train``
  takes it again). Where ``fcntl`` does not exist, the PID is checked instead.
* ``check_output_dir`` / ``check_output_file``: an output path that cannot be written is
  refused with the option's name before any training or sampling.
* ``config_changes``: the keys whose values differ between two configs (flattened).
* ``record_resume``: one JSON line per resume in ``resumes.jsonl`` (what changed, from which
  step), so a run directory tells how its checkpoint came to be.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .errors import InvalidParameter, ScorelabError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".scorelab.lock"
RESUMES = "resumes.jsonl"


class RunDirBusy(ScorelabError):
    """Another process is writing to the run directory."""


# --------------------------------------------------------------------------------------------
# output paths
# --------------------------------------------------------------------------------------------


def check_output_dir(path: str | Path, field: str = "--out") -> Path:
    """``path`` as a directory this process can write into (created if missing), or an
    ``InvalidParameter`` naming ``field``: a regular file is there, a parent is a file, or the
    place is not writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InvalidParameter(
            field, "names an existing file, not a directory", str(path), "a directory path"
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InvalidParameter(
                    field, f"lies under {parent}, which is a file", str(path), "a directory path"
                )
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InvalidParameter(
            field, f"cannot be written ({exc.strerror or exc})", str(path), "a writable directory"
        ) from None
    return path


def check_output_file(path: str | Path, field: str = "--out", suffix: str | None = None) -> Path:
    """``path`` as a file this process can create or replace (its directory created if
    missing), or an ``InvalidParameter`` naming ``field``."""
    path = Path(path)
    if suffix is not None and path.suffix != suffix:
        raise InvalidParameter(field, f"must end in {suffix}", str(path))
    if path.is_dir():
        raise InvalidParameter(field, "names a directory, not a file", str(path), "a file path")
    try:  # the file is written beside itself and renamed: its directory must be writable
        check_output_dir(path.parent if str(path.parent) else Path("."), field)
    except InvalidParameter as exc:
        raise InvalidParameter(field, exc.problem, str(path), exc.allowed) from None
    return path


# --------------------------------------------------------------------------------------------
# the lock
# --------------------------------------------------------------------------------------------

_HELD: dict[str, RunLock] = {}  # resolved run directory → the lock this process holds


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def _describe(info: Mapping[str, Any]) -> str:
    parts = [f"PID {info.get('pid', '?')}"]
    if info.get("host"):
        parts.append(f"on {info['host']}")
    if info.get("user"):
        parts.append(f"user {info['user']}")
    if info.get("started"):
        parts.append(f"since {info['started']}")
    return ", ".join(parts)


def _read_info(path: Path) -> dict:
    try:
        info = json.loads(path.read_text(encoding="utf-8", errors="replace") or "{}")
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


class RunLock:
    """The one-writer lock of a run directory (a context manager; ``acquire``/``release``).

    ``log`` receives the message when a stale lock is taken over (default: stderr)."""

    def __init__(self, run_dir: str | Path, log: Callable[[str], None] | None = None):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self._fd: int | None = None
        self._depth = 0
        self.took_over: dict | None = None  # the stale holder's record, when one was replaced

    @property
    def _key(self) -> str:
        return str(self.run_dir.resolve())

    def acquire(self) -> RunLock:
        held = _HELD.get(self._key)
        if held is not None:  # re-entrant: this process already holds it
            held._depth += 1
            self._shared = held
            return self
        self._shared = None
        check_output_dir(self.run_dir)
        for _ in range(20):  # retried only when another process replaced the file meanwhile
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if not self._lock_fd(fd):
                    info = _read_info(self.path)
                    raise RunDirBusy(
                        f"--out: run directory {self.run_dir} is in use by another scorelab "
                        f"process ({_describe(info)}); wait for it to finish, stop it, or "
                        "choose another --out"
                    )
                # the file we locked must still be the one at the path (not unlinked by a
                # holder that released it between our open and our lock)
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    break
            except FileNotFoundError:
                pass
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        else:  # pragma: no cover - a pathological race
            raise RunDirBusy(f"--out: could not lock the run directory {self.run_dir}")
        previous = _read_info(self.path)
        if previous.get("pid") not in (None, os.getpid()):
            self.took_over = previous
            self.log(
                f"note: {self.run_dir} had a stale lock of a process that no longer runs "
                f"({_describe(previous)}); taking it over"
            )
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "user": _user(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(sys.argv),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd, self._depth = fd, 1
        _HELD[self._key] = self
        return self

    def _lock_fd(self, fd: int) -> bool:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False
            except OSError:  # a file system without flock: fall back on the PID
                pass
        info = _read_info(self.path)
        pid = info.get("pid")
        same_host = info.get("host") in (None, socket.gethostname())
        return not (isinstance(pid, int) and pid != os.getpid() and same_host and _alive(pid))

    def release(self) -> None:
        if self._shared is not None:
            self._shared._depth -= 1
            self._shared = None
            return
        if self._fd is None:
            return
        self._depth -= 1
        if self._depth > 0:
            return
        _HELD.pop(self._key, None)
        try:
            os.unlink(self.path)  # while still locked: nobody else can hold this file
        except OSError:
            pass
        os.close(self._fd)  # drops the flock
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment
        return None


def held(run_dir: str | Path) -> bool:
    """Whether this process holds the lock of ``run_dir``."""
    return str(Path(run_dir).resolve()) in _HELD


# --------------------------------------------------------------------------------------------
# resume: what changed
# --------------------------------------------------------------------------------------------


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b.c": value}`` for every leaf of nested mappings (lists are leaves)."""
    if isinstance(tree, Mapping):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(flatten(v, f"{prefix}{k}."))
        if not tree and prefix:
            out[prefix[:-1]] = {}
        return out
    return {prefix[:-1]: tree}


def config_changes(old: Mapping, new: Mapping) -> dict[str, tuple[Any, Any]]:
    """The dotted keys whose values differ, with (old, new); a key missing on one side is
    ``None`` there."""
    a, b = flatten(old), flatten(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def covered(key: str, allowed: set[str] | list[str] | tuple[str, ...]) -> bool:
    """Whether ``key`` is one of ``allowed`` or lies below one (``train`` covers
    ``train.steps``)."""
    return any(key == a or key.startswith(a + ".") for a in allowed)


def record_resume(run_dir: str | Path, record: Mapping[str, Any]) -> Path:
    """Append one line to the run directory's ``resumes.jsonl``."""
    path = Path(run_dir) / RESUMES
    line = json.dumps(
        {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid(), **record},
        ensure_ascii=False,
        default=str,
    )
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    return path


def trim_metrics(path: str | Path, step: int) -> int:
    """Drop the lines of a ``metrics.jsonl`` logged after ``step`` (written after the last
    checkpoint by a run that was killed), so a resumed run does not log those steps twice.
    Returns the number of lines dropped."""
    from .storage import atomic_write

    path = Path(path)
    if not path.is_file():
        return 0
    keep, dropped = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            s = json.loads(line).get("step")
        except (ValueError, AttributeError):
            s = None
        if isinstance(s, int) and s > step:
            dropped += 1
        elif line.strip():
            keep.append(line)
    if dropped:
        text = "".join(ln + "\n" for ln in keep)
        atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return dropped


__all__ = [
    "LOCK_NAME",
    "RESUMES",
    "RunDirBusy",
    "RunLock",
    "check_output_dir",
    "check_output_file",
    "config_changes",
    "covered",
    "flatten",
    "held",
    "record_resume",
    "trim_metrics",
]
