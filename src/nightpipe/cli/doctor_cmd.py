"""``nightpipe doctor``: one table of what this machine gives the pipeline, and how to get the rest."""

from __future__ import annotations

import typer

from nightpipe.cli.common import console, state


def doctor(
    ctx: typer.Context,
    warm: bool = typer.Option(
        False,
        "--warm",
        help="Only compile the night's numba kernels into the cache (once per install), no checks",
    ),
) -> None:
    """Check the solver, index files, database, cache, numba, Dask, PostgreSQL driver and browser."""
    from rich.table import Table
    from rich.text import Text

    from nightpipe.doctor import run_checks

    if warm:
        from nightpipe.kernel_warmup import warm_kernels

        stages = warm_kernels(state(ctx).settings.photometry)
        done = ", ".join(f"{stage.name} {stage.seconds:.1f} s" for stage in stages)
        console().print(f"numba kernels compiled or loaded: {done}")
        return
    checks = run_checks(state(ctx).settings)
    table = Table(show_lines=False)
    for column in ("", "what", "found", "to fix"):
        table.add_column(column, overflow="fold")
    for check in checks:
        if check.ok:
            mark = Text("ok", style="green")
        else:
            mark = Text("FAILED", style="red") if check.required else Text("missing", style="yellow")
        table.add_row(mark, Text(check.name), Text(check.found), Text(check.fix))
    console().print(table)
    if any(c.required and not c.ok for c in checks):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``doctor`` command."""
    app.command("doctor")(doctor)
