"""The detector's electronics as a header states them: the gain in electrons per ADU, the CMOS gain
and offset *settings*, the read noise and the saturation level, each read from the keywords a
dialect means it by.

``GAIN`` means two things. Observatory and CCD software headers (IRAF conventions: the SAAO and
NOT files in ``../shared/data``; MaxIm DL and SBIG cameras write ``EGAIN`` for the same, after the
SBIG FITS extensions) give electrons per ADU. CMOS acquisition programs (N.I.N.A., SharpCap,
Sequence Generator Pro, ASIAIR, KStars/Ekos and INDI, APT, CCDciel, FireCapture) write the
camera's gain *setting* there (``GAIN = 100``, a ZWO or QHY unit) and the electrons per ADU, when
the driver reports them, in ``EGAIN``; so does any header that pairs ``GAIN`` with an ``OFFSET``
setting. Likewise ``OFFSET`` is a CMOS offset setting, not a level in ADU: it only tells which
masters fit a frame, and the bias removes the level it adds.

Nothing here checks whether a value is plausible (see :mod:`nightpipe.frames.detector`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nightpipe.frames.headers.keywords import OFFSET_KEYS, first_value, to_float

#: Keywords that always mean electrons per ADU, in order of preference.
ELECTRON_GAIN_KEYS = ("EGAIN", "GAIN_E", "E-GAIN")
#: Read noise, electrons RMS.
READ_NOISE_KEYS = ("RDNOISE", "READNOIS", "RON")
#: Saturation level, ADU.
SATURATION_KEYS = ("SATURATE", "SATLEVEL")
#: Keywords naming the program that wrote the file.
SOFTWARE_KEYS = ("SWCREATE", "CREATOR", "PROGRAM", "SOFTWARE")
#: CMOS acquisition programs that write the gain setting in GAIN.
_CMOS_SOFTWARE = re.compile(
    r"n\.i\.n\.a|\bnina\b|sharpcap|sequence generator|\bsgp(ro)?\b|asiair|asistudio|asicap|kstars|"
    r"\bekos\b|\bindi(go)?\b|astro ?photography ?tool|\bapt\b|ccdciel|firecapture",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class HeaderNumber:
    """A number read from a header and the keyword it came from."""

    keyword: str
    value: float


def creator(cards: Mapping[str, Any]) -> str | None:
    """The program that wrote the file (SWCREATE, CREATOR...), as written."""
    value = first_value(cards, SOFTWARE_KEYS)
    return str(value).strip() or None if value is not None else None


def gain_is_setting(cards: Mapping[str, Any]) -> str | None:
    """Why ``GAIN`` is a camera setting rather than e-/ADU in this header, or ``None`` when it is e-/ADU.

    Examples
    --------
    >>> gain_is_setting({"GAIN": 100, "SWCREATE": "N.I.N.A. 2.1.0.9001"})
    'written by N.I.N.A. 2.1.0.9001'
    >>> gain_is_setting({"GAIN": 139, "OFFSET": 21})
    'GAIN beside an OFFSET setting'
    >>> gain_is_setting({"GAIN": 1.9, "RDNOISE": 5.0}) is None
    True
    """
    program = creator(cards)
    if program is not None and _CMOS_SOFTWARE.search(program):
        return f"written by {program}"
    if to_float(cards.get("OFFSET")) is not None:
        return "GAIN beside an OFFSET setting"
    return None


def header_gain(cards: Mapping[str, Any]) -> HeaderNumber | None:
    """Electrons per ADU as the header states them: EGAIN (GAIN_E, E-GAIN), else GAIN unless
    :func:`gain_is_setting`. Zero or negative values are no gain (N.I.N.A. writes 0 when the
    driver does not know it).

    Examples
    --------
    >>> header_gain({"GAIN": 100, "EGAIN": 1.6, "OFFSET": 10})
    HeaderNumber(keyword='EGAIN', value=1.6)
    >>> header_gain({"GAIN": 100, "OFFSET": 10}) is None, header_gain({"GAIN": 1.9})
    (True, HeaderNumber(keyword='GAIN', value=1.9))
    """
    keys = ELECTRON_GAIN_KEYS if gain_is_setting(cards) else (*ELECTRON_GAIN_KEYS, "GAIN")
    return _first_positive(cards, keys)


def gain_setting(cards: Mapping[str, Any]) -> float | None:
    """The CMOS camera's gain setting (GAIN of a CMOS dialect), else ``None``.

    Examples
    --------
    >>> gain_setting({"GAIN": 100, "SWCREATE": "SharpCap v4.0"}), gain_setting({"GAIN": 1.9})
    (100.0, None)
    """
    if gain_is_setting(cards) is None:
        return None
    return to_float(cards.get("GAIN"))


def header_offset(cards: Mapping[str, Any]) -> HeaderNumber | None:
    """The camera offset (OFFSET, CCDOFFST, BLKLEVEL, PEDESTAL) and its keyword: a setting and a
    matching key, never a level to subtract (the bias master removes what it adds)."""
    for key in OFFSET_KEYS:
        value = to_float(cards.get(key))
        if value is not None:
            return HeaderNumber(key, value)
    return None


def offset_setting(cards: Mapping[str, Any]) -> float | None:
    """The value of :func:`header_offset`, or ``None``."""
    found = header_offset(cards)
    return found.value if found is not None else None


def header_read_noise(cards: Mapping[str, Any]) -> HeaderNumber | None:
    """Read noise in electrons from RDNOISE, READNOIS or RON (positive values only)."""
    return _first_positive(cards, READ_NOISE_KEYS)


def header_saturation(cards: Mapping[str, Any]) -> HeaderNumber | None:
    """Saturation level in ADU from SATURATE or SATLEVEL (positive values only)."""
    return _first_positive(cards, SATURATION_KEYS)


def storable_maximum(cards: Mapping[str, Any]) -> float | None:
    """The largest raw value the file's integer pixels can hold (BITPIX, BZERO, BSCALE), or
    ``None`` for floating-point data.

    Examples
    --------
    >>> storable_maximum({"BITPIX": 16, "BZERO": 32768}), storable_maximum({"BITPIX": 16})
    (65535.0, 32767.0)
    >>> storable_maximum({"BITPIX": -32}) is None
    True
    """
    bitpix = to_float(cards.get("BITPIX"))
    if bitpix is None or bitpix <= 0:
        return None
    bzero = to_float(cards.get("BZERO")) or 0.0
    bscale = to_float(cards.get("BSCALE")) or 1.0
    top = 255.0 if bitpix == 8 else 2.0 ** (bitpix - 1) - 1.0
    return top * abs(bscale) + bzero


def _first_positive(cards: Mapping[str, Any], keys: tuple[str, ...]) -> HeaderNumber | None:
    for key in keys:
        value = to_float(cards.get(key))
        if value is not None and value > 0:
            return HeaderNumber(key, value)
    return None
