"""Recording the outcome of a pipeline step per frame (idempotent upsert)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightpipe.store.base import utcnow
from nightpipe.store.models import Frame, StepRun


def record_step(
    session: Session,
    *,
    step: str,
    status: str,
    frame_id: int | None = None,
    night: str | None = None,
    reason: str | None = None,
    input_hash: str | None = None,
    output_path: str | None = None,
    details: dict[str, Any] | None = None,
    seconds: float | None = None,
) -> StepRun:
    """Insert or update the row of ``step`` for ``frame_id`` (status: ok, failed, skipped)."""
    query = select(StepRun).where(StepRun.step == step)
    query = query.where(StepRun.frame_id.is_(None) if frame_id is None else StepRun.frame_id == frame_id)
    if frame_id is None:
        query = query.where(StepRun.night == night)
    row = session.scalars(query).first()
    if row is None:
        row = StepRun(step=step, frame_id=frame_id)
        session.add(row)
    row.night = night
    row.status = status
    row.reason = reason
    row.input_hash = input_hash
    row.output_path = output_path
    row.details = details
    row.seconds = seconds
    row.finished_at = utcnow()
    session.flush()
    return row


def previous_input_hash(
    session: Session, *, step: str, night: str, frame_id: int | None = None
) -> str | None:
    """The input hash ``record_step`` stored for a night-level ``step`` (or for one frame of it):
    a step whose inputs hash the same again has nothing to redo."""
    query = select(StepRun.input_hash).where(StepRun.step == step, StepRun.night == night)
    query = query.where(StepRun.frame_id.is_(None) if frame_id is None else StepRun.frame_id == frame_id)
    return session.scalars(query).first()


def step_status(session: Session, *, step: str, frame_id: int) -> StepRun | None:
    """The recorded outcome of ``step`` for ``frame_id``, if any."""
    return session.scalars(select(StepRun).where(StepRun.step == step, StepRun.frame_id == frame_id)).first()


def calibrated_frames(session: Session, night: str | None = None) -> list[tuple[Frame, StepRun]]:
    """The frames (of ``night``, or all) with an ``ok`` calibrate run that wrote a product, and that run."""
    query = (
        select(Frame, StepRun)
        .join(StepRun, StepRun.frame_id == Frame.id)
        .where(StepRun.step == "calibrate", StepRun.status == "ok", StepRun.output_path.is_not(None))
    )
    if night is not None:
        query = query.where(Frame.night == night)
    return [(frame, run) for frame, run in session.execute(query).all()]
