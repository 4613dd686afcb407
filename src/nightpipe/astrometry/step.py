"""The ``solve`` step: a checked WCS for every calibrated frame of a night (or for given files).

Frames are taken in time order. The first one is solved with ``solve-field`` and becomes the
reference; the others are matched to it (see :mod:`nightpipe.astrometry.series`). The WCS is
written into the calibrated frame's primary header atomically; given raw files are never
touched: a solved copy is written to ``<output>/solved/``. One bad frame is recorded with its
reason and the night goes on.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astropy.io import fits
from sqlalchemy import select
from sqlalchemy.orm import Session

from nightpipe.astrometry.checks import RefinedWcs
from nightpipe.astrometry.index_catalog import IndexCatalog
from nightpipe.astrometry.series import FrameSolution, NightSolver
from nightpipe.astrometry.sources import StarList
from nightpipe.astrometry.wcs_io import read_frame_for_solving, strip_wcs, was_solved_by_us, write_solution
from nightpipe.config import Settings
from nightpipe.errors import AstrometryError, CatalogError, FitsReadError, NightpipeError
from nightpipe.frames.fitsio import FITS_SUFFIXES
from nightpipe.pipeline.framestep import FrameTask, StepRecord, StepWriter, previous_runs, split_unchanged
from nightpipe.pipeline.interrupt import Interrupted
from nightpipe.pipeline.parallel import Outcome, map_frames
from nightpipe.progress import NullProgress, Progress
from nightpipe.store.db import Database
from nightpipe.store.models_astrometry import PlateSolution
from nightpipe.store.steps import calibrated_frames

log = logging.getLogger(__name__)

STEP = "solve"


@dataclass(frozen=True)
class FrameOutcome:
    """What happened to one frame."""

    name: str
    source: str
    output: str | None
    solved: bool
    method: str | None = None
    n_matched: int | None = None
    rms_arcsec: float | None = None
    rms_px: float | None = None
    pixel_scale: float | None = None
    rotation: float | None = None
    ra_center: float | None = None
    dec_center: float | None = None
    seconds: float | None = None
    reason: str | None = None
    frame_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for JSON details and reports)."""
        return dict(self.__dict__)


@dataclass
class SolveSummary:
    """The outcome of a ``solve`` run: counts (plain fields, for the night runner) and every frame."""

    solved: int = 0
    failed: int = 0
    skipped: int = 0
    by_header: int = 0
    by_reference_match: int = 0
    by_solve_field: int = 0
    plot: str | None = None
    outcomes: list[FrameOutcome] = field(default_factory=list)

    def add(self, outcome: FrameOutcome) -> None:
        """Count one frame's outcome."""
        self.outcomes.append(outcome)
        if not outcome.solved:
            self.failed += 1
            return
        self.solved += 1
        if outcome.method == "header":
            self.by_header += 1
        elif outcome.method == "reference-match":
            self.by_reference_match += 1
        elif outcome.method == "solve-field":
            self.by_solve_field += 1

    @property
    def methods(self) -> dict[str, int]:
        """How many frames each method solved."""
        return dict(Counter(o.method for o in self.outcomes if o.solved and o.method))


@dataclass(frozen=True)
class _Job:
    name: str
    source: Path
    destination: Path
    frame_id: int | None = None
    night: str | None = None
    input_hash: str | None = None


def _outcome_from(job: _Job, solution: FrameSolution, output: Path) -> FrameOutcome:
    q = solution.quality
    return FrameOutcome(
        name=job.name,
        source=str(job.source),
        output=str(output),
        solved=True,
        method=solution.method,
        n_matched=q.n_matched,
        rms_arcsec=float(q.rms_arcsec),
        rms_px=float(q.rms_px),
        pixel_scale=q.geometry.pixel_scale,
        rotation=q.geometry.rotation,
        ra_center=q.geometry.ra_center,
        dec_center=q.geometry.dec_center,
        seconds=solution.seconds,
        reason=solution.note or None,
        frame_id=job.frame_id,
    )


@dataclass(frozen=True)
class _Extra:
    """The few numbers of a solution the database keeps beside the outcome (picklable, small)."""

    n_stars: int
    n_reference: int
    flipped: bool
    sip_order: int
    fwhm_px: float


def _extra(solution: FrameSolution) -> _Extra:
    return _Extra(
        n_stars=len(solution.stars),
        n_reference=solution.quality.n_reference,
        flipped=solution.quality.geometry.flipped,
        sip_order=int(solution.wcs.sip.a_order) if solution.wcs.sip is not None else 0,
        fwhm_px=float(solution.stars.fwhm_px),
    )


class _DeferredError(Exception):
    """Raised by :class:`_MatchOnly` where a full solve would start: the frame goes back to the parent."""


class _MatchOnly(NightSolver):
    """A solver that checks the header WCS and matches to the reference frame, but never runs solve-field."""

    def try_solve_field(self, header: fits.Header, stars: StarList) -> tuple[RefinedWcs | None, str]:
        """Defer the frame (a full solve may replace the reference, so it runs in frame order)."""
        raise _DeferredError


def _solve_one(solver: NightSolver, job: _Job) -> tuple[FrameOutcome, FrameSolution | None]:
    start = time.perf_counter()
    try:
        frame = read_frame_for_solving(job.source)
        header = frame.header
        if was_solved_by_us(header):
            header = strip_wcs(header.copy())  # re-solve instead of trusting our own earlier WCS
        solution = solver.solve(
            frame.data, header, name=job.name, mask=frame.mask, saturated_pixels=frame.saturated
        )
        output = write_solution(job.source, solution, job.destination, hdu=frame.hdu)
        return _outcome_from(job, solution, output), solution
    except (AstrometryError, FitsReadError, CatalogError) as exc:
        log.warning("%s", exc)
        reason = exc.message if exc.path is not None else str(exc)
        return FrameOutcome(
            job.name,
            str(job.source),
            None,
            False,
            seconds=time.perf_counter() - start,
            reason=reason,
            frame_id=job.frame_id,
        ), None
    except NightpipeError as exc:
        log.warning("%s", exc)
        return FrameOutcome(
            job.name, str(job.source), None, False, reason=str(exc), frame_id=job.frame_id
        ), None


class _Matcher:
    """The per-frame function of the parallel part: a copy of the reference solver for every frame.

    Each frame starts from the same solver state (reference and cached catalogue cone), so the
    outcome does not depend on which worker or thread measures it, nor in which order.
    """

    def __init__(self, solver: NightSolver) -> None:
        self.solver = _MatchOnly(solver.config, solver.catalog, solver.reference, solver._cone)

    def __call__(self, job: _Job) -> tuple[FrameOutcome, _Extra | None] | None:
        solver = copy.copy(self.solver)
        try:
            outcome, solution = _solve_one(solver, job)
        except _DeferredError:
            return None
        return outcome, _extra(solution) if solution is not None else None


def _solve_jobs(
    settings: Settings,
    jobs: Sequence[_Job],
    *,
    progress: Progress | None,
    on_outcome: Any = None,
    plot_dir: Path | None = None,
    client: Any = None,
) -> SolveSummary:
    """Solve a series of frames of one field.

    The frames are solved in order until one gives the reference (a full solve) or a header WCS
    passes; the others are then matched in parallel (:func:`~nightpipe.pipeline.parallel.map_frames`)
    to that reference, and those that need a full solve go through the solver afterwards, in
    frame order. ``on_outcome(job, outcome, extra)`` is called in this process for every frame.
    """
    summary = SolveSummary()
    if not jobs:
        return summary
    catalog = IndexCatalog.from_dirs(settings.astrometry.index_dirs)
    solver = NightSolver(settings.astrometry, catalog)
    bar = progress or NullProgress()
    plotted = False
    outcomes: dict[int, tuple[FrameOutcome, _Extra | None]] = {}

    def serial(index: int) -> FrameSolution | None:
        nonlocal plotted
        job = jobs[index]
        outcome, solution = _solve_one(solver, job)
        outcomes[index] = (outcome, _extra(solution) if solution is not None else None)
        if on_outcome is not None:
            on_outcome(job, *outcomes[index])
        if solution is not None and plot_dir is not None and not plotted:
            drawn = _plot_sample(solver, job, solution, plot_dir)
            summary.plot = str(drawn) if drawn is not None else None
            plotted = True
        return solution

    bar.start(len(jobs), "solve (reference)")
    try:
        first = 0
        while first < len(jobs):
            solution = serial(first)
            bar.advance(jobs[first].name)
            first += 1
            if solver.reference is not None or (solution is not None and solution.method == "header"):
                break
    finally:
        bar.stop()
    rest = list(range(first, len(jobs)))
    deferred: list[int] = []

    def matched(position: int, result: Outcome[tuple[FrameOutcome, _Extra | None] | None]) -> None:
        index = rest[position]
        job = jobs[index]
        if result.error is not None:
            reason = f"{job.source}: unexpected error: {result.error!r}"
            log.error("solve: %s", reason)
            outcomes[index] = (
                FrameOutcome(job.name, str(job.source), None, False, reason=reason, frame_id=job.frame_id),
                None,
            )
        elif result.value is None:
            deferred.append(index)
            return
        else:
            outcomes[index] = result.value
        if on_outcome is not None:
            on_outcome(job, *outcomes[index])

    map_frames(
        _Matcher(solver),
        [jobs[i] for i in rest],
        settings.parallel,
        client=client,
        progress=bar,
        description="solve",
        label=lambda job: job.name,
        on_result=matched,
    )
    if deferred:
        bar.start(len(deferred), "solve (full)")
        try:
            for index in sorted(deferred):
                serial(index)
                bar.advance(jobs[index].name)
        finally:
            bar.stop()
    for index in range(len(jobs)):
        summary.add(outcomes[index][0])
    return summary


def _plot_sample(solver: NightSolver, job: _Job, solution: FrameSolution, plot_dir: Path) -> Path | None:
    from nightpipe.report.astrometry_plots import plot_catalogue_overlay

    try:
        frame = read_frame_for_solving(job.destination)
        geometry = solution.quality.geometry
        refs = solver.refs_near(geometry.ra_center, geometry.dec_center, 1.0)
        path = plot_dir / f"astrometry_{Path(job.name).stem}.png"
        return plot_catalogue_overlay(
            frame.data,
            solution.wcs,
            solution.stars,
            refs,
            path,
            title=f"{job.name}: {solution.method}, {solution.quality.n_matched} index stars, "
            f'RMS {solution.quality.rms_arcsec:.2f}"',
        )
    except (NightpipeError, OSError, ValueError) as exc:
        log.warning("could not draw the astrometry plot of %s: %s", job.name, exc)
        return None


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
    digest = settings.digest("astrometry")
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
