"""What ``scorelab audit`` prints and writes for a certificate: a Rich summary (ladder, fitted
against nominal order, limit error, checks coloured by outcome) and, with ``--out``,
``certificate.json`` and the self-contained ``certificate.html``."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .certificate import Certificate

MARK = {True: "[green]pass[/]", False: "[bold red]FAIL[/]", None: "[dim]skipped[/]"}


def _g(v) -> str:
    return "—" if v is None else f"{v:.4g}"


def write(cert: Certificate, out_dir: Path, extra: dict | None = None) -> list[Path]:
    """certificate.json and certificate.html in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {**cert.to_json(), **(extra or {})}
    paths = [out_dir / "certificate.json", out_dir / "certificate.html"]
    paths[0].write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    paths[1].write_text(cert.to_html(), encoding="utf-8")
    return paths


def show(cert: Certificate, console: Console) -> None:
    """The summary: ladder, order, limit error, checks, verdict."""
    table = Table(title=f"{cert.scheduler} on {cert.target}: exact error against steps")
    for col in ("N", "NFE", "KL", "W2", "W2 to the limit", "note"):
        table.add_column(col, justify="left" if col == "note" else "right")
    for r in cert.ladder:
        note = r.error or r.refused or r.extra.get("note", "")
        table.add_row(str(r.steps), str(r.nfe), _g(r.kl), _g(r.w2), _g(r.disc_w2), note)
    console.print(table)
    fit = cert.fitted_order
    if fit:
        ci = "" if fit["ci"] is None else f", 95% CI [{fit['ci'][0]:.2f}, {fit['ci'][1]:.2f}]"
        order = f"{fit['value']:.2f}{ci}, N = {fit['fit_range'][0]}…{fit['fit_range'][1]}"
    else:
        order = "—"
    console.print(f"order: fitted {order}; nominal {cert.nominal_order}", highlight=False)
    limit = ", ".join(f"{k} {_g(v)}" for k, v in cert.limit_error.items())
    console.print(f"limit error: {limit or '—'}", highlight=False)
    checks = Table(title="checks", show_header=False)
    for c in cert.checks:
        checks.add_row(c.id, MARK[c.passed], c.detail)
    console.print(checks)
    for note in cert.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
    verdict = "[bold green]PASSED[/]" if cert.passed else "[bold red]NOT PASSED[/]"
    failed = f" (failed: {', '.join(cert.failed())})" if cert.failed() else ""
    console.print(f"certificate: {verdict}{failed}", highlight=False)


__all__ = ["show", "write"]
