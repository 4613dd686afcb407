"""``nightpipe identify NIGHT|FRAME`` and ``nightpipe catalog fetch``: what is in the field, cached."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from nightpipe.cli.common import console, progress_for, state

NIGHT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
catalog_app = typer.Typer(help="The cache of catalogue and service answers.", no_args_is_help=True)


def identify(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="A night (YYYY-MM-DD) or a measured frame's file"),
) -> None:
    """Identify the stars and objects of a night (or one frame): SIMBAD, VSX, Gaia, SkyBoT..."""
    from nightpipe.errors import ConfigError
    from nightpipe.identify.step import run_identify
    from nightpipe.store import open_database

    settings = state(ctx).settings
    db = open_database(settings.database.url)
    try:
        if NIGHT.match(target):
            night, frame_id = target, None
        else:
            night, frame_id = _frame_of(db, Path(target))
        result = run_identify(
            settings, db, night=night, frame_id=frame_id, progress=progress_for(ctx), force=True
        )
    finally:
        db.dispose()
    out = console()
    if "skipped" in result:
        raise ConfigError(
            f"nothing identified for {target}: {result['skipped']}",
            hint="run `nightpipe run` (or solve and photometry) on this night first",
        )
    for line in str(result["services"]).split("; "):
        out.print(line, markup=False, highlight=False)
    out.print(
        f"{result['known_variables']} known variables, {result['objects']} objects of interest, "
        f"{result['solar_system_bodies']} solar-system bodies; products in {result['folder']}",
        markup=False,
    )


def _frame_of(db: object, path: Path) -> tuple[str, int]:
    """The night and id of a frame given by its raw or calibrated file."""
    from sqlalchemy import select

    from nightpipe.errors import ConfigError
    from nightpipe.store.db import Database
    from nightpipe.store.models import Frame, StepRun

    assert isinstance(db, Database)
    wanted = str(path.resolve())
    with db.session() as session:
        row = session.execute(select(Frame.night, Frame.id).where(Frame.path == wanted)).first()
        if row is None:
            row = session.execute(
                select(Frame.night, Frame.id)
                .join(StepRun, StepRun.frame_id == Frame.id)
                .where(StepRun.step == "calibrate", StepRun.output_path == wanted)
            ).first()
    if row is None or row[0] is None:
        raise ConfigError(
            f"{path}: not a night (YYYY-MM-DD) nor a frame of the database",
            hint="give a night, or a frame that `nightpipe run` has measured",
        )
    return str(row[0]), int(row[1])


def fetch(
    ctx: typer.Context,
    ra: float | None = typer.Option(None, "--ra", help="Field centre, degrees"),
    dec: float | None = typer.Option(None, "--dec", help="Field centre, degrees"),
    radius: float = typer.Option(
        0.5, "--radius", help="Cone radius, degrees (cover the field and its drift)"
    ),
    night: str | None = typer.Option(
        None, "--night", help="A measured night: its field and its frames' epochs"
    ),
    date: str | None = typer.Option(
        None, "--date", help="Start of a planned night (ISO UTC) for SkyBoT epochs"
    ),
    hours: float = typer.Option(10.0, "--hours", help="Length of the planned night"),
) -> None:
    """Fill the cache ahead of a night at a telescope without internet."""
    from nightpipe.errors import ConfigError
    from nightpipe.identify.prefetch import prefetch_field, prefetch_night

    settings = state(ctx).settings
    if settings.catalog.offline:
        raise ConfigError(
            "catalog.offline is true: nothing can be fetched",
            hint="run with --set catalog.offline=false while online",
        )
    if night is not None:
        from nightpipe.store import open_database

        db = open_database(settings.database.url)
        try:
            lines = prefetch_night(settings, db, night)
        finally:
            db.dispose()
    elif ra is not None and dec is not None:
        lines = prefetch_field(settings, ra, dec, radius, start_iso=date, hours=hours)
    else:
        raise ConfigError(
            "give --ra and --dec (and --radius), or --night", hint="nightpipe catalog fetch --help"
        )
    out = console()
    for line in lines:
        out.print(line, markup=False, highlight=False)
    if any(": missed" in line or ": partial" in line for line in lines):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``identify`` and ``catalog fetch``."""
    app.command("identify")(identify)
    catalog_app.command("fetch")(fetch)
    app.add_typer(catalog_app, name="catalog")
