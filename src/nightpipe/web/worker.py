"""``nightpipe worker``: claim jobs from the database queue and run them, one at a time.

Workers may run on any machine that reaches the accounts database and the data folder
(``web.database_url``, ``web.data_dir``): settings only. Each worker reaps the jobs of workers
that stopped answering, so a job is never left "running" forever.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from dataclasses import dataclass, field

from nightpipe.config import Settings
from nightpipe.pipeline.interrupt import StopRequest
from nightpipe.store.db import Database
from nightpipe.web.job_run import run_claim
from nightpipe.web.jobqueue import Claim, claim_next, finish, heartbeat, reap_stale, requeue

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class WorkerState:
    """What tells a worker loop to end (a signal, a test)."""

    stopping: threading.Event = field(default_factory=threading.Event)
    current: StopRequest | None = None
    failed: int = 0  # jobs this loop ran that ended "failed" (``nightpipe worker --once`` exits 1)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """End the loop; the job in hand stops at its next frame and is queued again."""
        self.stopping.set()
        if self.current is not None:
            self.current.ask(signum)


class Heartbeat(threading.Thread):
    """Renews a job's claim every ``every_s``; asks the run to stop when the job was cancelled
    or taken away."""

    def __init__(self, db: Database, claim: Claim, worker: str, stop: StopRequest, every_s: float) -> None:
        super().__init__(name=f"heartbeat-{claim.job_id}", daemon=True)
        self.db, self.claim, self.worker, self.stop_request, self.every_s = db, claim, worker, stop, every_s
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every_s):
            try:
                alive = heartbeat(self.db, self.claim.job_id, self.worker)
            except Exception:  # a database hiccup: try again at the next beat
                log.warning("job %d: heartbeat failed", self.claim.job_id, exc_info=True)
                continue
            if not alive:
                self.stop_request.ask(signal.SIGTERM)


def run_one(db: Database, settings: Settings, worker: str, state: WorkerState | None = None) -> int | None:
    """Claim and run one job; its id, or None when the queue was empty."""
    claim = claim_next(db, worker)
    if claim is None:
        return None
    stop = StopRequest()
    if state is not None:
        state.current = stop
    beat = Heartbeat(db, claim, worker, stop, settings.web.heartbeat_s)
    beat.start()
    try:
        outcome = run_claim(db, settings, claim, stop)
    finally:
        beat.done.set()
        beat.join()
        if state is not None:
            state.current = None
    stopped = state is not None and state.stopping.is_set() and outcome.status == "cancelled"
    if stopped and requeue(db, claim.job_id, worker, "the worker was stopped"):
        return claim.job_id
    finish(db, claim.job_id, worker, outcome.status, error=outcome.error, result=outcome.result)
    if state is not None and outcome.status == "failed":
        state.failed += 1
    log.info("job %d: %s", claim.job_id, outcome.status)
    return claim.job_id


def work(
    db: Database, settings: Settings, state: WorkerState, *, poll_s: float = 1.0, once: bool = False
) -> int:
    """Run jobs until ``state.stopping`` is set (or the queue is empty, with ``once``); the count run."""
    worker = worker_name()
    count = 0
    log.info("worker %s waiting for jobs", worker)
    while not state.stopping.is_set():
        reap_stale(db, stale_after_s=settings.web.stale_after_s, max_attempts=settings.web.max_attempts)
        job_id = run_one(db, settings, worker, state)
        if job_id is not None:
            count += 1
            continue
        if once:
            break
        state.stopping.wait(poll_s)
    return count


def serve_worker(settings: Settings) -> None:
    """The body of ``nightpipe worker`` (and of each local worker process of ``nightpipe serve``):
    SIGTERM or SIGINT ends the loop after the job in hand stops at its next frame."""
    from nightpipe.web.database import open_web_database

    db = open_web_database(settings)
    state = WorkerState()

    def ask_stop(signum: int, _frame: object) -> None:
        state.stop(signum)

    signal.signal(signal.SIGTERM, ask_stop)
    signal.signal(signal.SIGINT, ask_stop)
    try:
        work(db, settings, state)
    finally:
        db.dispose()
