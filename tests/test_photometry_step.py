"""The photometry step over calibrated frames, its database rows, the CLI and the plots."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from sqlalchemy import func, select

from nightpipe.config import load_settings
from nightpipe.frames.flags import PixelFlag
from nightpipe.photometry.step import run_photometry
from nightpipe.photometry.synthetic import make_star_field
from nightpipe.photometry.table import read_source_table
from nightpipe.progress import CountingProgress
from nightpipe.store import open_database
from nightpipe.store.models import Frame, StepRun
from nightpipe.store.models_photometry import Measurement, PhotometryFrame
from nightpipe.store.steps import record_step


def _calibrated(path: Path, seed: int, *, wcs: bool = False) -> tuple[Path, np.ndarray]:
    field = make_star_field((200, 240), 25, seed=seed, min_separation=15, gain=1.5)
    data = field.data  # a calibrated frame: bias and dark removed, the sky stays
    unc = np.sqrt(np.maximum(field.data, 0) / 1.5 + (8.0 / 1.5) ** 2).astype(np.float32)
    mask = np.zeros(data.shape, np.uint16)
    mask[5, 5] = PixelFlag.HOT
    header = fits.Header()
    header["BUNIT"] = "adu"
    header["GAIN"] = 1.5
    header["EXPTIME"] = 30.0
    if wcs:
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [31.04, 46.69]
        w.wcs.crpix = [120.5, 100.5]
        w.wcs.cdelt = [-1.0 / 3600, 1.0 / 3600]
        header.update(w.to_header())
    hdul = fits.HDUList(
        [
            fits.PrimaryHDU(data, header),
            fits.ImageHDU(unc, name="UNCERT"),
            fits.ImageHDU(mask, name="MASK"),
        ]
    )
    hdul.writeto(path)
    return path, np.column_stack([field.x, field.y])


def _setup(tmp_path: Path, db_url: str):
    settings = load_settings(
        None, overrides=[f'paths.output="{tmp_path / "out"}"', f'database.url="{db_url}"'], environ={}
    )
    db = open_database(db_url)
    calib = tmp_path / "calibrated"
    calib.mkdir()
    files = [
        _calibrated(calib / "frame one.fits", 1, wcs=True)[0],
        _calibrated(calib / "frame2.fits", 2)[0],
    ]
    bad = calib / "broken.fits"
    bad.write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    files.append(bad)
    with db.session() as session:
        for i, path in enumerate(files):
            frame = Frame(
                path=str(tmp_path / "raw" / path.name),
                size=1,
                mtime=0.0,
                kind="light",
                night="2017-12-19",
                exptime=30.0,
                mid_utc=datetime(2017, 12, 20, 3, i, tzinfo=UTC),
                jd_utc=2458107.6 + i / 1440,
                bjd_tdb=2458107.601 + i / 1440,
                ra=31.04,
                dec=46.69,
            )
            session.add(frame)
            session.flush()
            record_step(
                session,
                step="calibrate",
                status="ok",
                frame_id=frame.id,
                night="2017-12-19",
                output_path=str(path),
            )
    return settings, db, files


def test_run_photometry_writes_tables_and_rows(tmp_path: Path, db_url: str) -> None:
    settings, db, _files = _setup(tmp_path, db_url)
    progress = CountingProgress()
    summary = run_photometry(settings, db, night="2017-12-19", progress=progress)
    assert (summary.ok, summary.failed, summary.skipped) == (2, 1, 0)
    assert progress.done == 3
    assert "broken.fits" in next(iter(summary.failures.values()))
    table = read_source_table(tmp_path / "out" / "sources" / "2017-12-19" / "frame one.fits")
    assert len(table) >= 20
    assert np.isfinite(table["ra"]).all() and abs(float(np.median(table["ra"])) - 31.04) < 0.05
    assert table.meta["bjd_tdb"] == pytest.approx(2458107.601)
    assert table.meta["exptime"] == 30.0
    assert table.meta["airmass"] is not None and table.meta["airmass"] >= 1.0
    assert table.meta["fwhm_arcsec"] == pytest.approx(table.meta["fwhm_px"], rel=1e-3)
    other = read_source_table(tmp_path / "out" / "sources" / "2017-12-19" / "frame2.fits")
    assert np.all(np.isnan(other["ra"]))
    with db.session() as session:
        n_meas = session.scalar(select(func.count()).select_from(Measurement))
        assert n_meas == len(table) + len(other)
        rows = session.scalars(select(PhotometryFrame)).all()
        assert len(rows) == 2 and all(r.fwhm_px and 2.5 < r.fwhm_px < 3.5 for r in rows)
        m = session.scalars(select(Measurement).where(Measurement.ra.is_not(None))).first()
        assert m is not None and len(m.flux) == len(table.meta["aper_radii_px"])
        source = table[np.asarray(table["id"]) == m.source_index][0]
        assert m.flux == [float(v) if np.isfinite(v) else None for v in source["aper_flux"]]
        failed = session.scalars(
            select(StepRun).where(StepRun.step == "photometry", StepRun.status == "failed")
        ).all()
        assert len(failed) == 1 and "broken.fits" in (failed[0].reason or "")
    # unchanged frames are skipped; --force measures them again without duplicating rows
    again = run_photometry(settings, db, night="2017-12-19")
    assert (again.ok, again.skipped) == (0, 2)
    forced = run_photometry(settings, db, night="2017-12-19", force=True)
    assert forced.ok == 2
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Measurement)) == n_meas
    db.dispose()


def test_cli_photometry_on_one_file_and_plots(tmp_path: Path) -> None:
    from nightpipe.cli.app import main

    path, _xy = _calibrated(tmp_path / "one.fits", 3)
    out = tmp_path / "tables"
    code = main(["--quiet", "photometry", str(path), "--out", str(out), "--plots"])
    assert code == 0
    table = read_source_table(out / "one.fits")
    assert len(table) > 15
    for suffix in ("profile", "growth", "apertures"):
        png = out / "plots" / f"one_{suffix}.png"
        assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
    bad = tmp_path / "notfits.fits"
    bad.write_text("hello")
    assert main(["--quiet", "photometry", str(bad), "--out", str(out)]) == 1
