"""``nightpipe solve [PATHS...]``: plate-solve the calibrated frames of the database, or given files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nightpipe.cli.common import console, labelled, new_table, progress_for, state
from nightpipe.errors import MissingInputError

if TYPE_CHECKING:
    from rich.table import Table

    from nightpipe.astrometry.step import SolveSummary


def _expand(paths: list[Path]) -> list[Path]:
    from nightpipe.frames.fitsio import FITS_SUFFIXES, is_fits_name

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.is_file() and is_fits_name(p)))
        elif path.is_file():
            files.append(path)
        else:
            raise MissingInputError("no such file or folder", path=path, hint="check the path")
    if not files:
        raise MissingInputError(
            f"no FITS files in {', '.join(map(str, paths))}",
            hint=f"FITS files are named {' '.join(FITS_SUFFIXES)} (any case)",
        )
    return files


def _table(summary: SolveSummary) -> Table:
    table = new_table("plate solutions", show_lines=False)
    for column in (
        "frame",
        "method",
        "matched",
        'RMS "',
        "RMS px",
        'scale "/px',
        "rotation",
        "centre",
        "note",
    ):
        table.add_column(column)
    for o in summary.outcomes:
        if o.solved:
            centre = f"{o.ra_center:.5f} {o.dec_center:+.5f}"
            table.add_row(
                o.name, o.method or "", str(o.n_matched), f"{o.rms_arcsec:.2f}", f"{o.rms_px:.3f}",
                f"{o.pixel_scale:.4f}", f"{o.rotation:.2f}", centre, o.reason or "",
            )  # fmt: skip
        else:
            table.add_row(o.name, labelled("failed", "red", ""), "", "", "", "", "", "", o.reason or "")
    return table


def solve(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(
        None, help="FITS files or folders; none: the calibrated frames in the database"
    ),
    night: str | None = typer.Option(None, "--night", "-n", help="Only this night (YYYY-MM-DD)"),
    outdir: Path | None = typer.Option(None, "--outdir", "-o", help="Where solved copies of given files go"),
    force: bool = typer.Option(False, "--force", help="Solve again frames already solved"),
    as_json: bool = typer.Option(False, "--json", help="Print the outcomes as JSON"),
    no_plot: bool = typer.Option(False, "--no-plot", help="Do not draw the catalogue-overlay plot"),
) -> None:
    """Plate-solve frames offline with astrometry.net and write a checked WCS.

    Without PATHS, every calibrated frame in the database (of --night) is solved and the
    WCS is written into the calibrated file. With PATHS, each file is solved and a copy with
    the WCS is written to --outdir (default <paths.output>/solved); inputs are never changed.
    """
    from nightpipe.astrometry.step import run_solve, solve_files
    from nightpipe.cli.inputs import require_calibrated
    from nightpipe.store import open_database

    settings = state(ctx).settings
    if paths:
        summary = solve_files(
            settings, _expand(paths), outdir=outdir, progress=progress_for(ctx), plot=not no_plot
        )
    else:
        db = open_database(settings.database.url)
        try:
            require_calibrated(db, night)
            summary = run_solve(
                settings, db, night=night, progress=progress_for(ctx), force=force, plot=not no_plot
            )
        finally:
            db.dispose()
    out = console()
    if as_json:
        out.print(json.dumps([o.as_dict() for o in summary.outcomes], indent=2), markup=False)
    elif summary.outcomes:
        out.print(_table(summary))
    methods = ", ".join(f"{n} by {m}" for m, n in sorted(summary.methods.items())) or "none"
    out.print(
        f"{summary.solved} solved ({methods}), {summary.failed} failed, {summary.skipped} already solved"
        + (f"; plot: {summary.plot}" if summary.plot else "")
    )
    if summary.failed:
        raise typer.Exit(code=1 if summary.solved == 0 else 0)


def register(app: typer.Typer) -> None:
    """Add the ``solve`` command to the main app."""
    app.command("solve")(solve)
