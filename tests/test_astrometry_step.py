"""The solve step over the database, the FITS products, the CLI and the plot."""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import select

from nightpipe.astrometry.step import run_solve, solve_files
from nightpipe.astrometry.wcs_io import read_frame_for_solving, read_wcs, strip_wcs
from nightpipe.cli.app import main
from nightpipe.config import Settings, validate_settings
from nightpipe.frames.flags import PixelFlag
from nightpipe.pipeline.runner import summary_dict
from nightpipe.progress import CountingProgress
from nightpipe.store import open_database
from nightpipe.store.models import Frame, StepRun
from nightpipe.store.models_astrometry import PlateSolution
from nightpipe.store.steps import record_step

INDEX_DIR = Path("/usr/share/astrometry")
HATP32 = (31.042917, 46.687778)
NIGHT = "2017-12-19"


@pytest.fixture(autouse=True)
def _require_solver() -> None:
    if shutil.which("solve-field") is None:
        pytest.skip("solve-field (astrometry.net) is not installed; `apt-get install astrometry.net`")
    if not any(INDEX_DIR.glob("index-*.fits")):
        pytest.skip(f"no astrometry.net index files in {INDEX_DIR}; `apt-get install astrometry-data-tycho2`")


def _raw_files(shared_data: Path, n: int) -> list[Path]:
    files = sorted((shared_data / "hatp32-microobservatory").glob("*.FITS"))
    return files[:: max(1, len(files) // n)][:n]


def _calibrated_copy(raw: Path, destination: Path, *, blank: bool = False) -> None:
    """A file in the calibrated-frame layout (float32 primary, UNCERT, MASK) from a raw frame."""
    with fits.open(raw) as hdul:
        data = hdul[0].data.astype(np.float32)
        header = hdul[0].header.copy()
    mask = np.where(data >= 4095, int(PixelFlag.SATURATED), 0).astype(np.uint16)
    if blank:
        data = np.random.default_rng(3).normal(400, 5, data.shape).astype(np.float32)
        mask[:] = 0
    header.add_history("calibrated (test copy)")
    fits.HDUList(
        [
            fits.PrimaryHDU(data, header),
            fits.ImageHDU(np.sqrt(np.abs(data)).astype(np.float32), name="UNCERT"),
            fits.ImageHDU(mask, name="MASK"),
        ]
    ).writeto(destination)


def _settings(tmp_path: Path, url: str) -> Settings:
    return validate_settings({"paths": {"output": str(tmp_path / "out")}, "database": {"url": url}})


def _populate(db_url: str, tmp_path: Path, raws: list[Path], blank_index: int | None) -> list[Path]:
    db = open_database(db_url)
    folder = tmp_path / "out" / "calibrated" / NIGHT
    folder.mkdir(parents=True)
    paths = []
    start = datetime(2017, 12, 20, 1, 33, tzinfo=UTC)
    with db.session() as session:
        for i, raw in enumerate(raws):
            path = folder / f"{raw.stem} {i}.fits"  # a space in the name, on purpose
            _calibrated_copy(raw, path, blank=i == blank_index)
            frame = Frame(
                path=str(raw), hdu=0, size=raw.stat().st_size, mtime=raw.stat().st_mtime, kind="light",
                night=NIGHT, mid_utc=start + timedelta(minutes=3 * i),
            )  # fmt: skip
            session.add(frame)
            session.flush()
            digest = hashlib.sha1(str(path).encode()).hexdigest()
            record_step(session, step="calibrate", status="ok", frame_id=frame.id, night=NIGHT,
                        output_path=str(path), input_hash=digest)  # fmt: skip
            paths.append(path)
    db.dispose()
    return paths


def test_run_solve_over_the_database(db_url: str, tmp_path: Path, shared_data: Path) -> None:
    raws = _raw_files(shared_data, 6)
    paths = _populate(db_url, tmp_path, raws, blank_index=2)
    raw_bytes = [hashlib.sha1(r.read_bytes()).hexdigest() for r in raws]
    settings = _settings(tmp_path, db_url)
    db = open_database(db_url)
    progress = CountingProgress()
    try:
        summary = run_solve(settings, db, night=NIGHT, progress=progress)
        assert summary.solved == 5 and summary.failed == 1
        assert progress.done == 6
        assert summary.methods == {"solve-field": 1, "reference-match": 4}
        plain = summary_dict(summary)  # what the night runner records and counts
        assert plain["failed"] == 1 and plain["solved"] == 5 and plain["by_reference_match"] == 4
        with db.session() as session:
            rows = session.scalars(select(PlateSolution).order_by(PlateSolution.frame_id)).all()
            assert len(rows) == 6
            failed = [r for r in rows if not r.solved]
            assert len(failed) == 1 and "stars detected" in (failed[0].reason or "")
            for row in rows:
                if row.solved:
                    assert row.method in ("solve-field", "reference-match")
                    assert row.rms_arcsec is not None and row.rms_arcsec < 1.0
                    assert row.rms_px == pytest.approx(row.rms_arcsec / row.pixel_scale, rel=1e-6)
                    assert row.pixel_scale == pytest.approx(5.16, abs=0.05)
                    assert row.n_matched is not None and row.n_matched >= 10
                    assert row.ra_center is not None and abs(row.ra_center - 31.2) < 0.5
            runs = session.scalars(select(StepRun).where(StepRun.step == "solve")).all()
            assert sorted(r.status for r in runs) == ["failed"] + ["ok"] * 5
        # the WCS is in the calibrated files, with SIP, and puts HAT-P-32 on the star
        for i, path in enumerate(paths):
            header = fits.getheader(path)
            if i == 2:
                assert "CTYPE1" not in header
                continue
            assert header["CTYPE1"] == "RA---TAN-SIP" and header["NPWCS"] is True
            assert any("nightpipe solve" in str(h) for h in header["HISTORY"])
            frame = read_frame_for_solving(path)
            x, y = read_wcs(path).all_world2pix([HATP32], 0)[0]
            box = frame.data[int(y) - 5 : int(y) + 6, int(x) - 5 : int(x) + 6]
            cy, cx = np.unravel_index(np.argmax(box), box.shape)
            assert np.hypot(int(x) - 5 + cx - x, int(y) - 5 + cy - y) < 1.5  # peak pixel of the star
            with fits.open(path) as hdul:
                assert [h.name for h in hdul] == ["PRIMARY", "UNCERT", "MASK"]
        assert [hashlib.sha1(r.read_bytes()).hexdigest() for r in raws] == raw_bytes  # raw untouched
        assert summary.plot is not None and Path(summary.plot).is_file()
        # a second run skips what is done; --force redoes it (and does not trust its own WCS)
        again = run_solve(settings, db, night=NIGHT)
        assert again.skipped == 5 and again.solved == 0 and again.failed == 1
        forced = run_solve(settings, db, night=NIGHT, force=True, plot=False)
        assert forced.methods == {"solve-field": 1, "reference-match": 4}
    finally:
        db.dispose()


def test_solve_files_writes_copies_and_never_touches_inputs(tmp_path: Path, shared_data: Path) -> None:
    raws = _raw_files(shared_data, 3)
    before = [r.stat().st_mtime_ns for r in raws]
    junk = tmp_path / "not a fits.fits"
    junk.write_text("hello")
    settings = _settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    summary = solve_files(settings, [*raws, junk], outdir=tmp_path / "solved", plot=False)
    assert summary.solved == 3 and summary.failed == 1
    assert "not a readable FITS file" in (summary.outcomes[-1].reason or "")
    for raw in raws:
        out = tmp_path / "solved" / f"{raw.stem}.fits"
        with fits.open(out) as solved, fits.open(raw) as original:
            assert np.array_equal(solved[0].data, original[0].data)
            assert solved[0].header["OBJECT"] == original[0].header["OBJECT"]
            assert "CTYPE1" not in original[0].header
        assert read_wcs(out).has_celestial
    assert [r.stat().st_mtime_ns for r in raws] == before


def test_header_wcs_files_are_validated_not_resolved(tmp_path: Path, shared_data: Path) -> None:
    dss = shared_data / "wasp12-dss" / "wasp_12.B.060.fits"
    settings = _settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    summary = solve_files(settings, [dss], outdir=tmp_path / "solved", plot=False)
    assert summary.methods == {"header": 1}
    header = fits.getheader(tmp_path / "solved" / "wasp_12.B.060.fits")
    assert header["NPWMETH"] == "header" and header["CRVAL1"] == 97.63667


def test_strip_wcs_removes_every_wcs_keyword() -> None:
    header = fits.Header(
        {"CTYPE1": "RA---TAN-SIP", "A_ORDER": 2, "A_0_2": 1e-6, "CD1_1": 1.0, "OBJECT": "x", "NPWCS": True}
    )
    strip_wcs(header)
    assert list(header.keys()) == ["OBJECT"]


@pytest.mark.slow
def test_cli_solve_files(tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raws = _raw_files(shared_data, 2)
    code = main(["-q", "--set", f"paths.output={tmp_path}", "solve", "--json", "--no-plot", *map(str, raws)])
    assert code == 0
    out = capsys.readouterr().out
    assert '"method": "solve-field"' in out and '"method": "reference-match"' in out
    assert (tmp_path / "solved" / f"{raws[0].stem}.fits").is_file()
    assert main(["solve", str(tmp_path / "missing.fits")]) == 2  # a usage error


@pytest.mark.slow
def test_cli_solve_database_night(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    _populate(url, tmp_path, _raw_files(shared_data, 2), blank_index=None)
    args = ["-q", "--set", f"database.url={url}", "--set", f"paths.output={tmp_path / 'out'}"]
    assert main([*args, "solve", "--night", NIGHT, "--no-plot"]) == 0
    assert "2 solved (1 by reference-match, 1 by solve-field), 0 failed" in capsys.readouterr().out
    assert main([*args, "solve", "--night", NIGHT]) == 0
    assert "0 solved (none), 0 failed, 2 already solved" in capsys.readouterr().out
