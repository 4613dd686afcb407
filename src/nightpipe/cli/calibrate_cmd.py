"""``nightpipe calibrate``: calibrate the light frames of the inventory with the master library."""

from __future__ import annotations

import typer

from nightpipe.cli.common import console, labelled, progress_for, state
from nightpipe.errors import ConfigError


def calibrate(
    ctx: typer.Context,
    night: str | None = typer.Option(None, "--night", "-n", help="Only this night (YYYY-MM-DD)"),
    allow_missing: bool | None = typer.Option(
        None,
        "--allow-missing-masters/--require-masters",
        help="Calibrate with the masters that exist when some are missing (default: the setting "
        "calibration.allow_missing_masters)",
    ),
    cosmics: str | None = typer.Option(
        None, "--cosmics", help="Cosmic-ray mode: off, full or fast (default: calibration.cosmic_rays)"
    ),
    force: bool = typer.Option(False, "--force", help="Recalibrate frames whose product is up to date"),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw a before/after pair of one frame"),
) -> None:
    """Calibrate light frames: overscan, bias, scaled dark, flat, bad pixels, cosmic rays."""
    from nightpipe.calib.cosmics import MODES
    from nightpipe.calib.step import run_calibrate
    from nightpipe.cli.inputs import require_light_frames
    from nightpipe.store import open_database

    settings = state(ctx).settings
    if cosmics is not None:
        if cosmics not in MODES:
            raise ConfigError(f"--cosmics {cosmics!r} is not one of {', '.join(MODES)}")
        calibration = settings.calibration.model_copy(update={"cosmic_rays": cosmics})
        settings = settings.model_copy(update={"calibration": calibration})
    db = open_database(settings.database.url)
    try:
        require_light_frames(db, night)
        summary = run_calibrate(
            settings,
            db,
            night=night,
            progress=progress_for(ctx),
            allow_missing=allow_missing,
            force=force,
            plots=plots,
        )
    finally:
        db.dispose()
    out = console()
    for _path, reason in summary.failures:
        out.print(labelled("failed ", "red", reason))
    if summary.ok and summary.without_masters == summary.ok:
        out.print(
            labelled(
                "no masters were applied:", "yellow", "the frames are not bias-, dark- or flat-corrected"
            )
        )
    elif summary.missing:
        missing = ", ".join(f"{kind} on {n} frames" for kind, n in sorted(summary.missing.items()))
        out.print(labelled("not applied:", "yellow", missing))
    out.print(
        f"{summary.ok} calibrated, {summary.unchanged} unchanged, {summary.failed} failed "
        f"of {summary.frames} light frames in {summary.seconds:.1f} s"
        + (f"; {summary.cosmic_pixels} cosmic-ray pixels flagged" if summary.cosmic_pixels else "")
    )
    if summary.plot:
        out.print(f"plot    {summary.plot}")
    if summary.failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``calibrate`` command to the main app."""
    app.command("calibrate")(calibrate)
