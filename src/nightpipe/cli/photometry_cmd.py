"""``nightpipe photometry``: source tables for the calibrated frames of a night, or for given files."""

from __future__ import annotations

from pathlib import Path

import typer

from nightpipe.cli.common import console, labelled, progress_for, state
from nightpipe.errors import NightpipeError, PhotometryError


def photometry(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(None, help="FITS files to measure (default: the calibrated frames)"),
    night: str | None = typer.Option(None, "--night", "-n", help="Only this night (YYYY-MM-DD)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="Folder for the tables of given files"),
    force: bool = typer.Option(False, "--force", help="Measure again frames that did not change"),
    plots: bool = typer.Option(
        False, "--plots", help="Also draw the seeing profile, curve of growth and frame"
    ),
) -> None:
    """Detect sources, measure their FWHM and fluxes in several apertures, write source tables."""
    from nightpipe.photometry.step import measure_file, run_photometry
    from nightpipe.photometry.table import source_table_name, write_source_table

    settings = state(ctx).settings
    stdout = console()
    if files:
        folder = out or Path(settings.paths.output) / "sources" / "files"
        failed = 0
        for path in files:
            try:
                table, meas = measure_file(path, settings)
                dest = write_source_table(table, folder / source_table_name(Path(path).name.split(".")[0]))
            except NightpipeError as exc:
                console(err=True).print(labelled("error:", "bold red", str(exc)))
                failed += 1
                continue
            fwhm = table.meta.get("fwhm_px")
            stdout.print(
                f"{path}: {len(table)} sources, FWHM {fwhm:.2f} px, sky {table.meta['sky']:.1f} -> {dest}"
                if fwhm is not None
                else f"{path}: {len(table)} sources -> {dest}",
                markup=False,
            )
            if plots:
                from nightpipe.report.photometry_plots import plot_frame_photometry

                for png in plot_frame_photometry(path, meas, folder / "plots"):
                    stdout.print(f"  plot: {png}", markup=False)
        if failed:
            raise PhotometryError(f"{failed} of {len(files)} files could not be measured (see above)")
        return
    from nightpipe.cli.inputs import require_calibrated
    from nightpipe.store import open_database

    db = open_database(settings.database.url)
    try:
        require_calibrated(db, night)
        summary = run_photometry(settings, db, night=night, force=force, progress=progress_for(ctx))
    finally:
        db.dispose()
    stdout.print(
        f"photometry: {summary.ok} measured, {summary.skipped} unchanged, {summary.failed} failed "
        f"in {summary.seconds:.1f} s",
        markup=False,
    )
    for reason in summary.failures.values():
        console(err=True).print(f"  failed: {reason}", markup=False)


def register(app: typer.Typer) -> None:
    """Add the ``photometry`` command to the main app."""
    app.command("photometry")(photometry)
