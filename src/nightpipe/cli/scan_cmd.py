"""``nightpipe scan PATH...`` and ``nightpipe frames``: the frame inventory."""

from __future__ import annotations

import csv
import io
import json
import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from nightpipe.cli.common import console, new_table, progress_for, state
from nightpipe.errors import MissingInputError

if TYPE_CHECKING:
    from rich.table import Table


class OutputFormat(StrEnum):
    """Output formats of ``nightpipe frames``."""

    table = "table"
    csv = "csv"
    json = "json"


def scan(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Files or folders to scan (recursively)"),
    force: bool = typer.Option(False, "--force", help="Re-read every header, changed or not"),
) -> None:
    """Scan folders of FITS frames into the database (only new or changed files are read)."""
    from nightpipe.inventory import scan_paths
    from nightpipe.store import open_database

    for path in paths:
        if not path.exists():
            raise MissingInputError("no such file or folder", path=path, hint="check the path")
    settings = state(ctx).settings
    db = open_database(settings.database.url)
    try:
        summary = scan_paths(paths, settings, db, progress=progress_for(ctx), force=force)
    finally:
        db.dispose()
    console().print(
        f"{summary.files} files: {summary.added} added, {summary.updated} updated, "
        f"{summary.unchanged} unchanged, {summary.bad} bad; {summary.missing} missing; "
        + (f"{summary.duplicates} duplicates; " if summary.duplicates else "")
        + f"{summary.frames} frames read in {summary.seconds:.1f} s"
    )
    if summary.bad or summary.missing or summary.duplicates:
        console(err=True).print(
            "see `nightpipe frames --problems` for the unreadable, missing and duplicate files"
        )


def frames(
    ctx: typer.Context,
    output: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="table, csv or json"),
    night: str | None = typer.Option(None, "--night", "-n", help="Only this night (YYYY-MM-DD)"),
    problems: bool = typer.Option(
        False, "--problems", help="List bad, missing and duplicate files, and the scan's notes, instead"
    ),
    listing: bool = typer.Option(False, "--list", help="List every frame instead of groups"),
    kind: str | None = typer.Option(None, "--kind", "-k", help="With --list: only bias, dark, flat or light"),
    temp_step: float | None = typer.Option(
        None, "--temp-step", help="Temperature bin, C (default: calibration.temperature_tolerance)"
    ),
) -> None:
    """List the frames known, grouped by kind x binning x filter x exposure x temperature."""
    from nightpipe.inventory import frame_summary, group_frames, problem_frames, query_frames
    from nightpipe.store import open_database

    settings = state(ctx).settings
    db = open_database(settings.database.url)
    try:
        with db.session() as session:
            if problems:
                rows = [
                    {
                        "path": f.path,
                        "hdu": f.hdu,
                        "status": f.status if f.status != "ok" else "note",
                        "reason": _reason(f.path, f.error),
                    }
                    for f in problem_frames(session)
                ]
            elif listing:
                rows = [frame_summary(f) for f in query_frames(session, night=night, kind=kind)]
            else:
                step = temp_step if temp_step is not None else settings.calibration.temperature_tolerance
                rows = [g.as_dict() for g in group_frames(session, night=night, temperature_step=step)]
    finally:
        db.dispose()
    if output is OutputFormat.json:
        console().print(json.dumps(rows, indent=2), markup=False)
    elif output is OutputFormat.csv:
        console().print(_csv(rows), markup=False, end="")
    elif problems:
        console().print(_problem_table(rows))
    elif listing:
        console().print(_list_table(rows))
    else:
        console().print(_group_table(rows))


def _reason(path: str, error: str | None) -> str | None:
    """The error without the path it starts with (the path has its own column)."""
    if error is None:
        return "file not found (moved or deleted)"
    return error.removeprefix(f"{path}: ")


def _csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ";".join(v) if isinstance(v, list) else v for k, v in row.items()})
    return buffer.getvalue()


def _group_table(rows: list[dict[str, Any]]) -> Table:
    table = new_table("frames (kind x binning x filter x exposure x temperature)")
    columns = (
        ("kind", "left"), ("binning", "center"), ("filter", "left"), ("exptime s", "right"),
        ("temp C", "right"), ("count", "right"), ("first UTC", "left"), ("last UTC", "left"),
        ("nights", "left"),
    )  # fmt: skip
    for name, justify in columns:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            row["kind"],
            row["binning"],
            row["filter"] or "-",
            "-" if row["exptime"] is None else f"{row['exptime']:g}",
            "-" if row["temperature"] is None else f"{row['temperature']:g}",
            str(row["count"]),
            (row["first_utc"] or "-")[:19],
            (row["last_utc"] or "-")[:19],
            ", ".join(row["nights"]) or "-",
        )
    return table


def _list_table(rows: list[dict[str, Any]]) -> Table:
    table = new_table(f"{len(rows)} frames")
    names = (
        "file",
        "hdu",
        "kind",
        "filter",
        "exptime",
        "binning",
        "ccd_temp",
        "mid_utc",
        "night",
        "kind_source",
    )
    for name in names:
        table.add_column(name)
    for row in rows:
        cells = {**row, "file": Path(row["path"]).name, "mid_utc": (row["mid_utc"] or "")[:19]}
        table.add_row(*("-" if cells[n] is None else str(cells[n]) for n in names))
    return table


def _problem_table(rows: list[dict[str, Any]]) -> Table:
    """The file first, relative to the folder all the files are in, then its status and reason;
    long names and reasons are wrapped, never cut."""
    from rich.text import Text

    paths = [str(row["path"]) for row in rows]
    root = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else ""
    title = "bad, missing and duplicate files, and scan notes"
    table = new_table(f"{title} (files under {root})" if root and root != os.sep else title)
    table.add_column("file", overflow="fold", ratio=2)
    table.add_column("status", no_wrap=True)
    table.add_column("reason", overflow="fold", ratio=3)
    for row, path in zip(rows, paths, strict=True):
        name = os.path.relpath(path, root) if root else path
        hdu = f"[{row['hdu']}]" if row.get("hdu") else ""
        table.add_row(Text(f"{name}{hdu}"), Text(row["status"]), Text(row["reason"] or ""))
    return table


def register(app: typer.Typer) -> None:
    """Add the ``scan`` and ``frames`` commands to the main app."""
    app.command("scan")(scan)
    app.command("frames")(frames)
