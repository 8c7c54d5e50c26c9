"""Errors that reach users: each names the field, the value and what is allowed."""

from __future__ import annotations

import math
from typing import Any


class ScorelabError(Exception):
    """Base class of every error scorelab raises on purpose (the CLI prints these without a
    traceback)."""


class InvalidParameter(ScorelabError, ValueError):
    """A parameter has a value that is not allowed.

    ``field`` is the parameter's name relative to the component that raised it; the config
    builder prefixes it with the component's path (``target.cov``) so the message points at the
    exact key the user wrote.
    """

    def __init__(self, field: str, problem: str, value: Any = None, allowed: str | None = None):
        self.field = field
        self.problem = problem
        self.value = value
        self.allowed = allowed
        super().__init__(self._render(field))

    def _render(self, field: str) -> str:
        msg = f"{field}: {self.problem}"
        if self.value is not None:
            msg += f" (got {_short(self.value)})"
        if self.allowed:
            msg += f"; allowed: {self.allowed}"
        return msg

    def at(self, prefix: str) -> InvalidParameter:
        """The same error with the field placed under ``prefix`` (e.g. ``target``)."""
        field = f"{prefix}.{self.field}" if prefix else self.field
        return InvalidParameter(field, self.problem, self.value, self.allowed)


class ConfigError(ScorelabError, ValueError):
    """A configuration could not be read or validated; the message lists every problem."""


def require_positive(field: str, value: float, *, allow_zero: bool = False) -> float:
    """``value`` as a float if finite and > 0 (≥ 0 with ``allow_zero``); else a clear error."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(field, "must be a number", value) from None
    ok = v >= 0 if allow_zero else v > 0
    if not (ok and math.isfinite(v)):
        raise InvalidParameter(field, "must be " + ("≥ 0" if allow_zero else "> 0"), value)
    return v


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Interrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM at a step boundary, after writing a checkpoint (a
    ``KeyboardInterrupt``, so code that handles Ctrl-C handles it; the CLI exits with
    128 + the signal's number)."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.message, self.signum = message, int(signum)

    def __str__(self) -> str:
        return self.message


class NonFinite(ScorelabError, ArithmeticError):
    """A computation produced NaN or infinite values where finite ones were needed (samples,
    a training loss); nothing non-finite was written."""
