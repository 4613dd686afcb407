"""``nightpipe web clean``: delete finished jobs and unused uploads older than the retention.

A finished job (done, partial, failed, cancelled) older than ``web.retention_days`` loses its
folder, then its events and row; an upload that old loses its file, then its row, unless a
queued or running job uses it (a frame job also uses every calibration upload of its owner).
A queued or running job is never touched. Files go before rows, so no row points to a missing
file; a crash between the two leaves a row whose file is gone, which the next clean removes.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from nightpipe.store.base import utcnow
from nightpipe.store.db import Database
from nightpipe.web.accounts import as_utc
from nightpipe.web.job_run import calibration_uploads
from nightpipe.web.jobqueue import ACTIVE, FINISHED
from nightpipe.web.models import Job, JobEvent, Upload, User
from nightpipe.web.paths import UserPaths

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Doomed:
    """One thing ``clean`` deletes (or would, with a dry run)."""

    user: str
    kind: str  # "job" or "upload"
    id: int
    age_days: float
    size: int
    path: Path


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return 0


def uploads_in_use(session: Session) -> set[int]:
    """The uploads a queued or running job reads."""
    used: set[int] = set()
    calibration_of: set[int] = set()
    for job in session.scalars(select(Job).where(Job.status.in_(ACTIVE))):
        used.update(int(i) for i in (job.params or {}).get("upload_ids", []))
        if job.kind == "frame":
            calibration_of.add(job.owner_id)
    if calibration_of:
        used.update(u.id for u in calibration_uploads(session, calibration_of))
    return used


def plan(db: Database, data_dir: Path, days: float, now: datetime | None = None) -> list[Doomed]:
    """What is older than ``days`` and may go: finished jobs, then unused uploads."""
    now = now or utcnow()
    limit = now - timedelta(days=days)
    doomed: list[Doomed] = []
    with db.session() as session:
        names = {u.id: u.name for u in session.scalars(select(User))}
        for job in session.scalars(select(Job).where(Job.status.in_(FINISHED)).order_by(Job.id)):
            moment = as_utc(job.finished_at or job.created_at)
            if moment < limit:
                path = UserPaths(data_dir, job.owner_id).job_dir(job.id)
                age = (now - moment).total_seconds() / 86400
                doomed.append(Doomed(names.get(job.owner_id, "?"), "job", job.id, age, size_of(path), path))
        used = uploads_in_use(session)
        for upload in session.scalars(select(Upload).order_by(Upload.id)):
            moment = as_utc(upload.created_at)
            if moment < limit and upload.id not in used:
                path = UserPaths(data_dir, upload.owner_id).uploads / upload.path
                age = (now - moment).total_seconds() / 86400
                doomed.append(
                    Doomed(names.get(upload.owner_id, "?"), "upload", upload.id, age, size_of(path), path)
                )
    return doomed


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def clean(
    db: Database, data_dir: Path, days: float, *, dry_run: bool = False, now: datetime | None = None
) -> list[Doomed]:
    """Delete what :func:`plan` finds (nothing with ``dry_run``); what went (or would go)."""
    doomed = plan(db, data_dir, days, now)
    if dry_run:
        return doomed
    gone: list[Doomed] = []
    for item in doomed:
        with db.session() as session:
            if item.kind == "job":
                # still finished? (a job is never requeued once finished, but be sure)
                status = session.scalar(select(Job.status).where(Job.id == item.id))
                if status not in FINISHED:
                    continue
                remove(item.path)
                session.execute(delete(JobEvent).where(JobEvent.job_id == item.id))
                session.execute(delete(Job).where(Job.id == item.id))
            else:
                if item.id in uploads_in_use(session):  # a job queued since the plan
                    continue
                remove(item.path)
                session.execute(delete(Upload).where(Upload.id == item.id))
        log.info("deleted %s %d of %s (%.0f days old)", item.kind, item.id, item.user, item.age_days)
        gone.append(item)
    return gone
