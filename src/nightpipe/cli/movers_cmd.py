"""``nightpipe movers NIGHT``: the night's moving objects, linked, identified and reported to the MPC."""

from __future__ import annotations

import typer

from nightpipe.cli.common import console, state


def movers(
    ctx: typer.Context,
    night: str = typer.Argument(..., help="The night (YYYY-MM-DD), measured by `nightpipe run`"),
) -> None:
    """Link the transient detections into tracks; write tracks, observations, MPC 80-column and ADES files."""
    from nightpipe.errors import MissingInputError
    from nightpipe.movers.step import run_movers
    from nightpipe.store import open_database

    settings = state(ctx).settings
    db = open_database(settings.database.url)
    try:
        result = run_movers(settings, db, night=night, force=True)
    finally:
        db.dispose()
    if result.get("unchanged"):
        console().print(f"unchanged since the last search; products in {result['folder']}", markup=False)
        return
    if "skipped" in result:
        raise MissingInputError(
            f"no moving objects searched for on {night}: {result['skipped']}",
            hint="run `nightpipe run` (scan to photometry) on this night first",
        )
    console().print(
        f"{result['transients']} transient detections, {result['tracks']} tracks ({result['identified']} "
        f"identified), {result['observations']} observations; products in {result['folder']}",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    """Add the ``movers`` command."""
    app.command("movers")(movers)
