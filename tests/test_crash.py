"""SIGKILL ``nightpipe run`` at four moments, rerun, and get the products of an uninterrupted run (slow).

The short version of ``benchmarks/bench_crash.py``: one run of the simulated night (256x256,
14 lights, enough for the transit fit) is killed with SIGKILL just after the last master of the
night is written (before its bad-pixel mask), the rerun is killed inside calibrate, the next
inside solve, the next inside photometry, and a last rerun goes to the end. Every product (files
byte for byte, FITS card by card and pixel by pixel, every table's rows, every per-frame step run) must be the
uninterrupted run's, with no row twice and no temporary file left.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crash_campaign import (
    duplicate_rows,
    fresh,
    kill_during,
    logged,
    mismatches,
    products,
    run_to_end,
    written,
)
from night_helpers import DemoNight

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("crash")]
SIZE, LIGHTS = 256, 14


def test_four_kills_then_a_rerun_give_the_uninterrupted_products(
    demo_night: DemoNight, tmp_path: Path
) -> None:
    root, raw = demo_night(SIZE, LIGHTS)
    run = tmp_path / "run"
    fresh(run)
    reference_run = run_to_end(root, raw, run)
    assert reference_run.returncode == 0, reference_run.stdout + reference_run.stderr
    reference = products(run)
    assert any(name.endswith("_fit.json") for name in reference.prints["files"])

    fresh(run)
    kills = [
        ("masters", logged(r"built \S+/flat_\S+\.fits")),  # the masters are written, the mask is not
        ("calibrate", written("calibrated", 3)),
        # the WCS is written into calibrated frames in place: a frame solved but not yet recorded
        # is solved again by the rerun, and must not hold two solves' HISTORY
        ("solve", logged(r"solve: [2-9] of \d+ done")),
        ("photometry", written("sources", 3)),
    ]
    for step, when in kills:
        assert kill_during(root, raw, run, when=when) == step
    rerun = run_to_end(root, raw, run)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    resumed = products(run)
    assert mismatches(reference, resumed) == []
    assert duplicate_rows(reference, resumed) == 0
    assert resumed.temporary == []
