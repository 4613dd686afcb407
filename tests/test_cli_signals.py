"""SIGINT and SIGTERM stop ``nightpipe run`` cleanly, and a rerun finishes the same night (slow).

A real ``nightpipe run`` subprocess on the simulated demo night (384x384, 24 lights) gets the
signal once its step has written a few frames; it must say where it stopped, exit 130 / 143,
leave no unfinished file, keep the frames it finished, and a rerun must give the products of an
uninterrupted run (``tests/product_fingerprint.py``; a product's headers name the folder it was
made in, so every run of this module goes into the same folder, one after the other).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crash_campaign import frame_run_rows
from night_helpers import DemoNight
from nightpipe.frames.fitsio import is_temporary
from nightpipe.store import open_database
from nightpipe.store.models import StepRun
from product_fingerprint import differences, fingerprint
from test_cli_night import nightpipe_args, run_nightpipe

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cli_signals")]  # one folder, one test at a time
SIZE, LIGHTS = 384, 24
NIGHT = "2017-12-19"


def _fingerprint(run: Path) -> dict[str, dict[str, str]]:
    prints = fingerprint(run / "out", f"sqlite:///{run / 'db.sqlite'}")
    # the night-level rows count what each run did (24 calibrated, or 5 calibrated and 19 kept):
    # the per-frame runs are compared instead
    prints["rows"].pop("step_runs")
    prints["frame_runs"] = {str(k): v for k, v in _frame_runs(run).items()}
    return prints


def _frame_runs(run: Path) -> dict[tuple[str, str], tuple[str, str | None]]:
    """``(step, frame) -> (status, reason)`` of every per-frame step run."""
    return {(step, name): (status, reason) for step, name, status, reason in frame_run_rows(run)}


def _ok_runs(run: Path, step: str) -> int:
    db = open_database(f"sqlite:///{run / 'db.sqlite'}")
    try:
        with db.session() as session:
            count = session.scalar(
                select(func.count()).select_from(StepRun).where(StepRun.step == step, StepRun.status == "ok")
            )
    finally:
        db.dispose()
    return int(count or 0)


@pytest.fixture(scope="module")
def night(demo_night: DemoNight, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The demo night's folder and raw frames, and the folder every run of this module goes into."""
    root, raw = demo_night(SIZE, LIGHTS)
    return root, raw, tmp_path_factory.mktemp("signals") / "run"


@pytest.fixture(scope="module")
def reference(night: tuple[Path, Path, Path]) -> dict[str, dict[str, str]]:
    """The fingerprint of an uninterrupted run."""
    root, raw, run = night
    shutil.rmtree(run, ignore_errors=True)
    proc = run_nightpipe(nightpipe_args(root, run, "-q", "run", str(raw)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    prints = _fingerprint(run)
    shutil.rmtree(run)
    return prints


@pytest.mark.parametrize(
    ("signum", "step", "folder", "code"),
    [(signal.SIGINT, "calibrate", "calibrated", 130), (signal.SIGTERM, "photometry", "sources", 143)],
)
def test_a_signal_stops_the_run_cleanly_and_a_rerun_resumes(
    night: tuple[Path, Path, Path],
    reference: dict[str, dict[str, str]],
    signum: signal.Signals,
    step: str,
    folder: str,
    code: int,
) -> None:
    root, raw, run = night
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    written = run / "out" / folder / NIGHT
    with (run / "stdout").open("w") as out, (run / "stderr").open("w") as err:
        proc = subprocess.Popen(nightpipe_args(root, run, "run", str(raw)), stdout=out, stderr=err)
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            done = (
                [p for p in written.glob("*.fits") if not p.name.startswith(".")] if written.is_dir() else []
            )
            if len(done) >= 2:  # inside the step, with frames still to do
                proc.send_signal(signum)
                break
            time.sleep(0.02)
        proc.wait(timeout=300)
    stderr = (run / "stderr").read_text()
    assert proc.returncode == code, f"the run ended before it got {signum.name} in {step}:\n{stderr[-2000:]}"
    found = re.search(rf"aborted at {step}, (\d+) of (\d+) frames done, rerun to resume", stderr)
    assert found, stderr[-2000:]
    done, total = int(found[1]), int(found[2])
    assert done < total == LIGHTS  # the frames in hand on the other thread may be dropped
    assert _ok_runs(run, step) == done  # the frames finished are recorded: the rerun skips them
    leftovers = [p for p in (run / "out").rglob(".*") if is_temporary(p)]
    assert not leftovers, f"unfinished files left behind: {leftovers[:3]}"

    rerun = run_nightpipe(nightpipe_args(root, run, "-q", "run", str(raw)))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert re.search(rf"\b{step}\b.*\bok\b.*\b{LIGHTS} frames\b", rerun.stdout), rerun.stdout
    resumed = _fingerprint(run)
    assert differences(reference, resumed) == []
    assert resumed["frame_runs"] == reference["frame_runs"]
