"""The ``solve`` step: a checked WCS for every calibrated frame of a night (or for given files).

Frames are taken in time order. The first one is solved with ``solve-field`` and becomes the
reference; the others are matched to it (see :mod:`nightpipe.astrometry.series`). The WCS is
written into the calibrated frame's primary header atomically; given raw files are never
touched: a solved copy is written to ``<output>/solved/``. One bad frame is recorded with its
reason and the night goes on.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightpipe.astrometry.outcomes import FrameOutcome, SolveSummary, _Extra, _Job
from nightpipe.astrometry.series_solve import _solve_jobs
from nightpipe.config import Settings
from nightpipe.frames.fitsio import FITS_SUFFIXES
from nightpipe.photometry.frame_sources import detection_settings, detections_path
from nightpipe.pipeline.framestep import FrameTask, StepRecord, StepWriter, previous_runs, split_unchanged
from nightpipe.pipeline.interrupt import Interrupted
from nightpipe.progress import Progress
from nightpipe.store.db import Database
from nightpipe.store.models_astrometry import PlateSolution
from nightpipe.store.steps import calibrated_frames

log = logging.getLogger(__name__)

STEP = "solve"


__all__ = ["STEP", "FrameOutcome", "SolveStore", "SolveSummary", "run_solve", "solve_files"]


def _stem(path: Path) -> str:
    """The file name without its FITS suffix (``a.B.060.fits`` -> ``a.B.060``, ``x.fits.gz`` -> ``x``)."""
    name = path.name
    for suffix in sorted(FITS_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return path.stem


def solve_files(
    settings: Settings,
    paths: Iterable[Path],
    *,
    outdir: Path | None = None,
    progress: Progress | None = None,
    plot: bool = True,
) -> SolveSummary:
    """Solve FITS files given directly (as one series, in the order given).

    Each result is a new file ``<outdir>/<stem>.fits`` (default ``<paths.output>/solved``):
    the input is never modified. Unsolvable files are reported with their reason.
    """
    out = Path(outdir) if outdir is not None else Path(settings.paths.output) / "solved"
    jobs = []
    for path in paths:
        path = Path(path)
        stem = _stem(path)
        destination = out / f"{stem}.fits"
        if destination.resolve() == path.resolve():
            destination = out / f"{stem}.solved.fits"
        jobs.append(_Job(name=path.name, source=path, destination=destination))
    return _solve_jobs(settings, jobs, progress=progress, plot_dir=out / "plots" if plot else None)


def _calibrated_jobs(session: Session, settings: Settings, night: str | None) -> list[_Job]:
    rows = calibrated_frames(session, night)
    # the star lists are the photometry's detection: its settings are the solve's too
    digest = f"{settings.digest('astrometry')}:{detection_settings(settings.photometry)}"
    jobs = []
    for frame, run in sorted(rows, key=lambda r: (r[0].mid_utc is None, r[0].mid_utc or 0, r[0].path)):
        path = Path(str(run.output_path))
        jobs.append(
            _Job(
                name=path.name,
                source=path,
                destination=path,
                frame_id=frame.id,
                night=frame.night,
                input_hash=hashlib.sha256(f"{run.input_hash or path}:{digest}".encode()).hexdigest(),
                detections=detections_path(settings.paths.output, frame.night, path),
            )
        )
    return jobs


class SolveStore:
    """How the solve step keeps a frame's outcome (:class:`~nightpipe.pipeline.framestep.FrameStore`):
    its ``plate_solutions`` row, solved or not, and its step run."""

    name = STEP
    store_batch = 16
    retry_failed = True

    def store(
        self, session: Session, task: FrameTask[_Job], result: tuple[FrameOutcome, _Extra | None]
    ) -> StepRecord:
        """The frame's plate solution (an unsolved frame's row says why)."""
        job, (outcome, extra) = task.item, result
        row = session.scalars(select(PlateSolution).where(PlateSolution.frame_id == job.frame_id)).first()
        if row is None:
            row = PlateSolution(frame_id=job.frame_id)
            session.add(row)
        row.night = job.night
        row.path = outcome.output or str(job.source)
        row.solved = outcome.solved
        row.method = outcome.method
        row.n_matched = outcome.n_matched
        row.rms_arcsec = outcome.rms_arcsec
        row.rms_px = outcome.rms_px
        row.pixel_scale = outcome.pixel_scale
        row.rotation = outcome.rotation
        row.ra_center = outcome.ra_center
        row.dec_center = outcome.dec_center
        row.seconds = outcome.seconds
        row.reason = outcome.reason
        if extra is not None:
            row.n_stars = extra.n_stars
            row.n_reference = extra.n_reference
            row.flipped = extra.flipped
            row.sip_order = extra.sip_order
            row.fwhm_px = extra.fwhm_px
        return StepRecord(
            output_path=outcome.output,
            details={k: v for k, v in outcome.as_dict().items() if k not in ("source", "output", "reason")},
            status="ok" if outcome.solved else "failed",
            reason=outcome.reason,
        )


def run_solve(
    settings: Settings,
    db: Database,
    *,
    night: str | None = None,
    progress: Progress | None = None,
    force: bool = False,
    plot: bool = True,
    client: Any = None,
) -> SolveSummary:
    """Plate-solve the calibrated frames recorded in the database (one night, or all).

    After each night's reference frame, the frames are matched to it in parallel (threads, or
    the workers of a Dask ``client``); the database is written in this process only.

    Frames already solved with the same inputs and settings are skipped unless ``force``.
    Each outcome is stored in ``plate_solutions`` and as a ``solve`` step run.

    Parameters
    ----------
    settings
        The effective settings (``astrometry`` section).
    db
        The open database.
    night
        Only this night (``YYYY-MM-DD``); ``None``: every night with calibrated frames.
    progress
        Progress sink for the loop over frames.
    force
        Solve again frames already solved.
    plot
        Draw the catalogue-overlay plot of the first solved frame of each night.
    client
        A ``distributed.Client``, or ``None`` for threads (``settings.parallel.threads``).
    """
    with db.session() as session:
        jobs = _calibrated_jobs(session, settings, night)
    tasks = {
        job.frame_id: FrameTask(job.frame_id, job.night, str(job.input_hash), job, str(job.source))
        for job in jobs
        if job.frame_id is not None
    }
    todo, unchanged = split_unchanged(list(tasks.values()), previous_runs(db, STEP), force=force)
    if unchanged:
        log.info("%d frames already solved with these settings (use --force to redo)", len(unchanged))
    writer: StepWriter[_Job, tuple[FrameOutcome, _Extra | None]] = StepWriter(SolveStore(), db)
    total = SolveSummary(skipped=len(unchanged))
    try:
        for one_night in sorted({task.night or "" for task in todo}):
            night_jobs = [task.item for task in todo if (task.night or "") == one_night]
            plot_dir = Path(settings.paths.output) / "plots" / (one_night or "unknown") if plot else None
            summary = _solve_jobs(
                settings,
                night_jobs,
                progress=progress,
                on_outcome=lambda job, outcome, extra: writer.done(
                    tasks[job.frame_id], (outcome, extra), outcome.seconds
                ),
                plot_dir=plot_dir,
                client=client,
            )
            for outcome in summary.outcomes:
                total.add(outcome)
            total.plot = total.plot or summary.plot
    except Interrupted:  # a stop between two frames: keep those solved, a rerun does the rest
        writer.close(todo)
        raise
    writer.close(todo)
    return total
