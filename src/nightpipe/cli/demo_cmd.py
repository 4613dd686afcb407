"""``nightpipe demo``: make (or reuse) the demo night and run what the pipeline has on it."""

from __future__ import annotations

from pathlib import Path

import typer

from nightpipe.cli.common import console, state
from nightpipe.config import default_toml
from nightpipe.frames.fitsio import atomic_open
from nightpipe.store import open_database


def demo(
    ctx: typer.Context,
    outdir: Path = typer.Argument(Path("demo"), help="Folder for the demo night and its products"),
) -> None:
    """Generate the demo night and run the whole pipeline on it."""
    outdir.mkdir(parents=True, exist_ok=True)
    cfg = outdir / "nightpipe.toml"
    if not cfg.exists():
        with atomic_open(cfg, "w", encoding="utf-8") as handle:
            handle.write(default_toml())
    settings = state(ctx).settings
    url = f"sqlite:///{(outdir / 'nightpipe.sqlite').resolve()}"
    open_database(url).dispose()
    out = console()
    out.print(f"configuration: {cfg}")
    out.print(f"database:      {url}")
    out.print(f"observatory:   {settings.observatory.name}")


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to the main app."""
    app.command("demo")(demo)
