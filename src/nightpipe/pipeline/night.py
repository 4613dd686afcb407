"""The night recipe: scan, masters, calibrate, solve, photometry, zero points, identify, light curves, report.

Each step is a thin adapter from :class:`~nightpipe.pipeline.runner.NightContext` to the
library function of its module; the modules do the per-frame work, skip what is already
done with the same inputs and settings, and record each frame's outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from nightpipe.config import Settings
from nightpipe.errors import MissingInputError
from nightpipe.frames.fitsio import sweep_temporary
from nightpipe.inventory.walk import SCAN_SUFFIXES, iter_fits_files
from nightpipe.pipeline.interrupt import StoppingProgress, StopRequest
from nightpipe.pipeline.lock import database_lock, night_lock
from nightpipe.pipeline.parallel import dask_client
from nightpipe.pipeline.runner import NightContext, RunSummary, Step, StepResult, run_steps
from nightpipe.pipeline.tallies import lightcurves_tally, masters_tally, per_frame, scan_tally
from nightpipe.progress import NullProgress, Progress
from nightpipe.store.db import Database, open_database
from nightpipe.store.models import Frame, StepRun

log = logging.getLogger(__name__)


def _scan(ctx: NightContext) -> Any:
    from nightpipe.inventory import scan_paths

    return scan_paths(list(ctx.raw_dirs), ctx.settings, ctx.db, progress=ctx.progress)


def _masters(ctx: NightContext) -> Any:
    from nightpipe.calib.masters import run_masters

    return run_masters(ctx.settings, ctx.db, progress=ctx.progress, plots=True)


def _calibrate(ctx: NightContext) -> Any:
    from nightpipe.calib.step import run_calibrate

    return run_calibrate(ctx.settings, ctx.db, night=ctx.night, progress=ctx.progress, client=ctx.client)


def _solve(ctx: NightContext) -> Any:
    from nightpipe.astrometry.step import run_solve

    return run_solve(ctx.settings, ctx.db, night=ctx.night, progress=ctx.progress, client=ctx.client)


def _photometry(ctx: NightContext) -> Any:
    from nightpipe.photometry.step import run_photometry

    return run_photometry(ctx.settings, ctx.db, night=ctx.night, progress=ctx.progress, client=ctx.client)


def _zeropoints(ctx: NightContext) -> Any:
    from nightpipe.calphot.step import run_zeropoints

    return run_zeropoints(ctx.settings, ctx.db, night=ctx.night, progress=ctx.progress)


def _identify(ctx: NightContext) -> Any:
    from nightpipe.identify.step import run_identify

    return run_identify(ctx.settings, ctx.db, night=ctx.night, progress=ctx.progress)


def _movers(ctx: NightContext) -> Any:
    from nightpipe.movers.step import run_movers

    return run_movers(ctx.settings, ctx.db, night=ctx.night)


def _lightcurves(ctx: NightContext) -> Any:
    from nightpipe.timeseries.step import run_lightcurves

    return run_lightcurves(ctx.settings, ctx.db, night=ctx.night, progress=ctx.progress)


def _report(ctx: NightContext) -> Any:
    from nightpipe.report.night_report import report_inputs_digest, write_night_report
    from nightpipe.store.steps import record_step

    if ctx.night is None:
        return {"skipped": "no night"}
    digest = report_inputs_digest(ctx.settings, ctx.db, ctx.night)
    html = ctx.settings.paths.output / "reports" / f"{ctx.night}.html"
    with ctx.db.session() as session:
        previous = session.scalars(
            select(StepRun).where(
                StepRun.step == "report", StepRun.night == ctx.night, StepRun.frame_id.is_(None)
            )
        ).first()
        if previous is not None and previous.input_hash == digest and html.is_file():
            return {"skipped": 1, "html": str(html)}
    paths = write_night_report(ctx.settings, ctx.db, ctx.night)
    with ctx.db.session() as session:
        record_step(
            session,
            step="report",
            status="ok",
            night=ctx.night,
            input_hash=digest,
            output_path=str(paths.html),
        )
    return {"skipped": 0, "html": str(paths.html), "zip": str(paths.zip)}


SCAN = Step("scan", "find and classify the raw frames", ("raw folder",), ("frames",), _scan, scan_tally)
MASTERS = Step(
    "masters", "build master bias, dark and flat", ("frames",), ("masters",), _masters, masters_tally
)
NIGHT_STEPS: tuple[Step, ...] = (
    Step(
        "calibrate",
        "calibrate the light frames",
        ("frames", "masters"),
        ("calibrated frames",),
        _calibrate,
        per_frame("calibrate"),
    ),
    Step(
        "solve",
        "plate-solve the calibrated frames",
        ("calibrated frames",),
        ("WCS",),
        _solve,
        per_frame("solve"),
    ),
    Step(
        "photometry",
        "detect and measure sources",
        ("calibrated frames", "WCS"),
        ("source tables",),
        _photometry,
        per_frame("photometry"),
    ),
    Step(
        "zeropoints",
        "calibrate magnitudes against a catalogue",
        ("source tables",),
        ("zero points",),
        _zeropoints,
        per_frame("zeropoint"),
    ),
    Step(
        "identify",
        "what is in the field: SIMBAD, VSX, Gaia, SkyBoT (cached, offline-first)",
        ("source tables", "WCS"),
        ("field catalogue", "known variables"),
        _identify,
    ),
    Step(
        "movers",
        "moving objects: tracks, MPC and ADES reports (when movers.enabled)",
        ("source tables", "WCS"),
        ("tracks",),
        _movers,
    ),
    Step(
        "lightcurves",
        "differential light curves and transit fits",
        ("source tables",),
        ("light curves",),
        _lightcurves,
        lightcurves_tally,
    ),
    Step("report", "write the night report", ("everything",), ("report",), _report),
)


@dataclass(frozen=True)
class NightRun:
    """The outcome of ``nightpipe run``: per night, the summary of its steps."""

    nights: dict[str, RunSummary]
    setup: RunSummary

    @property
    def exit_code(self) -> int:
        """The worst exit code of the set-up and every night."""
        codes = [self.setup.exit_code, *(s.exit_code for s in self.nights.values())]
        return max(codes) if codes else 0

    @property
    def steps(self) -> tuple[StepResult, ...]:
        """Every step result, set-up first."""
        return self.setup.steps + tuple(r for s in self.nights.values() for r in s.steps)


def nights_in(db: Database, raw_dirs: Sequence[Path]) -> list[str]:
    """The nights of the light frames found under ``raw_dirs``."""
    prefixes = [str(Path(d).resolve()) for d in raw_dirs]
    with db.session() as session:
        rows = session.execute(
            select(Frame.path, Frame.night).where(Frame.kind == "light", Frame.status == "ok")
        )
        nights = {
            n for path, n in rows if n and any(str(Path(path).resolve()).startswith(p) for p in prefixes)
        }
    return sorted(nights)


def run_night(
    settings: Settings,
    raw_dirs: Sequence[Path],
    *,
    night: str | None = None,
    steps: Sequence[str] | None = None,
    progress: Progress | None = None,
    db: Database | None = None,
    stop: StopRequest | None = None,
) -> NightRun:
    """Run the whole pipeline on the raw folders: scan and masters once, then every night's steps.

    Parameters
    ----------
    steps
        Names of the steps to run (default: all).
    night
        Restrict the per-night steps to one night (``YYYY-MM-DD``).
    stop
        Checked between frames and steps (see :mod:`nightpipe.pipeline.interrupt`): once a stop
        is asked for, the frames done are kept and the run ends with ``Interrupted``.

    Raises
    ------
    PipelineError
        When another run holds the lock of the output folder or of the database (the message
        names it), or the output folder cannot be written.
    MissingInputError
        When a raw folder does not exist or holds no FITS file.
    Interrupted
        When ``stop`` was asked for; it says at which step and how many frames were done.
    """
    for folder in raw_dirs:
        if not Path(folder).is_dir():
            raise MissingInputError(
                "raw folder not found", path=folder, hint="give the folder of the night's frames"
            )
    if next(iter_fits_files(raw_dirs), None) is None:
        raise MissingInputError(
            f"no FITS files in {', '.join(map(str, raw_dirs))} or its sub-folders",
            hint=f"FITS files are named {' '.join(SCAN_SUFFIXES)} (any case); give the night's folder",
        )
    wanted = set(steps) if steps else None
    progress = progress or NullProgress()
    if stop is not None:
        progress = StoppingProgress(progress, stop)
    own_db = db is None
    database = db or open_database(settings.database.url)
    output = settings.paths.output
    try:
        with night_lock(output, "run"), database_lock(database), dask_client(settings.parallel) as client:
            swept = sweep_temporary(output)
            if swept:
                log.warning("removed %d unfinished files left by an interrupted run", swept)
            base = NightContext(
                settings=settings,
                db=database,
                raw_dirs=tuple(Path(d) for d in raw_dirs),
                progress=progress,
                client=client,
                stop=stop,
            )
            setup_steps = [s for s in (SCAN, MASTERS) if wanted is None or s.name in wanted]
            setup = run_steps(setup_steps, base)
            nights = [night] if night else nights_in(database, raw_dirs)
            results: dict[str, RunSummary] = {}
            for this_night in nights:
                ctx = NightContext(
                    settings=settings,
                    db=database,
                    raw_dirs=base.raw_dirs,
                    night=this_night,
                    progress=progress,
                    client=client,
                    stop=stop,
                )
                chosen = [s for s in NIGHT_STEPS if wanted is None or s.name in wanted]
                results[this_night] = run_steps(chosen, ctx)
            if not nights:
                log.warning("no light frames found under %s", ", ".join(str(d) for d in raw_dirs))
            return NightRun(nights=results, setup=setup)
    finally:
        if own_db:
            database.dispose()
