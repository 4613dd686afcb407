"""``nightpipe demo``: make (or reuse) the demo night and run the whole pipeline on it."""

from __future__ import annotations

from pathlib import Path

import typer

from nightpipe.cli.common import console, progress_for


def demo(
    ctx: typer.Context,
    outdir: Path = typer.Argument(Path("demo"), help="Folder for the demo night and its products"),
) -> None:
    """Generate the demo night (a simulated transit on a real star field) and run the whole pipeline."""
    from nightpipe.cli.run_cmd import print_run
    from nightpipe.pipeline.demo import prepare_demo
    from nightpipe.pipeline.night import run_night

    progress = progress_for(ctx)
    settings, raw = prepare_demo(outdir, progress=progress)
    console().print(f"demo night: {raw}  (settings: {outdir / 'nightpipe.toml'})")
    result = run_night(settings, [raw], progress=progress)
    print_run(result, settings)
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to the main app."""
    app.command("demo")(demo)
