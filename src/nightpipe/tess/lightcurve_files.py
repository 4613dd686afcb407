"""Reading light-curve files into a :class:`LightCurveFile`: SPOC light curves (``SAP_FLUX``,
``PDCSAP_FLUX``) and the common high-level science products (QLP ``KSPSAP_FLUX``, TASOC
``FLUX_CORR``, eleanor ``CORR_FLUX``, K2SFF ``FCOR``, EVEREST ``FLUX``...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from nightpipe.errors import FitsReadError
from nightpipe.frames.fitsio import open_fits
from nightpipe.tess.mission_fits import (
    FloatArray,
    IntArray,
    _column,
    _float_or_none,
    _table_hdu,
    detect_mission,
    merged_header,
)
from nightpipe.tess.times import TimeSystem, time_system_from_header


@dataclass(frozen=True, eq=False)
class LightCurveFile:
    """A light curve read from a SPOC or HLSP light-curve file.

    Attributes
    ----------
    path, mission, target, time, time_system, quality
        As for :class:`PixelFile`.
    flux, flux_err
        The chosen flux column and its error (NaN where the file has none).
    flux_column
        Name of the chosen column (``PDCSAP_FLUX``, ``SAP_FLUX``, ``KSPSAP_FLUX``...).
    columns
        Every other numeric 1-D column by name (centroids, background...).
    """

    path: Path
    mission: str
    target: str
    time: FloatArray
    time_system: TimeSystem
    flux: FloatArray
    flux_err: FloatArray
    quality: IntArray
    flux_column: str
    columns: dict[str, FloatArray] = field(default_factory=dict)
    ra: float | None = None
    dec: float | None = None
    header: fits.Header = field(default_factory=fits.Header)

    @property
    def time_bjd(self) -> FloatArray:
        """Times as full Julian dates (BJD_TDB when ``time_system.is_bjd_tdb``)."""
        return self.time_system.to_bjd(self.time)


FLUX_COLUMNS = (
    "PDCSAP_FLUX",
    "KSPSAP_FLUX",
    "FLUX_CORR",
    "CORR_FLUX",
    "FCOR",
    "FLUX",
    "SAP_FLUX",
    "FLUX_RAW",
    "RAW_FLUX",
    "FRAW",
)
TIME_COLUMNS = ("TIME", "T", "BJD", "TMID_BJD")


def _error_column(names: set[str], flux_column: str) -> str | None:
    for candidate in (f"{flux_column}_ERR", flux_column.replace("FLUX", "FLUX_ERR"), "FLUX_ERR"):
        if candidate in names and candidate != flux_column:
            return candidate
    return None


def read_lightcurve_file(path: Path | str, *, flux_column: str | None = None) -> LightCurveFile:
    """Read a SPOC or HLSP light-curve file.

    Parameters
    ----------
    path
        The FITS file; it is opened read-only.
    flux_column
        The flux to use (``PDCSAP_FLUX``, ``SAP_FLUX``...). ``None`` takes the first of
        :data:`FLUX_COLUMNS` present, so systematics-corrected fluxes are preferred.

    Raises
    ------
    FitsReadError
        When there is no table with a time and a flux column, or the asked column is absent.
    HeaderError
        When the mission or time reference cannot be determined.
    """
    path = Path(path)
    with open_fits(path) as hdul:
        try:
            return _read_lightcurve(path, hdul, flux_column)
        except (OSError, EOFError, IndexError, ValueError, TypeError) as exc:
            raise FitsReadError(
                f"cannot read the light-curve table ({exc})",
                path=path,
                hint="the file is truncated; re-copy it",
            ) from None


def _read_lightcurve(path: Path, hdul: fits.HDUList, flux_column: str | None) -> LightCurveFile:
    table = _table_hdu(hdul, ("LIGHTCURVE",), "TIME")
    if table is None:
        table = next((h for h in hdul[1:] if isinstance(h, fits.BinTableHDU)), None)
    if table is None or table.data is None:
        raise FitsReadError(
            "no light-curve table",
            path=path,
            hint="give a SPOC or HLSP light-curve file (LIGHTCURVE table)",
        )
    header = merged_header(hdul[0].header, table.header)
    data = table.data
    names = {n.upper(): n for n in data.columns.names}
    time_name = next((names[t] for t in TIME_COLUMNS if t in names), None)
    if time_name is None:
        raise FitsReadError(
            f"no time column (looked for {', '.join(TIME_COLUMNS)})",
            path=path,
            hint="not a light-curve file",
        )
    if flux_column is None:
        chosen = next((c for c in FLUX_COLUMNS if c in names), None)
        if chosen is None:
            raise FitsReadError(
                f"no flux column (looked for {', '.join(FLUX_COLUMNS)})",
                path=path,
                hint="name the column with flux_column / --flux-column",
            )
    else:
        chosen = flux_column.upper()
        if chosen not in names:
            raise FitsReadError(
                f"no column {flux_column!r}",
                path=path,
                hint=f"columns present: {', '.join(sorted(names))}",
            )
    mission = detect_mission(header, path)
    time = _column(data, names[time_name], path)
    finite = time[np.isfinite(time)]
    if time_name == "TMID_BJD" or (finite.size and np.nanmedian(finite) > 2.0e6):
        system = TimeSystem(0.0, "TDB", "SOLARSYSTEM", "BJD", ("times are full BJD_TDB",))
    else:
        system = time_system_from_header(header, mission, path=path)
    flux = _column(data, names[chosen], path)
    err_name = _error_column(set(names), chosen)
    flux_err = _column(data, names[err_name], path) if err_name else np.full_like(flux, np.nan)
    quality = (
        _column(data, names["QUALITY"], path, np.int64)
        if "QUALITY" in names
        else np.zeros(time.size, np.int64)
    )
    columns: dict[str, FloatArray] = {}
    for upper, name in names.items():
        if upper in (chosen, time_name, "QUALITY") or upper == err_name:
            continue
        values = np.asarray(data[name])
        if values.ndim == 1 and np.issubdtype(values.dtype, np.number):
            columns[upper] = values.astype(np.float64)
    return LightCurveFile(
        path=path,
        mission=mission,
        target=str(header.get("OBJECT", "") or path.name.split(".")[0]).strip(),
        time=time,
        time_system=system,
        flux=flux,
        flux_err=flux_err,
        quality=quality,
        flux_column=chosen,
        columns=columns,
        ra=_float_or_none(header.get("RA_OBJ")),
        dec=_float_or_none(header.get("DEC_OBJ")),
        header=header,
    )


def is_lightcurve_file(path: Path | str) -> bool:
    """True when the file holds a light-curve table rather than pixels (for dispatching)."""
    with open_fits(path) as hdul:
        if "LIGHTCURVE" in hdul:
            return True
        for hdu in hdul[1:]:
            if isinstance(hdu, fits.BinTableHDU):
                names = {n.upper() for n in hdu.columns.names}
                if "FLUX" in names and hdu.columns["FLUX"].dim is not None:
                    return False
                if names & set(FLUX_COLUMNS) and names & set(TIME_COLUMNS):
                    return True
    return False
