"""``nightpipe run``: the whole night, from the raw folder to the report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nightpipe.cli.common import console, new_table, progress_for, state

if TYPE_CHECKING:
    from nightpipe.config import Settings
    from nightpipe.pipeline.night import NightRun
    from nightpipe.pipeline.runner import StepResult


def run(
    ctx: typer.Context,
    raw_dirs: list[Path] = typer.Argument(..., help="Folder(s) of the night's raw frames"),
    night: str | None = typer.Option(None, "--night", help="Only this night (YYYY-MM-DD)"),
    steps: str | None = typer.Option(None, "--steps", help="Comma-separated steps to run (default: all)"),
    workers: int | None = typer.Option(None, "--workers", help="Local Dask cluster of N processes"),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Address of an existing Dask scheduler"),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as one JSON object (for scripts)"),
) -> None:
    """Run scan, masters, calibration, solving, photometry, zero points, light curves and the report."""
    cli = state(ctx)
    if workers is not None:
        cli.overrides.append(f"parallel.workers={workers}")
    if scheduler is not None:
        cli.overrides.append(f"parallel.scheduler={scheduler!r}")
    settings = cli.settings
    chosen = [s.strip() for s in steps.split(",")] if steps else None
    result = run_until_stopped(ctx, settings, raw_dirs, night=night, steps=chosen)
    if as_json:
        import json

        console().print(json.dumps(run_as_dict(result)), markup=False, highlight=False, soft_wrap=True)
    else:
        print_run(result, settings)
    raise typer.Exit(result.exit_code)


def run_as_dict(result: NightRun) -> dict[str, object]:
    """The outcome of a run as plain data: the exit code, and per night each step's status,
    times, counts, failures (frame and reason) and summary."""
    from nightpipe.store.values import jsonable

    def step(s: StepResult) -> dict[str, object]:
        tally = s.tally
        return {
            "step": s.name,
            "status": s.status,
            "wall_s": round(s.wall_s, 2),
            "cpu_s": round(s.cpu_s, 2),
            "total": tally.total if tally else None,
            "failed": tally.failed if tally else 0,
            "unit": tally.unit if tally else None,
            "failures": [{"item": f, "reason": r} for f, r in (tally.failures if tally else ())],
            "error": s.error,
            "summary": jsonable(dict(s.summary)),
        }

    return {
        "exit_code": int(result.exit_code),
        "setup": [step(s) for s in result.setup.steps],
        "nights": {night: [step(s) for s in summary.steps] for night, summary in result.nights.items()},
    }


def run_until_stopped(
    ctx: typer.Context,
    settings: Settings,
    raw_dirs: list[Path],
    *,
    night: str | None = None,
    steps: list[str] | None = None,
) -> NightRun:
    """:func:`~nightpipe.pipeline.night.run_night`, stopped cleanly by SIGINT or SIGTERM: the
    frames done are kept, ``aborted at STEP, N of M frames done, rerun to resume`` is printed and
    the command exits 130 or 143."""
    from nightpipe.pipeline.interrupt import Interrupted, stop_on_signals
    from nightpipe.pipeline.night import run_night

    progress = progress_for(ctx)
    with stop_on_signals() as stop:
        try:
            return run_night(settings, raw_dirs, night=night, steps=steps, progress=progress, stop=stop)
        except Interrupted as exc:
            progress.stop()
            console(err=True).print(exc.message(), markup=False, highlight=False)
            raise typer.Exit(exc.exit_code) from None


SHOWN_FAILURES = 10  # per step; the night report lists them all


def shown_path(path: Path) -> str:
    """A path relative to the working folder when it lies under it, else as it is."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(path)


def print_run(result: NightRun, settings: Settings) -> None:
    """A table of every step (status, frames, wall and CPU time, figures in human units), each
    failed frame with its reason, and where the products are."""
    from nightpipe.report.night_state import human_summary

    output = settings.paths.output.resolve()
    table = new_table("nightpipe run")
    for column in ("night", "step", "status", "frames", "wall s", "cpu s"):
        table.add_column(column, no_wrap=True)
    table.add_column("summary", overflow="fold")
    failures: list[str] = []
    for label, summary in [("setup", result.setup), *result.nights.items()]:
        for step in summary.steps:
            brief = human_summary(dict(step.summary), output)
            status = step.status if step.error is None else f"{step.status}: {step.error}"
            counted = step.tally.describe() if step.tally is not None else ""
            table.add_row(label, step.name, status, counted, f"{step.wall_s:.1f}", f"{step.cpu_s:.1f}", brief)
            failures += _failure_lines(label, step)
    out = console()
    out.print(table)
    for line in failures:
        out.print(line, markup=False, highlight=False)
    for night_name in result.nights:
        for line in fit_lines(settings.paths.output / "lightcurves" / night_name):
            out.print(f"{night_name} {line}", highlight=False)
        report = settings.paths.output / "reports" / f"{night_name}.html"
        if report.exists():
            out.print(f"report for {night_name}: {shown_path(report)}")
    out.print(f"products: {shown_path(settings.paths.output)}   database: {settings.database.url}")


def _failure_lines(label: str, step: StepResult) -> list[str]:
    """``failed  NIGHT STEP FRAME: REASON`` for the first failures of a step."""
    if step.tally is None or not step.tally.failures:
        return []
    lines = [f"failed  {label} {step.name} {name}: {reason}" for name, reason in step.tally.failures]
    more = len(lines) - SHOWN_FAILURES
    if more > 0:
        lines = [
            *lines[:SHOWN_FAILURES],
            f"        ... and {more} more {step.name} failures (see the report)",
        ]
    return lines


def fit_lines(folder: Path) -> list[str]:
    """One line per transit fit of a night: the figures of the report's fits table."""
    import json

    from nightpipe.report.night_report import fit_summary_row

    lines = []
    for path in sorted(folder.glob("*_fit.json")) if folder.is_dir() else []:
        row = fit_summary_row(json.loads(path.read_text()))
        target = row.pop("target", path.stem)
        lines.append(f"{target}: " + ", ".join(f"{k} {v}" for k, v in row.items()))
    return lines


def register(app: typer.Typer) -> None:
    """Add the ``run`` command."""
    from nightpipe.exit_codes import exit_code_lines

    epilog = "Exit codes:\n" + "\n".join(exit_code_lines())
    app.command("run", epilog=epilog)(run)
