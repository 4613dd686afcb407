"""Reading a date or a time of day from one header value: ISO dates with or without a zone,
old ``DD/MM/YY`` dates, Julian dates, times of day (``UT``, ``TIME-OBS``...), with the precision
the value was written to. Pure: values in, datetimes out. Used by :mod:`nightpipe.frames.timing`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from nightpipe.frames.headers import to_float

MJD0 = 2400000.5
_UNIX_JD = 2440587.5
#: Years a frame's time may have: dates outside are no time (a typo, a reduced JD in a JD card...).
YEARS = (1000, 3000)
_JD_RANGE = (
    _UNIX_JD + datetime(YEARS[0], 1, 1, tzinfo=UTC).timestamp() / 86400.0,
    _UNIX_JD + datetime(YEARS[1] + 1, 1, 1, tzinfo=UTC).timestamp() / 86400.0,
)
#: Time-of-day keywords used with a date-only DATE-OBS, most precise first.
TIME_OF_DAY_KEYS = (
    "UTSTART",
    "TIME-OBS",
    "UT-OBS",
    "TIME-BEG",
    "UT",
    "UTC",
    "UT-START",
    "TM-START",
    "TM_START",
)
_ISO = re.compile(
    r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:\.\d*)?))?)?"
    r"\s*(Z|UTC|UT|[+-]\d{2}:?\d{2})?\s*$",
    re.IGNORECASE,
)
_OLD_DATE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{2})\s*$")


@dataclass(frozen=True)
class ParsedDate:
    """A date(-time) read from a header value.

    Attributes
    ----------
    value
        Naive datetime as written (local time when ``offset_hours`` is not 0).
    has_time
        False for a date without the time of day.
    offset_hours
        The zone written in the value (``-0700`` -> -7.0; ``Z`` -> 0.0), ``None`` if absent.
    """

    value: datetime
    has_time: bool
    offset_hours: float | None


def parse_date(value: Any) -> ParsedDate | None:
    """Parse ISO ``YYYY-MM-DD[Thh:mm[:ss.sss]][zone]`` or the old ``DD/MM/YY`` FITS date;
    ``None`` for anything else, an impossible date or a year outside :data:`YEARS`.

    Examples
    --------
    >>> p = parse_date("2017-12-19T18:33:43.317-0700")
    >>> p.value.isoformat(), p.has_time, p.offset_hours
    ('2017-12-19T18:33:43.317000', True, -7.0)
    >>> parse_date("15/04/88").value.date().isoformat()
    '1988-04-15'
    """
    if not isinstance(value, str):
        return None
    match = _ISO.match(value)
    if match:
        year, month, day, hour, minute, second, zone = match.groups()
        if not YEARS[0] <= int(year) <= YEARS[1]:
            return None
        try:
            base = datetime(int(year), int(month), int(day))
        except ValueError:
            return None
        if hour is None:
            return ParsedDate(base, False, _zone_hours(zone))
        seconds = float(second) if second else 0.0
        if int(hour) > 24 or int(minute) > 59 or seconds >= 61:
            return None
        stamp = base + timedelta(hours=int(hour), minutes=int(minute), seconds=seconds)
        return ParsedDate(stamp, True, _zone_hours(zone))
    old = _OLD_DATE.match(value)
    if old:
        day, month, year = (int(g) for g in old.groups())
        try:
            return ParsedDate(datetime(1900 + year, month, day), False, None)
        except ValueError:
            return None
    return None


def _zone_hours(zone: str | None) -> float | None:
    if zone is None:
        return None
    zone = zone.upper()
    if zone in {"Z", "UT", "UTC"}:
        return 0.0
    sign = -1.0 if zone.startswith("-") else 1.0
    digits = zone[1:].replace(":", "")
    return sign * (int(digits[:2]) + int(digits[2:4]) / 60.0)


def seconds_of_day(value: Any, key: str = "") -> float | None:
    """Seconds after midnight from ``'hh:mm:ss.s'``, decimal hours (NOT ``UT = 20.578``),
    or seconds (ESO ``TM_START = 81573``).

    Examples
    --------
    >>> seconds_of_day("00:42:27.4"), seconds_of_day(20.5), seconds_of_day(81573, "TM_START")
    (2547.4, 73800.0, 81573.0)
    """
    if isinstance(value, str):
        parsed = parse_date(value)
        if parsed is not None:
            if not parsed.has_time:
                return None
            return (
                parsed.value - parsed.value.replace(hour=0, minute=0, second=0, microsecond=0)
            ).total_seconds()
        parts = value.strip().split(":")
        if len(parts) >= 2:
            try:
                h, m = int(parts[0]), int(parts[1])
                s = float(parts[2]) if len(parts) > 2 and parts[2] else 0.0
            except ValueError:
                return None
            if 0 <= h <= 24 and 0 <= m < 60 and 0 <= s < 61:
                return h * 3600.0 + m * 60.0 + s
            return None
    number = to_float(value)
    if number is None or number < 0:
        return None
    if key.upper().startswith("TM"):
        return number if number < 86400 else None
    return number * 3600.0 if number < 24 else None


def _decimals(value: Any) -> int:
    text = value if isinstance(value, str) else repr(float(value))
    if "e" in text.lower():
        return 6
    return len(text.split(".")[1].rstrip()) if "." in text else 0


def _iso_precision(text: str) -> float:
    match = _ISO.match(text)
    second = match.group(6) if match else None
    if second is None:
        return 60.0
    return max(10.0 ** -_decimals(second), 1e-6) if "." in second else 1.0


def _utc(naive: datetime, offset_hours: float | None) -> datetime:
    if offset_hours:
        naive = naive - timedelta(hours=offset_hours)
    return naive.replace(tzinfo=UTC)


def _from_jd(jd: float) -> datetime | None:
    """The UTC datetime of a Julian date, ``None`` outside :data:`YEARS` (a reduced or modified
    JD written in a JD card, a typo)."""
    if not _JD_RANGE[0] <= jd < _JD_RANGE[1]:
        return None
    return datetime.fromtimestamp((jd - _UNIX_JD) * 86400.0, tz=UTC)
