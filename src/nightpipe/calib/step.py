"""The ``calibrate`` step on the per-frame contract: plan each light frame, calibrate, record.

Planning (in this process, with the database) matches the masters of each light frame and
keys its work by the raw file, the masters and the settings; the framework
(:func:`~nightpipe.pipeline.framestep.run_frame_step`) skips frames whose key and product did
not change, calibrates the others in parallel (:class:`~nightpipe.calib.calibrate.FrameCalibrator`,
no database) and records each outcome. A night-level row sums the night up.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from nightpipe import __version__
from nightpipe.calib.calibrate import (
    REQUIRED,
    STEP,
    CalibrateSummary,
    FrameCalibrator,
    FrameJob,
    FrameOutcome,
)
from nightpipe.calib.calibrated_io import calibrated_path
from nightpipe.calib.library import match_master
from nightpipe.calib.master_cache import MasterRef
from nightpipe.config import Settings
from nightpipe.errors import NightpipeError
from nightpipe.frames.detector import log_warnings, resolve_detector
from nightpipe.inventory import light_frames
from nightpipe.pipeline.framestep import FrameFailedError, FrameTask, StepRecord, StepTally, run_frame_step
from nightpipe.progress import Progress
from nightpipe.store.db import Database
from nightpipe.store.models import Frame, Master
from nightpipe.store.steps import record_step

log = logging.getLogger(__name__)


def _input_hash(frame: Frame, masters: dict[str, MasterRef], settings: Settings) -> str:
    text = json.dumps(
        {
            "raw": [frame.path, frame.hdu, frame.sha1, frame.size, frame.mtime],
            "masters": {k: [r.path, r.inputs_hash] for k, r in sorted(masters.items())},
            "settings": settings.digest("calibration", "camera"),
            "software": __version__,
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def plan_job(
    frame: Frame,
    masters: dict[str, Master | None],
    reasons: dict[str, str],
    output: Path,
    settings: Settings,
) -> FrameJob:
    """A :class:`FrameJob` from a frame row and the masters found (``None`` when missing).

    The gain, read noise and saturation come from the configuration, else from the frame's
    stored header cards (camera overrides applied) by dialect, else the defaults
    (:func:`~nightpipe.frames.detector.resolve_detector`).
    """
    refs = {kind: MasterRef.from_row(row) for kind, row in masters.items() if row is not None}
    missing = {kind: reasons.get(kind, "no master") for kind in REQUIRED if masters.get(kind) is None}
    return FrameJob(
        frame_id=frame.id,
        path=frame.path,
        hdu=frame.hdu,
        night=frame.night,
        exptime=frame.exptime,
        detector=resolve_detector(frame.header or {}, settings.camera, name=frame.path),
        masters=refs,
        missing=missing,
        output=output,
    )


class CalibrateStep:
    """The per-frame step (:class:`~nightpipe.pipeline.framestep.FrameStep`) of calibration."""

    name = STEP
    store_batch = 16
    retry_failed = True

    def __init__(self, settings: Settings, *, allow_missing: bool) -> None:
        self.allow_missing = allow_missing
        self.calibrator = FrameCalibrator(settings)

    def process(self, job: FrameJob) -> FrameOutcome:
        """Calibrate one frame and write its product (no database: runs on a worker)."""
        if job.missing and not self.allow_missing:
            # plan_job says "no master" where the library gave no reason
            reason = "; ".join(
                f"no {kind} master" if why == "no master" else why for kind, why in job.missing.items()
            )
            raise FrameFailedError(
                f"{job.path}: {reason} (calibrate with --allow-missing-masters to go on without it)",
                details={"missing": job.missing},
            )
        outcome = self.calibrator(job)
        if outcome.status != "ok":
            raise FrameFailedError(outcome.reason or f"{job.path}: not calibrated")
        return outcome

    def store(self, session: Session, task: FrameTask[FrameJob], result: FrameOutcome) -> StepRecord:
        """Calibration writes no rows of its own: its step run says it all."""
        return StepRecord(output_path=result.output, details=result.details or None)


def _tasks(settings: Settings, db: Database, frames: list[Frame]) -> list[FrameTask[FrameJob]]:
    """Each frame's job (masters matched, output chosen) and its key."""
    claimed: set[Path] = set()
    tasks = []
    with db.session() as session:
        for frame in frames:
            found: dict[str, Master | None] = {}
            reasons: dict[str, str] = {}
            for kind in (*REQUIRED, "badpix"):
                match = match_master(session, frame, kind, settings)
                found[kind] = match.master
                if match.master is None and match.reason:
                    reasons[kind] = match.reason
            output = calibrated_path(Path(settings.paths.output), frame.night, frame.path, frame.hdu)
            if output in claimed:  # two raw files of a night with the same name
                output = output.with_name(f"{output.stem}_{frame.id}.fits")
            claimed.add(output)
            job = plan_job(frame, found, reasons, output, settings)
            key = _input_hash(frame, job.masters, settings)
            tasks.append(FrameTask(frame.id, frame.night, key, job, frame.path, outputs=(output,)))
    log_warnings(log, (w for task in tasks for w in task.item.detector.warnings))
    return tasks


def run_calibrate(
    settings: Settings,
    db: Database,
    *,
    night: str | None = None,
    progress: Progress | None = None,
    allow_missing: bool | None = None,
    force: bool = False,
    plots: bool = True,
    client: Any = None,
) -> CalibrateSummary:
    """Calibrate the light frames of a night (or of every night) and record each outcome.

    The frames are calibrated in parallel (threads of this process, or the workers of a Dask
    ``client``); the database is read and written in this process only.

    Parameters
    ----------
    settings
        The effective settings.
    db
        The database with the inventory and the master library.
    night
        ``YYYY-MM-DD`` of the night, or ``None`` for every light frame.
    progress
        Progress sink (one advance per frame).
    allow_missing
        Calibrate with the masters that exist when some are missing (default:
        ``settings.calibration.allow_missing_masters``); otherwise such a frame fails with
        the reasons.
    force
        Recalibrate frames whose product is up to date.
    plots
        Draw the before/after picture of one frame calibrated in this run
        (``plots/<night>/calibrate_<stem>.png``).
    client
        A ``distributed.Client`` to run the frames on, or ``None`` for threads
        (``settings.parallel.threads``).

    Examples
    --------
    >>> summary = run_calibrate(settings, db, night="2017-12-19", allow_missing=True)  # doctest: +SKIP
    """
    allow = settings.calibration.allow_missing_masters if allow_missing is None else allow_missing
    with db.session() as session:
        frames = light_frames(session, night)
    step = CalibrateStep(settings, allow_missing=allow)
    tasks = _tasks(settings, db, frames)
    tally = run_frame_step(step, tasks, db, settings.parallel, force=force, client=client, progress=progress)
    summary, used = _summary(tally, len(frames))
    summary.gain_sources = dict(Counter(task.item.detector.gain.source for task in tasks))
    if plots and summary.outputs:
        summary.plot = _sample_plot(settings, summary.outputs[len(summary.outputs) // 2])
    _record_night(db, night, summary, used)
    log.info(
        "calibrate: %d ok, %d unchanged, %d failed of %d frames",
        summary.ok,
        summary.unchanged,
        summary.failed,
        summary.frames,
    )
    return summary


def _summary(tally: StepTally[FrameJob], frames: int) -> tuple[CalibrateSummary, dict[str, set[str]]]:
    """The night's counts, and the masters used by kind."""
    summary = CalibrateSummary(frames=frames, unchanged=len(tally.skipped), seconds=tally.seconds)
    summary.failed = tally.failed
    summary.failures = [(task.label, reason) for task, reason in tally.failures]
    used: dict[str, set[str]] = {}
    for task in tally.done:
        record = tally.records[task.frame_id]
        summary.ok += 1
        if record.output_path:
            summary.outputs.append(record.output_path)
        details = record.details or {}
        masters = details.get("masters", {})
        if not masters:
            summary.without_masters += 1
        for kind, path in masters.items():
            used.setdefault(kind, set()).add(path)
        for kind in details.get("missing", {}):
            summary.missing[kind] = summary.missing.get(kind, 0) + 1
        summary.cosmic_pixels += int(details.get("cosmic", {}).get("pixels", 0))
    return summary, used


def _sample_plot(settings: Settings, calibrated: str) -> str | None:
    """The before/after PNG of one calibrated frame; a failure is logged, never raised."""
    from nightpipe.report.calib_plots import plot_before_after

    try:
        png = plot_before_after(settings, calibrated)
    except (NightpipeError, OSError, ValueError) as exc:
        log.warning("calibrate: no before/after plot for %s: %s", calibrated, exc)
        return None
    return str(png) if png is not None else None


def _record_night(
    db: Database, night: str | None, summary: CalibrateSummary, used: dict[str, set[str]]
) -> None:
    applied = {kind: sorted(paths) for kind, paths in used.items()}
    note = None
    if summary.ok and not applied:
        note = "no masters were applied: frames are not bias-, dark- or flat-corrected"
    elif summary.missing:
        note = "some corrections were not applied: " + ", ".join(
            f"{kind} on {n} frames" for kind, n in sorted(summary.missing.items())
        )
    # the night failed only when no frame could be calibrated at all
    status = "failed" if summary.failed and summary.ok + summary.unchanged == 0 else "ok"
    reason = note
    if summary.failed:
        reason = f"{summary.failed} of {summary.frames} frames failed" + (f"; {note}" if note else "")
    with db.session() as session:
        record_step(
            session,
            step=STEP,
            status=status if summary.frames else "skipped",
            night=night,
            reason=reason if summary.frames else "no light frames",
            details={
                "frames": summary.frames,
                "ok": summary.ok,
                "unchanged": summary.unchanged,
                "failed": summary.failed,
                "without_masters": summary.without_masters,
                "missing": summary.missing,
                "masters_applied": applied,
                "cosmic_pixels": summary.cosmic_pixels,
                "gain_sources": summary.gain_sources,
            },
            seconds=summary.seconds,
        )
