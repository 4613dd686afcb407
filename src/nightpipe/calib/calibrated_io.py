"""The calibrated-frame product: multi-extension FITS in the convention of astropy's CCDData.

Layout (see docs/formats.md): the primary HDU holds the float32 science data with the
raw header, ``BUNIT`` and HISTORY lines for every operation; extension ``UNCERT`` holds
the one-sigma standard deviation (``UTYPE = 'StdDevUncertainty'``, float32); extension
``MASK`` holds the uint16 bits of :class:`nightpipe.frames.flags.PixelFlag`.
``astropy.nddata.CCDData.read`` reads these files directly (its mask becomes boolean).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from nightpipe.errors import FitsReadError
from nightpipe.frames.fitsio import FITS_SUFFIXES, open_fits, write_fits_atomic

log = logging.getLogger(__name__)

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
        primary_header.add_history(line)
    primary = fits.PrimaryHDU(data=np.asarray(data, dtype=np.float32), header=primary_header)
    bunit = str(primary_header.get("BUNIT", "adu"))
    unc_header = fits.Header()
    unc_header["UTYPE"] = ("StdDevUncertainty", "astropy.nddata uncertainty class")
    unc_header["BUNIT"] = (bunit, "same unit as the science data")
    unc = fits.ImageHDU(data=np.asarray(uncertainty, dtype=np.float32), header=unc_header, name="UNCERT")
    mask_header = fits.Header()
    mask_header["COMMENT"] = "bits of nightpipe.frames.flags.PixelFlag; 0 = good pixel"
    mask_hdu = fits.ImageHDU(data=np.asarray(mask, dtype=np.uint16), header=mask_header, name="MASK")
    return fits.HDUList([primary, unc, mask_hdu])


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
    """
    return write_fits_atomic(build_hdul(data, uncertainty, mask, header, history), path)


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
