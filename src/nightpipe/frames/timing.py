"""Frame times: UTC mid-exposure from whatever the header gives, JD_UTC, BJD_TDB, the night.

Headers give the time of an exposure in many ways: ``DATE-OBS`` with the time of day,
or a date only with a separate ``TIME-OBS`` / ``UT`` / ``UTSTART``; local time with an
offset (MicroObservatory ``2017-12-19T18:33:43.317-0700`` beside ``UT-OBS``); a
mid-exposure ``DATE-AVG``; ``MJD-OBS`` or ``JD`` with few decimals; an end time. The
parsing here is pure (dicts in, datetimes out) and records in ``source`` which
keywords the time came from. :func:`barycentric_times` does the astropy part on whole
arrays at once.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from nightpipe.config import ObservatoryConfig, TargetConfig
from nightpipe.frames.headers import to_float
from nightpipe.frames.headers.camera import MAX_EXPOSURE_S

log = logging.getLogger(__name__)

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


def resolve_location(
    lat: float | None,
    lon: float | None,
    elev: float | None,
    observatory: ObservatoryConfig,
    *,
    local_offset_hours: float | None = None,
) -> tuple[float, float, float, str]:
    """The observatory position used for a frame: ``(lat, lon_east, elevation_m, source)``.

    The header position is used when it has one, else the configured observatory.
    Longitude signs are not reliable in headers (some software writes west-positive
    values): a header longitude is negated when the negated value is the configured
    observatory's, or when a local-time offset in the header (``-0700``) says the site
    is on the other side of Greenwich.

    Examples
    --------
    >>> obs = ObservatoryConfig(latitude=31.68, longitude=-110.88)
    >>> resolve_location(31.68, 110.88, None, obs)[1]
    -110.88
    """
    if lat is None or lon is None:
        return observatory.latitude, _wrap(observatory.longitude), observatory.elevation, "settings"
    height = elev if elev is not None and -500 < elev < 9000 else observatory.elevation
    conf_lon = _wrap(observatory.longitude)
    same_lat = abs(lat - observatory.latitude) < 0.5
    if same_lat and abs(_wrap(-lon - conf_lon)) < 0.5 and abs(_wrap(lon - conf_lon)) >= 0.5:
        return lat, -lon, height, "header (longitude sign flipped to match settings)"
    # time zones stray from longitude/15 by up to ~2 h near Greenwich (La Palma: -17.9 deg, UTC+1
    # in summer), so the offset only decides far from it, and when the flipped sign fits it
    if (
        local_offset_hours
        and abs(lon) > 30
        and (lon > 0) != (local_offset_hours > 0)
        and abs(-lon / 15.0 - local_offset_hours) < 3.0
    ):
        return lat, -lon, height, "header (longitude sign flipped to match the local-time offset)"
    return lat, lon, height, "header"


def _wrap(lon: float) -> float:
    return (lon + 180.0) % 360.0 - 180.0


def match_target(object_name: str | None, targets: Sequence[TargetConfig]) -> TargetConfig | None:
    """The configured target whose name matches OBJECT, ignoring case, spaces and dashes.

    Examples
    --------
    >>> t = TargetConfig(name="HAT-P-32", ra=31.04, dec=46.69)
    >>> match_target("HATP-32 ", [t]).name
    'HAT-P-32'
    """
    if not object_name:
        return None
    key = re.sub(r"[^a-z0-9]", "", object_name.lower())
    for target in targets:
        if key and re.sub(r"[^a-z0-9]", "", target.name.lower()) == key and target.ra is not None:
            return target
    return None


def barycentric_times(
    mid_utc: Sequence[datetime],
    ra_deg: Sequence[float | None],
    dec_deg: Sequence[float | None],
    lat_deg: Sequence[float],
    lon_deg: Sequence[float],
    height_m: Sequence[float],
) -> tuple[np.ndarray, np.ndarray]:
    """JD_UTC and BJD_TDB of many frames at once, with astropy and its ERFA library.

    BJD_TDB = JD(TDB) of ``mid_utc`` + (r_obs . n) / c, where n is the unit vector to
    (``ra``, ``dec``) and r_obs the observatory's barycentric position: the Earth's from
    ERFA ``epv00`` (astropy's ``builtin`` ephemeris) plus the site's geocentric position
    (WGS84, ERFA ``gd2gc``) rotated to GCRS with the IAU 2000B matrix. This is what
    ``astropy.time.Time.light_travel_time`` computes, but polar motion and UT1-UTC are
    neglected (below 2 microseconds), so the IERS tables, their 5 s load and their
    downloads are not needed. Frames without coordinates get NaN.

    Returns
    -------
    jd_utc, bjd_tdb
        Arrays of the same length as ``mid_utc``.
    """
    from astropy.time import Time

    n = len(mid_utc)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    jd = np.asarray(Time(list(mid_utc), scale="utc").jd, dtype=np.float64)
    ra = np.array([np.nan if v is None else v for v in ra_deg], dtype=float)
    dec = np.array([np.nan if v is None else v for v in dec_deg], dtype=float)
    bjd = bjd_tdb_of_jd_utc(jd, ra, dec, lat_deg, lon_deg, height_m)
    return jd, bjd


def bjd_tdb_of_jd_utc(
    jd_utc: np.ndarray,
    ra_deg: np.ndarray | float,
    dec_deg: np.ndarray | float,
    lat_deg: Sequence[float] | np.ndarray | float,
    lon_deg: Sequence[float] | np.ndarray | float,
    height_m: Sequence[float] | np.ndarray | float,
) -> np.ndarray:
    """BJD_TDB of JD_UTC times for (``ra``, ``dec``) seen from a site (scalars or one per time).

    The computation of :func:`barycentric_times` (ERFA, no IERS tables, within 2 microseconds
    of astropy's ``light_travel_time``); non-finite coordinates give NaN.
    """
    import erfa
    from astropy.time import Time

    jd = np.atleast_1d(np.asarray(jd_utc, dtype=np.float64))
    n = jd.size
    if n == 0:
        return np.zeros(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)  # "dubious year" for far dates
        times = Time(jd, format="jd", scale="utc")
        tt, tdb = times.tt, times.tdb
        ra = np.radians(np.broadcast_to(np.asarray(ra_deg, float), (n,)))
        dec = np.radians(np.broadcast_to(np.asarray(dec_deg, float), (n,)))
        toward = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)
        _, earth = erfa.epv00(tdb.jd1, tdb.jd2)
        earth_m = np.asarray(earth["p"]) * erfa.DAU
        lon = np.radians(np.broadcast_to(np.asarray(lon_deg, float), (n,)))
        lat = np.radians(np.broadcast_to(np.asarray(lat_deg, float), (n,)))
        height = np.broadcast_to(np.asarray(height_m, float), (n,))
        itrs = erfa.gd2gc(1, lon, lat, height).reshape(n, 3)  # WGS84
        to_terrestrial = erfa.c2t00b(tt.jd1, tt.jd2, times.jd1, times.jd2, 0.0, 0.0)
        site_gcrs = np.einsum("nji,nj->ni", to_terrestrial, itrs)
    delay_s = np.einsum("ni,ni->n", earth_m + site_gcrs, toward) / erfa.CMPS
    bjd = (tdb.jd1 + tdb.jd2) + delay_s / 86400.0
    return np.asarray(np.where(np.isfinite(delay_s), bjd, np.nan))


def altitudes_deg(
    jd_utc: np.ndarray,
    ra_deg: np.ndarray | float,
    dec_deg: np.ndarray | float,
    lat_deg: float,
    lon_deg: float,
    height_m: float,
) -> np.ndarray:
    """Geometric altitude (no refraction) of ICRS (``ra``, ``dec``) at JD_UTC times, degrees.

    ERFA's ``atco13`` with UT1 = UTC and no polar motion: within 0.001 degree of astropy's
    ``AltAz`` and 80x faster on first use, because no IERS table is loaded.
    """
    import erfa
    from astropy.time import Time

    jd = np.atleast_1d(np.asarray(jd_utc, dtype=np.float64))
    if jd.size == 0:
        return np.zeros(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        times = Time(jd, format="jd", scale="utc")
        zenith = erfa.atco13(
            np.radians(np.asarray(ra_deg, float)),
            np.radians(np.asarray(dec_deg, float)),
            0.0,
            0.0,
            0.0,
            0.0,  # proper motion, parallax, radial velocity
            times.jd1,
            times.jd2,
            0.0,  # UT1 - UTC
            np.radians(lon_deg),
            np.radians(lat_deg),
            height_m,
            0.0,
            0.0,  # polar motion
            0.0,
            0.0,
            0.0,
            0.0,  # pressure 0: no refraction
        )[1]
    return np.asarray(90.0 - np.degrees(zenith))
