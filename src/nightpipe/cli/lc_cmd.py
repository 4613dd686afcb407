"""``nightpipe lc STAR``: a star's light curve across all nights in the database."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from nightpipe.cli.common import console, state


def lc(
    ctx: typer.Context,
    star: str = typer.Argument(..., help="Target name, catalogue id, or coordinates 'RA DEC'"),
    radius: float = typer.Option(3.0, "--radius", help="Match radius, arcsec"),
    since: str | None = typer.Option(None, "--since", help="First night, YYYY-MM-DD"),
    until: str | None = typer.Option(None, "--until", help="Last night, YYYY-MM-DD"),
    band: str | None = typer.Option(None, "--band", help="Only this band (V, R, G...)"),
    max_err: float | None = typer.Option(None, "--max-err", help="Drop points with larger errors, mag"),
    out: Path | None = typer.Option(None, "--out", help="Folder for the CSV and PNG (default: output/lc)"),
) -> None:
    """Plot and export a star's calibrated magnitudes from every night measured."""
    from nightpipe.starlc import StarQuery, export_csv, plot, resolve_star, star_lightcurve
    from nightpipe.store import open_database

    settings = state(ctx).settings
    db = open_database(settings.database.url)
    try:
        ra, dec, label = resolve_star(star, settings, db)
        query = StarQuery(
            ra=ra,
            dec=dec,
            label=label,
            radius_arcsec=radius,
            since=date.fromisoformat(since) if since else None,
            until=date.fromisoformat(until) if until else None,
            band=band,
            max_err=max_err,
        )
        curve = star_lightcurve(db, query)
    finally:
        db.dispose()
    folder = out or settings.paths.output / "lc"
    stem = "".join(c if c.isalnum() or c in "-_+." else "_" for c in label)
    csv_path = export_csv(curve, folder / f"{stem}.csv")
    png_path = plot(curve, folder / f"{stem}.png")
    console().print(f"{label}: {len(curve)} measurements over {len(set(curve.night))} nights")
    console().print(f"csv: {csv_path}\nplot: {png_path}")


def register(app: typer.Typer) -> None:
    """Add the ``lc`` command."""
    app.command("lc")(lc)
