"""One frame's header normalised: :func:`normalize_header` reads every fact through the modules of
the package into a frozen :class:`FrameHeader`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nightpipe.frames.headers.camera import binning, exposure_time, filter_name, gain_offset_mode, temperature
from nightpipe.frames.headers.detector import gain_setting
from nightpipe.frames.headers.keywords import (
    CCD_TEMP_KEYS,
    INSTRUMENT_KEYS,
    OBJECT_KEYS,
    OBSERVER_KEYS,
    SET_TEMP_KEYS,
    SITE_KEYS,
    TELESCOPE_KEYS,
    clean_str,
    first_value,
    to_int,
)
from nightpipe.frames.headers.kind import kind_from_header
from nightpipe.frames.headers.pointing import coordinates, site_position


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
    gain
        Electrons per ADU as the header states them (EGAIN, or GAIN where the dialect means
        e-/ADU; see :mod:`~nightpipe.frames.headers.detector`), not checked for plausibility.
    gain_setting
        The CMOS camera's gain setting (``GAIN`` of N.I.N.A., SharpCap...), a matching key.
    offset
        The camera offset setting (OFFSET, PEDESTAL...), a matching key: never subtracted.
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
    gain_setting: float | None = None
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
        the extension's), after :func:`~nightpipe.frames.headers.cards.apply_overrides`.
    filename
        The file's name, used to infer the kind when the header has no frame type.
    comments
        Card comments (:func:`~nightpipe.frames.headers.cards.parse_cards`); filter wheels
        that write a slot number keep the filter's name there.

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
        gain_setting=gain_setting(cards),
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
