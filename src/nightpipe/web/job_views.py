"""Jobs as plain data for pages and the JSON API (owner-scoped queries only)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nightpipe.web.models import Job, JobEvent, Profile, Upload


def job_dict(job: Job) -> dict[str, Any]:
    def when(moment: Any) -> str | None:
        return moment.isoformat() if moment is not None else None

    return {
        "id": job.id,
        "kind": job.kind,
        "title": job.title,
        "status": job.status,
        "attempts": job.attempts,
        "created_at": when(job.created_at),
        "started_at": when(job.started_at),
        "finished_at": when(job.finished_at),
        "error": job.error,
        "result": job.result,
        "cancel_requested": job.cancel_requested,
    }


def event_dict(event: JobEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "kind": event.kind,
        "message": event.message,
        "done": event.done,
        "total": event.total,
    }


def jobs_of(session: Session, owner_id: int, limit: int = 200) -> list[Job]:
    return list(
        session.scalars(select(Job).where(Job.owner_id == owner_id).order_by(Job.id.desc()).limit(limit))
    )


def events_after(session: Session, job_id: int, after: int, limit: int = 500) -> list[JobEvent]:
    """A job's events after id ``after`` (the caller has checked the job is theirs)."""
    query = select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.id > after).order_by(JobEvent.id)
    return list(session.scalars(query.limit(limit)))


def last_progress(session: Session, job_id: int) -> JobEvent | None:
    query = select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.kind.in_(("step", "progress")))
    return session.scalar(query.order_by(JobEvent.id.desc()).limit(1))


def uploads_of(session: Session, owner_id: int) -> list[Upload]:
    return list(session.scalars(select(Upload).where(Upload.owner_id == owner_id).order_by(Upload.name)))


def profiles_of(session: Session, owner_id: int) -> list[Profile]:
    return list(session.scalars(select(Profile).where(Profile.owner_id == owner_id).order_by(Profile.name)))


def counts_of(session: Session, owner_id: int) -> dict[str, int]:
    jobs = session.scalar(select(func.count(Job.id)).where(Job.owner_id == owner_id)) or 0
    files = session.scalar(select(func.count(Upload.id)).where(Upload.owner_id == owner_id)) or 0
    return {"jobs": int(jobs), "files": int(files)}
