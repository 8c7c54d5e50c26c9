// Render maths with the vendored KaTeX on every page load and every instant-navigation page
// change of mkdocs-material: the spans that pymdownx.arithmatex marks in Markdown pages and
// docstrings (\( … \) and \[ … \]), and the Markdown cells of the tutorials ($ … $, $$ … $$).
// Other text is left alone, so a `$` in a shell example is never read as maths.
const ARITHMATEX = [
  { left: "\\(", right: "\\)", display: false },
  { left: "\\[", right: "\\]", display: true },
];
const NOTEBOOK = [
  { left: "$$", right: "$$", display: true },
  { left: "$", right: "$", display: false },
  ...ARITHMATEX,
];
document$.subscribe(({ body }) => {
  for (const el of body.querySelectorAll(".arithmatex")) {
    renderMathInElement(el, { delimiters: ARITHMATEX, throwOnError: false });
  }
  for (const el of body.querySelectorAll(".jp-MarkdownOutput, .jp-RenderedMarkdown")) {
    renderMathInElement(el, { delimiters: NOTEBOOK, throwOnError: false });
  }
});
