"""``nightpipe demo``: make (or reuse) the demo night and run the whole pipeline on it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nightpipe.cli.common import console, progress_for

if TYPE_CHECKING:
    from nightpipe.config import Settings


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
    for line in skipped_because(settings):
        console().print(line, markup=False)
    raise typer.Exit(result.exit_code)


def skipped_because(settings: Settings) -> list[str]:
    """What the demo could not do on this machine, why, and the command that fixes it."""
    from nightpipe.doctor import check_index_files, check_solver

    lines = []
    for check, lost in ((check_solver(), "no blind plate solution of the first frame"),
                        (check_index_files(settings), "no plate solutions, so no sky positions, zero points "
                                                      "or identification")):  # fmt: skip
        if not check.ok:
            lines.append(f"skipped: {lost}, because {check.found}; to fix: {check.fix}")
    lines.append("identify: offline demo, no service asked (fill the cache with `nightpipe catalog fetch`)")
    return lines


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to the main app."""
    app.command("demo")(demo)
