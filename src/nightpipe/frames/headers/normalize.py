"""Header normalisation: the many FITS header dialects -> one frozen record of values.

Observatory software writes the same facts under many keywords (``IMAGETYP`` /
``OBSTYPE``, ``EXPTIME`` / ``EXPOSURE``, ``XBINNING`` / ``CCDSUM``...) and many
spellings (``'Bias Frame'``, ``'ZERO'``, ``'SKY_FLAT'``...). This module turns a plain
mapping of header cards into a :class:`FrameHeader`; it does no I/O, so every rule is
tested on dictionaries. :func:`infer_kind_from_pixels` classifies a frame from a small
pixel sample when neither the header nor the file name says what it is.

The dialects handled are those of MaxIm DL (several versions), SBIG, Apogee, ACP,
MicroObservatory, ESO/MIDAS (DFOSC with its non-standard keywords), NOT/ALFOSC,
Gemini/GMOS, SAAO, DSS/SkyView, Kepler/TESS, N.I.N.A./SharpCap (``GAIN`` setting +
``EGAIN`` e-/ADU).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nightpipe.frames.headers.keywords import (
    CCD_TEMP_KEYS,
    ELEV_KEYS,
    EXPTIME_KEYS,
    GAIN_E_KEYS,
    INSTRUMENT_KEYS,
    LAT_KEYS,
    LON_KEYS,
    OBJECT_KEYS,
    OBSERVER_KEYS,
    OFFSET_KEYS,
    READOUT_KEYS,
    SET_TEMP_KEYS,
    SITE_KEYS,
    TELESCOPE_KEYS,
    clean_str,
    first_value,
    to_float,
    to_int,
)
from nightpipe.frames.headers.kind import kind_from_header

_OPEN_FILTERS = {"", "open", "free", "none", "empty", "clear0", "blank"}


@dataclass(frozen=True)
class FrameHeader:
    """The normalised facts of one frame's header; ``None`` where the header is silent.

    Attributes
    ----------
    kind
        ``bias``, ``dark``, ``flat``, ``light`` or ``unknown``.
    kind_inferred
        True when no frame-type keyword gave the kind (it came from OBJECT, the file name
        or the pixels).
    kind_source
        Where the kind came from, e.g. ``"IMAGETYP='Dark Frame'"`` or ``"file name"``.
    exptime
        Exposure time, seconds.
    xbin, ybin
        Binning factors.
    ccd_temp, set_temp
        Measured detector temperature and its set point, degrees C (Kelvin values above
        100 are converted).
    ra, dec
        Target or pointing, degrees (ICRS/J2000 as the header gives it).
    site_lat, site_lon, site_elev
        Observatory position from the header (longitude east-positive as written; see
        :func:`nightpipe.frames.timing.resolve_location` for the sign checks).
    """

    kind: str = "unknown"
    kind_inferred: bool = False
    kind_source: str | None = None
    filter: str | None = None
    exptime: float | None = None
    xbin: int | None = None
    ybin: int | None = None
    gain: float | None = None
    offset: float | None = None
    readout_mode: str | None = None
    ccd_temp: float | None = None
    set_temp: float | None = None
    naxis1: int | None = None
    naxis2: int | None = None
    object: str | None = None
    ra: float | None = None
    dec: float | None = None
    observer: str | None = None
    site: str | None = None
    telescope: str | None = None
    instrument: str | None = None
    date_obs: str | None = None
    site_lat: float | None = None
    site_lon: float | None = None
    site_elev: float | None = None


# --------------------------------------------------------------------------- values


def binning(cards: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """Binning factors from XBINNING/YBINNING, CCDSUM ``'2 2'``, BINNING ``'2x2'`` or ``2``...

    Examples
    --------
    >>> binning({"CCDSUM": "1 1"}), binning({"BINNING": "3x3"}), binning({"XBINNING": 2})
    ((1, 1), (3, 3), (2, 2))
    """
    for xkey, ykey in (
        ("XBINNING", "YBINNING"),
        ("CCDXBIN", "CCDYBIN"),
        ("XBIN", "YBIN"),
        ("BINX", "BINY"),
        ("HBIN", "VBIN"),
    ):
        x = to_int(cards.get(xkey))
        if x is not None:
            y = to_int(cards.get(ykey))
            return x, (y if y is not None else x)
    for key in ("CCDSUM", "BINNING", "BIN"):
        value = cards.get(key)
        if value is None:
            continue
        parts = [p for p in re.split(r"[\sx×,*]+", str(value).strip().lower()) if p]
        numbers = [to_int(p) for p in parts]
        if len(numbers) == 1 and numbers[0] is not None:
            return numbers[0], numbers[0]
        if len(numbers) >= 2 and numbers[0] is not None and numbers[1] is not None:
            return numbers[0], numbers[1]
    return None, None


def filter_name(cards: Mapping[str, Any], comments: Mapping[str, str] | None = None) -> str | None:
    """The filter: FILTER/FILT/FILTNAME/INSFILTE, or the non-open elements of FILTER1+FILTER2.

    A filter wheel that writes a slot number with the name in the comment (DFOSC
    ``FILTER_A = 1 / Stroem_u_711``) gives the name. Open/empty slots are skipped;
    ``None`` when no filter is named.

    Examples
    --------
    >>> filter_name({"FILTER1": "GG455_G0329", "FILTER2": "open2-8"})
    'GG455_G0329'
    """
    comments = comments or {}
    for key in ("FILTER", "FILT", "FILTNAME", "INSFILTE", "FILTERS"):
        value = clean_str(cards.get(key), 64)
        if value is not None:
            return value
    parts = []
    for key in ("FILTER1", "FILTER2", "FILTER3", "FILTER_A", "FILTER_B"):
        value = cards.get(key)
        if value is None:
            continue
        value, comment = _repair_card(value, comments.get(key))
        text = clean_str(value, 64)
        if isinstance(value, int | float) and not isinstance(value, bool):
            text = clean_str(comment, 64)
        if text is None or _is_open(text):
            continue
        parts.append(text)
    return "+".join(parts)[:64] if parts else None


def _repair_card(value: Any, comment: str | None) -> tuple[Any, str | None]:
    """Split a value astropy could not parse (``'=  1 / Stroem_u_711'`` from a keyword longer
    than 8 characters) into its value and comment."""
    if not isinstance(value, str) or not value.lstrip().startswith("="):
        return value, comment
    body, _, note = value.lstrip()[1:].partition("/")
    body = body.strip().strip("'").strip()
    number = to_float(body)
    if number is not None:
        return (int(number) if number == int(number) else number), (note.strip() or comment)
    return body, (note.strip() or comment)


def _is_open(text: str) -> bool:
    word = text.strip().lower()
    return word in _OPEN_FILTERS or word.startswith("open")


def temperature(value: Any) -> float | None:
    """Degrees C; values above 100 are taken as Kelvin (MicroObservatory CAMTEMP = 271.0)."""
    number = to_float(value)
    if number is None:
        return None
    return round(number - 273.15, 3) if number > 100.0 else number


def sexagesimal(value: Any, *, hours: bool) -> float | None:
    """Degrees from ``'14 03 13'``, ``'+54:20:41'`` or a number; hours x 15 when ``hours``.

    Plain numbers (or numeric text without separators) are taken as degrees.

    Examples
    --------
    >>> round(sexagesimal("02 04 00", hours=True), 4), sexagesimal("-00:30:00", hours=False)
    (31.0, -0.5)
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return to_float(value)
    text = str(value).strip()
    parts = [p for p in re.split(r"[\s:hdms°'\"]+", text) if p]
    if len(parts) == 1:
        return to_float(parts[0])
    try:
        numbers = [float(p) for p in parts[:3]]
    except ValueError:
        return None
    sign = -1.0 if text.startswith("-") else 1.0
    numbers[0] = abs(numbers[0])
    degrees = numbers[0] + sum(n / 60.0**i for i, n in enumerate(numbers[1:], start=1))
    result = sign * degrees * (15.0 if hours else 1.0)
    return result if math.isfinite(result) else None


def coordinates(cards: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """Target or pointing (RA, Dec) in degrees.

    In order: OBJCTRA/OBJCTDEC (the target, MaxIm), RA/DEC, then the WCS reference
    point CRVAL1/2 when CTYPE1 is celestial. Sexagesimal RA text is in hours. A numeric
    RA that matches CRVAL1/15 is in hours (ESO/DFOSC ``RA = 19.07489``). A (0, 0)
    pair beside other coordinates is ignored (DSS placeholders).
    """
    crval = None
    ctype = str(cards.get("CTYPE1", "")).upper()
    if ctype.startswith("RA"):
        c1, c2 = to_float(cards.get("CRVAL1")), to_float(cards.get("CRVAL2"))
        if c1 is not None and c2 is not None:
            crval = (c1 % 360.0, c2)
    for rkey, dkey in (("OBJCTRA", "OBJCTDEC"), ("RA", "DEC"), ("RA_OBJ", "DEC_OBJ"), ("TELRA", "TELDEC")):
        rvalue, dvalue = cards.get(rkey), cards.get(dkey)
        if rvalue is None or dvalue is None:
            continue
        ra = sexagesimal(rvalue, hours=isinstance(rvalue, str) and _has_separator(rvalue))
        dec = sexagesimal(dvalue, hours=False)
        if ra is None or dec is None or (ra == 0.0 and dec == 0.0) or not -90 <= dec <= 90:
            continue
        numeric = not isinstance(rvalue, str) or not _has_separator(rvalue)
        if numeric and crval is not None and ra < 24 and abs(ra * 15.0 - crval[0]) < abs(ra - crval[0]):
            ra *= 15.0
        return ra % 360.0, dec
    if crval is not None:
        return crval
    return None, None


def _has_separator(text: str) -> bool:
    return bool(re.search(r"\d[\s:hdm]+\d", text.strip()))


def site_position(cards: Mapping[str, Any]) -> tuple[float | None, float | None, float | None]:
    """Observatory latitude, longitude (as written, east-positive by FITS convention), elevation."""
    lat = lon = None
    for key in LAT_KEYS:
        if key in cards:
            lat = sexagesimal(cards[key], hours=False)
            if lat is not None and -90 <= lat <= 90:
                break
            lat = None
    for key in LON_KEYS:
        if key in cards:
            lon = sexagesimal(cards[key], hours=False)
            if lon is not None and -360 <= lon <= 360:
                break
            lon = None
    elev = to_float(first_value(cards, ELEV_KEYS))
    if lat is None or lon is None:
        return None, None, elev
    return lat, (lon + 180.0) % 360.0 - 180.0, elev


def exposure_time(cards: Mapping[str, Any]) -> float | None:
    """Seconds from EXPTIME/EXPOSURE/EXP/ITIME; negative values are ``None``."""
    for key in EXPTIME_KEYS:
        value = to_float(cards.get(key))
        if value is not None:
            return value if value >= 0 else None
    return None


def gain_offset_mode(cards: Mapping[str, Any]) -> tuple[float | None, float | None, str | None]:
    """Gain in e-/ADU (EGAIN before GAIN, since CMOS software writes the gain *setting* in GAIN),
    offset, and readout mode (READOUTM..., or the text of a non-numeric GAIN)."""
    gain = None
    for key in GAIN_E_KEYS:
        gain = to_float(cards.get(key))
        if gain is not None and gain > 0:
            break
        gain = None
    offset = to_float(first_value(cards, OFFSET_KEYS))
    mode = clean_str(first_value(cards, READOUT_KEYS), 64)
    return gain, offset, mode


def normalize_header(
    cards: Mapping[str, Any],
    *,
    filename: str = "",
    comments: Mapping[str, str] | None = None,
) -> FrameHeader:
    """Normalise one frame's header cards into a :class:`FrameHeader`.

    Parameters
    ----------
    cards
        ``{KEYWORD: value}`` of the frame (for an extension: primary cards updated with
        the extension's), after :func:`apply_overrides`.
    filename
        The file's name, used to infer the kind when the header has no frame type.
    comments
        Card comments (:func:`parse_cards`); filter wheels that write a slot number keep
        the filter's name there.

    Examples
    --------
    >>> h = normalize_header({"IMAGETYP": "Dark Frame", "EXPTIME": 5.0, "XBINNING": 3,
    ...                       "YBINNING": 3, "CCD-TEMP": -4.4, "EGAIN": 0.4})
    >>> h.kind, h.exptime, (h.xbin, h.ybin), h.gain
    ('dark', 5.0, (3, 3), 0.4)
    """
    kind, inferred, source = kind_from_header(cards, filename)
    xbin, ybin = binning(cards)
    gain, offset, mode = gain_offset_mode(cards)
    ra, dec = coordinates(cards)
    lat, lon, elev = site_position(cards)
    naxis1 = to_int(cards.get("ZNAXIS1", cards.get("NAXIS1")))
    naxis2 = to_int(cards.get("ZNAXIS2", cards.get("NAXIS2")))
    return FrameHeader(
        kind=kind,
        kind_inferred=inferred,
        kind_source=source,
        filter=filter_name(cards, comments),
        exptime=exposure_time(cards),
        xbin=xbin,
        ybin=ybin,
        gain=gain,
        offset=offset,
        readout_mode=mode,
        ccd_temp=temperature(first_value(cards, CCD_TEMP_KEYS)),
        set_temp=temperature(first_value(cards, SET_TEMP_KEYS)),
        naxis1=naxis1,
        naxis2=naxis2,
        object=clean_str(first_value(cards, OBJECT_KEYS)),
        ra=ra,
        dec=dec,
        observer=clean_str(first_value(cards, OBSERVER_KEYS)),
        site=clean_str(first_value(cards, SITE_KEYS)),
        telescope=clean_str(first_value(cards, TELESCOPE_KEYS)),
        instrument=clean_str(first_value(cards, INSTRUMENT_KEYS)),
        date_obs=clean_str(cards.get("DATE-OBS"), 64),
        site_lat=lat,
        site_lon=lon,
        site_elev=elev,
    )
