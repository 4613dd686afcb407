"""The local worker pool of ``nightpipe serve`` restarts a worker that was killed."""

from __future__ import annotations

import os
import signal
import sys
import time

from nightpipe.web.serve import WorkerPool, worker_command


def test_the_pool_restarts_a_killed_worker_and_stops_them_all() -> None:
    pool = WorkerPool([sys.executable, "-c", "import time; time.sleep(120)"], 2, check_s=0.1)
    pool.start()
    try:
        first = [p.pid for p in pool.processes]
        os.kill(first[0], signal.SIGKILL)
        end = time.monotonic() + 20
        while pool.processes[0].pid == first[0] and time.monotonic() < end:
            time.sleep(0.1)
        assert pool.processes[0].pid != first[0] and pool.processes[0].poll() is None
        assert pool.processes[1].pid == first[1]  # the other one left alone
    finally:
        pool.stop(timeout=10)
    assert all(p.poll() is not None for p in pool.processes)


def test_worker_command_passes_the_configuration_on() -> None:
    argv = worker_command(None, ["web.heartbeat_s=1"])
    assert argv[:3] == [sys.executable, "-m", "nightpipe.cli.app"]
    assert argv[-3:] == ["--set", "web.heartbeat_s=1", "worker"]


def test_worker_once_exits_1_when_a_job_failed(tmp_path) -> None:
    import subprocess

    from sqlalchemy import select

    from nightpipe.store.db import open_database
    from nightpipe.web.accounts import create_user
    from nightpipe.web.jobqueue import enqueue
    from nightpipe.web.models import Job
    from web_helpers import web_overrides, web_settings

    settings = web_settings(tmp_path)
    db = open_database(settings.web.database())
    with db.session() as session:
        user = create_user(session, "ann", "a long enough password")
        session.flush()
        job_id = enqueue(session, user.id, "night", "lost uploads", {"upload_ids": [12345]}).id
    sets = [arg for item in web_overrides(tmp_path) for arg in ("--set", item)]
    done = subprocess.run(
        [sys.executable, "-m", "nightpipe.cli.app", *sets, "worker", "--once"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 job(s) run, 1 failed" in done.stdout
    with db.session() as session:
        job = session.scalar(select(Job).where(Job.id == job_id))
        assert job is not None and job.status == "failed"
        assert "upload the frames again" in (job.error or "")
    db.dispose()
