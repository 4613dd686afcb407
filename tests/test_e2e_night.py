"""The whole pipeline on a simulated night with calibration frames and a transit (slow, end to end).

One small demo night (512x512, 40 lights, real Tycho-2 field) is simulated once per module;
each test runs the pipeline into its own output folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from night_helpers import DemoNight, night_settings, row_counts
from nightpipe.config import Settings
from nightpipe.frames.fitsio import is_temporary
from nightpipe.pipeline.night import run_night

pytestmark = pytest.mark.slow
SIZE, LIGHTS = 512, 40


@pytest.fixture(scope="module")
def demo(demo_night: DemoNight) -> tuple[Path, Path]:
    """The simulated raw night (shared, read-only) and its truth."""
    return demo_night(SIZE, LIGHTS)


def _products(settings: Settings) -> dict[str, tuple[int, int]]:
    out = settings.paths.output
    return {
        str(p.relative_to(out)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(out.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def _fit(settings: Settings) -> dict[str, object]:
    fits = sorted(settings.paths.output.glob("lightcurves/*/*_fit.json"))
    assert fits, "no transit fit written"
    return dict(json.loads(fits[0].read_text()))


def test_simulated_night_end_to_end_then_a_noop_rerun(demo: tuple[Path, Path], tmp_path: Path) -> None:
    root, raw = demo
    settings = night_settings(root, tmp_path)
    first = run_night(settings, [raw])
    assert first.exit_code == 0, [s.error for s in first.steps if s.error]
    truth = json.loads((raw / "truth.json").read_text())
    fit = _fit(settings)
    params = fit["params"]
    assert isinstance(params, dict)
    rp, tc = params["rp_rs"], params["tc"]
    rp_err = max(rp["plus"], rp["minus"])
    tc_err = max(tc["plus"], tc["minus"])
    assert abs(rp["median"] - truth["transit"]["rp"]) < 3 * rp_err
    assert abs(tc["median"] - truth["transit"]["t0_bjd_tdb"]) < 3 * tc_err
    report = settings.paths.output / "reports"
    page = next(report.glob("*.html")).read_text()
    assert len(page) > 10_000 and f"{rp['median']:.4f} +" in page  # the fit's Rp/Rs in the report
    identified = json.loads(next(settings.paths.output.glob("identify/*/summary.json")).read_text())
    assert identified["stars"] > 20  # offline with an empty cache: every service says why it missed
    assert {s["status"] for s in identified["services"].values()} == {"missed"}
    assert "What is in the field" in page and "offline and not in the cache" in page
    _identify_from_the_cli(root, tmp_path, identified["night"])
    from nightpipe.api import open_archive

    with open_archive(settings.database.url, settings) as archive:  # the Python API on the same night
        assert archive.nights() == [identified["night"]]
        lc = archive.light_curve(str(fit["target"]))
        assert len(lc) >= 0.9 * LIGHTS and np.isfinite(lc.mag).all()
    counts, products = row_counts(settings), _products(settings)
    second = run_night(settings, [raw])
    assert second.exit_code == 0
    assert row_counts(settings) == counts
    changed = {k for k, v in _products(settings).items() if products.get(k) != v}
    assert not changed, f"a second run rewrote {sorted(changed)[:5]}"


def _identify_from_the_cli(root: Path, tmp_path: Path, night: str) -> None:
    """``nightpipe identify NIGHT`` reruns nothing (products unchanged) and says what each service
    gave; ``catalog fetch`` refuses offline; a file that is not a measured frame is a usage error."""
    from nightpipe.cli.app import main

    where = ["-c", str(root / "nightpipe.toml"), "-s", f"paths.output={str(tmp_path / 'out')!r}",
             "-s", f"database.url='sqlite:///{tmp_path / 'db.sqlite'}'"]  # fmt: skip
    summary = next((tmp_path / "out").glob("identify/*/summary.json"))
    before = summary.stat().st_mtime_ns
    assert main([*where, "identify", night]) == 0
    assert summary.stat().st_mtime_ns == before
    assert main([*where, "catalog", "fetch", "--ra", "31", "--dec", "46.7"]) == 2
    assert main([*where, "identify", str(tmp_path / "not-a-frame.fits")]) == 2


def _run_cli(settings_file: Path, out: Path, raw: Path) -> subprocess.Popen[str]:
    cmd = [
        sys.executable,
        "-m",
        "nightpipe.cli.app",
        "-q",
        "-c",
        str(settings_file),
        "-s",
        f"paths.output={str(out / 'out')!r}",
        "-s",
        f"paths.masters={str(out / 'out' / 'masters')!r}",
        "-s",
        f"database.url='sqlite:///{out / 'db.sqlite'}'",
        "run",
        str(raw),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_during_photometry_then_restarted_gives_the_same_night(
    demo: tuple[Path, Path], tmp_path: Path
) -> None:
    root, raw = demo
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = _run_cli(root / "nightpipe.toml", killed, raw)
    settings = night_settings(root, killed)
    deadline = time.monotonic() + 600
    sources = settings.paths.output / "sources"
    while time.monotonic() < deadline and proc.poll() is None:
        if sources.is_dir() and len(list(sources.rglob("*.fits"))) >= LIGHTS // 3:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed in photometry"
    restarted = _run_cli(root / "nightpipe.toml", killed, raw)
    restarted_out, restarted_err = restarted.communicate()
    assert restarted.returncode == 0, restarted_err
    assert "Rp/Rs" in restarted_out  # the run ends with each target's fit
    leftovers = [p for p in settings.paths.output.rglob(".*") if is_temporary(p)]
    assert not leftovers, f"unfinished files left after the restart: {leftovers[:3]}"
    reference = _run_cli(root / "nightpipe.toml", clean, raw)
    assert reference.communicate() and reference.returncode == 0
    clean_settings = night_settings(root, clean)
    counts_killed = row_counts(settings)
    counts_clean = row_counts(clean_settings)
    counts_killed.pop("step_runs"), counts_clean.pop("step_runs")
    assert counts_killed == counts_clean, restarted_out + restarted_err
    a, b = _fit(settings), _fit(clean_settings)
    for name in ("rp_rs", "tc"):
        np.testing.assert_allclose(
            a["params"][name]["median"],
            b["params"][name]["median"],  # type: ignore[index]
            rtol=0,
            atol=1e-12,
        )
    csv_a = sorted(settings.paths.output.glob("lightcurves/*/*.csv"))
    csv_b = sorted(clean_settings.paths.output.glob("lightcurves/*/*.csv"))
    assert [p.read_text() for p in csv_a] == [p.read_text() for p in csv_b]
