"""The shape of the source: functions short enough to read at once, comments that a reader
without the tracker understands.

A function's length is counted from its first statement after the docstring to its end (a
typer command's twenty options or a long docstring are not complexity). A longer function is
allowed where a comment ``# long: <why>`` stands on the line above its ``def`` (or its first
decorator).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "scorelab"
TESTS = Path(__file__).resolve().parent
MAX_BODY = 80


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    first = body[0]
    if (
        len(body) > 1
        and isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        first = body[1]
    return node.end_lineno - first.lineno + 1


def _stated_reason(lines: list[str], node) -> bool:
    top = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    above = lines[top - 2].strip() if top >= 2 else ""
    return above.startswith("# long:") and len(above) > len("# long:") + 5


def long_functions(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = _body_lines(node)
                if n > MAX_BODY and not _stated_reason(lines, node):
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({n} lines)")
    return found


def test_no_function_in_src_is_long_without_a_stated_reason():
    assert long_functions(SRC) == []


def test_the_length_check_catches_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_BODY + 1))
    (tmp_path / "m.py").write_text(f'def f():\n    """Doc."""\n{body}\n', encoding="utf-8")
    (tmp_path / "ok.py").write_text(
        f"# long: one table of cases, clearer as one piece\ndef g():\n{body}\n", encoding="utf-8"
    )
    assert long_functions(tmp_path) == [f"m.py:1 f ({MAX_BODY + 1} lines)"]


ISSUE_REFERENCE = re.compile(r"\b(?:[Ii]ssues?|PR)\W{0,2}#?\d+")


def tracker_citations(paths) -> list[str]:
    return [
        f"{path.name}:{i}"
        for path in paths
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ISSUE_REFERENCE.search(line)
    ]


def test_no_comment_or_docstring_cites_a_tracker_issue():
    """A reader has no tracker: the code says what and why, not which issue asked for it."""
    paths = [p for root in (SRC, TESTS) for p in sorted(root.rglob("*.py"))]
    assert tracker_citations([*paths, SRC.parents[1] / "README.md"]) == []


def test_the_citation_check_catches_the_usual_spellings(tmp_path):
    word = "issue"  # spelled apart, so this file holds no citation itself
    lines = [f"# see {word} 14", f"# ({word} #2)", "# fixed in P" + "R 45", f"# {word.title()}s 3"]
    lines.append("# a tissue, 4 cells")
    path = tmp_path / "m.py"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert tracker_citations([path]) == ["m.py:1", "m.py:2", "m.py:3", "m.py:4"]
