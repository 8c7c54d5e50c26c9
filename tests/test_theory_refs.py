"""The repository cites its own theory document, docs/theory.md, and nothing outside it.

* No text file of the project (src, tests, benchmarks, docs, configs, README.md; tracked or
  untracked-but-not-ignored) mentions the internal notes the formulas were first collected in
  (they are not shipped; ``docs/theory.md`` replaces them).
* Every citation ``docs/theory.md §N.M`` (also ``theory.md §N``, lists ``§1.2, §3.4`` and
  ranges ``§9.1–9.2``) names a numbered heading that exists in docs/theory.md, and so does
  every bare ``§N.M`` inside docs/theory.md itself.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THEORY = ROOT / "docs" / "theory.md"
SCOPE = ("src", "tests", "benchmarks", "docs", "configs", "README.md")

# Joined at run time (not a constant the compiler folds), so that neither this file nor its
# bytecode contains the word it looks for.
FORBIDDEN = re.compile(r"\b" + "".join(("SCI", "ENCE")) + r"\b")

_NUM = r"\d+(?:\.\d+)*"
# "theory.md §3.2", then any ", §4.1" / " and §5" / " vs §3.5" / "–9.2" continuations
CITATION = re.compile(
    rf"theory\.md\s*§\s*({_NUM})((?:\s*(?:,|and|or|vs\.?)\s*§\s*{_NUM}|\s*[–-]\s*§?\s*{_NUM})*)"
)
SECTION = re.compile(rf"§\s*({_NUM})((?:\s*[–-]\s*§?\s*{_NUM})?)")
HEADING = re.compile(rf"^#{{1,6}}\s+({_NUM})\.?\s", re.MULTILINE)


def project_files() -> list[Path]:
    """The text files in scope: git's tracked and untracked-but-not-ignored files (a plain
    directory walk where git is not available)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *SCOPE],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout.decode()
        paths = sorted({ROOT / p for p in out.split("\0") if p})
    except (OSError, subprocess.SubprocessError):
        paths = []
        for name in SCOPE:
            base = ROOT / name
            paths.extend([base] if base.is_file() else sorted(base.rglob("*")))
    files = []
    for p in paths:
        if not p.is_file() or "__pycache__" in p.parts:
            continue  # deleted in the working tree, or a build artefact
        files.append(p)
    return files


def read_text(path: Path) -> str | None:
    """The file's text, or None for binary files (figures, arrays)."""
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def headings(markdown: str) -> set[str]:
    """The section numbers of the numbered headings ("## 3. Targets" → "3", "### 3.2 …" → "3.2")."""
    return set(HEADING.findall(markdown))


def cited_sections(text: str, pattern: re.Pattern = CITATION) -> list[str]:
    """Every section number cited in ``text`` (each member of a list or range)."""
    out = []
    for m in pattern.finditer(text):
        out.append(m.group(1))
        out.extend(re.findall(_NUM, m.group(2)))
    return out


def missing_sections(cited: list[str], known: set[str]) -> list[str]:
    return sorted({c for c in cited if c not in known})


def test_no_reference_to_the_internal_notes():
    offenders = []
    for path in project_files():
        text = read_text(path)
        if text is None:
            continue
        for i, line in enumerate(text.splitlines(), 1):
            if FORBIDDEN.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()[:100]}")
    assert not offenders, (
        "these lines cite the unshipped notes; cite docs/theory.md §N.M instead:\n"
        + "\n".join(offenders)
    )


def test_theory_citations_resolve():
    assert THEORY.is_file(), "docs/theory.md is missing"
    known = headings(THEORY.read_text(encoding="utf-8"))
    assert {"1", "1.1", "9.1"} <= known, "docs/theory.md lost its numbered headings"
    bad, n_cited = [], 0
    for path in project_files():
        text = read_text(path)
        if text is None:
            continue
        for i, line in enumerate(text.splitlines(), 1):
            cited = cited_sections(line)
            n_cited += len(cited)
            for sec in missing_sections(cited, known):
                bad.append(f"{path.relative_to(ROOT)}:{i}: §{sec} — {line.strip()[:100]}")
    assert n_cited > 20, f"only {n_cited} citations of docs/theory.md found: is the regex broken?"
    assert not bad, "citations of sections that docs/theory.md does not have:\n" + "\n".join(bad)


def test_theory_internal_references_resolve():
    text = THEORY.read_text(encoding="utf-8")
    known = headings(text)
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    bad = missing_sections(cited_sections(body, SECTION), known)
    assert not bad, f"docs/theory.md refers to sections it does not have: {bad}"


def test_the_checker_catches_bad_citations():
    known = {"1", "1.1", "3", "3.2", "9.1", "9.2"}
    # split literals, so that this file's own text holds no citation
    line = (
        "see docs/theory" + ".md §3.2, §4.7 and theory" + ".md §9.1–9.3; (docs/theory" + ".md §12)"
    )
    assert cited_sections(line) == ["3.2", "4.7", "9.1", "9.3", "12"]
    assert missing_sections(cited_sections(line), known) == ["12", "4.7", "9.3"]
    assert cited_sections("docs/theory" + ".md §3.2, 1000 draws") == ["3.2"]
    assert cited_sections("docs/theory" + ".md §3.4 vs §3.5: …") == ["3.4", "3.5"]
    assert headings("## 3. Targets\n### 3.2 Gaussian mixtures\n#### not numbered\n") == {
        "3",
        "3.2",
    }
