"""mkdocs hook: the site's home page is the repository's README.md, read at build time.

The README links into the documentation as ``docs/PAGE.md`` and shows ``docs/figures/...``;
on the site those pages live at ``PAGE.md``. Links to anything outside docs/ (a config, a test)
point at the repository and are left as they are.
"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
HOME = "index.md"
_DOCS_LINK = re.compile(r"\]\(docs/")


def readme_as_home(text: str) -> str:
    """The README's Markdown with its ``](docs/...)`` links rewritten relative to docs/."""
    return _DOCS_LINK.sub("](", text)


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri != HOME:
        return markdown
    return readme_as_home(README.read_text(encoding="utf-8"))


def on_config(config):
    config.watch.append(str(README))  # `mkdocs serve` rebuilds when the README changes
    return config
