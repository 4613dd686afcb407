"""What the TESS and Kepler/K2 file readers share: array types, the SPOC aperture bits, and the
helpers that read a mission file's headers and tables (which mission, exposure time, columns).

The readers themselves are :mod:`nightpipe.tess.pixel_files` and
:mod:`nightpipe.tess.lightcurve_files`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from nightpipe.errors import FitsReadError, HeaderError
from nightpipe.tess.times import MISSION_BJDREF

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
PixelKind = Literal["tpf", "tesscut", "image"]

#: Aperture-extension bits (SPOC): collected, in the optimal aperture, used for the background.
APERTURE_COLLECTED = 1
APERTURE_OPTIMAL = 2
APERTURE_BACKGROUND = 4


def merged_header(primary: fits.Header, extension: fits.Header) -> fits.Header:
    """The primary header updated with an extension's keywords (the extension wins)."""
    header = primary.copy()
    skip = {"XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT", "GCOUNT", "TFIELDS", "EXTNAME"}
    for card in extension.cards:
        key = card.keyword
        if key in skip or key.startswith(("TTYPE", "TFORM", "TUNIT", "TDISP", "TDIM", "TNULL")):
            continue
        if key == "HISTORY":
            header.add_history(str(card.value))
            continue
        if key in ("COMMENT", ""):
            continue
        header[key] = (card.value, card.comment)
    return header


def detect_mission(header: fits.Header, path: Path | str | None = None) -> str:
    """``TESS``, ``Kepler`` or ``K2`` from ``TELESCOP``/``MISSION``/``BJDREFI``.

    Raises
    ------
    HeaderError
        When none of these keywords identifies the mission.
    """
    telescope = str(header.get("TELESCOP", "") or "").strip().upper()
    mission = str(header.get("MISSION", "") or "").strip().upper()
    if telescope == "TESS" or mission == "TESS":
        return "TESS"
    if mission == "K2" or "CAMPAIGN" in header:
        return "K2"
    if telescope == "KEPLER" or mission == "KEPLER":
        return "Kepler"
    refi = header.get("BJDREFI")
    if isinstance(refi, int | float):
        for name, ref in MISSION_BJDREF.items():
            if abs(float(refi) - ref) < 1:
                return name
    raise HeaderError(
        "cannot tell the mission: no TELESCOP, MISSION or BJDREFI keyword",
        path=path,
        hint="this reads TESS, Kepler and K2 files; set TELESCOP in a copy of the file",
    )


def _float_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _exptime_s(header: fits.Header) -> float:
    """Effective exposure of one cadence in seconds (TIMEDEL x DEADC, else frame sums)."""
    timedel = _float_or_none(header.get("TIMEDEL"))
    deadc = _float_or_none(header.get("DEADC")) or 1.0
    if timedel is not None:
        return timedel * 86400.0 * deadc
    int_time = _float_or_none(header.get("INT_TIME"))
    num_frm = _float_or_none(header.get("NUM_FRM"))
    if int_time is not None and num_frm is not None:
        return int_time * num_frm
    return float("nan")


def _table_hdu(hdul: fits.HDUList, names: tuple[str, ...], required: str) -> fits.BinTableHDU | None:
    for name in names:
        if name in hdul and isinstance(hdul[name], fits.BinTableHDU):
            return hdul[name]
    for hdu in hdul[1:]:
        if isinstance(hdu, fits.BinTableHDU) and required in hdu.columns.names:
            return hdu
    return None


def _column(data: fits.FITS_rec, name: str, path: Path, dtype: Any = np.float64) -> np.ndarray:
    try:
        return np.array(data[name], dtype=dtype)
    except (KeyError, ValueError, TypeError, OSError) as exc:
        raise FitsReadError(
            f"cannot read column {name} ({exc})", path=path, hint="the file is probably truncated; re-copy it"
        ) from None


def _is_tesscut(header: fits.Header) -> bool:
    creator = str(header.get("CREATOR", "") or "").lower()
    origin = str(header.get("ORIGIN", "") or "").lower()
    return "astrocut" in creator or "tesscut" in creator or "mast" in origin or "stsci" in origin


def _background_subtracted(header: fits.Header, kind: PixelKind) -> bool:
    history = " ".join(str(h) for h in header.get("HISTORY", [])).upper()
    if "FLUX_PLUS_BKG" in history:
        return False  # kepimages with imtype=FLUX_PLUS_BKG put the background back
    value = header.get("BACKAPP")
    if isinstance(value, bool):
        return value
    return kind == "tpf"
