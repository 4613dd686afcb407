"""The calibrated-frame product: multi-extension FITS in the convention of astropy's CCDData.

Layout (see docs/formats.md): the primary HDU holds the float32 science data with the
raw header, ``BUNIT`` and HISTORY lines for every operation; extension ``UNCERT`` holds
the one-sigma standard deviation (``UTYPE = 'StdDevUncertainty'``, float32); extension
``MASK`` holds the bits of :class:`nightpipe.frames.flags.PixelFlag` as uint8 (``BITPIX = 8``,
the type CCDData writes its mask in; every pixel flag fits in 8 bits). Products written
before the mask was uint8 have a uint16 ``MASK`` (``BZERO = 32768``); both read the same.
``astropy.nddata.CCDData.read`` reads these files directly (its mask becomes boolean).

:func:`write_calibrated` writes the three HDUs itself: the headers are astropy cards
(verified with ``silentfix`` as :meth:`astropy.io.fits.HDUList.writeto` does) and the planes
are converted to big-endian in blocks of about 1 MB and written as they are converted, so
no full-frame copy is made; the bytes are those astropy writes for :func:`build_hdul`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from astropy.io import fits

from nightpipe.errors import FitsReadError
from nightpipe.frames.fitsio import FITS_SUFFIXES, atomic_path, open_fits
from nightpipe.frames.headers import ascii_text

log = logging.getLogger(__name__)

_BLOCK = 2880  # FITS block size, bytes
_CHUNK_BYTES = 1 << 20  # rows converted to big-endian and written at a time
#: Keywords of the caller's header that describe a layout (the rest is stripped by astropy).
_STRUCTURE_KEYS = ("BZERO", "BSCALE", "BLANK", "CHECKSUM", "DATASUM", "EXTNAME", "EXTVER")

#: Keywords of the raw header that do not describe the calibrated float32 data.
_DROP_KEYS = (
    "SIMPLE",
    "BITPIX",
    "NAXIS",
    "NAXIS1",
    "NAXIS2",
    "NAXIS3",
    "EXTEND",
    "BZERO",
    "BSCALE",
    "BLANK",
    "XTENSION",
    "PCOUNT",
    "GCOUNT",
    "EXTNAME",
    "EXTVER",
    "CHECKSUM",
    "DATASUM",
    "BIASSEC",
    "TRIMSEC",
    "DATASEC",
)


@dataclass(frozen=True)
class CalibratedFrame:
    """A calibrated frame read back from disk.

    Attributes
    ----------
    data
        Science values, float32.
    uncertainty
        One-sigma standard deviation, float32.
    mask
        uint16 :class:`PixelFlag` bits.
    header
        The primary header (with HISTORY lines and calibration keywords).
    path
        Where it was read from.
    """

    data: np.ndarray
    uncertainty: np.ndarray
    mask: np.ndarray
    header: fits.Header
    path: Path

    @property
    def unit(self) -> str:
        """``'adu'`` or ``'electron'`` (from BUNIT)."""
        return str(self.header.get("BUNIT", "adu")).strip().lower()


def calibrated_name(raw_path: Path | str, hdu: int = 0) -> str:
    """File name of the calibrated product of a raw frame: its stem + ``.fits``.

    The FITS suffix (``.fits``, ``.fit``, ``.fits.gz``...) is removed case-insensitively;
    an image in extension ``hdu > 0`` gets ``_hdu<N>`` so that every HDU has its own file.

    Examples
    --------
    >>> calibrated_name("night/HATP-32171220013343.FITS")
    'HATP-32171220013343.fits'
    >>> calibrated_name("m 29 dark.fit.gz", hdu=2)
    'm 29 dark_hdu2.fits'
    """
    name = Path(raw_path).name
    lowered = name.lower()
    for suffix in sorted(FITS_SUFFIXES, key=len, reverse=True):
        if lowered.endswith(suffix):
            name = name[: -len(suffix)]
            break
    else:
        name = Path(name).stem
    if hdu:
        name = f"{name}_hdu{hdu}"
    return f"{name}.fits"


def calibrated_path(output: Path, night: str | None, raw_path: Path | str, hdu: int = 0) -> Path:
    """``<output>/calibrated/<night>/<stem>.fits`` (night ``unknown`` when not known)."""
    return Path(output) / "calibrated" / (night or "unknown") / calibrated_name(raw_path, hdu)


def science_header(raw_header: fits.Header, keywords: Mapping[str, tuple[object, str]]) -> fits.Header:
    """The primary header of the product: the raw header minus layout keywords, plus ``keywords``.

    ``keywords`` maps a keyword to ``(value, comment)``; values ``None`` remove the keyword.
    """
    header = fits.Header()
    for card in raw_header.cards:
        key = card.keyword
        if key in _DROP_KEYS or key.startswith("NAXIS"):
            continue
        if key in ("HISTORY", "COMMENT", ""):
            header.append(card, end=True)
            continue
        try:
            header.append(card, end=True)
        except (ValueError, KeyError):  # a card astropy refuses to re-emit: leave it out
            log.debug("dropped unreadable header card %r", key)
    for key, (value, comment) in keywords.items():
        if value is None:
            header.remove(key, ignore_missing=True, remove_all=True)
        else:
            header[key] = (value, comment)
    return header


def build_hdul(
    data: np.ndarray,
    uncertainty: np.ndarray,
    mask: np.ndarray,
    header: fits.Header,
    history: Sequence[str] = (),
) -> fits.HDUList:
    """Assemble the three HDUs of a calibrated frame (nothing is written).

    Raises
    ------
    ValueError
        When the three planes do not have the same 2-D shape.
    """
    if not (data.ndim == 2 and data.shape == uncertainty.shape == mask.shape):
        raise ValueError(
            f"science {data.shape}, uncertainty {uncertainty.shape} and mask {mask.shape} differ"
        )
    primary_header = header.copy()
    for line in history:
        primary_header.add_history(ascii_text(line))
    primary = fits.PrimaryHDU(data=np.asarray(data, dtype=np.float32), header=primary_header)
    bunit = str(primary_header.get("BUNIT", "adu"))
    unc = fits.ImageHDU(
        data=np.asarray(uncertainty, dtype=np.float32), header=_uncertainty_header(bunit), name="UNCERT"
    )
    mask_hdu = fits.ImageHDU(data=_mask_bytes(mask), header=_mask_header(), name="MASK")
    return fits.HDUList([primary, unc, mask_hdu])


def _uncertainty_header(bunit: str) -> fits.Header:
    header = fits.Header()
    header["UTYPE"] = ("StdDevUncertainty", "astropy.nddata uncertainty class")
    header["BUNIT"] = (bunit, "same unit as the science data")
    return header


def _mask_header() -> fits.Header:
    header = fits.Header()
    header["COMMENT"] = "bits of nightpipe.frames.flags.PixelFlag; 0 = good pixel"
    return header


def _check_mask_bits(mask: np.ndarray) -> None:
    if mask.dtype.itemsize > 1 and mask.size and int(mask.max()) > 0xFF:
        raise ValueError("a calibrated frame's MASK holds pixel flags only (bits 0-7)")


def _mask_bytes(mask: np.ndarray) -> np.ndarray:
    """The mask as uint8 (pixel flags only: a higher bit is an error, not silently dropped)."""
    _check_mask_bits(mask)
    return np.asarray(mask, dtype=np.uint8)


def write_calibrated(
    path: Path | str,
    data: np.ndarray,
    uncertainty: np.ndarray,
    mask: np.ndarray,
    header: fits.Header,
    history: Sequence[str] = (),
) -> Path:
    """Write a calibrated frame atomically; returns the path.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> z = np.zeros((3, 3), np.float32)
    >>> write_calibrated("/tmp/x.fits", z, z, z.astype(np.uint16), fits.Header(), ["test"])  # doctest: +SKIP

    Raises
    ------
    ValueError
        When the planes do not have the same 2-D shape, or the mask has a bit above 7.
    """
    if not (data.ndim == 2 and data.shape == uncertainty.shape == mask.shape):
        raise ValueError(
            f"science {data.shape}, uncertainty {uncertainty.shape} and mask {mask.shape} differ"
        )
    _check_mask_bits(mask)
    shape = (data.shape[0], data.shape[1])
    primary_cards = header.copy()
    for line in history:
        primary_cards.add_history(ascii_text(line))
    bunit = str(primary_cards.get("BUNIT", "adu"))
    planes = (
        (_hdu_header(primary_cards, -32, shape, None), data, np.dtype(">f4")),
        (_hdu_header(_uncertainty_header(bunit), -32, shape, "UNCERT"), uncertainty, np.dtype(">f4")),
        (_hdu_header(_mask_header(), 8, shape, "MASK"), mask, np.dtype("u1")),
    )
    path = Path(path)
    with atomic_path(path, suffix=".fits") as tmp, open(tmp, "wb") as handle:
        for block, plane, dtype in planes:
            handle.write(block)
            _write_plane(handle, plane, dtype)
    return path


def _hdu_header(cards: fits.Header, bitpix: int, shape: tuple[int, int], extname: str | None) -> bytes:
    """The padded header block of a 2-D image HDU (primary when ``extname`` is None).

    Built as astropy builds an image HDU's header (structural keywords with its comments,
    then ``cards`` merged in with :meth:`~astropy.io.fits.Header.extend`), every card then
    verified with ``silentfix`` as :meth:`~astropy.io.fits.HDUList.writeto` does.
    """
    ny, nx = shape
    required: list[tuple[str, object, str]] = []
    if extname is None:
        required.append(("SIMPLE", True, "conforms to FITS standard"))
    else:
        required.append(("XTENSION", "IMAGE", "Image extension"))
    required += [("BITPIX", bitpix, "array data type"), ("NAXIS", 2, "number of array dimensions")]
    if extname is not None:
        required += [("PCOUNT", 0, "number of parameters"), ("GCOUNT", 1, "number of groups")]
    header = fits.Header(required)
    extra = cards.copy()
    for key in _STRUCTURE_KEYS:
        extra.remove(key, ignore_missing=True, remove_all=True)
    header.extend(extra, strip=True, update=True, end=True)
    header.insert("NAXIS", ("NAXIS1", nx), after=True)
    header.insert("NAXIS1", ("NAXIS2", ny), after=True)
    if extname is None:
        header.insert("NAXIS2", ("EXTEND", True), after=True)
    else:
        header["EXTNAME"] = (extname, "extension name")
    for card in header.cards:
        card.verify("silentfix")
    return header.tostring(endcard=True, padding=True).encode("ascii")


def _write_plane(handle: BinaryIO, plane: np.ndarray, dtype: np.dtype) -> None:
    """Write a 2-D plane as ``dtype`` (big-endian) in row blocks, then the padding to a FITS block."""
    ny, nx = plane.shape
    rows = max(1, _CHUNK_BYTES // max(1, nx * dtype.itemsize))
    buffer = np.empty((min(rows, ny), nx), dtype=dtype)
    for start in range(0, ny, rows):
        block = plane[start : start + rows]
        out = buffer[: block.shape[0]]
        np.copyto(out, block, casting="unsafe")  # byte swap (and uint16 -> uint8) in one copy
        handle.write(out.data.cast("B"))
    handle.write(bytes(-(ny * nx * dtype.itemsize) % _BLOCK))


def read_calibrated(path: Path | str) -> CalibratedFrame:
    """Read a calibrated frame written by :func:`write_calibrated`.

    Raises
    ------
    FitsReadError
        When the file is unreadable or lacks the ``UNCERT`` or ``MASK`` extension.
    """
    path = Path(path)
    with open_fits(path) as hdul:
        try:
            names = [hdu.name for hdu in hdul]
            for needed in ("UNCERT", "MASK"):
                if needed not in names:
                    raise FitsReadError(
                        f"no {needed} extension: not a calibrated frame",
                        path=path,
                        hint="run `nightpipe calibrate` to make it",
                    )
            data = np.asarray(hdul[0].data, dtype=np.float32)
            unc = np.asarray(hdul["UNCERT"].data, dtype=np.float32)
            mask = np.asarray(hdul["MASK"].data, dtype=np.uint16)
            header = hdul[0].header.copy()
        except (OSError, ValueError, TypeError) as exc:
            raise FitsReadError(
                f"cannot read calibrated planes ({exc})", path=path, hint="recalibrate the frame"
            ) from None
    if data.ndim != 2 or data.shape != unc.shape or data.shape != mask.shape:
        raise FitsReadError("calibrated planes have different shapes", path=path, hint="recalibrate")
    return CalibratedFrame(data=data, uncertainty=unc, mask=mask, header=header, path=path)
