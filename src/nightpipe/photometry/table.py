"""The per-frame source table (docs/formats.md): build it, write it atomically as a FITS
binary table (meta as JSON in the header), read it.

Columns: ``id``, ``x``, ``y`` (0-based pixels), ``ra``, ``dec`` (deg, NaN without WCS),
``fwhm``, ``ellipticity``, ``theta``, ``peak``, ``bkg`` (per-pixel local sky), ``aper_flux`` and
``aper_flux_err`` (N x K), ``aper_bkg_err`` (N x K), ``flags``; optionally ``psf_flux``,
``psf_flux_err``, ``psf_qfit``. Meta: ``frame``, ``mid_utc``, ``jd_utc``, ``bjd_tdb``, ``exptime``,
``airmass``, ``fwhm_px``, ``fwhm_arcsec``, ``sky``, ``sky_rms``, ``aper_radii_px``, ``gain``,
``software`` and the photometry settings used.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table

from nightpipe import __version__
from nightpipe.errors import PhotometryError
from nightpipe.frames.fitsio import atomic_open, atomic_path
from nightpipe.frames.fitstable import FitsTable, table_bytes
from nightpipe.frames.fitstable import read_table as read_fits_table
from nightpipe.photometry.measure import FrameMeasurement
from nightpipe.store.values import finite_or_none

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = (
    "id",
    "x",
    "y",
    "ra",
    "dec",
    "fwhm",
    "ellipticity",
    "theta",
    "peak",
    "bkg",
    "aper_flux",
    "aper_flux_err",
    "aper_bkg_err",
    "flags",
)
SOURCE_TABLE_SUFFIX = ".fits"
META_KEYWORD = "NPMETA"
EXTNAME = "SOURCES"
META_KEYS = (
    "frame",
    "mid_utc",
    "jd_utc",
    "bjd_tdb",
    "exptime",
    "airmass",
    "fwhm_px",
    "fwhm_arcsec",
    "sky",
    "sky_rms",
    "aper_radii_px",
    "gain",
    "software",
)


def build_source_table(
    meas: FrameMeasurement,
    *,
    ra: np.ndarray | None = None,
    dec: np.ndarray | None = None,
    unit: str = "adu",
    pixel_scale: float | None = None,
    meta: Mapping[str, Any] | None = None,
    psf: Mapping[str, np.ndarray] | None = None,
) -> Table:
    """The source table of one frame.

    Parameters
    ----------
    meas
        What :func:`~nightpipe.photometry.measure.measure_frame` returned.
    ra, dec
        Sky positions (deg) of the sources, when the frame has a WCS.
    unit
        Unit of the pixel values: ``adu`` or ``electron``.
    pixel_scale
        Arcsec per pixel, for ``fwhm_arcsec``.
    meta
        Frame metadata (``frame``, ``mid_utc``, ``jd_utc``, ``bjd_tdb``, ``exptime``, ``airmass``,
        ``gain``...); missing keys are written as None.
    psf
        Optional ``psf_flux``, ``psf_flux_err``, ``psf_qfit`` columns.

    Returns
    -------
    astropy.table.Table
    """
    det, phot, shp = meas.detections, meas.photometry, meas.shapes
    n = len(det)
    flux_unit = u.adu if unit == "adu" else u.electron
    table = Table()
    table["id"] = np.arange(1, n + 1, dtype=np.int32)
    table["x"] = det.x.astype(np.float64) * u.pix
    table["y"] = det.y.astype(np.float64) * u.pix
    table["ra"] = (np.full(n, np.nan) if ra is None else np.asarray(ra, dtype=np.float64)) * u.deg
    table["dec"] = (np.full(n, np.nan) if dec is None else np.asarray(dec, dtype=np.float64)) * u.deg
    table["fwhm"] = shp.fwhm.astype(np.float32) * u.pix
    table["ellipticity"] = shp.ellipticity.astype(np.float32)
    table["theta"] = shp.theta.astype(np.float32) * u.deg
    table["peak"] = det.peak.astype(np.float32) * flux_unit
    table["bkg"] = phot.sky.astype(np.float32) * flux_unit
    table["aper_flux"] = phot.flux.astype(np.float64) * flux_unit
    table["aper_flux_err"] = phot.flux_err.astype(np.float64) * flux_unit
    table["aper_bkg_err"] = phot.bkg_err.astype(np.float32) * flux_unit
    table["flags"] = (det.flags | phot.flags).astype(np.uint16)
    if meas.psf is not None:
        table["flags"] |= meas.psf.flags.astype(np.uint16)
    if psf is None and meas.psf is not None:
        psf = {"psf_flux": meas.psf.flux, "psf_flux_err": meas.psf.flux_err, "psf_qfit": meas.psf.qfit}
    if psf is not None:
        for key in ("psf_flux", "psf_flux_err"):
            if key in psf:
                table[key] = np.asarray(psf[key], dtype=np.float64) * flux_unit
        if "psf_qfit" in psf:
            table["psf_qfit"] = np.asarray(psf["psf_qfit"], dtype=np.float32)
    table["flags"].description = "nightpipe.frames.flags.PixelFlag bits"
    table["aper_flux"].description = "background-subtracted flux in each radius of meta aper_radii_px"
    table["bkg"].description = "local sky per pixel"
    given = dict(meta or {})
    out: dict[str, Any] = {key: given.get(key) for key in META_KEYS}
    out.update({k: v for k, v in given.items() if k not in out})
    out["fwhm_px"] = finite_or_none(meas.fwhm)
    out["fwhm_method"] = meas.fwhm_method
    out["fwhm_arcsec"] = finite_or_none(meas.fwhm * pixel_scale) if pixel_scale else None
    out["pixel_scale_arcsec"] = finite_or_none(pixel_scale) if pixel_scale else None
    out["sky"] = finite_or_none(meas.background.global_level)
    out["sky_rms"] = finite_or_none(meas.background.global_rms)
    out["aper_radii_px"] = [float(r) for r in meas.radii]
    out["annulus_px"] = None if meas.annulus is None else [float(a) for a in meas.annulus]
    out["n_sources"] = n
    out["unit"] = unit
    if meas.epsf is not None:
        out["epsf"] = {"oversampling": meas.epsf.oversampling, "n_stars": meas.epsf.n_stars}
    if meas.profile is not None:
        out["profile_fit"] = {
            "model": meas.profile.model,
            "fwhm": finite_or_none(meas.profile.fwhm),
            "alpha": finite_or_none(meas.profile.alpha),
            "beta": finite_or_none(meas.profile.beta),
            "n_stars": meas.profile.n_stars,
        }
    out["software"] = f"nightpipe {__version__}"
    table.meta.update(out)
    return table


def source_table_name(stem: str) -> str:
    """The file name of a frame's source table: ``<stem>.fits``."""
    return f"{stem}{SOURCE_TABLE_SUFFIX}"


def write_source_table(table: Table, destination: Path | str) -> Path:
    """Write a source table atomically: a FITS binary table (or ECSV for an ``.ecsv`` name).

    In FITS the meta (nested lists and dicts included) is one JSON string in the header
    keyword ``NPMETA`` and the column descriptions are in ``TCOMMn``, so reading it back gives
    the same table; it is written and read about 50x faster than ECSV (and 10x faster than
    astropy's FITS table I/O, see :mod:`nightpipe.frames.fitstable`).
    """
    destination = Path(destination)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.colnames]
    if missing:
        raise PhotometryError(f"source table lacks columns {missing}", path=destination)
    if destination.suffix.lower() == ".ecsv":
        with atomic_path(destination, suffix=destination.suffix) as tmp:
            table.write(tmp, format="ascii.ecsv", overwrite=True)
        return destination
    header = fits.Header()
    header[META_KEYWORD] = json.dumps(dict(table.meta), default=_jsonable)
    content = FitsTable(
        columns={name: np.asarray(table[name]) for name in table.colnames},
        units={name: table[name].unit.to_string() for name in table.colnames if table[name].unit},
        descriptions={name: table[name].description for name in table.colnames if table[name].description},
        header=header,
    )
    try:
        payload = table_bytes(content, extname=EXTNAME)
    except TypeError:  # a column type the fast writer does not handle (strings...): astropy
        hdu = fits.table_to_hdu(Table({n: table[n] for n in table.colnames}))
        hdu.name = EXTNAME
        hdu.header.extend(header)
        for i, name in enumerate(table.colnames, start=1):
            if name in content.descriptions:
                hdu.header[f"TCOMM{i}"] = content.descriptions[name]
        with atomic_path(destination, suffix=destination.suffix) as tmp:
            fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp)
        return destination
    with atomic_open(destination, "wb") as handle:
        handle.write(payload)
    return destination


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def read_source_table(path: Path | str) -> Table:
    """Read a source table written by :func:`write_source_table` (FITS, or ECSV by suffix).

    Raises
    ------
    PhotometryError
        When the file cannot be read or lacks required columns.
    """
    path = Path(path)
    try:
        table = _read_ecsv(path) if path.suffix.lower() == ".ecsv" else _read_fits(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PhotometryError(
            f"cannot read source table ({exc})", path=path, hint="re-run `nightpipe photometry`"
        ) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.colnames]
    if missing:
        raise PhotometryError(f"not a nightpipe source table (missing {missing})", path=path)
    return table


def _read_ecsv(path: Path) -> Table:
    return Table.read(path, format="ascii.ecsv")


def _read_fits(path: Path) -> Table:
    content = read_fits_table(path)
    if content is None:  # not our simple layout: let astropy read it
        return _read_fits_astropy(path)
    table = Table(content.columns)
    for name, unit in content.units.items():
        table[name].unit = unit
    return _with_meta(table, content.header, content.descriptions)


def _read_fits_astropy(path: Path) -> Table:
    with fits.open(path, memmap=False) as hdul:
        if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
            raise ValueError("no binary table extension")
        hdu = hdul[1]
        table = Table.read(hdu, character_as_bytes=False, mask_invalid=False)
        header = hdu.header.copy()
    descriptions = {
        name: str(header[f"TCOMM{i}"]) for i, name in enumerate(table.colnames, 1) if f"TCOMM{i}" in header
    }
    for name in table.colnames:
        column = table[name]
        if not column.dtype.isnative:  # FITS is big-endian; numpy and the database want native
            table.replace_column(name, column.astype(column.dtype.newbyteorder("=")), copy=False)
    return _with_meta(table, header, descriptions)


def _with_meta(table: Table, header: fits.Header, descriptions: dict[str, str]) -> Table:
    """The table with its meta (JSON in ``NPMETA``) and its column descriptions restored."""
    meta_text = header.get(META_KEYWORD)
    table.meta = json.loads(meta_text) if meta_text else {}
    for name, description in descriptions.items():
        table[name].description = description
    return table
