"""The ``nightpipe`` console script."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from nightpipe.cli import (
    calibrate_cmd,
    config_cmd,
    demo_cmd,
    doctor_cmd,
    identify_cmd,
    ingest_cmd,
    lc_cmd,
    lightcurve_cmd,
    masters_cmd,
    movers_cmd,
    photometry_cmd,
    run_cmd,
    scan_cmd,
    simulate_cmd,
    solve_cmd,
    tess_cmd,
    web_cmd,
    zeropoint_cmd,
)
from nightpipe.cli.common import CliState, console, labelled
from nightpipe.errors import NightpipeError
from nightpipe.exit_codes import ExitCode, exit_code_lines
from nightpipe.kernel_cache import use_user_cache
from nightpipe.logs import configure_logging
from nightpipe.pipeline.interrupt import Interrupted

EPILOG = "Exit codes:\n" + "\n".join(exit_code_lines())

app = typer.Typer(
    name="nightpipe",
    help="From a night of raw observatory frames to calibrated images, photometry and light curves.",
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from nightpipe import __version__

        console().print(f"nightpipe {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Configuration file (TOML or INI)", envvar="NIGHTPIPE_CONFIG"
    ),
    set_: list[str] = typer.Option([], "--set", "-s", help="Override a setting: section.key=value"),
    output: Path | None = typer.Option(
        None,
        "--output",
        help="Put the products, the masters library and the (SQLite) database under this folder: "
        "one flag isolates a run (a --set of the same setting wins)",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debugging detail"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors; no progress bars"),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors"),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit"
    ),
) -> None:
    """Global options shared by every command."""
    ctx.obj = CliState(
        config_path=config, overrides=list(set_), quiet=quiet, verbose=verbose, debug=debug, output=output
    )
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    configure_logging(level)


config_cmd.register(app)
demo_cmd.register(app)
run_cmd.register(app)
ingest_cmd.register(app)
lc_cmd.register(app)
scan_cmd.register(app)
zeropoint_cmd.register(app)
solve_cmd.register(app)
masters_cmd.register(app)
calibrate_cmd.register(app)
photometry_cmd.register(app)
simulate_cmd.register(app)
lightcurve_cmd.register(app)
tess_cmd.register(app)
identify_cmd.register(app)
doctor_cmd.register(app)
movers_cmd.register(app)
web_cmd.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (see :mod:`nightpipe.exit_codes`); typed errors
    become one line on stderr."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    use_user_cache()  # before any command imports numba: compiled kernels go to one writable folder
    try:
        # without standalone mode a command's ``typer.Exit(code)`` comes back as the return value
        code = app(args=args, prog_name="nightpipe", standalone_mode=False)
    except NightpipeError as exc:
        if debug:
            raise
        console(err=True).print(labelled("error:", "bold red", str(exc)))
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except OSError as exc:  # a full disk or a read-only folder outside any step
        from nightpipe.pipeline.runner import fault_text

        text = fault_text(exc)
        if debug or text is None:
            raise
        console(err=True).print(labelled("error:", "bold red", text))
        return ExitCode.FAILED
    except Interrupted as exc:  # a second signal, outside the run's own handling
        console(err=True).print(exc.message())
        return exc.exit_code
    except typer.Abort:
        console(err=True).print("aborted")
        return ExitCode.INTERRUPTED
    except typer.TyperException as exc:  # usage errors: unknown command, bad option...
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        return int(getattr(exc, "exit_code", ExitCode.USAGE))
    return code if isinstance(code, int) else ExitCode.OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
