"""What solving a frame gives: the :class:`FrameOutcome` of one frame (solved or why not), the
:class:`SolveSummary` of a run, and the small picklable records (a frame's job, the extra numbers
of its solution) that travel between the ``solve`` step's processes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nightpipe.astrometry.series import FrameSolution


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
    detections: Path | None = None  # where the frame's source list is kept for the photometry


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
