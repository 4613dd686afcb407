"""Frame times: UTC mid-exposure from whatever the header gives, JD_UTC, BJD_TDB, the night.

Headers give the time of an exposure in many ways: ``DATE-OBS`` with the time of day,
or a date only with a separate ``TIME-OBS`` / ``UT`` / ``UTSTART``; local time with an
offset (MicroObservatory ``2017-12-19T18:33:43.317-0700`` beside ``UT-OBS``); a
mid-exposure ``DATE-AVG``; ``MJD-OBS`` or ``JD`` with few decimals; an end time. The
parsing here is pure (dicts in, datetimes out) and records in ``source`` which
keywords the time came from.

This module finds the mid-exposure (:func:`exposure_mid`), the local offset and the night; the
pieces it builds on are :mod:`nightpipe.frames.dates` (one header value to a datetime),
:mod:`nightpipe.frames.location` (site and target) and :mod:`nightpipe.frames.barycentric`
(:func:`barycentric_times`, the astropy part on whole arrays at once), whose names it re-exports.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from nightpipe.frames.barycentric import altitudes_deg, barycentric_times, bjd_tdb_of_jd_utc
from nightpipe.frames.dates import (
    MJD0,
    TIME_OF_DAY_KEYS,
    YEARS,
    ParsedDate,
    _decimals,
    _from_jd,
    _iso_precision,
    _utc,
    parse_date,
    seconds_of_day,
)
from nightpipe.frames.headers import to_float
from nightpipe.frames.headers.camera import MAX_EXPOSURE_S
from nightpipe.frames.location import match_target, resolve_location

log = logging.getLogger(__name__)

__all__ = [
    "MJD0",
    "TIME_OF_DAY_KEYS",
    "YEARS",
    "ExposureTime",
    "ParsedDate",
    "altitudes_deg",
    "barycentric_times",
    "bjd_tdb_of_jd_utc",
    "exposure_mid",
    "local_offset",
    "match_target",
    "night_of",
    "parse_date",
    "resolve_location",
    "seconds_of_day",
]


@dataclass(frozen=True)
class ExposureTime:
    """The UTC mid-exposure of a frame and how it was found.

    Attributes
    ----------
    mid_utc
        Timezone-aware UTC datetime of the middle of the exposure.
    source
        The keywords used, e.g. ``"UT-OBS start + EXPTIME/2 (DATE-OBS -0700 agrees)"``.
    precision_s
        How precise the keywords are, seconds (86.4 for an MJD with 3 decimals).
    local_offset_hours
        The local-time offset a header revealed (used to check the site longitude).
    """

    mid_utc: datetime
    source: str
    precision_s: float
    local_offset_hours: float | None = None


def _full_datetimes(
    cards: Mapping[str, Any], utc_offset_hours: float | None
) -> list[tuple[str, datetime, float, float | None]]:
    """Full date-times of the exposure start: (description, utc, precision, local offset)."""
    found: list[tuple[str, datetime, float, float | None]] = []
    for key in ("UT-OBS", "DATE-BEG", "DATE-OBS"):
        parsed = parse_date(cards.get(key))
        if parsed is None or not parsed.has_time:
            continue
        offset = parsed.offset_hours
        label = key
        if offset is None and key == "DATE-OBS" and utc_offset_hours is not None:
            offset = utc_offset_hours
            label = f"DATE-OBS (local, observatory.utc_offset_hours={utc_offset_hours:+g})"
        elif offset:
            label = f"{key} (local {offset:+05.1f} h)"
        found.append(
            (label, _utc(parsed.value, offset), _iso_precision(str(cards[key])), parsed.offset_hours)
        )
    return found


def exposure_mid(
    cards: Mapping[str, Any],
    exptime: float | None,
    *,
    utc_offset_hours: float | None = None,
    comments: Mapping[str, str] | None = None,
) -> ExposureTime | None:
    """The UTC mid-exposure of a frame from its header cards, or ``None`` when no time is given.

    Order of preference: a mid-exposure keyword (``DATE-AVG``, ``MJD-AVG``, AstroImageJ
    ``JD_UTC``); a full start date-time (``UT-OBS``, ``DATE-BEG``, ``DATE-OBS``, local
    offsets converted; a DATE-OBS without zone is UTC unless ``utc_offset_hours`` is
    given); a date plus a time-of-day keyword (``UTSTART``, ``TIME-OBS``, ``UT``...);
    ``DATE-END`` minus the exposure; ``MJD-OBS``/``JD``/``JD-OBS`` (their precision is
    taken from the number of decimals). A start time gets half the exposure added, unless
    the comment of the keyword says it is the middle of the exposure.

    Parameters
    ----------
    cards
        Header cards.
    exptime
        Exposure time, seconds (``None``, or outside 0 to ``MAX_EXPOSURE_S``: treated as 0 and
        said so in the source).
    utc_offset_hours
        Offset of a zone-less local DATE-OBS (``observatory.utc_offset_hours``).
    comments
        Card comments (``DATE-OBS = '...' / mid-exposure`` makes DATE-OBS a mid time).

    Examples
    --------
    >>> t = exposure_mid({"DATE-OBS": "2019-08-08", "TIME-OBS": "00:42:27.4"}, 90.0)
    >>> t.mid_utc.isoformat(), t.source
    ('2019-08-08T00:43:12.400000+00:00', 'DATE-OBS + TIME-OBS start + EXPTIME/2')
    """
    mid = _mid_keywords(cards)
    if mid is not None:
        return mid
    if exptime is not None and not 0 <= exptime <= MAX_EXPOSURE_S:
        exptime = None  # negative, NaN or absurd: as if the header had none
    comments = comments or {}
    start = _start_time(cards, utc_offset_hours)
    if start is None:
        end = parse_date(cards.get("DATE-END"))
        if end is None or not end.has_time or exptime is None:
            return None
        stamp = _utc(end.value, end.offset_hours) - timedelta(seconds=exptime / 2.0)
        return ExposureTime(stamp, "DATE-END - EXPTIME/2", 1.0, end.offset_hours)
    label, stamp, precision, offset = start
    if offset is None:
        offset = local_offset(cards, stamp)
    half = (exptime or 0.0) / 2.0
    suffix = " + EXPTIME/2" if exptime is not None else " (no exposure time: start used)"
    for key in re.split(r"[\s+()]+", label):
        if key in cards and _says_mid(comments.get(key, "")):
            half, suffix = 0.0, f" (mid-exposure, says the {key} comment {comments[key][:40]!r})"
            break
    return ExposureTime(stamp + timedelta(seconds=half), f"{label}{suffix}"[:256], precision, offset)


def _says_mid(comment: str) -> bool:
    text = comment.lower()
    return bool(re.search(r"\bmid(?!night)|middle|centre of exp|center of exp", text)) and "start" not in text


def _mid_keywords(cards: Mapping[str, Any]) -> ExposureTime | None:
    for key in ("DATE-AVG", "DATE-MID"):
        parsed = parse_date(cards.get(key))
        if parsed is not None and parsed.has_time:
            stamp = _utc(parsed.value, parsed.offset_hours)
            return ExposureTime(stamp, f"{key} (mid-exposure)", _iso_precision(str(cards[key])))
    for key, zero in (("MJD-AVG", MJD0), ("MJD-MID", MJD0), ("JD-MID", 0.0), ("JD_UTC", 0.0)):
        value = to_float(cards.get(key))
        mid = _from_jd(value + zero) if value is not None and value > 0 else None
        if mid is not None and _decimals(cards[key]) >= 5:
            return ExposureTime(mid, f"{key} (mid-exposure)", 86400 * 10.0 ** -_decimals(cards[key]))
    return None


def _start_time(
    cards: Mapping[str, Any], utc_offset_hours: float | None
) -> tuple[str, datetime, float, float | None] | None:
    full = _full_datetimes(cards, utc_offset_hours)
    if full:
        label, stamp, precision, _ = full[0]
        offsets = [o for _, _, _, o in full if o]
        agree = []
        for other_label, other, _, _ in full[1:]:
            gap = abs((other - stamp).total_seconds())
            if gap <= 1.0:
                agree.append(other_label.split(" ")[0] + (" local" if "local" in other_label else ""))
            else:
                log.warning("%s and %s disagree by %.1f s; %s is used", label, other_label, gap, label)
        for key, zero in (("MJD-OBS", MJD0), ("JD", 0.0)):
            value = to_float(cards.get(key))
            from_jd = _from_jd(value + zero) if value is not None and value > 0 else None
            if from_jd is None or _decimals(cards[key]) < 2:
                continue
            half_step = 43200.0 * 10.0 ** -_decimals(cards[key])
            gap = abs((from_jd - stamp).total_seconds())
            if gap <= half_step + 1.0:
                agree.append(f"{key} ±{half_step:.0f} s" if half_step >= 1 else f"{key} to <1 s")
            else:
                log.warning("%s and %s disagree by %.1f s; %s is used", label, key, gap, label)
        note = f" start ({' and '.join(agree)} agree)" if agree else " start"
        return label + note, stamp, precision, offsets[0] if offsets else None
    date_only = None
    for key in ("DATE-OBS", "DATE-BEG", "DATE"):
        parsed = parse_date(cards.get(key))
        if parsed is not None:
            date_only = (key, parsed)
            break
    if date_only is not None:
        for key in TIME_OF_DAY_KEYS:
            seconds = seconds_of_day(cards.get(key), key) if key in cards else None
            if seconds is not None:
                dkey, parsed = date_only
                stamp = _utc(
                    parsed.value.replace(hour=0, minute=0, second=0, microsecond=0), parsed.offset_hours
                )
                return f"{dkey} + {key} start", stamp + timedelta(seconds=seconds), 1.0, None
    for key, zero in (("MJD-OBS", MJD0), ("MJD-STRT", MJD0), ("JD", 0.0), ("JD-OBS", 0.0)):
        value = to_float(cards.get(key))
        start = _from_jd(value + zero) if value is not None and value > 0 else None
        digits = _decimals(cards[key]) if start is not None else 0
        if start is None or digits < 2:
            continue
        precision = 86400.0 * 10.0**-digits
        return f"{key} start ({digits} decimals, ±{precision / 2:.0f} s)", start, precision, None
    return None


_LOCALTIM = re.compile(
    r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s+(\d{1,2}):(\d{2}):(\d{2}(?:\.\d*)?)\s*(AM|PM)?", re.IGNORECASE
)


def local_offset(cards: Mapping[str, Any], start_utc: datetime) -> float | None:
    """The local-time offset (hours, to a quarter hour) that a header's local clock reveals.

    N.I.N.A. writes ``DATE-LOC`` (ISO), TheSkyX ``LOCALTIM`` (``'6/19/2018 11:18:50.600 PM'``)
    beside the UTC start. ``None`` when there is no such keyword or the difference is not a
    plausible time zone (over 14 h).

    Examples
    --------
    >>> start = datetime(2018, 6, 19, 3, 18, 50, 600000, UTC)
    >>> local_offset({"LOCALTIM": "6/18/2018 11:18:50.600 PM DST"}, start)
    -4.0
    """
    local: datetime | None = None
    parsed = parse_date(cards.get("DATE-LOC"))
    if parsed is not None and parsed.has_time:
        local = parsed.value
    elif isinstance(cards.get("LOCALTIM"), str):
        match = _LOCALTIM.match(cards["LOCALTIM"])
        if match:
            month, day, year, hour, minute = (int(g) for g in match.groups()[:5])
            ampm = (match.group(7) or "").upper()
            hour = hour % 12 + (12 if ampm == "PM" else 0) if ampm else hour
            try:
                local = datetime(year, month, day, hour, minute) + timedelta(seconds=float(match.group(6)))
            except ValueError:
                local = None
    if local is None:
        return None
    hours = (local - start_utc.replace(tzinfo=None)).total_seconds() / 3600.0
    if abs(hours) > 14.0:
        return None
    return round(hours * 4.0) / 4.0


def night_of(mid_utc: datetime, longitude_east_deg: float) -> str:
    """The local evening date ``YYYY-MM-DD``: UTC date of ``mid_utc + longitude/15 h - 12 h``.

    Examples
    --------
    >>> night_of(datetime(2017, 12, 20, 8, 36, tzinfo=UTC), -110.88)
    '2017-12-19'
    """
    shifted = mid_utc.astimezone(UTC) + timedelta(hours=longitude_east_deg / 15.0 - 12.0)
    return shifted.date().isoformat()
