"""Frame times: every way headers give them, the HAT-P-32 night, BJD_TDB against EXOTIC."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from nightpipe.config import ObservatoryConfig, TargetConfig
from nightpipe.frames.headers import header_cards, normalize_header
from nightpipe.frames.timing import (
    barycentric_times,
    exposure_mid,
    match_target,
    night_of,
    parse_date,
    resolve_location,
    seconds_of_day,
)


def utc(*args: float) -> datetime:
    return datetime(*(int(a) for a in args), tzinfo=UTC)  # type: ignore[misc]


def test_parse_date_variants() -> None:
    assert parse_date("2012-02-06T11:45:25") is not None
    p = parse_date("2012-02-06T11:45:25")
    assert (
        p is not None
        and p.value == datetime(2012, 2, 6, 11, 45, 25)
        and p.has_time
        and p.offset_hours is None
    )
    p = parse_date("2014-05-30T15:54:44.041Z")
    assert p is not None and p.offset_hours == 0.0
    p = parse_date("2017-12-20T01:33:43.317-0000")
    assert p is not None and p.offset_hours == 0.0
    p = parse_date("2017-12-19T18:33:43.317+05:30")
    assert p is not None and p.offset_hours == 5.5
    p = parse_date("2013-07-13")
    assert p is not None and not p.has_time
    p = parse_date("15/04/88")
    assert p is not None and p.value == datetime(1988, 4, 15)
    assert parse_date("2013-02-30") is None
    assert parse_date("yesterday") is None
    assert parse_date(58107.065) is None


def test_seconds_of_day() -> None:
    assert seconds_of_day("08:49:30") == 8 * 3600 + 49 * 60 + 30
    assert seconds_of_day("00:42:29.7167") == pytest.approx(2549.7167)
    assert seconds_of_day(20.578056) == pytest.approx(20.578056 * 3600)
    assert seconds_of_day(81573, "TM_START") == 81573.0
    assert seconds_of_day("25:00:00") is None
    assert seconds_of_day("2017-12-20T01:33:43.317-0000") == pytest.approx(5623.317)


def test_exposure_mid_from_full_date_obs() -> None:
    t = exposure_mid({"DATE-OBS": "2012-02-06T03:04:58"}, 30.0)
    assert t is not None
    assert t.mid_utc == utc(2012, 2, 6, 3, 5, 13)
    assert t.source == "DATE-OBS start + EXPTIME/2"
    # MaxIm's JD (start of exposure) is checked against it
    t = exposure_mid({"DATE-OBS": "2013-03-11T03:35:20", "JD": 2456362.649537037}, 90.0)
    assert t is not None and t.source == "DATE-OBS start (JD to <1 s agree) + EXPTIME/2"
    t = exposure_mid({"DATE-OBS": "2013-03-11T03:35:20", "JD": 2456362.71}, 90.0)
    assert t is not None and t.source == "DATE-OBS start + EXPTIME/2"  # disagrees: logged, not used


def test_exposure_mid_date_plus_time_keywords() -> None:
    # SAAO: DATE-OBS date only + UT; MJD-OBS with no decimals is ignored
    t = exposure_mid({"DATE-OBS": "2013-07-13", "UT": "00:57:33", "MJD-OBS": 56486.0}, 150.04)
    assert t is not None and t.mid_utc == utc(2013, 7, 13, 0, 57, 33) + timedelta(seconds=75.02)
    assert t.source == "DATE-OBS + UT start + EXPTIME/2"
    # GMOS: UTSTART (exposure start) is preferred to UT/TIME-OBS (start of the observation)
    cards = {
        "DATE-OBS": "2019-08-08",
        "TIME-OBS": "00:42:27.4",
        "UT": "00:42:27.4",
        "UTSTART": "00:42:29.7167",
    }
    t = exposure_mid(cards, 90.0)
    assert t is not None and t.mid_utc == utc(2019, 8, 8, 0, 42, 29) + timedelta(seconds=0.7167 + 45)
    assert t.source.startswith("DATE-OBS + UTSTART")
    # DSS: old DD/MM/YY date + UT
    t = exposure_mid({"DATE-OBS": "15/04/88", "UT": "18:42:00.00"}, 0.0)
    assert t is not None and t.mid_utc == utc(1988, 4, 15, 18, 42, 0)


def test_exposure_mid_local_offset_and_setting() -> None:
    t = exposure_mid({"DATE-OBS": "2017-12-19T18:33:43.317-0700"}, 60.0)
    assert t is not None
    assert t.mid_utc == utc(2017, 12, 20, 1, 34, 13) + timedelta(microseconds=317000)
    assert t.local_offset_hours == -7.0
    assert "local" in t.source
    # a zone-less local DATE-OBS converted by observatory.utc_offset_hours
    t = exposure_mid({"DATE-OBS": "2017-12-19T18:33:43"}, 0.0, utc_offset_hours=-7.0)
    assert t is not None and t.mid_utc == utc(2017, 12, 20, 1, 33, 43)
    assert "utc_offset_hours" in t.source


def test_exposure_mid_mid_end_and_jd_keywords() -> None:
    t = exposure_mid({"DATE-OBS": "2011-07-01T20:34:42.071", "DATE-AVG": "2011-07-01T20:34:42.399"}, 1.0)
    assert t is not None and t.source == "DATE-AVG (mid-exposure)"
    assert t.mid_utc == utc(2011, 7, 1, 20, 34, 42) + timedelta(microseconds=399000)
    t = exposure_mid({"DATE-END": "2020-01-01T00:01:00"}, 60.0)
    assert t is not None and t.mid_utc == utc(2020, 1, 1, 0, 0, 30)
    # MJD-OBS with 3 decimals: used only when nothing better, with its precision
    t = exposure_mid({"MJD-OBS": 58107.065}, 60.0)
    assert t is not None and t.precision_s == pytest.approx(86.4)
    assert "3 decimals" in t.source
    assert abs((t.mid_utc - utc(2017, 12, 20, 1, 34, 13)).total_seconds()) < 86.4
    t = exposure_mid({"JD": 2456362.649537037}, 90.0)
    assert t is not None and abs((t.mid_utc - utc(2013, 3, 11, 3, 36, 5)).total_seconds()) < 0.01
    assert exposure_mid({"OBJECT": "x"}, 10.0) is None
    t = exposure_mid({"DATE-OBS": "2020-01-01T00:00:00"}, None)
    assert t is not None and "no exposure time" in t.source


def test_local_offset_keywords() -> None:
    from nightpipe.frames.timing import local_offset

    start = utc(2018, 6, 19, 3, 18, 50)
    assert local_offset({"LOCALTIM": "6/18/2018 11:18:50.600 PM DST"}, start) == -4.0
    assert local_offset({"LOCALTIM": "6/19/2018 03:18:50.600 AM DST"}, start) == 0.0  # Guilford: a UTC clock
    assert local_offset({"DATE-LOC": "2018-06-19T08:48:50.123"}, start) == 5.5
    assert local_offset({"DATE-LOC": "2018-06-22T08:48:50"}, start) is None
    assert local_offset({}, start) is None
    t = exposure_mid({"DATE-OBS": "2018-06-19T03:18:50", "DATE-LOC": "2018-06-18T20:18:50"}, 10.0)
    assert t is not None and t.local_offset_hours == -7.0 and t.mid_utc == utc(2018, 6, 19, 3, 18, 55)


def test_mid_exposure_said_by_keyword_or_comment() -> None:
    cards = {"DATE-OBS": "2020-01-01T00:01:00"}
    t = exposure_mid(cards, 60.0, comments={"DATE-OBS": "UTC at mid-exposure"})
    assert t is not None and t.mid_utc == utc(2020, 1, 1, 0, 1, 0) and "mid-exposure" in t.source
    t = exposure_mid(cards, 60.0, comments={"DATE-OBS": "UTC of exposure start"})
    assert t is not None and t.mid_utc == utc(2020, 1, 1, 0, 1, 30)
    t = exposure_mid(
        {"DATE-OBS": "2020-01-01", "TM_START": 60}, 60.0, comments={"TM_START": "seconds since midnight"}
    )
    assert t is not None and t.mid_utc == utc(2020, 1, 1, 0, 1, 30)
    t = exposure_mid(
        {"DATE-OBS": "2020-01-01", "TIME-OBS": "00:01:00"}, 60.0, comments={"TIME-OBS": "middle"}
    )
    assert t is not None and t.mid_utc == utc(2020, 1, 1, 0, 1, 0)
    t = exposure_mid({"MJD-MID": 58849.0006944, "DATE-OBS": "2020-01-01T00:00:00"}, 120.0)
    assert t is not None and t.source == "MJD-MID (mid-exposure)"
    assert abs((t.mid_utc - utc(2020, 1, 1, 0, 1, 0)).total_seconds()) < 0.01


def test_night_of() -> None:
    # Arizona: 01:33 and 08:36 UTC on Dec 20 belong to the evening of Dec 19
    assert night_of(utc(2017, 12, 20, 1, 33), -110.88) == "2017-12-19"
    assert night_of(utc(2017, 12, 20, 8, 36), -110.88) == "2017-12-19"
    # an evening frame before UTC midnight
    assert night_of(utc(2017, 12, 19, 23, 0), -110.88) == "2017-12-19"
    # La Palma (lon -17.9): 20:34 UTC is the evening of the same date; 05:00 the next morning
    assert night_of(utc(2011, 7, 1, 20, 34), -17.88) == "2011-07-01"
    assert night_of(utc(2011, 7, 2, 5, 0), -17.88) == "2011-07-01"
    # Australia (lon +149): 10:00 UTC is 20:00 local
    assert night_of(utc(2020, 3, 1, 10, 0), 149.06) == "2020-03-01"
    assert night_of(utc(2020, 3, 1, 18, 0), 149.06) == "2020-03-01"


def test_resolve_location_sign_checks() -> None:
    obs = ObservatoryConfig(latitude=31.6811, longitude=-110.8783, elevation=2345.0)
    assert resolve_location(None, None, None, obs) == (31.6811, -110.8783, 2345.0, "settings")
    # MicroObservatory writes LONGITUD = 110.88 for a west longitude
    _, lon, _, source = resolve_location(31.68, 110.88, None, obs)
    assert lon == -110.88 and "flipped" in source
    # ... and the -0700 local offset tells the same with another configured observatory
    other = ObservatoryConfig(latitude=46.87, longitude=-96.45)
    assert resolve_location(31.68, 110.88, None, other, local_offset_hours=-7.0)[1] == -110.88
    # near Greenwich the zone says little: La Palma (-17.9 deg) keeps its sign at UTC+1
    assert resolve_location(28.76, -17.88, 2382.0, other, local_offset_hours=1.0)[1] == -17.88
    # a UTC+8 zone 80 deg east is not "the other side"
    assert resolve_location(43.8, 87.6, 900.0, other, local_offset_hours=8.0)[1] == 87.6
    # a plain east longitude stays
    assert resolve_location(-31.27, 149.06, 1149.0, obs) == (-31.27, 149.06, 1149.0, "header")


def test_match_target() -> None:
    targets = (TargetConfig(name="HAT-P-32", ra=31.04, dec=46.69), TargetConfig(name="WASP 12"))
    assert match_target("HATP-32 ", targets) is targets[0]
    assert match_target("wasp-12", targets) is None  # no coordinates configured
    assert match_target(None, targets) is None


def test_barycentric_times_basic() -> None:
    mids = [utc(2017, 12, 20, 1, 34, 13), utc(2017, 12, 20, 1, 34, 13)]
    jd, bjd = barycentric_times(mids, [31.04, None], [46.69, None], [31.68] * 2, [-110.88] * 2, [2345.0] * 2)
    assert jd[0] == pytest.approx(2458107.565428, abs=1e-6)
    assert np.isnan(bjd[1])
    # TDB-UTC (69.184 s) plus a light-travel time within +-8.4 minutes
    assert abs((bjd[0] - jd[0]) * 86400 - 69.184) < 500.0
    assert barycentric_times([], [], [], [], [], [])[0].size == 0


# --------------------------------------------------------------------------- the HAT-P-32 night


def _hatp32_files(shared_data: Path) -> list[Path]:
    files = sorted((shared_data / "hatp32-microobservatory").glob("*.FITS"))
    assert len(files) == 142
    return files


def test_hatp32_utc_consistent_to_the_second(shared_data: Path) -> None:
    """DATE-OBS (local, -0700) and UT-OBS give the same UTC start, which is also the GMT time in
    the file name (FILENAME + MMddyyHHmmss(GMT)); MJD-OBS agrees within its 3-decimal precision."""
    checked_mjd = 0
    for path in _hatp32_files(shared_data):
        cards = header_cards(fits.getheader(path))
        exptime = normalize_header(cards).exptime
        assert exptime == 60.0
        both = exposure_mid(cards, exptime)
        from_ut = exposure_mid({"UT-OBS": cards["UT-OBS"]}, exptime)
        from_local = exposure_mid({"DATE-OBS": cards["DATE-OBS"]}, exptime)
        from_mjd = exposure_mid({"MJD-OBS": cards["MJD-OBS"]}, exptime)
        assert both is not None and from_ut is not None and from_local is not None
        assert abs((from_ut.mid_utc - from_local.mid_utc).total_seconds()) < 1.0
        assert both.mid_utc == from_ut.mid_utc
        assert "DATE-OBS local" in both.source and "agree" in both.source
        stamp = path.stem[-12:]  # yyMMddHHmmss in GMT
        named = datetime.strptime(stamp, "%y%m%d%H%M%S").replace(tzinfo=UTC) + timedelta(seconds=30)
        assert abs((both.mid_utc - named).total_seconds()) < 1.0
        if from_mjd is not None:  # None when the value has < 2 decimals (58107.1 written 58107.100)
            checked_mjd += 1
            assert abs((from_mjd.mid_utc - both.mid_utc).total_seconds()) <= 43.2 + 30.0
        assert both.mid_utc.tzinfo is UTC
        assert night_of(both.mid_utc, -110.88) == "2017-12-19"
    assert checked_mjd > 120


def test_hatp32_bjd_matches_exotic(shared_data: Path) -> None:
    """EXOTIC's light curve of this night is in BJD_TDB at mid-exposure: ours agree to 0.1 s."""
    ref = json.loads((shared_data / "hatp32-microobservatory/exotic-reference/sampledata.json").read_text())
    exotic = np.array(ref["time"])
    mids = []
    for path in _hatp32_files(shared_data):
        cards = header_cards(fits.getheader(path))
        stamp = exposure_mid(cards, 60.0)
        assert stamp is not None
        mids.append(stamp.mid_utc)
    n = len(mids)
    # EXOTIC's target coordinates (02:04:10 +46:41:23) and observatory (inits.json)
    ra, dec = (2 + 4 / 60 + 10 / 3600) * 15, 46 + 41 / 60 + 23 / 3600
    _, ours = barycentric_times(
        mids, [ra] * n, [dec] * n, [32.41638889] * n, [-110.73444444] * n, [2616.0] * n
    )
    nearest = np.abs(ours[None, :] - exotic[:, None]).argmin(axis=1)
    diff_s = (exotic - ours[nearest]) * 86400.0
    assert len(exotic) >= 135
    assert np.all(np.abs(diff_s) < 0.1), diff_s


def test_barycentric_times_match_astropy_light_travel_time() -> None:
    """Our IERS-free BJD_TDB equals astropy's Time.light_travel_time (with the site) to 0.1 ms."""
    from astropy import units as u
    from astropy.coordinates import EarthLocation, SkyCoord
    from astropy.time import Time
    from astropy.utils import iers

    mids = [utc(2017, 12, 20, 1, 34, 13), utc(2012, 2, 6, 3, 5, 13), utc(2019, 8, 8, 0, 43, 14)]
    ra, dec = [31.04, 103.02, 279.11], [46.69, -0.31, -44.31]
    lat, lon, height = [31.68, 46.87, -30.24], [-110.88, -96.45, -70.74], [2345.0, 300.0, 2722.0]
    jd, bjd = barycentric_times(mids, ra, dec, lat, lon, height)
    with iers.conf.set_temp("auto_download", False):  # bundled tables only: no network in tests
        for i, mid in enumerate(mids):
            site = EarthLocation.from_geodetic(lon[i] * u.deg, lat[i] * u.deg, height[i] * u.m)
            t = Time(mid, scale="utc", location=site)
            ref = t.tdb + t.light_travel_time(SkyCoord(ra[i] * u.deg, dec[i] * u.deg), kind="barycentric")
            assert jd[i] == pytest.approx(t.jd, abs=1e-9)
            assert abs((bjd[i] - ref.jd1) - ref.jd2) * 86400.0 < 1e-4


def test_erfa_altitudes_and_bjd_agree_with_astropy() -> None:
    from astropy import units as u
    from astropy.coordinates import AltAz, EarthLocation, SkyCoord
    from astropy.time import Time

    from nightpipe.frames.timing import altitudes_deg, bjd_tdb_of_jd_utc

    jd = 2458107.5 + np.linspace(0.0, 0.4, 30)
    site = EarthLocation.from_geodetic(-110.88 * u.deg, 31.68 * u.deg, 2345 * u.m)
    times = Time(jd, format="jd", scale="utc", location=site)
    star = SkyCoord(31.042917 * u.deg, 46.687778 * u.deg)
    alt = star.transform_to(AltAz(obstime=times, location=site)).alt.deg
    assert np.max(np.abs(altitudes_deg(jd, 31.042917, 46.687778, 31.68, -110.88, 2345.0) - alt)) < 0.002
    bjd = (times.tdb + times.light_travel_time(star, kind="barycentric")).jd
    mine = bjd_tdb_of_jd_utc(jd, 31.042917, 46.687778, 31.68, -110.88, 2345.0)
    assert np.max(np.abs(mine - bjd)) * 86400.0 < 1e-4  # 0.1 ms (a float64 JD holds ~40 us)
