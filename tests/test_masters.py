"""The master library: file names, rows, and matching masters to frames (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nightpipe.calib.library import (
    MasterKeys,
    existing_master,
    find_master,
    list_masters,
    master_filename,
    match_master,
    register_master,
)
from nightpipe.config import Settings, validate_settings
from nightpipe.store import open_database
from nightpipe.store.models import Frame

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
