"""What the scan says about a frame's header: exposure and time keywords that cannot be read.

:func:`check_frame` runs after a chunk is timed. An exposure keyword that is there but is not a
number of seconds makes the frame unusable (it cannot be matched to a dark, nor scaled), unless
another exposure keyword gives the time; a ``DATE-OBS`` that is not a date-time is said, with the
keyword the time came from instead, or that the frame has no time (a light without a time belongs
to no night and is in no light curve). A dark without any exposure keyword is unusable too (it
would be grouped with darks of any exposure). The texts name the file, the keyword and its value.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from nightpipe.errors import HeaderError
from nightpipe.frames.headers import EXPTIME_KEYS, to_float
from nightpipe.frames.headers.camera import MAX_EXPOSURE_S
from nightpipe.frames.timing import parse_date
from nightpipe.inventory.classify import FrameInfo

_FIX_CARD = "fix the card, or set it with a [[camera.overrides]] rule"
#: Time keywords besides DATE-OBS that could have given the time (see nightpipe.frames.timing).
_OTHER_TIME_KEYS = ("DATE-BEG", "DATE-AVG", "DATE-END", "DATE", "JD", "JD-OBS", "MJD-OBS", "MJD-AVG")


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def exposure_problem(cards: dict[str, Any], exptime: float | None) -> tuple[str | None, bool]:
    """``(what is wrong, unusable)`` of the exposure keywords; ``(None, False)`` when nothing is.

    An exposure keyword read before the one used (or instead of any) that is not a number of
    seconds is a problem; it makes the frame unusable when no exposure time is left.

    Examples
    --------
    >>> exposure_problem({"EXPTIME": "sixty"}, None)
    ("EXPTIME = 'sixty' is not an exposure time in seconds (a number >= 0)", True)
    >>> exposure_problem({"EXPTIME": "sixty", "EXPOSURE": 60.0}, 60.0)[1]
    False
    >>> exposure_problem({"EXPTIME": 30.0}, 30.0)
    (None, False)
    """
    for key in EXPTIME_KEYS:
        value = cards.get(key)
        if not _present(value):
            continue
        number = to_float(value)
        if number is not None and 0 <= number <= MAX_EXPOSURE_S:
            return None, False
        what = f"{key} = {_shown(value)} is not an exposure time in seconds (a number >= 0)"
        if number is not None and number > MAX_EXPOSURE_S:
            what = f"{key} = {_shown(value)} is not an exposure time in seconds (over {MAX_EXPOSURE_S:g} s)"
        if exptime is not None:
            return f"{what}; the exposure time {exptime:g} s of a later keyword is used", False
        return what, True
    return None, False


def time_problem(cards: dict[str, Any], kind: str, source: str | None) -> str | None:
    """What is wrong with the frame's time keywords, or ``None``.

    ``source`` is where the scan found the time (``None``: no time at all).

    Examples
    --------
    >>> time_problem({"DATE-OBS": "yesterday evening"}, "light", None)[:70]
    "no time: DATE-OBS = 'yesterday evening' is not a date-time (YYYY-MM-DD"
    >>> time_problem({"DATE-OBS": "2017-12-20T02:00:00"}, "light", "DATE-OBS start") is None
    True
    >>> time_problem({"JD": 58107.58}, "light", None)[:59]
    'no time: no DATE-OBS, and JD = 58107.58 give no usable time'
    """
    value = cards.get("DATE-OBS")
    unreadable = _present(value) and parse_date(value) is None
    what = f"DATE-OBS = {_shown(value)} is not a date-time (YYYY-MM-DDThh:mm:ss)" if unreadable else None
    if source is not None:
        return f"{what}; the time comes from {source}" if what else None
    if kind != "light":
        return what
    others = [f"{key} = {_shown(cards[key])}" for key in _OTHER_TIME_KEYS if _present(cards.get(key))]
    if what is None:
        what = f"DATE-OBS = {_shown(value)} has no time of day" if _present(value) else "no DATE-OBS"
    if others:
        missing = f"{what}, and {', '.join(others)} give no usable time either"
    else:
        missing = what if _present(value) else "no DATE-OBS, nor any other time keyword (JD, MJD-OBS...)"
    return f"no time: {missing}; the frame belongs to no night and is left out of every light curve"


def check_frame(path: str, frame: FrameInfo) -> FrameInfo:
    """The frame with its notes and, when it cannot be used, why (:attr:`FrameInfo.unusable`)."""
    notes: list[str] = []
    unusable = None
    exposure, fatal = exposure_problem(frame.cards, frame.header.exptime)
    if exposure is not None:
        text = str(HeaderError(exposure, path=path, hint=_FIX_CARD))
        if fatal:
            unusable = str(
                HeaderError(
                    exposure,
                    path=path,
                    hint=f"the frame cannot be matched to a dark nor scaled; {_FIX_CARD}",
                )
            )
        else:
            notes.append(text)
    if unusable is None and frame.header.kind == "dark" and frame.header.exptime is None:
        unusable = str(
            HeaderError(
                f"a dark without an exposure time: no {'/'.join(EXPTIME_KEYS[:2])} card "
                "(nor any other exposure keyword)",
                path=path,
                hint="darks are grouped and matched to lights by EXPTIME: add the card, or set it "
                "with a [[camera.overrides]] rule",
            )
        )
    timing = time_problem(frame.cards, frame.header.kind, frame.time.source if frame.time else None)
    if timing is not None:
        notes.append(str(HeaderError(timing, path=path, hint="fix the DATE-OBS card")))
    if not notes and unusable is None:
        return frame
    return replace(frame, notes=tuple(notes), unusable=unusable)
