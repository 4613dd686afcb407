"""Workers running jobs (with a stand-in for the engine that loops over frames as it does):
cancel of a running job, a stopped worker requeues its job, per-job logs, events over HTTP."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from nightpipe.config import Settings
from nightpipe.pipeline.interrupt import StopRequest
from nightpipe.progress import Progress
from nightpipe.store.db import Database
from nightpipe.web.jobqueue import enqueue
from nightpipe.web.models import Job, Upload, User
from nightpipe.web.paths import UserPaths
from nightpipe.web.worker import WorkerState, run_one, work
from web_helpers import client, make_app, register


class FakeEngine:
    """``api.run_night`` for frames that take ``frame_s`` each; checks ``stop`` between frames."""

    def __init__(self, frames: int = 200, frame_s: float = 0.02) -> None:
        self.frames, self.frame_s = frames, frame_s
        self.started = threading.Event()
        self.reached = 0

    def __call__(
        self, raw_dirs: Any, settings: Settings, *, steps: Any, progress: Progress, stop: StopRequest
    ) -> Any:
        from types import SimpleNamespace

        folder = Path(raw_dirs[0])
        logging.getLogger("nightpipe.fake").info("engine on %s", folder)
        progress.start(self.frames, "calibrate")
        for i in range(self.frames):
            stop.check(done=i, total=self.frames)
            self.reached = i
            self.started.set()
            time.sleep(self.frame_s)
            logging.getLogger("nightpipe.fake").info("frame %d of %s", i, folder)
            progress.advance(f"f{i}.fits")
        return SimpleNamespace(exit_code=0, nights=["2026-01-01"], steps=[])


def add_job(db: Database, settings: Settings, user_name: str) -> int:
    with db.session() as session:
        user = session.scalar(select(User).where(User.name == user_name))
        assert user is not None
        paths = UserPaths(settings.web.data_dir, user.id).make()
        (paths.uploads / "light.fits").write_bytes(b"SIMPLE")
        upload = Upload(
            owner_id=user.id, name="light.fits", path="light.fits", size=6, summary={"kind": "light"}
        )
        session.add(upload)
        session.flush()
        return enqueue(session, user.id, "night", "a night", {"upload_ids": [upload.id]}).id


@pytest.fixture
def app_db(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[TestClient, Database, Settings, FakeEngine]:
    app = make_app(tmp_path, "web.heartbeat_s=0.1", database_url=db_url)
    engine = FakeEngine()
    monkeypatch.setattr("nightpipe.api.run_night", engine)
    return client(app), app.state.ctx.db, app.state.ctx.settings, engine


def status_of(db: Database, job_id: int) -> Job:
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def test_a_running_job_cancelled_stops_at_the_next_frame(app_db: Any) -> None:
    browser, db, settings, engine = app_db
    csrf = register(browser, "ann")
    job_id = add_job(db, settings, "ann")
    done: list[int | None] = []
    thread = threading.Thread(target=lambda: done.append(run_one(db, settings, "w1")))
    thread.start()
    assert engine.started.wait(20)
    answer = browser.post(f"/api/jobs/{job_id}/cancel", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200 and answer.json()["status"] == "running"
    thread.join(20)
    assert done == [job_id]
    job = status_of(db, job_id)
    assert job.status == "cancelled" and job.cancel_requested
    events = browser.get(f"/api/jobs/{job_id}/events").json()
    statuses = [e["message"] for e in events if e["kind"] == "status"]
    assert statuses[-2] == "cancel requested" and statuses[-1].startswith("cancelled")
    assert engine.reached < engine.frames - 1  # stopped at a frame, before the end


def test_a_stopped_worker_requeues_its_job(app_db: Any) -> None:
    _, db, settings, engine = app_db
    from nightpipe.web.accounts import create_user

    with db.session() as session:
        create_user(session, "bob", "correct horse battery")
    job_id = add_job(db, settings, "bob")
    state = WorkerState()
    thread = threading.Thread(target=work, args=(db, settings, state), kwargs={"poll_s": 0.05})
    thread.start()
    assert engine.started.wait(20)
    state.stop(signal.SIGTERM)  # what the worker's SIGTERM handler does
    thread.join(20)
    assert not thread.is_alive()
    job = status_of(db, job_id)
    assert (job.status, job.worker, job.attempts) == ("queued", None, 1)
    engine.frames = 3
    assert work(db, settings, WorkerState(), once=True) == 1
    job = status_of(db, job_id)
    assert (job.status, job.attempts) == ("done", 2)


def test_job_events_over_http_and_sse_ending(app_db: Any) -> None:
    browser, db, settings, engine = app_db
    register(browser, "cleo")
    engine.frames = 4
    job_id = add_job(db, settings, "cleo")
    assert work(db, settings, WorkerState(), once=True) == 1
    events = browser.get(f"/api/jobs/{job_id}/events").json()
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "status" and "step" in kinds and "progress" in kinds and kinds[-1] == "status"
    assert events[-1]["message"] == "done"
    with browser.stream("GET", f"/jobs/{job_id}/events") as stream:
        body = "".join(stream.iter_text())
    assert body.count("event: job\n") == len(events)
    assert body.rstrip().endswith('event: end\ndata: {"status": "done"}')
    later = browser.get(f"/api/jobs/{job_id}/events", params={"after": events[-2]["id"]}).json()
    assert [e["id"] for e in later] == [events[-1]["id"]]


def test_each_job_log_holds_only_its_own_lines(app_db: Any, caplog: pytest.LogCaptureFixture) -> None:
    browser, db, settings, engine = app_db
    caplog.set_level(logging.INFO, logger="nightpipe")  # as `nightpipe worker` sets it
    other = client(browser.app)
    register(browser, "dan")
    register(other, "eve")
    engine.frames, engine.frame_s = 20, 0.01
    jobs = [add_job(db, settings, "dan"), add_job(db, settings, "eve")]
    threads = [threading.Thread(target=run_one, args=(db, settings, f"w{i}")) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for user, job_id in ((browser, jobs[0]), (other, jobs[1])):
        text = user.get(f"/jobs/{job_id}/log").text
        own = f"jobs/{job_id}/input"
        lines = [line for line in text.splitlines() if "frame " in line or "engine on" in line]
        assert status_of(db, job_id).status == "done"
        assert sum("frame " in line for line in text.splitlines()) == 20, text
        assert len(lines) == 21 and all(own in line for line in lines), text  # none of the other job
    assert browser.get(f"/jobs/{jobs[1]}/log").status_code == 404  # not dan's job


def test_a_lone_job_keeps_the_lines_of_the_engine_thread_pools(tmp_path: Path, db_url: str) -> None:
    from nightpipe.store.db import open_database
    from nightpipe.web.job_progress import JobLogHandler

    db = open_database(db_url)
    engine_log = logging.getLogger("nightpipe.fake")
    engine_log.setLevel(logging.INFO)
    handler = JobLogHandler(db, 1, tmp_path / "job.log")
    engine_log.addHandler(handler)
    try:
        pool_thread = threading.Thread(target=lambda: engine_log.info("from a pool thread"))
        pool_thread.start()
        pool_thread.join()
        engine_log.info("from the job's thread")
    finally:
        engine_log.removeHandler(handler)
        handler.close()
        engine_log.setLevel(logging.NOTSET)
    text = (tmp_path / "job.log").read_text()
    assert "from a pool thread" in text and "from the job's thread" in text


def test_a_job_ending_while_a_record_is_walked_does_not_hide_it_from_the_next_handler(
    tmp_path: Path, db_url: str
) -> None:
    """The cause of a line once missing from a job's log under load: the other job's handler was
    taken off the shared logger while a record walked its handlers, shifting the list under it."""
    from nightpipe.store.db import open_database
    from nightpipe.web.job_progress import JobLogHandler

    logger = logging.getLogger("nightpipe.fake-walk")
    logger.setLevel(logging.INFO)
    logger.propagate = False

    class EndsOnFirstRecord(JobLogHandler):
        def emit(self, record: logging.LogRecord) -> None:
            super().emit(record)
            self.detach(logger)  # the job ends while the record is being handled

    class Collect(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.INFO)
            self.lines: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.lines.append(record.getMessage())

    ending = EndsOnFirstRecord(open_database(db_url), 1, tmp_path / "job.log")
    other = Collect()
    ending.attach(logger)
    logger.addHandler(other)
    try:
        logger.info("seen by both")
        logger.info("seen by the other only")
    finally:
        logger.removeHandler(other)
        ending.close()
    assert other.lines == ["seen by both", "seen by the other only"]
    assert (tmp_path / "job.log").read_text().count("seen by") == 1
