"""Property tests: header normalisation and time parsing over arbitrary card values.

Whatever a header holds (text, numbers of any size, NaN, booleans, dates of year 1 or 9999, JDs of
1e300), reading it gives a value or ``None``, the scan's notes a typed message: never another
exception.
"""

from __future__ import annotations

import math
import string
import warnings
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nightpipe.frames.headers import (
    EXPTIME_KEYS,
    FrameHeader,
    coordinates,
    normalize_header,
    parse_cards,
    site_position,
)
from nightpipe.frames.timing import (
    TIME_OF_DAY_KEYS,
    barycentric_times,
    exposure_mid,
    night_of,
    parse_date,
    seconds_of_day,
)
from nightpipe.inventory.notes import exposure_problem, time_problem

TIME_KEYS = ("DATE-OBS", "DATE-BEG", "DATE-AVG", "DATE-END", "DATE", "UT-OBS", "DATE-LOC", "LOCALTIM",
             "JD", "JD-OBS", "MJD-OBS", "MJD-AVG", "JD_UTC", "MJD-STRT", *TIME_OF_DAY_KEYS)  # fmt: skip
OTHER_KEYS = ("IMAGETYP", "OBJECT", "FILTER", "XBINNING", "YBINNING", "CCDSUM", "GAIN", "EGAIN",
              "OFFSET", "CCD-TEMP", "SET-TEMP", "RA", "DEC", "OBJCTRA", "OBJCTDEC", "SITELAT",
              "SITELONG", "NAXIS1", "NAXIS2", "READOUTM", "INSTRUME")  # fmt: skip

date_like = st.builds(
    lambda y, mo, d, h, mi, s, zone: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s}{zone}",
    st.integers(0, 9999),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.sampled_from(["00", "59.999", "60.5", "99", "7"]),
    st.sampled_from(["", "Z", "UTC", "+14:00", "-0700", "+99:99"]),
)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(string.printable, max_size=40),
    st.text(max_size=20),
    date_like,
    st.sampled_from(
        [
            "yesterday evening",
            "2017-13-45T99:99:99",
            "sixty",
            "-60",
            "1e400",
            "nan",
            "24:00:00",
            "15/04/88",
            "31/02/99",
            "9999-12-31T24:59:59",
            "0001-01-01T00:00:00-1400",
            "6/19/2018 11:18:50.600 PM",
            "2458107.5",
            "",
        ]
    ),
)
cards_of = st.dictionaries(st.sampled_from(TIME_KEYS + OTHER_KEYS + EXPTIME_KEYS), values, max_size=12)
relaxed = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@relaxed
@given(values)
def test_parse_date_gives_a_date_or_none(value: Any) -> None:
    parsed = parse_date(value)
    assert parsed is None or isinstance(parsed.value, datetime)
    seconds = seconds_of_day(value)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)


@relaxed
@given(cards_of, st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)))
def test_exposure_mid_gives_a_utc_time_or_none(cards: dict[str, Any], exptime: float | None) -> None:
    stamp = exposure_mid(cards, exptime, utc_offset_hours=-7.0)
    if stamp is not None:
        assert stamp.mid_utc.tzinfo is not None and stamp.mid_utc.utcoffset() == UTC.utcoffset(None)
        assert isinstance(stamp.source, str) and stamp.source
        assert stamp.precision_s >= 0


@settings(max_examples=40, deadline=None)
@given(cards_of)
def test_a_header_time_is_timed_as_the_scan_does(cards: dict[str, Any]) -> None:
    """What the scan does with a frame's time (inventory/times.py): the night and the BJD_TDB."""
    stamp = exposure_mid(cards, normalize_header(cards).exptime)
    if stamp is None:
        return
    ra, dec = coordinates(cards)
    lat, lon, height = site_position(cards)
    assert len(night_of(stamp.mid_utc, lon or -110.9)) == 10
    with warnings.catch_warnings():  # ERFA's "dubious year" for dates before 1960: a warning only
        warnings.simplefilter("ignore")
        jd, bjd = barycentric_times(
            [stamp.mid_utc], [ra], [dec], [lat or 31.7], [lon or -110.9], [height or 0.0]
        )
    assert math.isfinite(jd[0]) and (math.isfinite(bjd[0]) or ra is None or dec is None)


@relaxed
@given(cards_of, st.text(max_size=30))
def test_normalize_header_gives_a_header(cards: dict[str, Any], filename: str) -> None:
    header = normalize_header(cards, filename=filename)
    assert isinstance(header, FrameHeader)
    assert header.kind in ("bias", "dark", "flat", "light", "unknown")
    assert header.exptime is None or (math.isfinite(header.exptime) and header.exptime >= 0)
    for number in (header.gain, header.ccd_temp, header.ra, header.dec):
        assert number is None or math.isfinite(number)


@relaxed
@given(cards_of, st.sampled_from(["light", "bias", "dark", "flat", "unknown"]))
def test_scan_notes_are_messages_naming_the_keyword(cards: dict[str, Any], kind: str) -> None:
    exptime = normalize_header(cards).exptime
    problem, fatal = exposure_problem(cards, exptime)
    assert problem is None or any(problem.startswith(f"{key} = ") for key in EXPTIME_KEYS)
    assert not (fatal and exptime is not None)
    stamp = exposure_mid(cards, exptime)
    note = time_problem(cards, kind, stamp.source if stamp else None)
    assert note is None or "DATE-OBS" in note or note.startswith("no time")


@relaxed
@given(st.lists(st.text(string.printable, min_size=0, max_size=80), max_size=20))
def test_parse_cards_reads_any_card_text(cards: list[str]) -> None:
    raw = "".join(c.ljust(80)[:80] for c in cards) + "END".ljust(80)
    values, comments, has_end = parse_cards(raw)
    assert has_end  # the END card appended, or an earlier one
    assert all(isinstance(k, str) and k for k in values)
    assert all(v is None or isinstance(v, bool | int | float | str) for v in values.values())
    assert all(math.isfinite(v) for v in values.values() if isinstance(v, float))
    assert set(comments) <= set(values)
