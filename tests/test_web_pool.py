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
