"""YAML from users, read with limits: size, nesting depth and the size of the tree once its
aliases are expanded.

PyYAML's safe loader builds no objects but plain ones, yet a short file can still hurt: a
deeply nested one overflows Python's recursion (``RecursionError``), and an alias "bomb"
(``b: [*a, *a, …]`` nested a few times) is a tree of billions of nodes once expanded, which
every later walk over the config (overrides, validation) would visit. ``safe_load`` refuses
them with a ``ConfigError`` before anything walks the tree: the nesting depth is checked while
the document is composed, the expanded size on the composed node graph (shared nodes counted
once per use, without expanding them).
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import ConfigError

MAX_BYTES = 8 * 1024 * 1024  # a config file (means of a large mixture fit easily)
MAX_DEPTH = 64  # nested mappings and lists
MAX_NODES = 200_000  # nodes of the tree with every alias expanded


class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents nested deeper than ``MAX_DEPTH``."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _Refused(
                    f"is nested more than {MAX_DEPTH} levels deep (line {mark.line + 1})"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Refused(Exception):
    pass


def _expanded_size(root: yaml.Node) -> int:
    """Nodes of the tree with every alias expanded (a node used k times counts k times),
    computed on the graph without expanding it; refuses recursive aliases."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            children = _children(node)
            total = 1 + sum(sizes[id(c)] for c in children)
            sizes[key] = min(total, MAX_NODES + 1)  # saturate: only "too many" matters
            active.discard(key)
            continue
        if key in sizes:
            continue
        if key in active:
            raise _Refused("holds a recursive alias (a node that contains itself)")
        active.add(key)
        stack.append((node, True))
        for c in _children(node):
            if id(c) in active:
                raise _Refused("holds a recursive alias (a node that contains itself)")
            if id(c) not in sizes:
                stack.append((c, False))
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def safe_load(text: str | bytes, where: str) -> Any:
    """``text`` parsed as YAML (plain data only), or a ``ConfigError`` that starts with
    ``where`` (a file name, ``--set key``) and says what was wrong: not UTF-8, too large, too
    deeply nested, an alias bomb or a recursive alias, or a YAML syntax error."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise ConfigError(f"{where}: is {len(text)} bytes; allowed: at most {MAX_BYTES}")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{where}: is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as "
                "UTF-8 (binary files are not configs)"
            ) from None
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{where}: is {len(text)} characters; allowed: at most {MAX_BYTES}")
    if "\x00" in text:
        raise ConfigError(f"{where}: holds NUL characters (a binary file, not a YAML config)")
    loader = None
    try:
        loader = _LimitedLoader(text)  # checks the characters: may raise already
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node)
        if size > MAX_NODES:
            raise _Refused(
                f"expands to more than {MAX_NODES} values through its aliases (*name); "
                "write the values out or use fewer aliases"
            )
        return loader.construct_document(node)
    except _Refused as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        text = " ".join(str(exc).split())
        raise ConfigError(f"{where}: is not valid YAML ({text})") from None
    except (ValueError, OverflowError, TypeError) as exc:  # e.g. a date like 2001-02-30
        raise ConfigError(f"{where}: holds a value YAML cannot read ({exc})") from None
    except RecursionError:  # a construct the depth limit does not see (defensive)
        raise ConfigError(f"{where}: is nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "safe_load"]
