"""Reading pixel files: SPOC target pixel files (TESS, Kepler, K2), TESScut cut-outs and
single-cadence images, into a :class:`PixelFile`; and custom aperture masks.

* SPOC target pixel files: a ``PIXELS`` table with one row per cadence (``TIME``, ``FLUX``,
  ``FLUX_ERR``, ``FLUX_BKG``, ``QUALITY``...) and an ``APERTURE`` image whose bits mark the
  pipeline's optimal aperture;
* TESScut cut-outs of full-frame images (same layout, no pipeline aperture, not
  background-subtracted);
* single-cadence images of a pixel file (for example written by ``kepimages``), with the
  time in the header (``MIDTIME`` or ``TSTART``/``TSTOP``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from nightpipe.errors import FitsReadError, HeaderError
from nightpipe.frames.fitsio import open_fits
from nightpipe.tess.mission_fits import (
    APERTURE_BACKGROUND,
    APERTURE_OPTIMAL,
    FloatArray,
    IntArray,
    PixelKind,
    _background_subtracted,
    _column,
    _exptime_s,
    _float_or_none,
    _is_tesscut,
    _table_hdu,
    detect_mission,
    merged_header,
)
from nightpipe.tess.times import TimeSystem, time_system_from_header

log = logging.getLogger("nightpipe.tess.readers")  # the name its log lines have always carried


@dataclass(frozen=True, eq=False)
class PixelFile:
    """The pixels of one target over time, as read from a pixel file.

    Attributes
    ----------
    path
        The file read.
    kind
        ``tpf`` (pipeline target pixel file), ``tesscut`` (FFI cut-out) or ``image``
        (a single cadence stored as an image).
    mission
        ``TESS``, ``Kepler`` or ``K2``.
    target
        The object name (``OBJECT``), e.g. ``TIC 25155310``.
    time
        Times as in the file (BTJD or BKJD), one per cadence; NaN where the file has none.
    time_system
        How :attr:`time` relates to BJD_TDB.
    cadenceno
        Cadence numbers.
    flux, flux_err
        Calibrated pixel fluxes and errors, e-/s, shape (cadences, rows, columns); errors
        are NaN when the file has none.
    flux_bkg
        The background the pipeline estimated (and subtracted when
        :attr:`background_subtracted`), same shape, or ``None``.
    quality
        Quality word of each cadence (see :mod:`nightpipe.tess.quality`).
    pos_corr
        Pipeline position corrections (column, row) per cadence, or ``None``.
    aperture_bits
        The ``APERTURE`` image, or ``None``.
    background_subtracted
        Whether :attr:`flux` is already background-subtracted.
    column, row
        CCD column and row of the lower-left pixel.
    ra, dec
        Target coordinates (degrees), when given.
    exptime_s
        Effective exposure time of one cadence, seconds (NaN when unknown).
    header
        The primary header merged with the data extension's (extension wins).
    """

    path: Path
    kind: PixelKind
    mission: str
    target: str
    time: FloatArray
    time_system: TimeSystem
    cadenceno: IntArray
    flux: FloatArray
    flux_err: FloatArray
    flux_bkg: FloatArray | None
    quality: IntArray
    pos_corr: tuple[FloatArray, FloatArray] | None
    aperture_bits: IntArray | None
    background_subtracted: bool
    column: int = 0
    row: int = 0
    ra: float | None = None
    dec: float | None = None
    exptime_s: float = float("nan")
    header: fits.Header = field(default_factory=fits.Header)

    @property
    def n_cadences(self) -> int:
        """Number of cadences."""
        return int(self.time.size)

    @property
    def shape(self) -> tuple[int, int]:
        """Shape (rows, columns) of one cadence's image."""
        return (int(self.flux.shape[1]), int(self.flux.shape[2]))

    @property
    def time_bjd(self) -> FloatArray:
        """Mid-cadence times as full Julian dates, BJD_TDB when ``time_system.is_bjd_tdb``."""
        return self.time_system.to_bjd(self.time)

    @property
    def pipeline_aperture(self) -> NDArray[np.bool_] | None:
        """The pipeline's optimal aperture (bit 2 of ``APERTURE``), or ``None`` when it has none."""
        if self.aperture_bits is None:
            return None
        mask = (self.aperture_bits & APERTURE_OPTIMAL) > 0
        return mask if mask.any() else None

    @property
    def pipeline_background(self) -> NDArray[np.bool_] | None:
        """The pipeline's background pixels (bit 3 of ``APERTURE``), or ``None``."""
        if self.aperture_bits is None:
            return None
        mask = (self.aperture_bits & APERTURE_BACKGROUND) > 0
        return mask if mask.any() else None


def read_pixel_file(path: Path | str) -> PixelFile:
    """Read a TESS/Kepler/K2 target pixel file, TESScut cut-out or single-cadence image.

    Parameters
    ----------
    path
        The FITS file (``.fits`` or ``.fits.gz``); it is opened read-only.

    Returns
    -------
    PixelFile
        Every cadence (none is dropped here: quality masking is the photometry's choice).

    Raises
    ------
    FitsReadError
        When the file is missing, not FITS, truncated, or holds neither a pixel table nor an image.
    HeaderError
        When the mission or the time reference cannot be determined.

    Examples
    --------
    >>> tpf = read_pixel_file("tess25155310-s01-first-cadences.fits.gz")  # doctest: +SKIP
    >>> tpf.time_bjd[:2]  # doctest: +SKIP
    array([2458325.29525977, 2458325.29664867])
    """
    path = Path(path)
    with open_fits(path):  # existence and FITS-ness, with the shared error messages
        pass
    compressed = path.name.lower().endswith((".gz", ".bz2", ".zip"))
    try:
        # memory-mapped: only the columns used are copied (6x faster on a sector-long TPF)
        return _read_pixels(path, memmap=not compressed)
    except (OSError, EOFError, IndexError, ValueError, TypeError) as first:
        if compressed:
            raise FitsReadError(
                f"cannot read the pixel data ({first})", path=path, hint="the file is truncated; re-copy it"
            ) from None
    try:
        return _read_pixels(path, memmap=False)  # e.g. scaled columns that astropy will not memory-map
    except (OSError, EOFError, IndexError, ValueError, TypeError) as exc:
        raise FitsReadError(
            f"cannot read the pixel data ({exc})", path=path, hint="the file is truncated; re-copy it"
        ) from None


def _read_pixels(path: Path, *, memmap: bool) -> PixelFile:
    with fits.open(path, mode="readonly", memmap=memmap) as hdul:
        primary = hdul[0].header
        if "LIGHTCURVE" in hdul:
            raise FitsReadError(
                "this is a light-curve file, not a pixel file",
                path=path,
                hint="read it with read_lightcurve_file (`nightpipe tess` tells them apart)",
            )
        table = _table_hdu(hdul, ("PIXELS", "TARGETTABLES"), "FLUX")
        if table is not None:
            return _read_tpf(path, hdul, primary, table)
        for hdu in hdul:
            if (
                isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU)
                and hdu.header.get("NAXIS", 0) == 2
                and hdu.name != "APERTURE"
            ):
                return _read_image(path, primary, hdu)
    raise FitsReadError(
        "no pixel table (PIXELS extension with a FLUX column) and no 2-D image",
        path=path,
        hint="this is not a TESS/Kepler pixel file; light-curve files are read with read_lightcurve_file",
    )


def _read_tpf(path: Path, hdul: fits.HDUList, primary: fits.Header, table: fits.BinTableHDU) -> PixelFile:
    header = merged_header(primary, table.header)
    mission = detect_mission(header, path)
    kind: PixelKind = "tesscut" if _is_tesscut(header) else "tpf"
    data = table.data
    if data is None or len(data) == 0:
        raise FitsReadError("the pixel table has no cadences", path=path, hint="use a file with data")
    flux = _column(data, "FLUX", path)
    if flux.ndim != 3:
        raise FitsReadError(
            f"FLUX column has shape {flux.shape}, expected (cadences, rows, columns)",
            path=path,
            hint="this is not a target pixel file",
        )
    names = set(data.columns.names)
    n = flux.shape[0]
    flux_err = _column(data, "FLUX_ERR", path) if "FLUX_ERR" in names else np.full_like(flux, np.nan)
    flux_bkg = _column(data, "FLUX_BKG", path) if "FLUX_BKG" in names else None
    if flux_err.shape != flux.shape:
        raise FitsReadError(f"FLUX_ERR shape {flux_err.shape} differs from FLUX {flux.shape}", path=path)
    if flux_bkg is not None and flux_bkg.shape != flux.shape:
        log.warning("%s: FLUX_BKG shape %s differs from FLUX; ignored", path, flux_bkg.shape)
        flux_bkg = None
    if "TIME" not in names:
        raise FitsReadError("the pixel table has no TIME column", path=path, hint="this file cannot be timed")
    time = _column(data, "TIME", path)
    quality = _column(data, "QUALITY", path, np.int64) if "QUALITY" in names else np.zeros(n, np.int64)
    cadenceno = _column(data, "CADENCENO", path, np.int64) if "CADENCENO" in names else np.arange(n)
    pos_corr = None
    if {"POS_CORR1", "POS_CORR2"} <= names:
        pos_corr = (_column(data, "POS_CORR1", path), _column(data, "POS_CORR2", path))
    aperture_bits = _aperture_bits(hdul, flux.shape[1:], path)
    column = int(_float_or_none(table.header.get("1CRV5P", table.header.get("1CRV4P"))) or 0)
    row = int(_float_or_none(table.header.get("2CRV5P", table.header.get("2CRV4P"))) or 0)
    return PixelFile(
        path=path,
        kind=kind,
        mission=mission,
        target=str(header.get("OBJECT", "") or path.name.split(".")[0]).strip(),
        time=time,
        time_system=time_system_from_header(header, mission, path=path),
        cadenceno=cadenceno,
        flux=flux,
        flux_err=flux_err,
        flux_bkg=flux_bkg,
        quality=quality,
        pos_corr=pos_corr,
        aperture_bits=aperture_bits,
        background_subtracted=_background_subtracted(header, kind),
        column=column,
        row=row,
        ra=_float_or_none(header.get("RA_OBJ")),
        dec=_float_or_none(header.get("DEC_OBJ")),
        exptime_s=_exptime_s(header),
        header=header,
    )


def _aperture_bits(hdul: fits.HDUList, shape: tuple[int, ...], path: Path) -> IntArray | None:
    if "APERTURE" not in hdul:
        return None
    data = hdul["APERTURE"].data
    if data is None:
        return None
    bits = np.nan_to_num(np.asarray(data, dtype=np.float64)).astype(np.int64)
    if bits.shape != tuple(shape):
        log.warning("%s: APERTURE shape %s differs from the pixels %s; ignored", path, bits.shape, shape)
        return None
    return bits


def _read_image(path: Path, primary: fits.Header, hdu: fits.ImageHDU | fits.PrimaryHDU) -> PixelFile:
    header = primary if hdu.header is primary else merged_header(primary, hdu.header)
    mission = detect_mission(header, path)
    system = time_system_from_header(header, mission, path=path)
    midtime = _float_or_none(header.get("MIDTIME"))
    if midtime is not None:  # already mid-cadence: undo the TIMEPIXR shift to_bjd will add
        time = midtime - system.offset - system.shift_days
    else:
        tstart = _float_or_none(header.get("TSTART"))
        tstop = _float_or_none(header.get("TSTOP"))
        if tstart is None or tstop is None:
            raise HeaderError(
                "single-cadence image without MIDTIME or TSTART/TSTOP",
                path=path,
                hint="the cadence time is unknown; use the target pixel file instead",
            )
        time = 0.5 * (tstart + tstop) - system.shift_days
    try:
        image = np.asarray(hdu.data, dtype=np.float64)
    except (TypeError, ValueError, OSError) as exc:
        raise FitsReadError(f"cannot read the image ({exc})", path=path, hint="re-copy the file") from None
    flux = image[None, :, :]
    column = int(_float_or_none(header.get("CRVAL1P")) or 0)
    row = int(_float_or_none(header.get("CRVAL2P")) or 0)
    return PixelFile(
        path=path,
        kind="image",
        mission=mission,
        target=str(header.get("OBJECT", "") or path.name.split(".")[0]).strip(),
        time=np.array([time], dtype=np.float64),
        time_system=system,
        cadenceno=np.array([int(_float_or_none(header.get("CADENCEN")) or 0)], dtype=np.int64),
        flux=flux,
        flux_err=np.full_like(flux, np.nan),
        flux_bkg=None,
        quality=np.array([int(_float_or_none(header.get("QUALITY")) or 0)], dtype=np.int64),
        pos_corr=None,
        aperture_bits=None,
        background_subtracted=_background_subtracted(header, "image"),
        column=column,
        row=row,
        ra=_float_or_none(header.get("RA_OBJ")),
        dec=_float_or_none(header.get("DEC_OBJ")),
        exptime_s=_exptime_s(header),
        header=header,
    )


def read_aperture_mask(path: Path | str) -> NDArray[np.bool_]:
    """A custom aperture: a FITS image (non-zero pixels) or a text grid of 0/1 (one line per row,
    row 0 first, as in the pixel file's arrays; spaces or commas between values).

    Raises
    ------
    FitsReadError
        When the file is missing, not a 2-D grid, or selects no pixel.
    """
    path = Path(path)
    if path.name.lower().endswith((".fits", ".fit", ".fits.gz")):
        with open_fits(path) as hdul:
            data = next((h.data for h in hdul if h.data is not None and np.ndim(h.data) == 2), None)
        if data is None:
            raise FitsReadError(
                "no 2-D image for an aperture mask", path=path, hint="give a 2-D image of 0/1"
            )
        mask = np.asarray(data) != 0
    else:
        if not path.is_file():
            raise FitsReadError("aperture file not found", path=path, hint="check the path")
        rows = [line.replace(",", " ").split() for line in path.read_text(encoding="utf-8").splitlines()]
        rows = [r for r in rows if r and not r[0].startswith("#")]
        if not rows or len({len(r) for r in rows}) != 1:
            raise FitsReadError(
                "the aperture file is not a rectangular grid of 0/1",
                path=path,
                hint="one line of 0/1 per row",
            )
        try:
            mask = np.array([[float(v) != 0 for v in r] for r in rows], dtype=bool)
        except ValueError:
            raise FitsReadError("the aperture file holds values other than numbers", path=path) from None
    if not mask.any():
        raise FitsReadError("the aperture mask selects no pixel", path=path, hint="mark the pixels with 1")
    return mask
