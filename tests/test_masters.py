"""The master library: file names, rows, and matching masters to frames (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from astropy.stats import mad_std
from sqlalchemy import select

from nightpipe.calib.library import (
    MasterKeys,
    existing_master,
    find_master,
    list_masters,
    master_filename,
    match_master,
    register_master,
)
from nightpipe.calib.masters import central_region, flat_problem, group_frames, run_masters
from nightpipe.config import Settings, validate_settings
from nightpipe.frames.flags import PixelFlag
from nightpipe.store import open_database
from nightpipe.store.models import Frame, Master, StepRun

T0 = datetime(2024, 3, 10, 4, 0, tzinfo=UTC)


def _keys(kind: str, days: float = 0.0, **kw: Any) -> MasterKeys:
    base: dict[str, Any] = {
        "kind": kind,
        "xbin": 1,
        "ybin": 1,
        "naxis1": 100,
        "naxis2": 80,
        "gain": 1.5,
        "offset": 10.0,
        "readout_mode": "High",
        "ccd_temp": -10.0,
        "obs_time": T0 + timedelta(days=days),
    }
    base.update(kw)
    return MasterKeys(**base)


def _add(session: Any, keys: MasterKeys, name: str, **kw: Any) -> int:
    row = register_master(
        session,
        path=f"/lib/{name}.fits",
        keys=keys,
        nframes=5,
        inputs=["a.fits"],
        inputs_hash=name,
        settings_hash="s",
        software="nightpipe test",
        quality={},
        **kw,
    )
    return row.id


def _frame(**kw: Any) -> Frame:
    base: dict[str, Any] = {
        "path": "/night/light.fits",
        "kind": "light",
        "xbin": 1,
        "ybin": 1,
        "naxis1": 100,
        "naxis2": 80,
        "gain": 1.5,
        "offset": 10.0,
        "readout_mode": "High",
        "ccd_temp": -9.0,
        "exptime": 60.0,
        "filter": "R",
        "mid_utc": T0 + timedelta(days=1),
    }
    base.update(kw)
    return Frame(**base)


def _settings(**cal: Any) -> Settings:
    return validate_settings({"calibration": cal})


def test_master_filename_is_readable() -> None:
    when = datetime(2017, 12, 20, 3, 0, tzinfo=UTC)
    assert master_filename("bias", xbin=1, ybin=1, gain=1.0, obs_time=when) == "bias_1x1_g1.0_20171220.fits"
    assert (
        master_filename("flat", xbin=2, ybin=2, gain=1.35, obs_time=when, filter="Sloan r'")
        == "flat_2x2_g1.35_Sloan-r_20171220.fits"
    )
    assert (
        master_filename("dark", xbin=3, ybin=3, gain=None, obs_time=when, exptime=5.0, ccd_temp=-4.4)
        == "dark_3x3_5s_-4C_20171220.fits"
    )


def test_matching_rules(db_url: str) -> None:
    db = open_database(db_url)
    try:
        with db.session() as s:
            near = _add(s, _keys("bias", 0.5), "bias_near")
            _add(s, _keys("bias", -3), "bias_old")
            _add(s, _keys("bias", 0.9, xbin=2, ybin=2), "bias_2x2")
            _add(s, _keys("bias", 1.0, gain=2.0), "bias_gain")
            _add(s, _keys("bias", 1.0, readout_mode="Low"), "bias_mode")
            _add(s, _keys("bias", 1.0, naxis1=200), "bias_size")
            warm = _add(s, _keys("dark", 1.0, exptime=60.0, ccd_temp=0.0), "dark_warm")
            d60 = _add(s, _keys("dark", -2.0, exptime=60.0), "dark_60")
            d30 = _add(s, _keys("dark", 1.0, exptime=30.0), "dark_30")
            _add(s, _keys("dark", 1.0, exptime=120.0), "dark_120_with_bias", bias_included=True)
            fr = _add(s, _keys("flat", 2.0, filter="r"), "flat_r")
            _add(s, _keys("flat", 1.0, filter="V"), "flat_v")
        settings = _settings()
        with db.session() as s:
            frame = _frame()
            bias = find_master(s, frame, "bias", settings)
            assert bias is not None and bias.id == near  # nearest in time among matching keys
            dark = find_master(s, frame, "dark", settings)
            assert dark is not None and dark.id == d60  # same exposure beats nearer 30 s dark
            assert find_master(s, _frame(ccd_temp=0.5), "dark", settings).id == warm  # type: ignore[union-attr]
            scaled = match_master(s, _frame(exptime=45.0), "dark", settings)
            assert scaled.master is not None and scaled.master.id == d30 and scaled.scaled
            no_scaling = match_master(s, _frame(exptime=45.0), "dark", _settings(dark_scaling=False))
            assert no_scaling.master is None and "45" in str(no_scaling.reason)
            flat = find_master(s, frame, "flat", settings)
            assert flat is not None and flat.id == fr  # filter matched case-insensitively
            assert find_master(s, _frame(filter="B"), "flat", settings) is None
            # temperature tolerance: -10 C masters do not serve a -5 C frame
            cold = match_master(s, _frame(ccd_temp=-5.0), "bias", settings)
            assert cold.master is None and "C" in str(cold.reason)
            assert (
                find_master(s, _frame(ccd_temp=-5.0), "bias", _settings(temperature_tolerance=6)) is not None
            )
            # binning, size, gain, readout mode must match
            assert find_master(s, _frame(xbin=3, ybin=3), "bias", settings) is None
            assert find_master(s, _frame(gain=1.2), "bias", settings) is None
            assert find_master(s, _frame(readout_mode="Other"), "bias", settings) is None
            assert find_master(s, _frame(naxis1=200), "bias", settings).path.endswith("bias_size.fits")  # type: ignore[union-attr]
    finally:
        db.dispose()


def test_a_cmos_gain_setting_is_a_matching_key(db_url: str) -> None:
    """N.I.N.A. frames without EGAIN have no e-/ADU: the GAIN setting still keeps the masters apart."""
    db = open_database(db_url)
    try:
        with db.session() as s:
            at_100 = _add(s, _keys("dark", 1.0, gain=None, gain_setting=100.0, exptime=60.0), "dark_gs100")
            _add(s, _keys("dark", 1.0, gain=None, gain_setting=200.0, exptime=60.0), "dark_gs200")
        with db.session() as s:
            settings = _settings()
            chosen = find_master(s, _frame(gain=None, gain_setting=100.0), "dark", settings)
            assert chosen is not None and chosen.id == at_100 and chosen.gain_setting == 100.0
            none = match_master(s, _frame(gain=None, gain_setting=0.0), "dark", settings)
            assert none.master is None and "gain setting 0" in str(none.reason)
            assert find_master(s, _frame(gain=None), "dark", settings) is None
    finally:
        db.dispose()
    keys = _keys("dark", gain=None, gain_setting=100.0, exptime=60.0)
    assert keys.filename() == "dark_1x1_gs100_High_60s_-10C_20240310.fits"


def test_max_age_and_earlier_nights_fallback(db_url: str) -> None:
    db = open_database(db_url)
    try:
        with db.session() as s:
            older = _add(s, _keys("bias", -20), "b20")
            newer = _add(s, _keys("bias", -5), "b5")
            later = _add(s, _keys("bias", 30), "later")
        with db.session() as s:
            # a night without its own biases uses the newest earlier master
            frame = _frame(mid_utc=T0)
            assert find_master(s, frame, "bias", _settings()).id == newer  # type: ignore[union-attr]
            # equal distance: the earlier master wins
            assert find_master(s, _frame(mid_utc=T0 + timedelta(days=12.5)), "bias", _settings()).id == newer  # type: ignore[union-attr]
            assert find_master(s, _frame(mid_utc=T0 + timedelta(days=40)), "bias", _settings()).id == later  # type: ignore[union-attr]
            too_old = match_master(s, _frame(mid_utc=T0 + timedelta(days=200)), "bias", _settings())
            assert too_old.master is None and "days" in str(too_old.reason)
            assert find_master(s, _frame(mid_utc=T0), "bias", _settings(max_master_age_days=3)) is None
            # invalid masters are never used
            row = find_master(s, frame, "bias", _settings())
            assert row is not None
            row.valid = False
            s.flush()
            assert find_master(s, frame, "bias", _settings()).id == older  # type: ignore[union-attr]
            assert [m.id for m in list_masters(s, "bias")] == [later, older]
            assert existing_master(s, "bias", "b20", "s").id == older  # type: ignore[union-attr]
            assert existing_master(s, "bias", "b20", "other") is None
    finally:
        db.dispose()


@pytest.mark.parametrize("kind", ["bias", "dark", "flat"])
def test_empty_library_finds_nothing(tmp_path: Any, kind: str) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'x.sqlite'}")
    try:
        with db.session() as s:
            outcome = match_master(s, _frame(), kind, _settings())
            assert outcome.master is None and kind in str(outcome.reason)
    finally:
        db.dispose()


# =========================================================================== building masters

NY, NX = 64, 80  # trimmed science area
OVERSCAN = 8  # columns of overscan at the right
BIAS_LEVEL = 1000.0
READ_NOISE = 8.0  # ADU
DARK_RATE = 0.4  # ADU/s
DARK_EXP = 100.0
NIGHT_T = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)


def _truth(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:NY, 0:NX]
    r2 = ((yy - NY / 2) / NY) ** 2 + ((xx - NX / 2) / NX) ** 2
    flat = (1.0 - 0.6 * r2) * rng.normal(1.0, 0.01, (NY, NX))  # vignetting + pixel response
    flat[10, 20] = 0.0  # dead pixel
    pattern = rng.normal(0.0, 3.0, (NY, NX))  # fixed bias pattern
    hot = np.zeros((NY, NX), bool)
    hot[5, 7] = hot[40, 60] = True
    return {"flat": flat, "pattern": pattern, "hot": hot}


def _raw(
    rng: np.random.Generator, truth: dict[str, np.ndarray], *, exptime: float, light: float, overscan: float
) -> np.ndarray:
    """One raw frame with an overscan strip: bias + pattern + dark + light x flat + noise."""
    image = BIAS_LEVEL + overscan + truth["pattern"]
    dark = DARK_RATE * exptime + np.where(truth["hot"], 50.0 * exptime, 0.0)
    signal = dark + light * truth["flat"]
    image = image + rng.poisson(np.maximum(signal, 0)) + rng.normal(0, READ_NOISE, (NY, NX))
    strip = BIAS_LEVEL + overscan + rng.normal(0, READ_NOISE, (NY, OVERSCAN))
    return np.clip(np.hstack([image, strip]), 0, 65535).astype(np.uint16)


def _write_raw(path: Path, data: np.ndarray, kind: str, exptime: float, filt: str | None) -> None:
    header = fits.Header()
    header["IMAGETYP"] = kind
    header["EXPTIME"] = exptime
    header["BIASSEC"] = f"[{NX + 1}:{NX + OVERSCAN},1:{NY}]"
    header["TRIMSEC"] = f"[1:{NX},1:{NY}]"
    if filt:
        header["FILTER"] = filt
    fits.PrimaryHDU(data, header=header).writeto(path)


def _make_night(
    root: Path, *, seed: int = 0, bad_flat: bool = True
) -> tuple[list[Frame], dict[str, np.ndarray]]:
    truth = _truth(seed)
    rng = np.random.default_rng(seed + 1)
    root.mkdir(parents=True, exist_ok=True)
    frames: list[Frame] = []
    plan = [("bias", 0.0, 0.0, None)] * 9 + [("dark", DARK_EXP, 0.0, None)] * 7
    plan += [("flat", 2.0, level, "V") for level in (20000.0, 14000.0, 9000.0, 6000.0, 4000.0, 3000.0)]
    for i, (kind, exptime, light, filt) in enumerate(plan):
        data = _raw(rng, truth, exptime=exptime, light=light, overscan=float(rng.normal(0, 20)))
        path = root / f"{kind} {i:02d}.fits"
        _write_raw(path, data, kind, exptime, filt)
        frames.append(_frame_row(path, kind, exptime, filt, NIGHT_T + timedelta(minutes=i)))
    if bad_flat:
        data = _raw(rng, truth, exptime=2.0, light=5000.0, overscan=0.0)
        data[20:40, 30:50] = 0  # a dead zone: bias-subtracted it is strongly negative
        path = root / "flat bad.fits"
        _write_raw(path, data, "flat", 2.0, "V")
        frames.append(_frame_row(path, "flat", 2.0, "V", NIGHT_T + timedelta(minutes=30)))
    return frames, truth


def _frame_row(path: Path, kind: str, exptime: float, filt: str | None, when: datetime) -> Frame:
    stat = path.stat()
    return Frame(
        path=str(path),
        hdu=0,
        size=stat.st_size,
        mtime=stat.st_mtime,
        sha1=hashlib.sha1(path.read_bytes()).hexdigest(),
        status="ok",
        kind=kind,
        filter=filt,
        exptime=exptime,
        xbin=1,
        ybin=1,
        gain=1.0,
        naxis1=NX + OVERSCAN,
        naxis2=NY,
        ccd_temp=-10.0,
        mid_utc=when,
        night="2024-04-30",
    )


def _night_settings(tmp_path: Path, db_url: str, **cal: Any) -> Settings:
    return validate_settings(
        {
            "paths": {"output": str(tmp_path / "out"), "masters": str(tmp_path / "out" / "masters")},
            "database": {"url": db_url},
            "calibration": cal,
        }
    )


def _digests(paths: list[Path]) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def test_masters_recover_the_truth_of_a_synthetic_night(tmp_path: Path, db_url: str) -> None:
    frames, truth = _make_night(tmp_path / "raw night")
    raw_paths = [Path(f.path) for f in frames]
    before = _digests(raw_paths)
    settings = _night_settings(tmp_path, db_url)
    db = open_database(db_url)
    try:
        with db.session() as s:
            s.add_all(frames)
        summary = run_masters(settings, db, plots=True)
        assert not summary.failed, summary.failed
        assert len(summary.bad_frames) == 1 and "flat bad.fits" in summary.bad_frames[0][1]
        assert "zero or negative region" in summary.bad_frames[0][1]
        with db.session() as s:
            rows = {m.kind: m for m in s.scalars(select(Master))}
            failed = s.scalars(select(StepRun).where(StepRun.status == "failed")).all()
            assert [Path(str(r.reason).split(":")[0]).name for r in failed] == ["flat bad.fits"]
            ok = s.scalars(select(StepRun).where(StepRun.status == "ok")).all()
            assert len(ok) == 9 + 7 + 6
        assert set(rows) == {"bias", "dark", "flat", "badpix"}

        # --- bias: level, fixed pattern and read noise within their statistical errors
        bias = rows["bias"]
        with fits.open(bias.path) as hdul:
            assert (
                hdul[0].data.dtype.kind == "f"
                and hdul[0].header["BITPIX"] == -32
                and hdul[0].data.shape == (NY, NX)
            )
            assert hdul["UNCERT"].header["BITPIX"] == -32 and hdul["MASK"].data.dtype.kind == "u"
            assert hdul[0].header["NCOMBINE"] == 9 and hdul[0].header["NPINHASH"] == bias.inputs_hash
            assert any("overscan median subtracted" in str(h) for h in hdul[0].header["HISTORY"])
            master_bias = hdul[0].data.astype(np.float64)
            bias_err = hdul["UNCERT"].data
        # overscan subtracted: what is left is the fixed pattern
        resid = master_bias - truth["pattern"]
        sem = READ_NOISE * np.sqrt(np.pi / 2) / np.sqrt(9)
        assert abs(resid.mean()) < 5 * sem / np.sqrt(resid.size) + 0.5  # overscan medians: ~0.3 ADU
        assert resid.std() == pytest.approx(sem, rel=0.15)
        assert float(np.median(bias_err)) == pytest.approx(sem, rel=0.15)
        # each row's overscan median (of OVERSCAN pixels) adds its own noise to a corrected frame
        corrected_noise = READ_NOISE * np.sqrt(1 + np.pi / 2 / OVERSCAN)
        # (frame_noise, from the MAD-based error plane, is biased low by integer ADU values)
        assert 0.8 * corrected_noise < bias.quality["frame_noise"] < 1.1 * corrected_noise
        assert bias.quality["pair_noise"] == pytest.approx(corrected_noise, rel=0.06)
        assert bias.nframes == 9 and not bias.bias_included

        # --- dark: bias-subtracted, dark current and hot pixels recovered
        dark = rows["dark"]
        assert not dark.bias_included and dark.exptime == DARK_EXP
        expected_rate_err = np.sqrt(DARK_RATE * DARK_EXP + 2 * READ_NOISE**2) / np.sqrt(7) / DARK_EXP
        assert dark.quality["dark_current"] == pytest.approx(DARK_RATE, abs=5 * expected_rate_err)
        with fits.open(dark.path) as hdul:
            hot = (hdul["MASK"].data & PixelFlag.HOT) > 0
        np.testing.assert_array_equal(hot, truth["hot"])

        # --- flat: the shape, after normalising twilight flats of different levels
        flat = rows["flat"]
        assert flat.filter == "V" and flat.nframes == 6
        with fits.open(flat.path) as hdul:
            master_flat = hdul[0].data.astype(np.float64)
            flat_mask = hdul["MASK"].data
        shape = truth["flat"] / np.median(truth["flat"][central_region((NY, NX), 0.5)])
        good = shape > 0.1
        ratio = master_flat[good] / shape[good]
        assert np.median(ratio) == pytest.approx(1.0, abs=0.003)
        # the scatter of the ratio is the photon + read noise of the combined flats
        assert ratio.std() < 0.012
        assert flat_mask[10, 20] & PixelFlag.DEAD
        assert flat.quality["illumination_min"] < 0.95 < flat.quality["illumination_max"] <= 1.05

        badpix = rows["badpix"]
        with fits.open(badpix.path) as hdul:
            bp = hdul[0].data
        assert bp.dtype.kind == "u" and bp[5, 7] & PixelFlag.HOT and bp[10, 20] & PixelFlag.DEAD
        # every master loads as an astropy CCDData: data, unit, uncertainty and mask
        from astropy.nddata import CCDData, StdDevUncertainty

        for kind, unit in (("bias", "adu"), ("dark", "adu"), ("flat", ""), ("badpix", "")):
            ccd = CCDData.read(rows[kind].path)
            assert ccd.unit.to_string() == unit and ccd.shape == (NY, NX)
            if kind != "badpix":
                assert isinstance(ccd.uncertainty, StdDevUncertainty) and ccd.mask is not None
        plots = list((tmp_path / "out" / "plots").rglob("*.png"))
        assert len(plots) == 3

        # --- the raw files are untouched, and a rebuild with the same inputs is skipped
        assert _digests(raw_paths) == before
        again = run_masters(settings, db)
        assert not again.built and len(again.skipped) == 3
        changed = run_masters(_night_settings(tmp_path, db_url, sigma_low=4.0, sigma_high=4.0), db)
        assert len(changed.built) == 4  # new settings: everything again (3 masters + bad pixels)
    finally:
        db.dispose()


def test_dark_without_bias_is_bias_included(tmp_path: Path) -> None:
    frames, _ = _make_night(tmp_path / "raw", bad_flat=False)
    darks = [f for f in frames if f.kind == "dark"]
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    db = open_database(url)
    try:
        with db.session() as s:
            s.add_all(darks)
        summary = run_masters(_night_settings(tmp_path, url, overscan="none"), db)
        assert len(summary.built) == 2
        with db.session() as s:
            dark = s.scalars(select(Master).where(Master.kind == "dark")).one()
            assert dark.bias_included
            assert dark.quality["level"] == pytest.approx(BIAS_LEVEL + DARK_RATE * DARK_EXP, abs=15)
            # a bias-included dark is never scaled to another exposure
            frame = _frame(
                exptime=30.0,
                naxis1=NX + OVERSCAN,
                naxis2=NY,
                gain=1.0,
                offset=None,
                readout_mode=None,
                ccd_temp=-10.0,
                mid_utc=NIGHT_T,
            )
            assert find_master(s, frame, "dark", _settings()) is None
            same = _frame(
                exptime=DARK_EXP,
                naxis1=NX + OVERSCAN,
                naxis2=NY,
                gain=1.0,
                offset=None,
                readout_mode=None,
                ccd_temp=-10.0,
                mid_utc=NIGHT_T,
            )
            assert find_master(s, same, "dark", _settings()) is not None
    finally:
        db.dispose()


def test_grouping_splits_by_keys_and_temperature(tmp_path: Path) -> None:
    def f(kind: str, **kw: Any) -> Frame:
        base: dict[str, Any] = {
            "path": f"/x/{kind}{len(kw)}",
            "hdu": 0,
            "kind": kind,
            "xbin": 1,
            "ybin": 1,
            "naxis1": 10,
            "naxis2": 10,
            "gain": 1.0,
            "exptime": 1.0,
            "ccd_temp": -10.0,
            "night": "2024-01-01",
            "filter": None,
        }
        base.update(kw)
        return Frame(**base)

    frames = [
        f("bias"),
        f("bias", ccd_temp=-9.0),
        f("bias", ccd_temp=-2.0),
        f("bias", xbin=2, ybin=2),
        f("dark", exptime=30.0),
        f("dark", exptime=30.0001),
        f("dark", exptime=60.0),
        f("flat", filter="R"),
        f("flat", filter="r "),
        f("flat", filter="V"),
        f("light"),
        f("bias", night="2024-01-02"),
        f("bias", gain=None, gain_setting=100.0),
    ]
    groups = group_frames(frames, _settings())
    sizes = sorted((g.kind, len(g.frames)) for g in groups)
    assert sizes == [
        ("bias", 1),
        ("bias", 1),
        ("bias", 1),
        ("bias", 1),
        ("bias", 2),
        ("dark", 1),
        ("dark", 2),
        ("flat", 1),
        ("flat", 2),
    ]
    assert {g.keys.gain_setting for g in groups} == {None, 100.0}


def test_flat_problem_and_central_region() -> None:
    image = np.full((64, 64), 100.0)
    assert flat_problem(image) is None
    image[16:24, 32:39] = -1.0  # 56 of 64 pixels of one cell
    problem = flat_problem(image)
    assert problem is not None and "x=33..40, y=17..24" in problem
    image[16:24, 32:39] = 100.0
    image[::3, ::3] = 0.0  # scattered zeros are dead pixels, not a region
    assert flat_problem(image) is None
    assert flat_problem(np.full((4, 4), np.nan)) == "has no finite pixel"
    assert central_region((10, 10), 0.01) == (slice(4, 5), slice(4, 5))


def test_real_feder_bias_and_dark_agree_with_ccdproc(shared_data: Path, tmp_path: Path) -> None:
    ccdproc = pytest.importorskip("ccdproc")
    from astropy.nddata import CCDData

    folder = shared_data / "feder-apogee"
    biases = sorted(folder.glob("biastest*.fit"))
    darks = sorted(folder.glob("darktest*.fit"))
    assert len(biases) == 5 and len(darks) == 5
    rows = []
    for i, path in enumerate(biases + darks):
        header = fits.getheader(path)
        kind = "bias" if path in biases else "dark"
        row = _frame_row(path, kind, float(header["EXPTIME"]), None, NIGHT_T + timedelta(minutes=i))
        row.naxis1, row.naxis2 = int(header["NAXIS1"]), int(header["NAXIS2"])
        row.ccd_temp = None
        rows.append(row)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    db = open_database(url)
    # ccdproc.combine(sigma_clip=True) clips once: compare with one iteration
    settings = _night_settings(tmp_path, url, max_iters=1)
    try:
        with db.session() as s:
            s.add_all(rows)
        summary = run_masters(settings, db)
        assert not summary.failed and len(summary.built) == 3
        with db.session() as s:
            got = {m.kind: m for m in s.scalars(select(Master))}
        ours_bias = fits.getdata(got["bias"].path)
        ours_dark = fits.getdata(got["dark"].path)
    finally:
        db.dispose()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer_bias = ccdproc.combine(
            [CCDData.read(p, unit="adu") for p in biases],
            method="median",
            sigma_clip=True,
            sigma_clip_func=np.ma.median,
            sigma_clip_dev_func=mad_std,
        )
        peer_dark = ccdproc.combine(
            [ccdproc.subtract_bias(CCDData.read(p, unit="adu"), peer_bias) for p in darks],
            method="median",
            sigma_clip=True,
            sigma_clip_func=np.ma.median,
            sigma_clip_dev_func=mad_std,
        )
    np.testing.assert_allclose(ours_bias, peer_bias.data, rtol=1e-6)
    np.testing.assert_allclose(ours_dark, peer_dark.data, atol=1e-2)
    assert got["bias"].quality["level"] == pytest.approx(float(np.median(peer_bias.data)))
    assert got["dark"].quality["rejected_fraction"] >= 0.0 and got["dark"].nframes == 5


@pytest.mark.slow
def test_simulated_night_masters_recover_the_generator_truth(tmp_path: Path) -> None:
    """On the synthetic night of nightpipe.simulate: bias level, read noise, dark current, flat shape."""
    simulate = pytest.importorskip("nightpipe.simulate")
    inventory = pytest.importorskip("nightpipe.inventory")
    from dataclasses import replace

    from nightpipe.simulate.flats import Dust, dust_map, vignetting_map

    opts = simulate.SimOptions()
    opts = replace(
        opts,
        camera=replace(opts.camera, size=128, overscan=16),
        calibration=replace(opts.calibration, n_bias=12, n_dark=6, n_flat=8),
        site=replace(opts.site, n_lights=1),
    )
    truth = simulate.simulate_night(tmp_path / "raw", opts)
    cam = truth.camera
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    # no overscan subtraction: the master bias keeps the bias level of the truth
    settings = _night_settings(tmp_path, url, overscan="none")
    db = open_database(url)
    try:
        inventory.scan_paths([tmp_path / "raw"], settings, db)
        summary = run_masters(settings, db)
        assert not summary.failed and not summary.bad_frames
        with db.session() as s:
            rows = list(s.scalars(select(Master)))
    finally:
        db.dispose()
    bias = next(m for m in rows if m.kind == "bias")
    biases = truth.frames_of("bias")
    level = float(np.mean([f["bias_mean_adu"] for f in biases]))
    # the frames' bias levels drift (bias_drift_rms): the master is their mean, within that error
    drift = float(cam["bias_drift_rms"]) / np.sqrt(len(biases))
    master_bias = fits.getdata(bias.path)
    assert float(np.mean(master_bias)) == pytest.approx(level, abs=4 * drift + 0.1)
    assert bias.quality["pair_noise"] == pytest.approx(cam["read_noise_adu"], rel=0.06)

    darks = [m for m in rows if m.kind == "dark"]
    assert sorted(m.exptime for m in darks) == sorted(set(opts.calibration.dark_exptimes))
    rate = cam["dark"]["mean_e_per_s_without_hot"] / cam["gain"]  # ADU/s at the reference temperature
    for dark in darks:
        assert not dark.bias_included
        data = fits.getdata(dark.path).astype(np.float64)
        mask = fits.getdata(dark.path, "MASK")
        # truth: dark signal (temperature-scaled per frame) + the frame's bias drift from the biases
        frames = [f for f in truth.frames_of("dark") if f["exptime"] == dark.exptime]
        expected = float(
            np.mean([rate * f["exptime"] * f["dark_scale"] + f["bias_mean_adu"] - level for f in frames])
        )
        assert float(np.mean(data[mask == 0])) == pytest.approx(expected, abs=0.05 * expected + 0.2)
        hot = {tuple(p) for p in np.argwhere(mask & PixelFlag.HOT).tolist()}
        assert {tuple(p) for p in cam["hot_pixels"]} <= hot

    flat = next(m for m in rows if m.kind == "flat")
    data = fits.getdata(flat.path).astype(np.float64)
    mask = fits.getdata(flat.path, "MASK")
    model = vignetting_map(
        data.shape, truth.flat["vignetting_corner_loss"], tuple(truth.flat["vignetting_centre"])
    ) * dust_map(data.shape, [Dust(**d) for d in truth.flat["dust"]], "V")
    ratio = data / model
    good = mask == 0
    ratio /= np.median(ratio[good])
    assert np.all(mask[:, cam["dead_column"]][cam["dead_column_rows"][0] : cam["dead_column_rows"][1]])
    # pixel scatter: PRNU plus the photon noise of the combined flats
    assert float(np.std(ratio[good])) < 1.5 * cam.get("prnu", opts.camera.prnu) + 0.005
    cells = np.where(good, ratio, np.nan)[:128, :128].reshape(16, 8, 16, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        block = np.nanmean(cells, axis=(1, 3))
    # the large-scale shape (vignetting and dust) is recovered to better than 1 %
    assert np.nanmax(np.abs(block - 1.0)) < 0.01


def test_cli_builds_and_lists_the_library(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nightpipe.cli.app import main

    frames, _ = _make_night(tmp_path / "raw", bad_flat=False)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    db = open_database(url)
    try:
        with db.session() as s:
            s.add_all([f for f in frames if f.kind == "bias"])
    finally:
        db.dispose()
    flags = [
        "-q",
        "--set",
        f"database.url={url}",
        "--set",
        f"paths.masters={tmp_path / 'lib'}",
        "--set",
        f"paths.output={tmp_path / 'out'}",
    ]
    assert main([*flags, "masters", "--no-plots"]) == 0
    assert "1 built" in capsys.readouterr().out
    assert main([*flags, "masters"]) == 0
    assert "1 unchanged" in capsys.readouterr().out
    assert main([*flags, "masters", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "bias_1x1_g1.0_20240501.fits" in listed and "master library (1)" in listed
    empty = [*flags[:-4], "--set", f"database.url=sqlite:///{tmp_path / 'empty.sqlite'}"]
    assert main([*empty, "masters", "--night", "2024-04-30"]) == 2  # nothing to do: an input is missing
    assert "no calibration frames" in capsys.readouterr().err


def test_bad_frames_are_left_out_and_recorded(tmp_path: Path) -> None:
    frames, _ = _make_night(tmp_path / "raw", bad_flat=False)
    biases = [f for f in frames if f.kind == "bias"]
    truncated = Path(biases[0].path)
    truncated.write_bytes(truncated.read_bytes()[:4000])
    Path(biases[1].path).unlink()
    Path(biases[2].path).write_text("SIMPLE  = not really\n")
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    db = open_database(url)
    try:
        with db.session() as s:
            s.add_all(biases)
        summary = run_masters(_night_settings(tmp_path, url), db)
        assert len(summary.built) == 1 and not summary.failed
        assert len(summary.bad_frames) == 3
        with db.session() as s:
            master = s.scalars(select(Master)).one()
            assert master.nframes == len(biases) - 3 and master.quality["bad_inputs"] == 3
            failed = s.scalars(select(StepRun).where(StepRun.status == "failed")).all()
            reasons = sorted(str(r.reason) for r in failed)
        assert len(reasons) == 3
        assert any("truncated" in r for r in reasons) and any("not found" in r for r in reasons)
        assert all("bias 0" in r or "bias 1" in r or "bias 2" in r for r in reasons)
    finally:
        db.dispose()


def test_saturated_flat_pixels_are_ignored(tmp_path: Path) -> None:
    frames, truth = _make_night(tmp_path / "raw", bad_flat=False)
    flats = [f for f in frames if f.kind == "flat"]
    # saturate one pixel in half of the flats: the others still give its response
    for f in flats[:3]:
        with fits.open(f.path) as hdul:
            data = hdul[0].data.copy()
            header = hdul[0].header.copy()
        data[30, 30] = 65535
        Path(f.path).unlink()
        fits.PrimaryHDU(data, header=header).writeto(f.path)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    db = open_database(url)
    try:
        with db.session() as s:
            s.add_all([f for f in frames if f.kind in ("bias", "flat")])
        run_masters(_night_settings(tmp_path, url), db)
        with db.session() as s:
            path = s.scalars(select(Master).where(Master.kind == "flat")).one().path
    finally:
        db.dispose()
    flat = fits.getdata(path)
    shape = truth["flat"] / np.median(truth["flat"][central_region((NY, NX), 0.5)])
    assert flat[30, 30] == pytest.approx(shape[30, 30], rel=0.02)
    good = shape > 0.1
    assert np.median(flat[good] / shape[good]) == pytest.approx(1.0, abs=0.005)
