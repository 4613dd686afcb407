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

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.table import Table
from numpy.typing import NDArray

from nightpipe.config import ObservatoryConfig, Settings, TargetConfig, validate_settings
from nightpipe.errors import TimeseriesError
from nightpipe.timeseries.lightcurve import LightCurve

if TYPE_CHECKING:
    from nightpipe.timeseries.transit import TransitFit

log = logging.getLogger(__name__)
FloatArray = NDArray[np.float64]

TIME_NAMES = (
    "bjd_tdb",
    "bjd-tdb",
    "bjd",
    "time_bjd",
    "bjd_tdb_mid",
    "j.d.-2400000",
    "jd_utc",
    "jd-utc",
    "jd",
    "jd_mid",
    "hjd",
    "mjd",
    "mjd_utc",
    "mjd-obs",
    "time",
    "date",
    "t",
)
FLUX_NAMES = (
    "rel_flux_t1",
    "rel_flux",
    "flux",
    "norm_flux",
    "normalized_flux",
    "relative_flux",
    "diff",
    "f",
    "mag",
    "magnitude",
    "rel_mag",
    "diff_mag",
)
ERR_SUFFIXES = ("_err", "_error", "err", "error", "_sigma", "_e", "_unc")
ERR_NAMES = ("rel_flux_err_t1", "flux_err", "err", "error", "sigma", "e_flux", "unc", "mag_err", "e_mag")
AUX_COLUMNS = {
    "airmass": ("airmass", "AIRMASS"),
    "fwhm": ("FWHM_Mean", "fwhm", "FWHM", "fwhm_px"),
    "sky": ("Sky/Pixel_T1", "sky", "SKY", "bkg"),
    "x": ("X(FITS)_T1", "X(IJ)_T1", "x", "xcentroid", "X"),
    "y": ("Y(FITS)_T1", "Y(IJ)_T1", "y", "ycentroid", "Y"),
}


@dataclass(frozen=True)
class TimeColumn:
    """The time column found in a table: its name, the offset to add and the time scale."""

    name: str
    offset: float
    scale: str  # "BJD_TDB" or "JD_UTC"
    note: str


def read_table(path: Path | str) -> Table:
    """Read a light-curve table: CSV, tab/whitespace text, ECSV, or EXOTIC's JSON (time, flux[, error]).

    Raises
    ------
    TimeseriesError
        When the file is missing, empty or not a table; the message names it.
    """
    path = Path(path)
    if not path.is_file():
        raise TimeseriesError("light-curve file not found", path=path, hint="check the path")
    if path.suffix.lower() == ".json":
        return _read_json(path)
    try:
        if path.suffix.lower() == ".ecsv":
            table = Table.read(path, format="ascii.ecsv")
        else:
            text = path.read_text(encoding="utf-8", errors="replace")
            first = next(
                (line for line in text.splitlines() if line.strip() and not line.startswith("#")), ""
            )
            fmt = "csv" if first.count(",") >= 1 else "tab" if "\t" in first else "basic"
            table = Table.read(path, format=f"ascii.{fmt}", comment="#")
    except (ValueError, TypeError, IndexError, UnicodeDecodeError, StopIteration) as exc:
        raise TimeseriesError(
            f"not a readable light-curve table ({exc})",
            path=path,
            hint="give a CSV with a header line naming a time and a flux column",
        ) from None
    if len(table) == 0:
        raise TimeseriesError("the table has no rows", path=path)
    return table


def _read_json(path: Path) -> Table:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TimeseriesError(f"not valid JSON ({exc})", path=path) from None
    if not isinstance(data, dict) or "time" not in data or "flux" not in data:
        raise TimeseriesError(
            "JSON light curve needs 'time' and 'flux' lists (EXOTIC sampledata format)", path=path
        )
    columns = {k: v for k, v in data.items() if isinstance(v, list) and len(v) == len(data["time"])}
    table = Table(columns)
    table.meta["name"] = data.get("name")
    if "time" in table.colnames:
        table.rename_column("time", "BJD_TDB")  # EXOTIC writes BJD_TDB times
        table.meta["time_note"] = "EXOTIC JSON 'time' taken as BJD_TDB"
    return table


def _offset_in_name(name: str) -> float | None:
    match = re.search(r"[-\u2212]\s*(2[0-9]{6}(?:\.5)?)", name)
    return float(match.group(1)) if match else None


def detect_time_column(
    table: Table, name: str | None = None, *, path: Path | str | None = None
) -> TimeColumn:
    """Find (or check) the time column and decide its offset and scale (rules in the module doc)."""
    lower = {c.lower().strip(): c for c in table.colnames}
    col = None
    if name is not None:
        col = name if name in table.colnames else lower.get(name.lower())
        if col is None:
            raise TimeseriesError(
                f"no column named {name!r}", path=path, hint=f"columns are: {', '.join(table.colnames)}"
            )
    else:
        for candidate in TIME_NAMES:
            if candidate in lower:
                col = lower[candidate]
                break
        if col is None:
            for key, original in lower.items():
                if any(tag in key for tag in ("bjd", "jd", "time", "mjd")):
                    col = original
                    break
    if col is None:
        raise TimeseriesError(
            "no time column found",
            path=path,
            hint=f"name it with --time-col (columns: {', '.join(table.colnames)})",
        )
    values = np.asarray(table[col], dtype=np.float64)
    key = col.lower()
    offset = _offset_in_name(col)
    note = f"column {col!r}"
    if offset is None:
        if "mjd" in key:
            offset = 2400000.5
        else:
            median = float(np.nanmedian(values))
            if median > 2_400_000:
                offset = 0.0
            elif 10_000 < median < 100_000:
                offset = 2400000.5
                note += " read as MJD from its values"
                log.info("time column %r holds values near %.0f: read as MJD", col, median)
            else:
                raise TimeseriesError(
                    f"time column {col!r} holds values near {median:g}, which are not JD or MJD",
                    path=path,
                    hint="give absolute times (JD, MJD or BJD) so that the ephemeris applies",
                )
    if "bjd" in key:
        scale = "BJD_TDB"
    elif "hjd" in key:
        scale = "BJD_TDB"
        note += " (HJD taken as BJD_TDB: they differ by about a minute)"
    else:
        scale = "JD_UTC"
    return TimeColumn(col, offset, scale, note)


def detect_flux_columns(
    table: Table, flux: str | None = None, err: str | None = None, *, path: Path | str | None = None
) -> tuple[str, str | None]:
    """Find the relative-flux (or magnitude) column and its error column (None when absent)."""
    lower = {c.lower().strip(): c for c in table.colnames}

    def find(name: str) -> str:
        found = name if name in table.colnames else lower.get(name.lower())
        if found is None:
            raise TimeseriesError(
                f"no column named {name!r}", path=path, hint=f"columns are: {', '.join(table.colnames)}"
            )
        return found

    flux_col = find(flux) if flux else next((lower[n] for n in FLUX_NAMES if n in lower), None)
    if flux_col is None:
        raise TimeseriesError(
            "no flux column found",
            path=path,
            hint=f"name it with --flux-col (columns: {', '.join(table.colnames)})",
        )
    if err:
        return flux_col, find(err)
    fl = flux_col.lower()
    candidates = [fl.replace("flux", "flux_err"), *(fl + s for s in ERR_SUFFIXES), *ERR_NAMES]
    err_col = next((lower[c] for c in candidates if c in lower and lower[c] != flux_col), None)
    return flux_col, err_col


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
