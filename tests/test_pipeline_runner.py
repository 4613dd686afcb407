"""The step runner, the night lock, per-frame parallel map and the night report."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from nightpipe.config import ParallelConfig, Settings, load_settings
from nightpipe.errors import CalibrationError, RunBusyError
from nightpipe.pipeline.lock import night_lock
from nightpipe.pipeline.parallel import dask_client, map_frames
from nightpipe.pipeline.runner import NightContext, Step, run_steps
from nightpipe.progress import CountingProgress
from nightpipe.report.night_report import write_night_report
from nightpipe.store import open_database
from nightpipe.store.models import Frame
from nightpipe.store.steps import record_step


def _settings(tmp_path: Path) -> Settings:
    return load_settings(
        None,
        overrides=[
            f"paths.output={str(tmp_path / 'out')!r}",
            f"database.url='sqlite:///{tmp_path}/db.sqlite'",
        ],
        environ={},
    )


def test_runner_goes_on_after_a_failing_step(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    db = open_database(settings.database.url)
    seen: list[str] = []

    def good(ctx: NightContext) -> dict[str, int]:
        seen.append("good")
        return {"processed": 3, "failed": 1}

    def bad(ctx: NightContext) -> None:
        raise CalibrationError("no master bias", path="x.fits")

    steps = [
        Step("one", "first", (), ("a",), good),
        Step("two", "breaks", ("a",), ("b",), bad),
        Step("three", "after", ("a",), ("c",), good),
    ]
    summary = run_steps(steps, NightContext(settings=settings, db=db, raw_dirs=(), night="2020-01-01"))
    assert seen == ["good", "good"]
    assert summary.failed_steps == ("two",)
    assert summary.failed_frames == 2
    assert summary.exit_code == 1
    assert "two: x.fits: no master bias" in (summary.steps[1].error or "")
    db.dispose()


def test_lock_refuses_a_second_run(tmp_path: Path) -> None:
    with (
        night_lock(tmp_path, "n1"),
        pytest.raises(RunBusyError, match="another nightpipe run"),
        night_lock(tmp_path, "n1"),
    ):
        pass
    with night_lock(tmp_path, "n1"):  # released after the block
        pass


def _square(x: int) -> int:
    if x == 3:
        raise ValueError("three is bad")
    return x * x


def test_map_frames_threads_keeps_order_and_errors() -> None:
    progress = CountingProgress()
    out = map_frames(_square, list(range(6)), ParallelConfig(threads=2), progress=progress)
    assert [o.value for o in out if o.ok] == [0, 1, 4, 16, 25]
    assert not out[3].ok and "three" in str(out[3].error)
    assert progress.done == 6


@pytest.mark.slow
def test_map_frames_local_cluster_matches_threads() -> None:
    config = ParallelConfig(workers=2)
    with dask_client(config) as client:
        out = map_frames(_square, list(range(10)), config, client=client)
    assert [o.value for o in out] == [x * x if x != 3 else None for x in range(10)]
    assert isinstance(out[3].error, ValueError)


def test_night_report_lists_frames_and_failures(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    db = open_database(settings.database.url)
    with db.session() as s:
        ok = Frame(
            path="/raw/a frame.fits",
            size=1,
            mtime=0,
            kind="light",
            night="2020-01-01",
            mid_utc=datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC),
        )
        bad = Frame(path="/raw/b.fits", size=1, mtime=0, kind="light", night="2020-01-01")
        s.add_all([ok, bad])
        s.flush()
        record_step(s, step="calibrate", status="ok", frame_id=ok.id)
        record_step(s, step="calibrate", status="failed", frame_id=bad.id, reason="no flat for filter V")
    (settings.paths.output / "sources" / "2020-01-01").mkdir(parents=True)
    (settings.paths.output / "sources" / "2020-01-01" / "a.fits").write_bytes(b"")
    paths = write_night_report(settings, db, "2020-01-01")
    page = paths.html.read_text()
    assert "a frame.fits" in page and "no flat for filter V" in page
    assert "http" not in page.split("<body>")[1].replace("https://", "")  # no remote resources
    with zipfile.ZipFile(paths.zip) as zf:
        names = zf.namelist()
    assert "2020-01-01/report.html" in names and "2020-01-01/sources/2020-01-01/a.fits" in names
    db.dispose()


def test_report_fit_row_shows_the_transit_figures() -> None:
    from nightpipe.report.night_report import fit_summary_row

    fit = {
        "target": "HAT-P-32",
        "n_points": 142,
        "n_used": 140,
        "time_scale": "BJD_TDB",
        "params": {
            "rp_rs": {"median": 0.1499, "plus": 0.0042, "minus": 0.0041},
            "tc": {"median": 2458107.71235, "plus": 0.001, "minus": 0.0009},
        },
        "derived": {"depth": 0.02246, "depth_err": 0.00125, "duration_days": 0.131},
        "ephemeris": {"o_minus_c_min": 1.53, "o_minus_c_err_min": 1.38},
        "rms": 0.00466,
        "binned": {"minutes": 10.0, "rms": 0.00303, "beta": 1.17},
    }
    row = fit_summary_row(fit)
    assert row["Rp/Rs"] == "0.1499 +0.0042/-0.0041" and row["points used"] == "140/142"
    assert row["depth %"] == "2.246 ± 0.125" and row["O-C min"] == "+1.5 ± 1.4"
    assert row["mid-transit BJD_TDB"] == "2458107.71235 ± 1.4 min" and row["T14 h"] == "3.14"
    assert row["10-min rms %"] == "0.303 (beta 1.17)" and "a/Rs" not in row  # a/Rs was not fitted
