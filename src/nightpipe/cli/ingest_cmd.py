"""``nightpipe ingest`` (one pass, for cron) and ``nightpipe watch`` (until stopped)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import typer

from nightpipe.cli.common import console, state
from nightpipe.exit_codes import ExitCode


def _one_pass(
    ctx: typer.Context, incoming: Path, archive: Path, move: bool, process: bool, settle: float
) -> int:
    from nightpipe.pipeline.ingest import ingest, process_nights

    settings = state(ctx).settings
    summary = ingest(incoming, archive, settings, move=move, settle_s=settle)
    out = console()
    out.print(
        f"ingest: {summary.copied} copied, {summary.unchanged} already in, {summary.waiting} still being "
        f"written, {summary.bad} unreadable" + (f", {summary.moved} moved" if move else "")
    )
    code: int = ExitCode.FAILED if summary.bad else ExitCode.OK
    if process and summary.nights:
        for night, night_code in process_nights(settings, archive, summary.nights).items():
            out.print(f"night {night}: exit {night_code}")
            code = max(code, night_code)
    return code


def ingest_command(
    ctx: typer.Context,
    incoming: Path = typer.Argument(..., help="Folder where the camera writes new frames"),
    archive: Path = typer.Argument(..., help="Archive root; frames go to ARCHIVE/<night>/"),
    move: bool = typer.Option(False, "--move", help="Delete each source after its verified copy"),
    process: bool = typer.Option(
        True, "--process/--no-process", help="Run the pipeline on nights with new files"
    ),
    settle: float = typer.Option(
        30.0, "--settle", help="Skip files modified less than this many seconds ago"
    ),
) -> None:
    """Copy new frames into the archive by night (checksum-verified), then process those nights."""
    raise typer.Exit(_one_pass(ctx, incoming, archive, move, process, settle))


def watch_command(
    ctx: typer.Context,
    incoming: Path = typer.Argument(..., help="Folder where the camera writes new frames"),
    archive: Path = typer.Argument(..., help="Archive root; frames go to ARCHIVE/<night>/"),
    interval: float = typer.Option(60.0, "--interval", help="Seconds between passes"),
    move: bool = typer.Option(False, "--move", help="Delete each source after its verified copy"),
    settle: float = typer.Option(
        30.0, "--settle", help="Skip files modified less than this many seconds ago"
    ),
    passes: int = typer.Option(0, "--passes", help="Stop after this many passes (0: until stopped)"),
) -> None:
    """Ingest and process new frames every INTERVAL seconds until SIGINT/SIGTERM."""
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        console(err=True).print(f"signal {signum}: stopping after this pass")
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    done = 0
    while not stop.is_set():
        _one_pass(ctx, incoming, archive, move, True, settle)
        done += 1
        if passes and done >= passes:
            break
        stop.wait(interval)


def register(app: typer.Typer) -> None:
    """Add the ``ingest`` and ``watch`` commands."""
    app.command("ingest")(ingest_command)
    app.command("watch")(watch_command)
