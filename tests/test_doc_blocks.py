"""Every fenced code block of README.md and docs/ runs here, or says why it does not.

The blocks are read and run with Sybil (``sybil.parsers.markdown``):

* ``python`` blocks run in one namespace per document, in order, so a later block may use an
  earlier one's names; an ``<!-- invisible-code-block: python ... -->`` comment (Sybil's
  syntax) supplies the set-up a reader does not need to see (a model to wrap, some samples).
* ``bash`` blocks run with ``bash -e`` in a scratch directory per document that links the
  repository's ``configs/``, with this interpreter's ``scorelab`` first on the PATH.
* ``yaml`` blocks are config fragments: merged into the quickstart's config, they must
  validate.

A block that cannot run here says why in an HTML comment on the line before it (blank lines
between are allowed), ``<!-- not-run: REASON -->``; a block that runs but takes minutes says
``<!-- slow: REASON -->`` and runs with ``pytest -m slow``. A block in any other language, or
with no language, and no such comment fails ``test_every_block_runs_or_says_why_not``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from markdown_it import MarkdownIt
from sybil import Document
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser

from scorelab.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUNNABLE = ("python", "bash", "yaml")
MARKER = re.compile(r"^<!--\s*(?P<kind>not-run|slow):\s*(?P<reason>\S.*?)\s*-->$")
SHELL_TIMEOUT = 900  # seconds for one block: a bound against a hung command, not a timing


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    language: str  # "" when the fence names none
    marker: str | None  # "not-run", "slow" or None
    reason: str


def marker_above(lines: list[str], fence: int) -> tuple[str | None, str]:
    """The marker comment on the last non-blank line above line index ``fence``, if any."""
    i = fence - 1
    while i >= 0 and not lines[i].strip():
        i -= 1
    match = MARKER.match(lines[i].strip()) if i >= 0 else None
    return (match["kind"], match["reason"]) if match else (None, "")


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file (in lists and quotes too), with its marker."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    out = []
    for token in MarkdownIt("commonmark").parse(text):
        if token.type == "fence":
            start = token.map[0]
            kind, reason = marker_above(lines, start)
            language = token.info.split()[0] if token.info.strip() else ""
            out.append(Block(path, start + 1, language, kind, reason))
    return out


def unexplained(paths) -> list[str]:
    """The blocks that neither run (a runnable language) nor say why not."""
    return [
        f"{b.path.relative_to(ROOT) if b.path.is_relative_to(ROOT) else b.path}"
        f":{b.line} ```{b.language}"
        for path in paths
        for b in blocks(path)
        if b.marker is None and b.language not in RUNNABLE
    ]


def test_every_block_runs_or_says_why_not():
    assert unexplained(DOCUMENTS) == []


def test_the_check_catches_a_block_that_neither_runs_nor_says_why(tmp_path):
    doc = tmp_path / "page.md"
    doc.write_text(
        "```\nscorelab quickstart\n```\n\n"
        "<!-- not-run: needs a GPU -->\n\n```\nscorelab train --device cuda\n```\n\n"
        "* in a list:\n\n  ```text\n  a diagram\n  ```\n\n"
        "<!-- not-run: -->\n```console\n$ scorelab\n```\n\n"
        "```python\nprint(1)\n```\n",
        encoding="utf-8",
    )
    assert [s.rsplit(":", 1)[1] for s in unexplained([doc])] == [
        "1 ```",
        "13 ```text",
        "18 ```console",  # a marker without a reason is no marker
    ]


# --- running the blocks -------------------------------------------------------------------


def _gated(evaluator, mode: str):
    """Run ``evaluator`` on the blocks that ``mode`` runs: "default" the unmarked ones,
    "slow" the unmarked and the slow ones; never the not-run ones."""

    def evaluate(example):
        lines = example.document.text.splitlines()
        kind, _ = marker_above(lines, example.line - 1)
        if kind == "not-run" or (kind == "slow" and mode != "slow"):
            return None
        return evaluator(example)

    return evaluate


def _run_shell(example) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", example.parsed],
        cwd=example.namespace["__scratch__"],
        env=env,
        capture_output=True,
        text=True,
        timeout=SHELL_TIMEOUT,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"{example.path}:{example.line}: exit {done.returncode}\n{done.stderr[-3000:]}"
        )


def _merge(base: dict, extra: dict) -> dict:
    """``extra`` over ``base``, section by section; a section of another kind replaces it."""
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        same_kind = isinstance(old, dict) and value.get("kind") in (None, old.get("kind"))
        if isinstance(value, dict) and same_kind:
            out[key] = _merge(old, value)
        else:
            out[key] = value
    return out


def _check_yaml(example) -> None:
    from scorelab.config import parse_config
    from scorelab.quickstart import DEFAULTS

    fragment = yaml.safe_load(example.parsed)
    assert isinstance(fragment, dict), f"{example.path}:{example.line}: not a mapping"
    parse_config(_merge(DEFAULTS, fragment))  # raises ConfigError naming the bad key


def _parsers(mode: str):
    python = PythonCodeBlockParser()
    inner = python.codeblock_parser._evaluator
    python.codeblock_parser._evaluator = _gated(inner, mode)
    return [
        python,
        CodeBlockParser("bash", _gated(_run_shell, mode)),
        CodeBlockParser("yaml", _gated(_check_yaml, mode)),
    ]


def _runnable(path: Path, mode: str) -> bool:
    wanted = {None} | ({"slow"} if mode == "slow" else set())
    found = [b for b in blocks(path) if b.language in RUNNABLE]
    if mode == "slow" and not any(b.marker == "slow" for b in found):
        return False  # the default run covers this document
    return any(b.marker in wanted for b in found)


@pytest.fixture
def clean_registry():
    """Blocks that register a component (docs/metrics.md, the README) leave no trace."""
    from scorelab import registry

    before = {group: set(registry.names(group)) for group in registry.GROUPS}
    yield
    for group, names in before.items():
        for name in set(registry.names(group)) - names:
            registry.unregister(group, name)


def run_document(path: Path, mode: str, scratch: Path, monkeypatch) -> int:
    (scratch / "configs").symlink_to(ROOT / "configs", target_is_directory=True)
    monkeypatch.chdir(scratch)
    document = Document.parse(str(path), *_parsers(mode))
    document.namespace["__scratch__"] = str(scratch)
    examples = list(document)
    for example in examples:
        example.evaluate()
    return len(examples)


def _ids(paths) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in paths]


DEFAULT_DOCS = [p for p in DOCUMENTS if _runnable(p, "default")]
SLOW_DOCS = [p for p in DOCUMENTS if _runnable(p, "slow")]


@pytest.mark.parametrize("path", DEFAULT_DOCS, ids=_ids(DEFAULT_DOCS))
def test_the_blocks_of_a_document_run(path, tmp_path, monkeypatch, clean_registry):
    assert run_document(path, "default", tmp_path, monkeypatch) > 0


@pytest.mark.slow
@pytest.mark.parametrize("path", SLOW_DOCS, ids=_ids(SLOW_DOCS))
def test_the_slow_blocks_of_a_document_run(path, tmp_path, monkeypatch, clean_registry):
    assert run_document(path, "slow", tmp_path, monkeypatch) > 0


def test_sybil_sees_every_block_the_check_counts():
    """The runner (Sybil's lexer) and the check (markdown-it) agree on the runnable blocks, so
    no block escapes both by a fence one of them reads differently."""
    for path in DOCUMENTS:
        document = Document.parse(str(path), *_parsers("default"))
        lines = sorted(
            example.line
            for example in document
            if not example.region.lexemes.get("arguments", "").startswith("invisible")
            and "invisible-code-block" not in document.text[example.start : example.start + 40]
        )
        expected = sorted(b.line for b in blocks(path) if b.language in RUNNABLE)
        assert lines == expected, path


def test_a_failing_block_fails_and_a_not_run_one_is_skipped(tmp_path, monkeypatch):
    doc = tmp_path / "page.md"
    doc.write_text(
        "<!-- not-run: fails on purpose -->\n```bash\nexit 3\n```\n\n"
        "```python\nvalue = 41 + 1\n```\n\n"
        '```bash\ntest "$(pwd)" = "$PWD" && exit 4\n```\n',
        encoding="utf-8",
    )
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with pytest.raises(AssertionError, match="exit 4"):
        run_document(doc, "default", scratch, monkeypatch)
    bad = tmp_path / "bad.md"
    bad.write_text("```yaml\ntrain: {steps: -1}\n```\n", encoding="utf-8")
    (tmp_path / "other").mkdir()
    with pytest.raises(ConfigError, match=r"train\.steps"):
        run_document(bad, "default", tmp_path / "other", monkeypatch)
