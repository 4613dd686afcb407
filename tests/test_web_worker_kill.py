"""A real ``nightpipe worker`` killed with SIGKILL: the reaper requeues its job and a second
worker finishes it; with ``web.max_attempts=1`` the job fails with the reason."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from nightpipe.store.db import open_database
from nightpipe.web.jobqueue import enqueue
from nightpipe.web.models import Job, JobEvent
from web_jobs_helpers import user_with_uploads

SIZE, LIGHTS = 512, 12


def start_worker(root: Path, data: Path, url: str, *sets: str) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "nightpipe.cli.app", "--config", str(root / "nightpipe.toml")]
    for item in (
        f"web.data_dir={data}",
        f"web.database_url={url}",
        "web.heartbeat_s=0.5",
        "web.stale_after_s=3",
        *sets,
    ):
        args += ["--set", item]
    return subprocess.Popen([*args, "worker"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(check: Any, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.mark.slow
@pytest.mark.parametrize("max_attempts", [2, 1])
def test_a_killed_worker_job_is_requeued_or_failed(
    tmp_path: Path, demo_night: Any, max_attempts: int
) -> None:
    root, raw = demo_night(SIZE, LIGHTS)
    data, url = tmp_path / "web", f"sqlite:///{tmp_path / 'web' / 'web.sqlite'}"
    db = open_database(url)
    user_id, ids = user_with_uploads(db, data, "ann", raw)
    with db.session() as session:
        upload_ids = sorted(i for group in ids.values() for i in group)
        job_id = enqueue(session, user_id, "night", "night", {"upload_ids": upload_ids}).id

    def progressing() -> bool:
        with db.session() as session:
            return (
                session.scalar(
                    select(JobEvent.id).where(JobEvent.job_id == job_id, JobEvent.kind == "progress")
                )
                is not None
            )

    first = start_worker(root, data, url, f"web.max_attempts={max_attempts}")
    try:
        wait_for(progressing, 300)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    with db.session() as session:
        assert session.scalar(select(Job.status).where(Job.id == job_id)) == "running"  # nobody told
    second = start_worker(root, data, url, f"web.max_attempts={max_attempts}")
    try:

        def finished() -> bool:
            with db.session() as session:
                return session.scalar(select(Job.status).where(Job.id == job_id)) in (
                    "done",
                    "partial",
                    "failed",
                )

        wait_for(finished, 900)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        if max_attempts == 2:
            assert (job.status, job.attempts) == ("done", 2), job.error
        else:
            assert job.status == "failed" and job.attempts == 1
            assert (
                job.error is not None and "stopped answering" in job.error and job.error.startswith("worker ")
            )
