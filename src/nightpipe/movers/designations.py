"""MPC packed designations: numbers (``229762`` -> ``M9762``) and provisional designations
(``2019 RB21`` -> ``K19R21B``), as the 80-column lines and MPCORB.DAT write them, and comets'
(``C/1995 O1`` -> ``    CJ95O010``, ``1P/Halley`` -> ``0001P``, as the 80-column lines and
CometEls.txt write them in columns 1-12)."""

from __future__ import annotations

import re

DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PROVISIONAL = re.compile(r"^(1[89]|20)(\d\d) ([A-Z])([A-Z])(\d*)$")
COMET_TYPES = "PCDXIA"
PERIODIC = re.compile(r"^(\d{1,4})([PDI])(?:-([A-Z]))?(?:/.*)?$")  # 1P/Halley, 73P-C/..., 1I
COMET_PROVISIONAL = re.compile(r"^([PCDXA])/(1[89]|20)(\d\d) ([A-Z])(\d+)(?:-([A-Z]))?(?:\s.*)?$")


def pack_number(number: str) -> str:
    """The 5-character packed form of a minor-planet number ('' when it is not a number)."""
    text = number.strip().strip("()")
    if not text.isdigit():
        return ""  # unnumbered ('', '-' as SkyBoT writes it)
    value = int(text)
    if value < 100000:
        return f"{value:05d}"
    if value < 620000:
        return DIGITS[value // 10000] + f"{value % 10000:04d}"
    rest, out = value - 620000, ""
    for _ in range(4):
        rest, digit = divmod(rest, 62)
        out = DIGITS[digit] + out
    return "~" + out


def pack_provisional(designation: str) -> str:
    """The 7-character packed form of a provisional designation such as ``2007 TE366``;
    anything else (a temporary designation) is returned as it is, cut to 7 characters."""
    match = PROVISIONAL.match(designation.strip())
    if match is None:
        return designation.strip()[:7]
    century, year, half, letter, cycle = match.groups()
    count = int(cycle or 0)
    if count >= 620:
        raise ValueError(f"provisional designation out of range: {designation!r}")
    return f"{'IJK'[int(century) - 18]}{year}{half}{DIGITS[count // 10]}{count % 10}{letter}"


def unpack_provisional(packed: str) -> str:
    """``K19R21B`` -> ``2019 RB21`` (a string that is not a packed provisional is returned as it is)."""
    if len(packed) != 7 or packed[0] not in "IJK" or not packed[1:3].isdigit():
        return packed
    year = 1800 + 100 * "IJK".index(packed[0]) + int(packed[1:3])
    count = DIGITS.index(packed[4]) * 10 + int(packed[5])
    return f"{year} {packed[3]}{packed[6]}{count if count else ''}"


def unpack_number(packed: str) -> str:
    """``M9762`` -> ``229762`` ('' for a string that is not a packed number)."""
    text = packed.strip()
    if len(text) != 5:
        return ""
    if text[0] == "~":
        value = 0
        for char in text[1:]:
            value = 62 * value + DIGITS.index(char)
        return str(value + 620000)
    if not text[1:].isdigit() or text[0] not in DIGITS:
        return ""
    return str(DIGITS.index(text[0]) * 10000 + int(text[1:]))


def ades_ids(number: str, designation: str) -> tuple[str, str, str]:
    """ADES (permID, provID, trkSub) of an 80-column line's packed number and designation: the
    number unpacked, a comet's designation, a packed provisional designation unpacked, anything
    else a trkSub."""
    comet_perm, comet_prov = comet_ades_ids(f"{number:>5}{designation:<7}")
    if comet_perm or comet_prov:
        return comet_perm, comet_prov, ""
    perm = unpack_number(number) if number.strip() else ""
    if perm or not designation.strip():
        return perm, "", ""
    readable = unpack_provisional(designation.strip())
    return ("", readable, "") if readable != designation.strip() else ("", "", designation.strip())


def pack_comet(designation: str) -> str:
    """Columns 1-12 of an observation line for a comet's designation (``C/1995 O1 (Hale-Bopp)``
    -> ``    CJ95O010``, ``1P/Halley`` -> ``0001P``, ``73P-C`` -> ``0073P      c``); '' for a
    designation that is not a comet's."""
    text = designation.strip()
    periodic = PERIODIC.match(text)
    if periodic is not None:
        number, kind, fragment = periodic.groups()
        return f"{int(number):04d}{kind}" + (f"{'':6}{fragment.lower()}" if fragment else "")
    match = COMET_PROVISIONAL.match(text)
    if match is None:
        return ""
    kind, century, year, half, order, fragment = match.groups()
    count = int(order)
    if count >= 620:
        raise ValueError(f"comet designation out of range: {designation!r}")
    packed = f"{'IJK'[int(century) - 18]}{year}{half}{DIGITS[count // 10]}{count % 10}"
    return f"{'':4}{kind}{packed}{fragment.lower() if fragment else '0'}"


def comet_ades_ids(columns: str) -> tuple[str, str]:
    """ADES (permID, provID) of an observation line's columns 1-12 for a comet (``0001P`` ->
    ``1P``; ``    CJ95O010`` -> ``C/1995 O1``), or ('', '') when they are not a comet's."""
    text = columns.ljust(12)
    kind, packed = text[4], text[5:12]
    if kind not in COMET_TYPES:
        return "", ""
    if text[:4].strip().isdigit():
        fragment = text[11].strip().upper() if packed[:6].strip() == "" else ""
        return f"{int(text[:4])}{kind}" + (f"-{fragment}" if fragment else ""), ""
    if len(packed) != 7 or packed[0] not in "IJK" or not packed[1:3].isdigit():
        return "", ""
    year = 1800 + 100 * "IJK".index(packed[0]) + int(packed[1:3])
    order = DIGITS.index(packed[4]) * 10 + int(packed[5])
    fragment = "" if packed[6] == "0" else f"-{packed[6].upper()}"
    return "", f"{kind}/{year} {packed[3]}{order}{fragment}"


def report_fields(designation: str, number: str) -> tuple[str, str]:
    """(columns 1-5, columns 6-12) of an observation line for a body: a numbered minor planet, a
    comet, a provisional designation, or a temporary designation of a candidate."""
    if number:
        return pack_number(number), ""
    comet = pack_comet(designation)
    if comet:
        return comet[:5], comet[5:12].rstrip()
    return "", pack_provisional(designation)
