"""Kill ``nightpipe run`` with SIGKILL, rerun it, and compare what it made with an uninterrupted run.

Used by ``tests/test_crash.py`` (three kills at chosen steps) and ``benchmarks/bench_crash.py``
(20 kills at random moments). Every run of one campaign goes into the same folder, one after
the other, because rows and headers name the folder a product was made in
(``tests/product_fingerprint.py``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from nightpipe.frames.fitsio import is_temporary
from nightpipe.store import open_database
from nightpipe.store.models import Frame, StepRun
from product_fingerprint import differences, file_fingerprint, row_fingerprint, table_rows

STARTING = re.compile(r"\[(\w+)\] starting")


def nightpipe_command(
    root: Path, run: Path, *args: str, url: str | None = None, settings: tuple[str, ...] = ()
) -> list[str]:
    """``python -m nightpipe.cli.app`` with the demo's settings, products in ``run/out`` and the
    database ``run/db.sqlite`` (or at ``url``), then ``settings`` (``-s`` each)."""
    cmd = [sys.executable, "-m", "nightpipe.cli.app", "-c", str(root / "nightpipe.toml")]
    for setting in (
        f"paths.output={str(run / 'out')!r}",
        f"paths.masters={str(run / 'out' / 'masters')!r}",
        f"database.url={url or sqlite_url(run)!r}",
        *settings,
    ):
        cmd += ["-s", setting]
    return [*cmd, *args]


def child_env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200"}


def run_to_end(root: Path, raw: Path, run: Path, url: str | None = None) -> subprocess.CompletedProcess[str]:
    """One ``nightpipe run`` to its end."""
    cmd = nightpipe_command(root, run, "-q", "run", str(raw), url=url)
    return subprocess.run(cmd, capture_output=True, text=True, check=False, env=child_env(), timeout=900)


def kill_during(
    root: Path,
    raw: Path,
    run: Path,
    *,
    after_s: float | None = None,
    when: Callable[[Path], bool] | None = None,
) -> str | None:
    """Start ``nightpipe run`` and SIGKILL it ``after_s`` seconds in, or as soon as ``when(run)``
    is true. Returns the step it was in when it was killed (``startup`` before the first step,
    ``None`` if it had finished first)."""
    run.mkdir(parents=True, exist_ok=True)
    log = run / "killed.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            nightpipe_command(root, run, "run", str(raw)),
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=child_env(),
        )
        start = time.monotonic()
        while proc.poll() is None and time.monotonic() - start < 900:
            if after_s is not None and time.monotonic() - start >= after_s:
                break
            if when is not None and when(run):
                break
            time.sleep(0.01)
        finished = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    if finished:
        return None
    steps = STARTING.findall(log.read_text())
    return steps[-1] if steps else "startup"


def logged(pattern: str) -> Callable[[Path], bool]:
    """True once the killed run's log matches ``pattern``."""
    return lambda run: re.search(pattern, (run / "killed.log").read_text()) is not None


def written(folder: str, count: int) -> Callable[[Path], bool]:
    """True once ``out/<folder>/*/`` holds ``count`` finished FITS products."""
    return lambda run: (
        len([p for p in (run / "out" / folder).glob("*/*.fits") if not p.name.startswith(".")]) >= count
    )


def sqlite_url(run: Path) -> str:
    """The database of the runs in ``run`` (``nightpipe_command``'s default)."""
    return f"sqlite:///{run / 'db.sqlite'}"


def frame_run_rows(run: Path, url: str | None = None) -> list[tuple[str, str, str, str | None]]:
    """``(step, frame file name, status, reason)`` of every per-frame step run of the database of
    the runs in ``run`` (or at ``url``)."""
    db = open_database(url or sqlite_url(run))
    try:
        with db.session() as session:
            rows = session.execute(
                select(StepRun.step, Frame.path, StepRun.status, StepRun.reason).join(
                    Frame, Frame.id == StepRun.frame_id
                )
            ).all()
    finally:
        db.dispose()
    return [(step, Path(path).name, status, reason) for step, path, status, reason in rows]


def frame_runs(run: Path, url: str | None = None) -> list[tuple[str, str]]:
    """``("step frame", "status reason")`` of every per-frame step run."""
    rows = frame_run_rows(run, url)
    return [(f"{step} {name}", f"{status} {reason}") for step, name, status, reason in rows]


@dataclass
class Products:
    """What a run left: the fingerprint, the rows of every table, and its temporary files."""

    prints: dict[str, dict[str, str]]
    rows: dict[str, list[str]]
    temporary: list[Path] = field(default_factory=list)
    repeated_frame_runs: int = 0  # a frame's step recorded twice


def products(run: Path, url: str | None = None) -> Products:
    """The products of the run in ``run`` (``out/``, and ``db.sqlite`` or the database at ``url``)."""
    url = url or sqlite_url(run)
    output = run / "out"
    rows = row_fingerprint(url, output)
    # the night-level rows count what each run did (8 calibrated, or 3 calibrated and 5 kept):
    # the per-frame runs are compared instead
    rows.pop("step_runs")
    runs = frame_runs(run, url)
    prints = {"files": file_fingerprint(output), "rows": rows, "frame_runs": dict(runs)}
    temporary = [p for p in output.rglob(".*") if p.is_file() and is_temporary(p)]
    repeated = sum(n - 1 for n in Counter(key for key, _ in runs).values())
    return Products(prints, table_rows(url, output), temporary, repeated)


def mismatches(reference: Products, resumed: Products) -> list[str]:
    """The files, tables and per-frame runs that differ."""
    lines = differences(reference.prints, resumed.prints)
    ref_runs, new_runs = reference.prints["frame_runs"], resumed.prints["frame_runs"]
    lines += [
        f"frame run {key}: {ref_runs.get(key)} != {new_runs.get(key)}"
        for key in sorted(set(ref_runs) | set(new_runs))
        if ref_runs.get(key) != new_runs.get(key)
    ]
    return lines


def duplicate_rows(reference: Products, resumed: Products) -> int:
    """Rows (keys and clocks left out) that the resumed database holds more often than the reference."""
    extra = max(0, resumed.repeated_frame_runs - reference.repeated_frame_runs)
    for table, rows in resumed.rows.items():
        if table == "step_runs":
            continue
        want = Counter(reference.rows.get(table, []))
        extra += sum(max(0, n - want[row]) for row, n in Counter(rows).items())
    return extra


def fresh(run: Path) -> None:
    """An empty folder for the next run."""
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
