"""The job queue and its workers: claim order, racing workers, heartbeats, reaping, cancel."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from nightpipe.store.base import utcnow
from nightpipe.store.db import Database, open_database
from nightpipe.web.accounts import create_user
from nightpipe.web.jobqueue import (
    claim_next,
    enqueue,
    finish,
    heartbeat,
    reap_stale,
    request_cancel,
    requeue,
)
from nightpipe.web.models import Job, JobEvent


def make_jobs(db: Database, n: int, name: str = "ann") -> tuple[int, list[int]]:
    with db.session() as session:
        user = create_user(session, name, "correct horse battery")
        ids = [enqueue(session, user.id, "night", f"job {i}", {"upload_ids": [i]}).id for i in range(n)]
        return user.id, ids


def job_row(db: Database, job_id: int) -> Job:
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def events_of(db: Database, job_id: int) -> list[tuple[str, str]]:
    with db.session() as session:
        rows = session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id))
        return [(e.kind, e.message) for e in rows]


@pytest.fixture
def db(db_url: str) -> Database:
    return open_database(db_url)


def test_claims_come_oldest_first_and_each_once(db: Database) -> None:
    _, ids = make_jobs(db, 3)
    claims = [claim_next(db, "w1") for _ in range(3)]
    assert [c.job_id for c in claims if c] == ids
    assert claim_next(db, "w1") is None
    first = job_row(db, ids[0])
    assert (first.status, first.worker, first.attempts) == ("running", "w1", 1)
    assert claims[0] is not None and claims[0].params == {"upload_ids": [0]}


def _claim_all(url: str, worker: str, out: list[int]) -> None:
    db = open_database(url, upgrade=False)
    try:
        while (claim := claim_next(db, worker)) is not None:
            out.append(claim.job_id)
    finally:
        db.dispose()


def test_two_threads_racing_claim_every_job_exactly_once(db: Database, db_url: str) -> None:
    _, ids = make_jobs(db, 40)
    got: dict[str, list[int]] = {"a": [], "b": []}
    threads = [threading.Thread(target=_claim_all, args=(db_url, w, got[w])) for w in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    claimed = got["a"] + got["b"]
    assert sorted(claimed) == ids  # every job once: none twice, none missed
    with db.session() as session:
        workers = {row.id: row.worker for row in session.execute(select(Job.id, Job.worker))}
    assert all(workers[i] == "a" for i in got["a"]) and all(workers[i] == "b" for i in got["b"])


def _claim_process(url: str, worker: str, queue: multiprocessing.Queue[list[int]]) -> None:
    out: list[int] = []
    _claim_all(url, worker, out)
    queue.put(out)


def test_two_processes_racing_claim_every_job_exactly_once(db: Database, db_url: str) -> None:
    _, ids = make_jobs(db, 40)
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[list[int]] = context.Queue()
    procs = [context.Process(target=_claim_process, args=(db_url, w, queue)) for w in ("p1", "p2")]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert sorted(results[0] + results[1]) == ids


def test_heartbeat_renews_and_tells_a_lost_or_cancelled_job(db: Database) -> None:
    _, (job_id,) = make_jobs(db, 1)
    assert claim_next(db, "w1") is not None
    with db.session() as session:
        session.execute(update(Job).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
    assert heartbeat(db, job_id, "w1")
    beat = job_row(db, job_id).heartbeat_at
    assert beat is not None and utcnow() - beat.replace(tzinfo=utcnow().tzinfo) < timedelta(seconds=30)
    assert not heartbeat(db, job_id, "w2")  # not this worker's job
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert request_cancel(session, job) == "running"
    assert not heartbeat(db, job_id, "w1")  # cancelled: the worker must stop


def age_heartbeat(db: Database, job_id: int, seconds: float) -> None:
    with db.session() as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
        )


def test_reaper_requeues_while_attempts_remain_then_fails_with_the_reason(db: Database) -> None:
    _, (job_id,) = make_jobs(db, 1)
    assert claim_next(db, "w1") is not None
    assert reap_stale(db, stale_after_s=60, max_attempts=2) == []  # fresh heartbeat: left alone
    age_heartbeat(db, job_id, 120)
    assert reap_stale(db, stale_after_s=60, max_attempts=2) == [job_id]
    job = job_row(db, job_id)
    assert (job.status, job.worker, job.error) == ("queued", None, None)
    claim = claim_next(db, "w2")
    assert claim is not None and claim.attempt == 2
    age_heartbeat(db, job_id, 120)
    assert reap_stale(db, stale_after_s=60, max_attempts=2) == [job_id]
    job = job_row(db, job_id)
    assert job.status == "failed" and job.finished_at is not None
    assert job.error is not None and "worker w2 stopped answering" in job.error
    assert any("stopped answering" in m for k, m in events_of(db, job_id) if k == "status")
    finish(db, job_id, "w2", "done")  # the lost worker coming back changes nothing
    assert job_row(db, job_id).status == "failed"


def test_cancel_of_a_queued_job_is_at_once(db: Database) -> None:
    _, (job_id,) = make_jobs(db, 1)
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert request_cancel(session, job) == "cancelled"
    assert claim_next(db, "w1") is None
    assert job_row(db, job_id).finished_at is not None


def test_requeue_gives_the_job_back_unless_cancelled(db: Database) -> None:
    _, (a, b) = make_jobs(db, 2)
    assert claim_next(db, "w1") is not None and claim_next(db, "w1") is not None
    assert requeue(db, a, "w1", "the worker was stopped")
    assert job_row(db, a).status == "queued"
    with db.session() as session:
        job = session.get(Job, b)
        assert job is not None
        request_cancel(session, job)
    assert not requeue(db, b, "w1", "the worker was stopped")
    assert job_row(db, b).status == "running"


def test_events_carry_progress(db: Database, tmp_path: Path) -> None:
    from nightpipe.web.job_progress import JobProgress

    _, (job_id,) = make_jobs(db, 1)
    progress = JobProgress(db, job_id, every_s=3600)
    progress.start(3, "calibrate")
    for name in ("a.fits", "b.fits", "c.fits"):
        progress.advance(name)
    with db.session() as session:
        rows = list(session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)))
        got = [(e.kind, e.message, e.done, e.total) for e in rows]
    assert got[0][:2] == ("status", "queued")
    assert got[1] == ("step", "calibrate: 3 to do", 0, 3)
    assert got[2:] == [("progress", "calibrate: 3 of 3 (c.fits)", 3, 3)]  # throttled: the last one
