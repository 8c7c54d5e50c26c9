"""Walking a study's results.json: every number in a nested JSON value."""

from __future__ import annotations

from collections.abc import Iterator


def numbers(obj) -> Iterator[float]:
    """Every int or float (not bool) in nested dicts and lists."""
    if isinstance(obj, dict):
        for v in obj.values():
            yield from numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from numbers(v)
    elif isinstance(obj, int | float) and not isinstance(obj, bool):
        yield obj
