"""What the camera did: exposure time, binning, filter, detector temperatures, gain, offset and
readout mode, each from the keywords the dialects use for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nightpipe.frames.headers.detector import header_gain, offset_setting
from nightpipe.frames.headers.keywords import (
    EXPTIME_KEYS,
    READOUT_KEYS,
    clean_str,
    first_value,
    to_float,
    to_int,
)

_OPEN_FILTERS = {"", "open", "free", "none", "empty", "clear0", "blank"}


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


#: The longest exposure a header may state, seconds (about 11.6 days): longer is a wrong card.
MAX_EXPOSURE_S = 1e6


def exposure_time(cards: Mapping[str, Any]) -> float | None:
    """Seconds from EXPTIME/EXPOSURE/EXP/ITIME; negative values, or over :data:`MAX_EXPOSURE_S`,
    are ``None``."""
    for key in EXPTIME_KEYS:
        value = to_float(cards.get(key))
        if value is not None:
            return value if 0 <= value <= MAX_EXPOSURE_S else None
    return None


def gain_offset_mode(cards: Mapping[str, Any]) -> tuple[float | None, float | None, str | None]:
    """Gain in e-/ADU by dialect (:func:`~nightpipe.frames.headers.detector.header_gain`: EGAIN,
    or GAIN where it is not a CMOS gain setting), the camera offset, and the readout mode
    (READOUTM...)."""
    gain = header_gain(cards)
    mode = clean_str(first_value(cards, READOUT_KEYS), 64)
    return (gain.value if gain is not None else None), offset_setting(cards), mode
