"""Solving a series of frames of one field: the first frame that gives a reference (a full
``solve-field`` solve or a passing header WCS) is solved in this process, the others are matched
to that reference in parallel, and those that need a full solve go back, in frame order."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from astropy.io import fits

from nightpipe.astrometry.catalog_solve import catalogue_sources
from nightpipe.astrometry.checks import RefinedWcs
from nightpipe.astrometry.index_catalog import IndexCatalog
from nightpipe.astrometry.outcomes import FrameOutcome, SolveSummary, _Extra, _extra, _Job, _outcome_from
from nightpipe.astrometry.series import MAX_STARS, FrameSolution, NightSolver
from nightpipe.astrometry.sources import StarList, frame_stars
from nightpipe.astrometry.wcs_io import read_frame_for_solving, strip_wcs, was_solved_by_us, write_solution
from nightpipe.config import Settings
from nightpipe.errors import AstrometryError, CatalogError, FitsReadError, NightpipeError
from nightpipe.photometry.frame_sources import detection_key, write_detections
from nightpipe.pipeline.parallel import Outcome, map_frames
from nightpipe.progress import NullProgress, Progress

log = logging.getLogger("nightpipe.astrometry.step")  # the name its log lines have always carried

MAX_REFERENCE_TRIES = 4  # full solves of a night without a reference: the first frame and 3 spread


class _DeferredError(Exception):
    """Raised by :class:`_MatchOnly` where a full solve would start: the frame goes back to the parent."""


class _MatchOnly(NightSolver):
    """A solver that checks the header WCS and matches to the reference frame, but never runs solve-field."""

    def try_solve_field(self, header: fits.Header, stars: StarList) -> tuple[RefinedWcs | None, str]:
        """Defer the frame (a full solve may replace the reference, so it runs in frame order)."""
        raise _DeferredError

    def try_catalogue(self, header: fits.Header, stars: StarList) -> tuple[RefinedWcs | None, str]:
        """Defer the frame (a catalogue match makes a new reference too)."""
        raise _DeferredError


def _solve_one(solver: NightSolver, job: _Job) -> tuple[FrameOutcome, FrameSolution | None]:
    start = time.perf_counter()
    try:
        frame = read_frame_for_solving(job.source)
        header = frame.header
        if was_solved_by_us(header):
            header = strip_wcs(header.copy())  # re-solve instead of trusting our own earlier WCS
        found, saturation = solver.detect(frame.data, frame.flags)
        if job.detections is not None:  # the photometry step reuses it (issue 18)
            key = detection_key(frame.data, frame.flags, solver.detection, saturation)
            write_detections(found.detections, key, job.detections)
        stars = frame_stars(frame.data, found, max_stars=MAX_STARS)
        solution = solver.solve(frame.data, header, name=job.name, flags=frame.flags, stars=stars)
        solution = replace(solution, seconds=time.perf_counter() - start)  # with the detection
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
        self.solver = _MatchOnly(
            solver.config,
            solver.catalog,
            solver.reference,
            solver._cone,
            sources=solver.sources,
            detection=solver.detection,
        )

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
    solver = NightSolver(
        settings.astrometry,
        catalog,
        sources=catalogue_sources(settings, catalog),
        detection=settings.photometry,
    )
    bar = progress or NullProgress()
    run = _SeriesRun(jobs, solver, summary, on_outcome, plot_dir)
    run.solve_reference(bar)
    run.rest = [i for i in range(len(jobs)) if i not in run.outcomes]
    map_frames(
        _Matcher(solver),
        [jobs[i] for i in run.rest],
        settings.parallel,
        client=client,
        progress=bar,
        description="solve",
        label=lambda job: job.name,
        on_result=run.matched,
    )
    run.solve_deferred(bar)
    for index in range(len(jobs)):
        summary.add(run.outcomes[index][0])
    return summary


@dataclass
class _SeriesRun:
    """The state of one :func:`_solve_jobs` run: every frame's outcome so far, the frames the
    parallel part deferred to a full solve, and whether the sample plot is drawn."""

    jobs: Sequence[_Job]
    solver: NightSolver
    summary: SolveSummary
    on_outcome: Any
    plot_dir: Path | None
    plotted: bool = False
    outcomes: dict[int, tuple[FrameOutcome, _Extra | None]] = field(default_factory=dict)
    rest: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)
    held: dict[int, tuple[FrameOutcome, _Extra | None]] = field(default_factory=dict)
    no_wcs: str | None = None  # why the night has no WCS, when no frame tried gave one

    def serial(self, index: int, *, report: bool = True) -> FrameSolution | None:
        """Solve frame ``index`` in this process (full solves allowed); the first solution is plotted.
        A failure not reported is held (a reference found later may still match the frame)."""
        job = self.jobs[index]
        outcome, solution = _solve_one(self.solver, job)
        result = (outcome, _extra(solution) if solution is not None else None)
        if solution is None and not report:
            self.held[index] = result
        else:
            self.report(index, result)
        if solution is not None and self.plot_dir is not None and not self.plotted:
            drawn = _plot_sample(self.solver, job, solution, self.plot_dir)
            self.summary.plot = str(drawn) if drawn is not None else None
            self.plotted = True
        return solution

    def report(self, index: int, result: tuple[FrameOutcome, _Extra | None]) -> None:
        """Keep frame ``index``'s outcome and hand it to ``on_outcome``."""
        self.outcomes[index] = result
        if self.on_outcome is not None:
            self.on_outcome(self.jobs[index], *result)

    def solve_reference(self, bar: Progress) -> None:
        """Full solves of the first frame, then of a few frames spread over the night, until one
        gives the reference or a header WCS. When none does, the night has no WCS: the other
        frames are not sent to solve-field (they are measured in pixels), and that is said once."""
        jobs = self.jobs
        order = reference_order(len(jobs))
        bar.start(len(order), "solve (reference)")
        found = False
        try:
            for index in order:
                solution = self.serial(index, report=False)
                bar.advance(jobs[index].name)
                if self.solver.reference is not None or (
                    solution is not None and solution.method == "header"
                ):
                    found = True
                    break
                if solution is None and index == order[0]:
                    # the first frame's blind solve found nothing: the others try their hints only
                    self.solver.blind_fallback = False
        finally:
            bar.stop()
            self.solver.blind_fallback = True
        if found:
            return
        tried = sorted(self.held)
        first = self.held[tried[0]][0]
        names = ", ".join(jobs[i].name for i in tried)
        self.no_wcs = (
            f"the night has no WCS: {len(tried)} frames spread over it ({names}) "
            f"could not be solved, the first because: {first.reason}; the other frames were not sent to "
            "solve-field and are measured in pixels"
        )
        log.warning("solve: %s", self.no_wcs)
        for index in tried:
            self.report(index, self.held.pop(index))

    def matched(self, position: int, result: Outcome[tuple[FrameOutcome, _Extra | None] | None]) -> None:
        """Take the parallel part's result for ``rest[position]`` (None: deferred to a full solve)."""
        index = self.rest[position]
        job = self.jobs[index]
        if result.error is not None:
            reason = f"{job.source}: unexpected error: {result.error!r}"
            log.error("solve: %s", reason)
            self.outcomes[index] = (
                FrameOutcome(job.name, str(job.source), None, False, reason=reason, frame_id=job.frame_id),
                None,
            )
        elif result.value is None:
            self.deferred.append(index)
            return
        else:
            self.held.pop(index, None)
            self.report(index, result.value)
            return
        self.held.pop(index, None)
        self.report(index, self.outcomes[index])

    def solve_deferred(self, bar: Progress) -> None:
        """Solve the deferred frames in this process, in frame order (those already tried keep
        their failure; on a night without WCS none is tried)."""
        if not self.deferred:
            return
        bar.start(len(self.deferred), "solve (full)")
        try:
            for index in sorted(self.deferred):
                job = self.jobs[index]
                if index in self.held:
                    self.report(index, self.held.pop(index))
                elif self.no_wcs is not None:
                    outcome = FrameOutcome(
                        job.name, str(job.source), None, False, reason=self.no_wcs, frame_id=job.frame_id
                    )
                    self.report(index, (outcome, None))
                else:
                    self.serial(index)
                bar.advance(job.name)
        finally:
            bar.stop()


def reference_order(n: int) -> list[int]:
    """The frames tried for a reference, at most ``MAX_REFERENCE_TRIES``: the first, then frames
    spread over the night (a bad first frame, clouds at the start, do not leave the night unsolved)."""
    spread = [0, n // 3, (2 * n) // 3, n - 1]
    return list(dict.fromkeys(i for i in spread if 0 <= i < n))[:MAX_REFERENCE_TRIES]


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
