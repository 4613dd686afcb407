"""``nightpipe run`` on a small simulated night, as a user runs it: a real subprocess, its exit
code, its output, its report (8 lights of 256x256, a few seconds a run)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from crash_campaign import nightpipe_command
from night_helpers import DemoNight

SIZE, LIGHTS = 256, 8


@pytest.fixture(scope="module")
def small(demo_night: DemoNight) -> tuple[Path, Path]:
    """The simulated night (shared, read-only): its folder (with nightpipe.toml) and raw folder."""
    return demo_night(SIZE, LIGHTS)


def nightpipe_args(root: Path, out: Path, *args: str, settings: tuple[str, ...] = ()) -> list[str]:
    """``python -m nightpipe.cli.app`` with the demo's settings, products and database in ``out``."""
    return nightpipe_command(root, out, *args, settings=settings)


def run_nightpipe(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}  # the table's rows on one line each
    return subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, timeout=600)


def test_a_night_whose_every_plate_solve_fails_says_so(small: tuple[Path, Path], tmp_path: Path) -> None:
    """Every WCS is rejected (a residual limit no solution meets): the solve step is ``failed``,
    8 of 8, each frame is listed with its reason, in the output and the report, and the run exits 1."""
    root, raw = small
    cmd = nightpipe_args(
        root, tmp_path, "-q", "run", str(raw), settings=("astrometry.max_rms_arcsec=0.0001",)
    )
    proc = run_nightpipe(cmd)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    solve_row = next(line for line in proc.stdout.splitlines() if re.search(r"\bsolve\b", line))
    assert re.search(r"\bfailed\b.*8 of 8 frames failed", solve_row), solve_row
    calibrate_row = next(line for line in proc.stdout.splitlines() if " calibrate " in line)
    assert re.search(r"\bok\b.*\b8 frames\b", calibrate_row), calibrate_row
    listed = re.findall(r"^failed  \S+ solve (\S+): (.+)$", proc.stdout, re.MULTILINE)
    assert [name for name, _ in listed] == [f"DEMO-1_V_{i:04d}.fits" for i in range(1, LIGHTS + 1)]
    assert all("max_rms_arcsec" in reason for _, reason in listed)
    report = next((tmp_path / "out" / "reports").glob("*.html")).read_text()
    failures = report.split("<h2>Failures</h2>")[1].split("<h2>")[0]
    assert failures.count("<td>solve</td>") == LIGHTS and "max_rms_arcsec" in failures


STEPS = ("scan", "masters", "calibrate", "solve", "photometry", "zeropoints", "lightcurves", "report")
BAR_GLYPHS = re.compile("[\u2500-\u259f\u2026]")  # box drawing, blocks, the ellipsis of a bar's columns


def test_output_to_a_file_is_plain_lines(small: tuple[Path, Path], tmp_path: Path) -> None:
    """As from cron (``> log 2>&1``): no live bar, no control characters or bar glyphs; one line
    as each step starts and ends, and for each frame loop a line at its start, every 10 % (at most
    every 25 frames) and at its end."""
    root, raw = small
    log = tmp_path / "nightpipe.log"
    with log.open("w") as handle:
        subprocess.run(
            nightpipe_args(root, tmp_path, "run", str(raw)),
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=600,
            env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
        )
    text = log.read_text()
    assert not [c for c in text if ord(c) < 32 and c != "\n"], "control characters in the log"
    assert not BAR_GLYPHS.findall(text)
    lines = text.splitlines()
    for step in STEPS:
        assert sum(line.endswith(f"[{step}] starting") for line in lines) == 1, step
        assert sum(f"[{step}] done in " in line for line in lines) == 1, step
    calibrate = [line for line in lines if "[progress] calibrate: " in line]
    assert calibrate[0].endswith(f"calibrate: {LIGHTS} to do")
    assert re.search(rf"calibrate: {LIGHTS} of {LIGHTS} done in \d+\.\d s$", calibrate[-1])
    assert len(calibrate) <= 2 + LIGHTS
    assert re.search(
        r"^\| 2017-12-19 +\| calibrate +\| ok +\| 8 frames", text, re.MULTILINE
    )  # the table, in ASCII


def test_run_json_for_scripts(small: tuple[Path, Path], tmp_path: Path) -> None:
    """``run --json`` prints one JSON object: the exit code and every step's status, counts and
    failures, as a script reads it (here: every plate solve rejected)."""
    import json

    root, raw = small
    cmd = nightpipe_args(
        root, tmp_path, "-q", "run", "--json", str(raw), settings=("astrometry.max_rms_arcsec=0.0001",)
    )
    proc = run_nightpipe(cmd)
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    assert result["exit_code"] == 1 and [s["step"] for s in result["setup"]] == ["scan", "masters"]
    (night_steps,) = result["nights"].values()
    solve = next(s for s in night_steps if s["step"] == "solve")
    assert solve["status"] == "failed" and solve["failed"] == solve["total"] == LIGHTS
    reasons = [f["reason"] for f in solve["failures"]]
    assert len(reasons) == LIGHTS and all("max_rms_arcsec" in r for r in reasons)
