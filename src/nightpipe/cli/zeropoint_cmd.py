"""``nightpipe zeropoints``: calibrate the night's source tables against a reference catalogue."""

from __future__ import annotations

import typer

from nightpipe.cli.common import console, progress_for, state
from nightpipe.errors import MissingInputError
from nightpipe.exit_codes import ExitCode


def zeropoints(
    ctx: typer.Context,
    night: str | None = typer.Option(None, "--night", help="Night (YYYY-MM-DD); all nights when omitted"),
) -> None:
    """Fit per-frame zero points (and extinction) against the reference catalogues."""
    from nightpipe.calphot.step import run_zeropoints
    from nightpipe.cli.inputs import require_source_tables
    from nightpipe.store import open_database

    settings = state(ctx).settings
    db = open_database(settings.database.url)
    try:
        require_source_tables(settings, db, night)
        summary = run_zeropoints(settings, db, night=night, progress=progress_for(ctx))
    finally:
        db.dispose()
    if summary.processed + summary.failed + summary.skipped == 0:
        raise MissingInputError(
            "no source table" + (f" of night {night}" if night else "") + " has sky coordinates",
            hint="plate-solve the frames (`nightpipe solve`), then measure them: `nightpipe photometry`",
        )
    out = console()
    out.print(f"{summary.processed} frames calibrated against {summary.catalog}, {summary.failed} failed")
    if summary.zero_point_median is not None:
        out.print(
            f"zero point median {summary.zero_point_median:.3f}, scatter {summary.zero_point_std:.3f} mag"
        )
    if summary.extinction_k is not None:
        out.print(f"extinction k = {summary.extinction_k:.3f} ± {summary.extinction_k_err:.3f} mag/airmass")
    if summary.second_order_k is not None:
        out.print(
            f"second-order extinction k'' = {summary.second_order_k:.3f} ± {summary.second_order_k_err:.3f} "
            "mag/airmass per mag of colour"
        )
    if summary.sources_csv:
        out.print(f"catalogue vs measured: {summary.sources_csv}")
    if summary.agreement_rms is not None:
        out.print(
            f"night means vs catalogue, {summary.agreement_n_stars} clean stars brighter than 11: "
            f"RMS {summary.agreement_rms:.3f} (robust {summary.agreement_robust_rms:.3f}, "
            f"median {summary.agreement_median:+.3f}) mag, of which catalogue and measurement errors "
            f"explain {summary.agreement_expected_rms:.3f}; per star: {summary.agreement_csv}"
        )
    if summary.failed:
        raise typer.Exit(ExitCode.FAILED)


def register(app: typer.Typer) -> None:
    """Add the ``zeropoints`` command."""
    app.command("zeropoints")(zeropoints)
