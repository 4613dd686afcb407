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
    from nightpipe.cli.run_cmd import print_run, run_until_stopped
    from nightpipe.pipeline.demo import prepare_demo

    settings, raw = prepare_demo(outdir, progress=progress_for(ctx))
    console().print(f"demo night: {raw}  (settings: {outdir / 'nightpipe.toml'})")
    result = run_until_stopped(ctx, settings, [raw])
    print_run(result, settings)
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to the main app."""
    app.command("demo")(demo)
