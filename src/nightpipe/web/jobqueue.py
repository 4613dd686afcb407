"""The job queue is the database itself: a job row is claimed atomically by one worker.

A claim is one ``UPDATE ... WHERE id = ? AND status = 'queued'``; of two workers racing for a
job, the database lets one update a row and the other none (on PostgreSQL the candidate is also
picked ``FOR UPDATE SKIP LOCKED``). A running job's worker renews its heartbeat; any process
may reap a job whose heartbeat stopped (a worker killed with SIGKILL, a machine lost): it is
queued again while attempts remain, else failed with the reason. Nothing stays "running" forever.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nightpipe.store.base import utcnow
from nightpipe.store.db import Database
from nightpipe.web.database import rows_changed
from nightpipe.web.models import Job, JobEvent

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
FINISHED = ("done", "partial", "failed", "cancelled")


def enqueue(session: Session, owner_id: int, kind: str, title: str, params: dict[str, Any]) -> Job:
    job = Job(
        owner_id=owner_id,
        kind=kind,
        title=title[:255],
        status="queued",
        params=params,
        attempts=0,
        cancel_requested=False,
    )
    session.add(job)
    session.flush()
    add_event(session, job.id, "status", "queued")
    return job


def add_event(
    session: Session, job_id: int, kind: str, message: str, done: int | None = None, total: int | None = None
) -> None:
    session.add(
        JobEvent(job_id=job_id, at=utcnow(), kind=kind, message=message[:4000], done=done, total=total)
    )


@dataclass(frozen=True)
class Claim:
    """A job this worker now runs."""

    job_id: int
    owner_id: int
    kind: str
    params: dict[str, Any]
    attempt: int


def claim_next(db: Database, worker: str) -> Claim | None:
    """Take the oldest queued job for ``worker``, or None when there is none."""
    for _ in range(5):  # another worker may win the race for a candidate: try the next one
        with db.session() as session:
            query = select(Job.id).where(Job.status == "queued").order_by(Job.id).limit(1)
            if session.bind is not None and session.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            job_id = session.scalar(query)
            if job_id is None:
                return None
            now = utcnow()
            claimed = rows_changed(
                session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status == "queued")
                    .values(
                        status="running",
                        worker=worker,
                        heartbeat_at=now,
                        started_at=now,
                        attempts=Job.attempts + 1,
                    )
                )
            )
            if claimed != 1:
                continue
            job = session.get(Job, job_id)
            assert job is not None
            session.refresh(job)
            add_event(session, job.id, "status", f"running on {worker} (attempt {job.attempts})")
            return Claim(job.id, job.owner_id, job.kind, dict(job.params), job.attempts)
    return None


def heartbeat(db: Database, job_id: int, worker: str) -> bool:
    """Renew the claim; False when the job was taken away (reaped) or cancelled."""
    with db.session() as session:
        updated = rows_changed(
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.worker == worker, Job.status == "running")
                .values(heartbeat_at=utcnow())
            )
        )
        cancel = session.scalar(select(Job.cancel_requested).where(Job.id == job_id))
    return updated == 1 and not cancel


def finish(
    db: Database,
    job_id: int,
    worker: str,
    status: str,
    *,
    error: str | None = None,
    result: dict[str, Any] | None = None,
) -> None:
    """Record a job's end, if this worker still holds it."""
    with db.session() as session:
        done = rows_changed(
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.worker == worker, Job.status == "running")
                .values(status=status, finished_at=utcnow(), error=error, result=result)
            )
        )
        if done:
            add_event(session, job_id, "status", status + (f": {error}" if error else ""))


def requeue(db: Database, job_id: int, worker: str, reason: str) -> bool:
    """Give a job back to the queue (its worker is stopping; not when its user cancelled it);
    the next run resumes it. False when the job was not requeued."""
    with db.session() as session:
        done = rows_changed(
            session.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.worker == worker,
                    Job.status == "running",
                    Job.cancel_requested.is_(False),
                )
                .values(status="queued", worker=None)
            )
        )
        if done:
            add_event(session, job_id, "status", f"{reason}; queued again")
    return bool(done)


def request_cancel(session: Session, job: Job) -> str:
    """Cancel a queued job at once; ask a running one's worker to stop. Returns the new status."""
    if job.status == "queued":
        job.status, job.finished_at, job.cancel_requested = "cancelled", utcnow(), True
        add_event(session, job.id, "status", "cancelled before it started")
    elif job.status == "running":
        job.cancel_requested = True
        add_event(session, job.id, "status", "cancel requested")
    return job.status


def reap_stale(db: Database, *, stale_after_s: float, max_attempts: int) -> list[int]:
    """Requeue or fail the running jobs whose heartbeat is older than ``stale_after_s``."""
    limit = utcnow() - timedelta(seconds=stale_after_s)
    reaped: list[int] = []
    with db.session() as session:
        stale = session.scalars(select(Job).where(Job.status == "running", Job.heartbeat_at < limit)).all()
        for job in stale:
            reason = f"worker {job.worker} stopped answering (no heartbeat for {stale_after_s:.0f} s)"
            if job.cancel_requested:
                job.status, job.finished_at = "cancelled", utcnow()
            elif job.attempts < max_attempts:
                job.status, job.worker = "queued", None
                reason += "; queued again"
            else:
                job.status, job.finished_at, job.error = "failed", utcnow(), reason
            add_event(session, job.id, "status", reason)
            log.warning("job %d: %s", job.id, reason)
            reaped.append(job.id)
    return reaped
