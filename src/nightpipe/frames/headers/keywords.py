"""The keyword dialects: which keywords carry each fact, in order of preference, and the readers
that take a usable value from them (the first non-blank card, clean text, finite numbers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

KINDS = ("bias", "dark", "flat", "light", "unknown")

#: Keywords naming the frame type, in order of preference.
TYPE_KEYS = ("IMAGETYP", "IMAGETYPE", "IMGTYPE", "OBSTYPE", "FRAMETYP", "FRAMETYPE", "FRAME", "EXPTYPE")
EXPTIME_KEYS = ("EXPTIME", "EXPOSURE", "EXP", "ITIME", "EXPOSED", "TELAPSE")
FILTER_KEYS = (
    "FILTER",
    "FILT",
    "FILTNAME",
    "FILTER1",
    "FILTER2",
    "INSFILTE",
    "FILTERS",
    "FILTER_A",
    "FILTER_B",
)
CCD_TEMP_KEYS = ("CCD-TEMP", "CCD_TEMP", "CCDTEMP", "DET-TEMP", "DETTEMP", "CAMTEMP", "TEMPERAT")
SET_TEMP_KEYS = ("SET-TEMP", "SET_TEMP", "SETTEMP", "CCD-TSET", "TEMPSET")
#: Gain keywords; GAIN is e-/ADU only where the dialect means it so (see :mod:`.detector`).
GAIN_E_KEYS = ("EGAIN", "GAIN_E", "E-GAIN", "GAIN")
OFFSET_KEYS = ("OFFSET", "CCDOFFST", "BLKLEVEL", "PEDESTAL")
READOUT_KEYS = ("READOUTM", "READMODE", "READOUT", "RDMODE", "GAINM")
OBJECT_KEYS = ("OBJECT", "OBJNAME", "TARGNAME", "TARGET")
OBSERVER_KEYS = ("OBSERVER", "AUTHOR")
SITE_KEYS = ("OBSERVAT", "SITENAME", "SITE", "OBSERVATORY")
TELESCOPE_KEYS = ("TELESCOP", "TELESCOPE")
INSTRUMENT_KEYS = ("INSTRUME", "CAMERA", "DETECTOR")
LAT_KEYS = ("SITELAT", "LAT-OBS", "OBSLAT", "LATITUDE", "OBSGEO-B", "GEOLAT")
LON_KEYS = ("SITELONG", "LONG-OBS", "OBSLONG", "LONGITUD", "LONGITUDE", "OBSGEO-L", "GEOLON")
ELEV_KEYS = ("SITEELEV", "ALT-OBS", "ELEVATIO", "OBSGEO-H", "HEIGHT")
#: The side of the pier of a German equatorial mount (ASCOM drivers, MaxIm DL, N.I.N.A., SGP).
PIERSIDE_KEYS = ("PIERSIDE", "PIER_SIDE", "PIER-SID")


def first_value(cards: Mapping[str, Any], keys: Sequence[str]) -> Any:
    """The value of the first of ``keys`` present and not blank, else ``None``."""
    for key in keys:
        value = cards.get(key)
        if value is not None and not (isinstance(value, str) and not value.strip()):
            return value
    return None


def clean_str(value: Any, limit: int = 128) -> str | None:
    """A card value as stripped text of at most ``limit`` characters (NULs removed), else ``None``."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).replace("\x00", "").strip()
    return text[:limit] or None


def to_float(value: Any) -> float | None:
    """A finite float from a card value (numbers or numeric text), else ``None``.

    Examples
    --------
    >>> to_float("060.00"), to_float("abc"), to_float(float("nan"))
    (60.0, None, None)
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def to_int(value: Any) -> int | None:
    """A positive whole number from a card value, else ``None``."""
    number = to_float(value)
    if number is None or number <= 0 or number != int(number):
        return None
    return int(number)
