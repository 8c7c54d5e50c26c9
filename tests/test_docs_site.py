"""The documentation site (mkdocs.yml) builds with ``mkdocs build --strict`` — a broken link, a
missing page or an API reference to a name that does not exist fails — and the built site
has what it promises: the README as its home page, the API reference from the docstrings, the
tutorials with their figures, maths marked for KaTeX, and nothing loaded from the internet.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.ipynb"))


def _hook():
    sys.path.insert(0, str(ROOT / "docs" / "hooks"))
    try:
        import readme_home
    finally:
        sys.path.pop(0)
    return readme_home


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out


class _Text(HTMLParser):
    """The visible text of a page and the external resources it loads."""

    def __init__(self):
        super().__init__()
        self.text: list[str] = []
        self.external: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        url = attrs.get("src") if tag in ("script", "img", "iframe") else None
        if tag == "link" and "stylesheet" in (attrs.get("rel") or ""):
            url = attrs.get("href")
        if url and re.match(r"(https?:)?//", url):
            self.external.append(url)
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def _read(page: Path) -> _Text:
    parser = _Text()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def _squash(text: str) -> str:
    return " ".join(text.split())


def test_the_home_page_is_the_readme(site):
    """Every heading and the opening paragraph of README.md are on the home page (the hook
    reads the README at build time, so the two cannot drift)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    home = _squash("".join(_read(site / "index.html").text))
    headings = [line.lstrip("#").strip() for line in readme.splitlines() if line.startswith("## ")]
    assert headings and all(h.replace("`", "") in home for h in headings), headings
    opening = _squash(readme.split("\n\n")[1])
    assert opening[:200] in home
    assert (ROOT / "docs" / "index.md").read_text().lstrip().startswith("<!--")  # no copy


def test_the_readme_links_are_rewritten_for_the_site():
    hook = _hook()
    text = "[docs](docs/studies/noise_schedule.md) ![fig](docs/figures/a.png) [cfg](configs/x)"
    assert hook.readme_as_home(text) == (
        "[docs](studies/noise_schedule.md) ![fig](figures/a.png) [cfg](configs/x)"
    )


def test_the_api_reference_is_built_from_the_docstrings(site):
    from scorelab import bounds, sampling

    def opening(fn) -> str:  # the docstring's first words, as the page shows them
        return _squash(fn.__doc__.strip().split("\n\n")[0]).replace("`", "")[:60]

    page = _squash("".join(_read(site / "api" / "index.html").text))
    assert opening(sampling.generate) in page
    bounds_page = _squash("".join(_read(site / "api" / "bounds" / "index.html").text))
    assert opening(bounds.kl_bound) in bounds_page
    for name in ("generate", "integrate", "TimeGrid", "evaluate", "SampleResult"):
        assert name in page


def test_every_tutorial_is_on_the_site_with_its_figure(site):
    assert len(TUTORIALS) >= 4
    for notebook in TUTORIALS:
        page = site / "tutorials" / notebook.stem / "index.html"
        assert "data:image/png;base64," in page.read_text(encoding="utf-8"), notebook.name


def test_maths_is_marked_for_the_vendored_katex(site):
    for page in ("theory", "api/bounds"):
        assert 'class="arithmatex"' in (site / page / "index.html").read_text(encoding="utf-8")
    for asset in ("katex.min.js", "auto-render.min.js", "katex.min.css"):
        assert (site / "javascripts" / "katex" / asset).is_file()
    css = (site / "javascripts" / "katex" / "katex.min.css").read_text(encoding="utf-8")
    woff2 = set(re.findall(r"fonts/(KaTeX_[\w-]+\.woff2)", css))
    assert woff2 and all((site / "javascripts" / "katex" / "fonts" / f).is_file() for f in woff2)


def test_the_site_loads_nothing_from_the_internet(site):
    """Scripts, stylesheets and images come from the site itself: it works offline."""
    external = {
        str(page.relative_to(site)): found
        for page in site.rglob("*.html")
        if (found := _read(page).external)
    }
    assert external == {}
