"""``nightpipe masters``: build master bias, dark, flat and bad-pixel frames; ``--list`` the library."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nightpipe.cli.common import console, labelled, new_table, progress_for, state
from nightpipe.errors import MissingInputError

if TYPE_CHECKING:
    from rich.table import Table

    from nightpipe.store.models import Master


def masters(
    ctx: typer.Context,
    night: str | None = typer.Option(None, "--night", "-n", help="Only this night (YYYY-MM-DD)"),
    force: bool = typer.Option(False, "--force", help="Rebuild even when inputs and settings are unchanged"),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw each new master as a PNG"),
    list_: bool = typer.Option(False, "--list", "-l", help="Show the library instead of building"),
    kind: str | None = typer.Option(None, "--kind", help="With --list: only bias, dark, flat or badpix"),
    all_: bool = typer.Option(False, "--all", help="With --list: include invalidated masters"),
) -> None:
    """Build masters from the inventory's calibration frames (run `nightpipe scan` first)."""
    from nightpipe.calib.library import list_masters
    from nightpipe.calib.masters import run_masters
    from nightpipe.store import open_database

    settings = state(ctx).settings
    db = open_database(settings.database.url)
    try:
        if list_:
            with db.session() as session:
                rows = list_masters(session, kind, include_invalid=all_)
                console().print(library_table(rows))
            return
        summary = run_masters(settings, db, night=night, force=force, plots=plots, progress=progress_for(ctx))
    finally:
        db.dispose()
    if not summary.built and not summary.skipped and not summary.failed:
        raise MissingInputError(
            "no calibration frames (bias, dark, flat) in the database"
            + (f" for night {night}" if night else ""),
            hint="scan the night's folder first: `nightpipe scan RAW_DIR`",
        )
    out = console()
    for path in summary.built:
        out.print(f"built   {path}")
    for path in summary.skipped:
        out.print(f"kept    {path} (unchanged)")
    for _path, reason in summary.bad_frames:
        out.print(labelled("left out", "yellow", reason))
    for label, reason in summary.failed:
        out.print(labelled("failed  ", "red", f"{label}: {reason}"))
    out.print(
        f"{len(summary.built)} built, {len(summary.skipped)} unchanged, {len(summary.failed)} failed "
        f"in {summary.seconds:.1f} s"
    )
    if summary.failed:
        raise typer.Exit(1)


def _num(value: float | None, fmt: str = "{:g}") -> str:
    return "" if value is None else fmt.format(value)


def library_table(rows: list[Master]) -> Table:
    """The library as a rich table (one row per master; the file name carries the keys)."""
    table = new_table(f"master library ({len(rows)})", header_style="bold")
    table.add_column("kind")
    table.add_column("file", overflow="fold")
    table.add_column("size")
    for name in ("n", "level", "noise", "rejected"):
        table.add_column(name, justify="right")
    for m in rows:
        q = m.quality or {}
        table.add_row(
            m.kind,
            Path(m.path).name,
            f"{m.naxis1}x{m.naxis2}",
            str(m.nframes),
            _num(q.get("level"), "{:.5g}"),
            _num(q.get("noise"), "{:.3g}"),
            _num(q.get("rejected_fraction"), "{:.2%}"),
            style=None if m.valid else "dim strike",
        )
    return table


def register(app: typer.Typer) -> None:
    """Add the ``masters`` command to the main app."""
    app.command("masters")(masters)
