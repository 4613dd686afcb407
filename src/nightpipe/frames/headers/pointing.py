"""Where the telescope pointed and where it stood: sexagesimal angles, the target or pointing
(RA, Dec) from the many coordinate keywords, the side of the pier, and the observatory's position.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from nightpipe.frames.headers.keywords import (
    ELEV_KEYS,
    LAT_KEYS,
    LON_KEYS,
    PIERSIDE_KEYS,
    first_value,
    to_float,
)


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
    if not parts:  # blank, or separators only: SITELAT = ''
        return None
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


def pier_side(cards: Mapping[str, Any]) -> str | None:
    """``"EAST"`` or ``"WEST"``: the side of the pier a German equatorial mount was on (it changes
    at a meridian flip), from ``PIERSIDE`` text (``'EAST'``, ``'West'``, ``'pierEast'``) or ASCOM's
    number (0 east, 1 west); ``None`` when absent or unknown.

    Examples
    --------
    >>> pier_side({"PIERSIDE": "West"}), pier_side({"PIERSIDE": 0}), pier_side({"PIERSIDE": "Unknown"})
    ('WEST', 'EAST', None)
    """
    value = first_value(cards, PIERSIDE_KEYS)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return {0: "EAST", 1: "WEST"}.get(int(value)) if float(value).is_integer() else None
    text = str(value).strip().upper().removeprefix("PIER")
    if text in ("E", "EAST"):
        return "EAST"
    if text in ("W", "WEST"):
        return "WEST"
    return None
