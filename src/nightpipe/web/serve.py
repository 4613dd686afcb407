"""``nightpipe serve``: the web server and, by default, a local pool of job workers it looks after.

The workers are separate processes running ``nightpipe worker`` with the same configuration;
one that dies (even by SIGKILL) is started again, and its job is requeued or failed by the
heartbeat reaper. With ``web.local_workers = 0`` the jobs wait for workers started elsewhere.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from nightpipe.config import Settings

log = logging.getLogger(__name__)


def worker_command(config_path: Path | None, overrides: Sequence[str]) -> list[str]:
    """The argv of one local worker: this Python, the same configuration file and overrides."""
    argv = [sys.executable, "-m", "nightpipe.cli.app", "-q"]
    if config_path is not None:
        argv += ["-c", str(config_path)]
    for override in overrides:
        argv += ["--set", override]
    return [*argv, "worker"]


class WorkerPool:
    """``count`` worker processes, restarted when one exits while the pool runs."""

    def __init__(self, argv: list[str], count: int, *, check_s: float = 2.0) -> None:
        self.argv, self.count, self.check_s = argv, count, check_s
        self.processes: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # no restart while stop() terminates the pool
        self._thread = threading.Thread(target=self._watch, name="worker-pool", daemon=True)

    def start(self) -> None:
        self.processes = [subprocess.Popen(self.argv) for _ in range(self.count)]
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(self.check_s):
            with self._lock:
                for i, proc in enumerate(self.processes):
                    if proc.poll() is not None and not self._stopping.is_set():
                        log.warning(
                            "local worker %d exited with %s; starting another", proc.pid, proc.returncode
                        )
                        self.processes[i] = subprocess.Popen(self.argv)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every worker (each stops its job at the next frame and requeues it), then wait."""
        with self._lock:
            self._stopping.set()
            for proc in self.processes:
                if proc.poll() is None:
                    proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()


def serve(settings: Settings, config_path: Path | None, overrides: Sequence[str]) -> None:
    """Run the web server until interrupted, with ``web.local_workers`` workers beside it."""
    import uvicorn

    from nightpipe.web.app import create_app

    app = create_app(settings)
    pool = WorkerPool(worker_command(config_path, overrides), settings.web.local_workers)
    if settings.web.local_workers:
        pool.start()
    config = uvicorn.Config(
        app,
        host=settings.web.host,
        port=settings.web.port,
        log_level="warning",
        proxy_headers=True,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    finally:
        pool.stop()
