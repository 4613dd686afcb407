"""Header cards: a FITS header (an astropy header, or the raw 80-character cards read fast) as a
plain ``{KEYWORD: value}`` dict, its comments, and the per-camera fixes of the configuration.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from astropy.io import fits

from nightpipe.config import CameraOverride
from nightpipe.frames.headers.keywords import FILTER_KEYS

_SKIP_CARDS = {"COMMENT", "HISTORY", ""}


def header_cards(header: fits.Header) -> dict[str, Any]:
    """The header as a JSON-safe ``{KEYWORD: value}`` dict (first occurrence wins).

    COMMENT, HISTORY and blank cards are dropped; undefined values become ``None``,
    non-finite floats and other odd values become strings. Cards astropy cannot parse
    (non-standard keywords, as in ESO/MIDAS headers) are kept under their raw keyword
    when their value can be read, and skipped otherwise.

    Examples
    --------
    >>> h = fits.Header([("IMAGETYP", "Bias Frame"), ("EXPTIME", 0.0), ("HISTORY", "x")])
    >>> header_cards(h)
    {'IMAGETYP': 'Bias Frame', 'EXPTIME': 0.0}
    """
    cards: dict[str, Any] = {}
    for card in header.cards:
        try:
            key = card.keyword
            if key in _SKIP_CARDS or key in cards:
                continue
            cards[key] = _json_value(card.value)
        except (ValueError, TypeError, fits.verify.VerifyError):
            continue
    return cards


def parse_cards(raw: bytes | str) -> tuple[dict[str, Any], dict[str, str], bool]:
    """Parse the 80-character cards of a raw FITS header: ``(values, comments, has_end)``.

    A fast, forgiving reader (about 10x faster than ``astropy.io.fits.Header``): values
    are ``str`` (quotes removed, ``''`` unescaped, trailing blanks stripped, CONTINUE
    cards joined), ``bool`` (T/F), ``int``, ``float`` (``D`` exponents accepted) or
    ``None`` (undefined); anything else stays text. The first occurrence of a keyword
    wins; COMMENT, HISTORY and blank cards are skipped. Non-standard cards whose ``=``
    is not in column 9 (``TEL_FOCUS =  15420`` in ESO/MIDAS headers) are read as well.
    Parsing stops at ``END``; ``has_end`` tells whether it was found.

    Examples
    --------
    >>> raw = "IMAGETYP= 'Bias Frame'  / frame type".ljust(80) + "EXPTIME =  0.0".ljust(80) + "END"
    >>> parse_cards(raw)
    ({'IMAGETYP': 'Bias Frame', 'EXPTIME': 0.0}, {'IMAGETYP': 'frame type'}, True)
    """
    text = raw.decode("ascii", errors="replace") if isinstance(raw, bytes | bytearray) else raw
    text = text.replace("\x00", " ")
    values: dict[str, Any] = {}
    comments: dict[str, str] = {}
    last_string: str | None = None
    for start in range(0, len(text), 80):
        card = text[start : start + 80]
        key = card[:8].rstrip()
        if key == "END" and not card[8:].strip():
            return values, comments, True
        if key == "CONTINUE" and last_string is not None:
            more, _comment = _parse_string(card[8:].lstrip())
            if more is not None:
                joined = (
                    values[last_string][:-1] + more
                    if values[last_string].endswith("&")
                    else values[last_string]
                )
                values[last_string] = joined
                continue
        last_string = None
        if key in _SKIP_CARDS:
            continue
        if card[8:10] == "= ":
            field = card[10:]
        elif key.startswith("HIERARCH") and "=" in card:
            head, _, field = card.partition("=")
            key = head[8:].strip()
        elif "=" in card[:40] and " " not in card[: card.index("=")].strip():
            head, _, field = card.partition("=")
            key = head.strip()
        else:
            continue
        if not key or key in values:
            continue
        value, comment = _parse_field(field)
        values[key] = value
        if comment:
            comments[key] = comment
        if isinstance(value, str) and value.endswith("&"):
            last_string = key
    return values, comments, False


def _parse_string(field: str) -> tuple[str | None, str]:
    """A quoted FITS string at the start of ``field``: (text, comment)."""
    if not field.startswith("'"):
        return None, ""
    parts = []
    start = 1
    while True:
        quote = field.find("'", start)
        if quote < 0:  # unterminated: take what is there
            parts.append(field[start:])
            return "".join(parts).rstrip(), ""
        if field.startswith("'", quote + 1):  # '' is an escaped quote
            parts.append(field[start : quote + 1])
            start = quote + 2
            continue
        parts.append(field[start:quote])
        rest = field[quote + 1 :]
        slash = rest.find("/")
        return "".join(parts).rstrip(), (rest[slash + 1 :].strip() if slash >= 0 else "")


def _parse_field(field: str) -> tuple[Any, str]:
    stripped = field.lstrip()
    if stripped[:1] == "'":
        text, comment = _parse_string(stripped)
        return (text if text is not None else ""), comment
    slash = stripped.find("/")
    if slash >= 0:
        body, comment = stripped[:slash].strip(), stripped[slash + 1 :].strip()
    else:
        body, comment = stripped.rstrip(), ""
    if not body:
        return None, comment
    if body == "T":
        return True, comment
    if body == "F":
        return False, comment
    if body.lstrip("+-").isdigit():
        return int(body), comment
    try:
        number = float(body.replace("D", "E").replace("d", "e"))
    except ValueError:
        return body, comment
    return (number if math.isfinite(number) else body), comment


def ascii_text(text: str) -> str:
    """``text`` as a FITS header allows it (printable ASCII): any other character as a Python
    backslash escape. For file names and paths written into headers; the database keeps the
    real names.

    Examples
    --------
    >>> print(ascii_text("lumière_ü_星.fits"))
    lumi\\xe8re_\\xfc_\\u661f.fits
    >>> ascii_text("m 29 dark.fits")
    'm 29 dark.fits'
    """
    if text.isascii() and text.isprintable():
        return text
    return "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode("ascii") for c in text)


def ascii_name(name: str, limit: int = 68) -> str:
    """A file name for one header card value: :func:`ascii_text`, and when that is longer than
    ``limit``, its start and a short hash of the whole name (so two long names stay apart).

    Examples
    --------
    >>> ascii_name("frame.fits")
    'frame.fits'
    >>> len(ascii_name("星" * 40)), ascii_name("星" * 40)[-9:-8]
    (68, '~')
    """
    text = ascii_text(name)
    if len(text) <= limit:
        return text
    digest = hashlib.sha1(name.encode("utf-8"), usedforsecurity=False).hexdigest()[:8]
    return f"{text[: limit - 9]}~{digest}"


def header_comments(header: fits.Header, keys: Sequence[str] = FILTER_KEYS) -> dict[str, str]:
    """Comments of the given keywords (filter wheels that store a slot number keep the name there)."""
    out: dict[str, str] = {}
    for key in keys:
        if key in header:
            try:
                comment = header.comments[key]
            except (KeyError, ValueError, IndexError):
                continue
            if comment:
                out[key] = str(comment).strip()
    return out


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value.replace("\x00", "") if isinstance(value, str) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, fits.card.Undefined):
        return None
    if isinstance(value, np.generic):
        return _json_value(value.item())
    return str(value)


def apply_overrides(cards: Mapping[str, Any], overrides: Sequence[CameraOverride]) -> dict[str, Any]:
    """Apply the per-camera header fixes of the configuration to a card dict (a new dict).

    An override applies when every ``match`` keyword is present with the given value
    (compared as stripped, case-insensitive text); its ``set`` keywords then replace or
    add cards.

    Examples
    --------
    >>> fix = CameraOverride(match={"INSTRUME": "Main"}, set={"IMAGETYP": "Light"})
    >>> apply_overrides({"INSTRUME": "Main "}, [fix])["IMAGETYP"]
    'Light'
    """
    out = dict(cards)
    for rule in overrides:
        if all(
            _text(out.get(key.upper())) == str(value).strip().lower() for key, value in rule.match.items()
        ):
            for key, value in rule.set.items():
                out[key.upper()] = value
    return out


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value).strip().lower()
