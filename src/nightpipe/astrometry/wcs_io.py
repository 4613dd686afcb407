"""Reading frames for solving and writing a solved WCS into FITS headers (atomically)."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from nightpipe.astrometry.series import FrameSolution
from nightpipe.errors import FitsReadError
from nightpipe.frames.fitsio import (
    header_span,
    image_hdu_index,
    open_fits,
    write_fits_atomic,
    write_with_header,
)
from nightpipe.frames.flags import BAD_PIXEL_FLAGS, PixelFlag

log = logging.getLogger(__name__)

#: Keywords that describe a celestial WCS (removed before a new one is written).
WCS_KEY_PREFIXES = (
    "CTYPE", "CRVAL", "CRPIX", "CDELT", "CUNIT", "CROTA", "CD1_", "CD2_", "PC1_", "PC2_",
    "A_", "B_", "AP_", "BP_", "PV1_", "PV2_", "LONPOLE", "LATPOLE", "WCSAXES", "RADESYS",
    "EQUINOX", "MJDREF", "IMAGEW", "IMAGEH", "WCSNAME",
)  # fmt: skip
OUR_KEYS = ("NPWCS", "NPWMETH", "NPWNMAT", "NPWRMSA", "NPWRMSP", "NPWSCALE", "NPWROT")


@dataclass(frozen=True)
class FrameForSolving:
    """The image to solve with its header, bad-pixel mask and saturated-pixel map (if known), and
    a calibrated frame's MASK plane (uint16 PixelFlag bits, as the photometry reads it)."""

    data: np.ndarray
    header: fits.Header
    hdu: int
    mask: np.ndarray | None
    saturated: np.ndarray | None
    flags: np.ndarray | None = None


def read_frame_for_solving(path: Path | str) -> FrameForSolving:
    """Read the first 2-D image of a file; a calibrated frame's ``MASK`` extension gives the masks.

    Raises
    ------
    FitsReadError
        When the file is not FITS, is truncated or holds no image.
    """
    path = Path(path)
    with open_fits(path) as hdul:
        index = image_hdu_index(hdul)
        try:
            header = hdul[index].header.copy()
            data = np.asarray(hdul[index].data, dtype=np.float32)
            flags = None
            if "MASK" in hdul and hdul["MASK"].data is not None:
                flags = np.asarray(hdul["MASK"].data, dtype=np.uint16)
        except (OSError, ValueError, TypeError, IndexError) as exc:
            raise FitsReadError(
                f"cannot read image data ({exc})",
                path=path,
                hint="the file is probably truncated; re-copy it",
            ) from None
    if data.ndim != 2:
        raise FitsReadError(f"HDU {index} does not hold a 2-D image", path=path)
    mask = saturated = None
    if flags is not None and flags.shape == data.shape:
        mask = (flags & int(BAD_PIXEL_FLAGS | PixelFlag.NO_DATA | PixelFlag.COSMIC_RAY)) != 0
        saturated = (flags & int(PixelFlag.SATURATED)) != 0
    else:
        flags = None
    return FrameForSolving(data, header, index, mask, saturated, flags)


def strip_wcs(header: fits.Header) -> fits.Header:
    """Remove every celestial WCS keyword (and our quality keywords) from ``header``, in place."""
    for key in list(dict.fromkeys(header.keys())):
        if key.startswith(WCS_KEY_PREFIXES) or key in OUR_KEYS:
            header.remove(key, remove_all=True)
    return header


def was_solved_by_us(header: fits.Header) -> bool:
    """True when the header's WCS was written by this step (``NPWCS = T``)."""
    return bool(header.get("NPWCS", False))


def wcs_cards(solution: FrameSolution) -> fits.Header:
    """The header cards of a solution: the WCS (with SIP) and our quality keywords."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        cards = solution.wcs.to_header(relax=True)
    for key in ("DATE-OBS", "MJD-OBS", "DATEREF", "MJDREFI", "MJDREFF", "TIMESYS"):
        cards.remove(key, ignore_missing=True)
    q = solution.quality
    cards["NPWCS"] = (True, "WCS written by nightpipe solve")
    cards["NPWMETH"] = (solution.method, "how the WCS was found")
    cards["NPWNMAT"] = (q.n_matched, "index stars matched")
    cards["NPWRMSA"] = (round(float(q.rms_arcsec), 4), "[arcsec] residual RMS on index stars")
    cards["NPWRMSP"] = (round(float(q.rms_px), 4), "[px] residual RMS on index stars")
    cards["NPWSCALE"] = (round(q.geometry.pixel_scale, 5), "[arcsec/px] pixel scale")
    cards["NPWROT"] = (round(q.geometry.rotation, 4), "[deg] PA of +y axis, east of north")
    return cards


_SOLVE_HISTORY = "nightpipe solve: "


def drop_solve_history(header: fits.Header) -> int:
    """Remove the HISTORY of an earlier solve (in place; a long one spans several cards); returns the
    number of cards removed. A frame solved again (a run killed after the WCS was written, before it
    was recorded) then holds one solve's HISTORY, as a frame solved once.

    Examples
    --------
    >>> h = fits.Header()
    >>> h.add_history("calibrated")
    >>> h.add_history("nightpipe solve: WCS by solve-field, 15 index stars, RMS 0.50 arcsec (0.084 px)")
    >>> drop_solve_history(h), list(h["HISTORY"])
    (2, ['calibrated'])
    """
    cards = list(header.cards)
    drop: list[int] = []
    i = 0
    while i < len(cards):
        card = cards[i]
        if card.keyword == "HISTORY" and str(card.value).startswith(_SOLVE_HISTORY):
            text, j = str(card.value), i
            # the text is one sentence ending in "px)": the cards after it up to that end are its rest
            while (
                not text.rstrip().endswith("px)") and j + 1 < len(cards) and cards[j + 1].keyword == "HISTORY"
            ):
                j += 1
                text += str(cards[j].value)
            drop.extend(range(i, j + 1))
            i = j + 1
        else:
            i += 1
    for index in reversed(drop):
        del header[index]
    return len(drop)


def apply_solution(header: fits.Header, solution: FrameSolution) -> fits.Header:
    """Put the solution into ``header`` (in place): its WCS replaces any other, plus HISTORY.

    A validated header WCS (method ``header``) is kept as it is; only the quality keywords are added.
    """
    q = solution.quality
    if solution.method == "header":
        header["NPWMETH"] = ("header", "header WCS validated by nightpipe solve")
        header["NPWNMAT"] = (q.n_matched, "index stars matched")
        header["NPWRMSA"] = (round(float(q.rms_arcsec), 4), "[arcsec] residual RMS on index stars")
        return header
    strip_wcs(header)
    drop_solve_history(header)
    for card in wcs_cards(solution).cards:
        header[card.keyword] = (card.value, card.comment)
    header.add_history(
        f"nightpipe solve: WCS by {solution.method}, {q.n_matched} index stars, "
        f"RMS {q.rms_arcsec:.2f} arcsec ({q.rms_px:.3f} px)"
    )
    return header


def write_solution(
    source: Path | str, solution: FrameSolution, destination: Path | str, *, hdu: int = 0
) -> Path:
    """Write ``source`` to ``destination`` with the solved WCS in HDU ``hdu``, atomically.

    ``destination`` may be ``source`` itself (a calibrated product); raw files are never
    passed as destination by the step.
    """
    source = Path(source)
    span = header_span(source, hdu)
    if span is not None:  # a plain FITS file: splice the new header in, copy the data bytes
        header, start, end = span
        apply_solution(header, solution)
        destination = write_with_header(source, destination, header, start, end)
        log.debug("wrote WCS of %s into %s", source.name, destination)
        return destination
    with open_fits(source) as hdul:
        copies = [h.copy() for h in hdul]
    out = fits.HDUList(copies)
    apply_solution(out[hdu].header, solution)
    destination = write_fits_atomic(out, destination)
    log.debug("wrote WCS of %s into %s", source.name, destination)
    return destination


def read_wcs(path: Path | str, hdu: int = 0) -> WCS:
    """The celestial WCS of HDU ``hdu`` of a file."""
    with open_fits(path) as hdul, warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(hdul[hdu].header, naxis=2)
