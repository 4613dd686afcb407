"""CSV mode: read any light-curve table (CSV, whitespace text, AstroImageJ, EXOTIC JSON) into a LightCurve.

The time column is found by name (``BJD_TDB``, ``J.D.-2400000``, ``JD_UTC``, ``MJD``, ``time``...)
or given; its kind and offset are taken from the name and the values:

- a name with ``MJD`` means JD - 2400000.5; ``J.D.-2400000`` (AstroImageJ) and any name with an
  explicit offset such as ``BJD-2450000`` add that offset;
- otherwise values above 2,400,000 are full JDs, values between 10,000 and 100,000 are taken as
  MJD (logged), values below are rejected (relative times cannot be placed on an ephemeris).

The time scale is ``BJD_TDB`` when the name says BJD (or HJD, logged as approximate), else
``JD_UTC``; a JD_UTC column is converted to BJD_TDB when the target's coordinates and the
observatory are known, and the conversion is recorded in ``meta["time_source"]``.
A magnitude column (name with ``mag``) is converted to relative flux.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.table import Table
from numpy.typing import NDArray

from nightpipe.config import ObservatoryConfig, Settings, TargetConfig, validate_settings
from nightpipe.timeseries.csv_columns import (
    AUX_COLUMNS,
    ERR_NAMES,
    ERR_SUFFIXES,
    FLUX_NAMES,
    TIME_NAMES,
    TimeColumn,
    detect_flux_columns,
    detect_time_column,
    read_table,
)
from nightpipe.timeseries.lightcurve import LightCurve

if TYPE_CHECKING:
    from nightpipe.timeseries.transit import TransitFit

log = logging.getLogger(__name__)
__all__ = [
    "AUX_COLUMNS",
    "ERR_NAMES",
    "ERR_SUFFIXES",
    "FLUX_NAMES",
    "TIME_NAMES",
    "TimeColumn",
    "airmass_series",
    "bjd_tdb_from_jd_utc",
    "detect_flux_columns",
    "detect_time_column",
    "fit_csv",
    "lightcurve_from_table",
    "read_table",
]
FloatArray = NDArray[np.float64]


def bjd_tdb_from_jd_utc(jd_utc: FloatArray, ra: float, dec: float, site: ObservatoryConfig) -> FloatArray:
    """BJD_TDB for the target at (ra, dec) observed at ``site`` at JD_UTC times (ERFA, as
    astropy's ``light_travel_time`` within 2 microseconds, without loading IERS tables)."""
    from nightpipe.frames.timing import bjd_tdb_of_jd_utc

    jd = np.asarray(jd_utc, dtype=np.float64)
    return bjd_tdb_of_jd_utc(jd, ra, dec, site.latitude, site.longitude, site.elevation)


def airmass_series(jd_utc: FloatArray, ra: float, dec: float, site: ObservatoryConfig) -> FloatArray:
    """Airmass (sec z) of the target at ``site`` at JD_UTC times (ERFA, no refraction)."""
    from nightpipe.frames.timing import altitudes_deg

    alt = altitudes_deg(np.asarray(jd_utc, float), ra, dec, site.latitude, site.longitude, site.elevation)
    return np.asarray(1.0 / np.sin(np.radians(np.clip(alt, 1.0, None))))


def lightcurve_from_table(
    table: Table,
    *,
    time_col: str | None = None,
    flux_col: str | None = None,
    err_col: str | None = None,
    target: str | None = None,
    ra: float | None = None,
    dec: float | None = None,
    site: ObservatoryConfig | None = None,
    path: Path | str | None = None,
) -> LightCurve:
    """Build a :class:`LightCurve` from a table (columns detected as the module doc says).

    With the target's coordinates and an observatory, JD_UTC times are converted to BJD_TDB
    and a missing airmass column is computed.

    Examples
    --------
    >>> t = Table({"BJD_TDB": [2458107.6, 2458107.7], "rel_flux_T1": [1.0, 0.98]})
    >>> lightcurve_from_table(t).time_scale
    'BJD_TDB'
    """
    tcol = detect_time_column(table, time_col, path=path)
    fcol, ecol = detect_flux_columns(table, flux_col, err_col, path=path)
    raw_time = np.asarray(table[tcol.name], dtype=np.float64) + tcol.offset
    flux = np.asarray(table[fcol], dtype=np.float64)
    err = np.asarray(table[ecol], dtype=np.float64) if ecol else np.full(flux.size, np.nan)
    if "mag" in fcol.lower():
        ref = float(np.nanmedian(flux))
        flux = 10 ** (-0.4 * (flux - ref))
        err = err * flux * math.log(10) / 2.5
    meta: dict[str, object] = {
        "target": target or table.meta.get("name"),
        "source_file": None if path is None else str(path),
        "time_column": tcol.name,
        "flux_column": fcol,
        "err_column": ecol,
        "time_source": tcol.note + (f"; {table.meta['time_note']}" if "time_note" in table.meta else ""),
        "time_scale": tcol.scale,
    }
    jd_utc: FloatArray | None = raw_time if tcol.scale == "JD_UTC" else None
    if jd_utc is None:  # a JD_UTC column beside the BJD one (AstroImageJ writes both)
        for name, offset in (("J.D.-2400000", 2400000.0), ("JD_UTC", 0.0), ("JD-UTC", 0.0)):
            if name in table.colnames and name != tcol.name:
                jd_utc = np.asarray(table[name], dtype=np.float64) + offset
                break
    time = raw_time
    coords_known = ra is not None and dec is not None and site is not None
    if tcol.scale == "JD_UTC" and coords_known:
        assert ra is not None and dec is not None and site is not None
        time = bjd_tdb_from_jd_utc(raw_time, ra, dec, site)
        meta["time_scale"] = "BJD_TDB"
        meta["time_source"] = f"{meta['time_source']}; BJD_TDB computed from JD_UTC (astropy)"
    elif tcol.scale == "JD_UTC":
        log.warning("times are JD_UTC and the target coordinates are unknown: fitting in JD_UTC")
    aux: dict[str, FloatArray] = {}
    for key, names in AUX_COLUMNS.items():
        found = next((n for n in names if n in table.colnames), None)
        if found is not None:
            aux[key] = np.asarray(table[found], dtype=np.float64)
    if "airmass" not in aux and coords_known:
        assert ra is not None and dec is not None and site is not None
        utc = jd_utc if jd_utc is not None else raw_time  # BJD vs UTC differ by minutes: fine here
        aux["airmass"] = airmass_series(utc, ra, dec, site)
        meta["airmass_source"] = "computed from the target coordinates and the observatory"
    return LightCurve(time=time, flux=flux, flux_err=err, jd_utc=jd_utc, aux=aux, meta=meta)


def fit_csv(
    path: Path | str,
    settings: Settings,
    *,
    outdir: Path | str | None = None,
    target: str | None = None,
    time_col: str | None = None,
    flux_col: str | None = None,
    err_col: str | None = None,
    priors: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    plots: bool = True,
    coords: tuple[float, float] | None = None,
) -> tuple[TransitFit, dict[str, Path]]:
    """Read a light-curve table, fit it like a night's light curve, and write the same products.

    Parameters
    ----------
    path
        CSV / text / ECSV / EXOTIC JSON file.
    settings
        The settings: ``timeseries`` (fit options, targets) and ``observatory`` (for BJD and airmass).
    outdir
        Where to write the products (default: beside the input, ``<stem>_fit/``).
    target
        Name of a configured target whose coordinates and parameters to use (default: the only
        configured target, or none).
    priors, options
        Overrides of the priors (``period``, ``t0``, ``rp_rs``...) and fit options (``steps``...).
    coords
        (ra, dec) of the target in degrees: JD_UTC times become BJD_TDB and a missing airmass
        column is computed for ``settings.observatory``.
    """
    from nightpipe.timeseries.products import fit_options, priors_from_target, safe_stem, write_products
    from nightpipe.timeseries.transit import fit_transit

    path = Path(path)
    table = read_table(path)
    tcfg = _pick_target(settings, target)
    name = target or (tcfg.name if tcfg else None) or table.meta.get("name") or path.stem
    if coords is not None:  # coordinates given on the command line win (validated like the config)
        data = (tcfg or TargetConfig(name=name)).model_dump()
        tcfg = validate_settings(
            {"timeseries": {"targets": [{**data, "ra": coords[0], "dec": coords[1]}]}}, source="--ra/--dec"
        ).timeseries.targets[0]
    tcfg_coords = tcfg if tcfg is not None and tcfg.ra is not None and tcfg.dec is not None else None
    lc = lightcurve_from_table(
        table,
        time_col=time_col,
        flux_col=flux_col,
        err_col=err_col,
        target=name,
        ra=tcfg_coords.ra if tcfg_coords else None,
        dec=tcfg_coords.dec if tcfg_coords else None,
        site=settings.observatory if tcfg_coords else None,
        path=path,
    )
    base = tcfg or TargetConfig(name=name)
    pri = priors_from_target(base, **(priors or {}))
    exptime = float(np.nanmedian(lc.aux["exptime"])) if "exptime" in lc.aux else None
    opts = fit_options(settings.timeseries, exptime_s=exptime, **(options or {}))
    fit = fit_transit(lc, pri, opts)
    out = Path(outdir) if outdir is not None else path.parent / f"{path.stem}_fit"
    products = write_products(
        out,
        safe_stem(name),
        lc,
        fit,
        planet=base.planet,
        exptime_s=exptime,
        extra={"input": str(path)},
        plots=plots,
    )
    return fit, products


def _pick_target(settings: Settings, name: str | None) -> TargetConfig | None:
    targets = settings.timeseries.targets
    if name is not None:
        for t in targets:
            if t.name.lower() == name.lower():
                return t
        return None
    return targets[0] if len(targets) == 1 else None
