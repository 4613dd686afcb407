"""``nightpipe config``: write the commented default, show the effective settings."""

from __future__ import annotations

from pathlib import Path

import typer

from nightpipe.cli.common import console, state
from nightpipe.errors import ConfigError

DEFAULT_FILE = "nightpipe.toml"  # nightpipe.config.DEFAULT_FILE, without importing the settings' models
config_app = typer.Typer(help="Write, show and check the configuration.", no_args_is_help=True)


@config_app.command("init")
def init(
    path: Path = typer.Argument(Path(DEFAULT_FILE), help="File to write"),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file"),
) -> None:
    """Write a commented default configuration file."""
    if path.exists() and not force:
        raise ConfigError("file exists already", path=path, hint="use --force to overwrite it")
    from nightpipe.config import default_toml
    from nightpipe.frames.fitsio import atomic_open

    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(default_toml())
    console(err=True).print(f"wrote {path}")


@config_app.command("show")
def show(ctx: typer.Context) -> None:
    """Print the effective configuration (file + environment + --set) as TOML."""
    from nightpipe.config import settings_to_toml

    console().print(settings_to_toml(state(ctx).settings), markup=False)


@config_app.command("check")
def check(ctx: typer.Context) -> None:
    """Validate the configuration and say so."""
    settings = state(ctx).settings
    console().print(f"configuration is valid ({len(settings.to_dict())} sections)")


def register(app: typer.Typer) -> None:
    """Add the ``config`` command group to the main app."""
    app.add_typer(config_app, name="config")
