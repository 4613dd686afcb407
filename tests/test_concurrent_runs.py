"""Two ``nightpipe run`` processes started at once on the same night and database (slow).

Real subprocesses on the simulated night (256x256, 14 lights), on SQLite and on PostgreSQL:
both start at the same moment (both migrate the empty database, both try the locks); exactly
one goes on and the other refuses with a message naming the run that holds the lock. While the
winner works, a third run on the same database but another output folder is refused by the
database's lock. No run ever says "database is locked" nor prints a traceback; the winner's
products (files, every table's rows, every per-frame step run) are those of a single run.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from crash_campaign import (
    child_env,
    duplicate_rows,
    fresh,
    mismatches,
    nightpipe_command,
    products,
    run_to_end,
    sqlite_url,
)
from night_helpers import DemoNight
from nightpipe.exit_codes import ExitCode

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("crash")]
SIZE, LIGHTS = 256, 14
REFUSED = "another nightpipe run is working on"


def _empty(url: str) -> None:
    """An empty database again (the runs in one folder share the database, one after the other)."""
    if url.startswith("sqlite"):
        return
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """``None`` (SQLite beside the products) or a fresh PostgreSQL database's URL."""
    return None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


def _start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as err:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=child_env())


def test_two_runs_at_once_one_refused_and_the_products_of_one_run(
    demo_night: DemoNight, tmp_path: Path, database: str | None
) -> None:
    root, raw = demo_night(SIZE, LIGHTS)
    run = tmp_path / "run"
    url = database or sqlite_url(run)
    fresh(run)
    single = run_to_end(root, raw, run, url)
    assert single.returncode == 0, single.stdout + single.stderr
    reference = products(run, url)

    fresh(run)
    _empty(url)
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    cmd = nightpipe_command(root, run, "run", str(raw), url=url)
    procs = [_start(cmd, log) for log in logs]  # at once: both migrate the new database
    try:
        deadline = time.monotonic() + 600
        while all(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.05)
        loser = next(i for i, p in enumerate(procs) if p.poll() is not None)
        winner = procs[1 - loser]
        assert procs[loser].returncode == ExitCode.BUSY, logs[loser].read_text()[-2000:]
        refusal = logs[loser].read_text()
        assert REFUSED in refusal and "pid " in refusal, refusal[-2000:]

        # the database's own lock: another output folder, the same database, while the winner works
        other = tmp_path / "other"
        third = subprocess.run(
            nightpipe_command(root, other, "run", str(raw), url=url),
            capture_output=True,
            text=True,
            check=False,
            env=child_env(),
            timeout=600,
        )
        assert winner.poll() is None, "the first run ended before the third was refused: no lock was tested"
        assert third.returncode == ExitCode.BUSY, third.stderr[-2000:]
        assert f"{REFUSED} the database" in third.stderr, third.stderr[-2000:]
        assert not [p for p in (other / "out").rglob("*.fits")], "the refused run wrote products"

        assert winner.wait(timeout=900) == 0, logs[1 - loser].read_text()[-2000:]
        for text in [*(log.read_text() for log in logs), third.stderr]:
            assert "database is locked" not in text and "Traceback" not in text, text[-2000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=60)
    resumed = products(run, url)
    assert mismatches(reference, resumed) == []
    assert duplicate_rows(reference, resumed) == 0
    assert resumed.temporary == []
