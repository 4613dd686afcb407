"""Writing light curves and fits: AstroImageJ-style CSV, AAVSO exoplanet report, fit JSON.

The CSV uses the column names AstroImageJ users know: ``J.D.-2400000`` (JD_UTC - 2400000),
``BJD_TDB``, ``AIRMASS``, ``FWHM_Mean``, ``rel_flux_T1``, ``rel_flux_err_T1``, ``rel_flux_C2``...
(each comparison's flux over the sum of the other comparisons, as AstroImageJ defines it),
``Source-Sky_T1``, ``Source-Sky_C2``..., ``Sky/Pixel_T1``, ``X(FITS)_T1``, ``Y(FITS)_T1`` (1-based
FITS pixels) and, when the image height is known, ``X(IJ)_T1``, ``Y(IJ)_T1`` (ImageJ pixels:
``X(IJ) = X(FITS) - 0.5``, ``Y(IJ) = NAXIS2 - Y(FITS) + 0.5``). Relative fluxes of the other
apertures follow as ``rel_flux_T1_r<radius>``; with a fit, ``detrended_flux_T1``, ``model_T1``
and ``used_in_fit`` are added. Every file is written atomically.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from nightpipe import __version__
from nightpipe.frames.fitsio import atomic_open
from nightpipe.store.values import jsonable
from nightpipe.timeseries.lightcurve import LightCurve
from nightpipe.timeseries.transit import TransitFit


def aij_columns(lc: LightCurve, fit: TransitFit | None = None) -> dict[str, np.ndarray]:
    """The columns of the AstroImageJ-style table, in order (arrays of length N)."""
    n = len(lc)
    cols: dict[str, np.ndarray] = {}
    if lc.jd_utc is not None:
        cols["J.D.-2400000"] = lc.jd_utc - 2400000.0
    if lc.time_scale == "BJD_TDB":
        cols["BJD_TDB"] = lc.time
    else:
        cols[lc.time_scale] = lc.time
    if "airmass" in lc.aux:
        cols["AIRMASS"] = lc.aux["airmass"]
    if "fwhm" in lc.aux:
        cols["FWHM_Mean"] = lc.aux["fwhm"]
    cols["rel_flux_T1"] = lc.flux
    cols["rel_flux_err_T1"] = lc.flux_err
    comps = lc.comparison_flux
    if comps is not None and comps.shape[1] > 1:
        total = np.nansum(comps, axis=1)
        for j in range(comps.shape[1]):
            cols[f"rel_flux_C{j + 2}"] = comps[:, j] / (total - comps[:, j])
    if lc.target_flux is not None:
        cols["Source-Sky_T1"] = lc.target_flux
    if comps is not None:
        for j in range(comps.shape[1]):
            cols[f"Source-Sky_C{j + 2}"] = comps[:, j]
    if "sky" in lc.aux:
        cols["Sky/Pixel_T1"] = lc.aux["sky"]
    if "x" in lc.aux and "y" in lc.aux:
        cols["X(FITS)_T1"] = lc.aux["x"] + 1.0
        cols["Y(FITS)_T1"] = lc.aux["y"] + 1.0
        naxis2 = lc.meta.get("naxis2")
        if naxis2:
            cols["X(IJ)_T1"] = lc.aux["x"] + 0.5
            cols["Y(IJ)_T1"] = float(naxis2) - (lc.aux["y"] + 1.0) + 0.5
    radii = lc.meta.get("aperture_radii_px") or []
    if lc.aperture_flux is not None and lc.aperture_flux.shape[1] > 1:
        for k in range(lc.aperture_flux.shape[1]):
            label = f"{radii[k]:g}" if k < len(radii) else str(k)
            cols[f"rel_flux_T1_r{label}"] = lc.aperture_flux[:, k]
            if lc.aperture_flux_err is not None:
                cols[f"rel_flux_err_T1_r{label}"] = lc.aperture_flux_err[:, k]
    if fit is not None and len(fit.lc) == n:
        detrended = np.full(n, np.nan)
        model = np.full(n, np.nan)
        detrended[fit.used] = fit.detrended_flux
        model[fit.used] = fit.transit_model
        cols["detrended_flux_T1"] = detrended
        cols["model_T1"] = model
        cols["used_in_fit"] = fit.used.astype(np.int64)
    return cols


def _fmt(value: Any) -> str:
    if isinstance(value, np.integer | int):
        return str(int(value))
    value = float(value)
    if not math.isfinite(value):
        return "NaN"
    return repr(round(value, 10)) if abs(value) >= 1e5 else f"{value:.10g}"


def write_aij_csv(path: Path | str, lc: LightCurve, fit: TransitFit | None = None) -> Path:
    """Write the light curve as an AstroImageJ-style CSV (columns in the module doc)."""
    cols = aij_columns(lc, fit)
    path = Path(path)
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(cols)
        for i in range(len(lc)):
            writer.writerow([_fmt(c[i]) for c in cols.values()])
    return path


def write_fit_json(path: Path | str, fit: TransitFit, extra: dict[str, Any] | None = None) -> Path:
    """Write the fit summary (parameters, detrending, statistics, provenance) as JSON."""
    data = fit.summary()
    data["software"] = f"nightpipe {__version__}"
    if extra:
        data.update(extra)
    path = Path(path)
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(jsonable(data), handle, indent=2, sort_keys=False)
        handle.write("\n")
    return path


# the band of a frame's filter (calphot.transforms.filter_band) -> AAVSO's filter code
AAVSO_FILTERS = {"clear": "CV", "U": "U", "B": "B", "V": "V", "R": "R", "I": "I", "J": "J", "H": "H",
                 "K": "K", "u": "SU", "g": "SG", "r": "SR", "i": "SI", "z": "SZ"}  # fmt: skip


def aavso_filter(filter_name: str | None) -> str:
    """AAVSO's code for a frame's filter: V, B, R, I, SG, SR... and CV for a clear (unfiltered) night.

    >>> aavso_filter("Johnson V"), aavso_filter("r'"), aavso_filter("Clear"), aavso_filter(None)
    ('V', 'SR', 'CV', 'CV')
    """
    from nightpipe.calphot.transforms import filter_band

    band = filter_band(filter_name)
    return AAVSO_FILTERS.get(band, AAVSO_FILTERS.get(band.upper(), "CV"))


def _site(latitude: float | None, longitude: float | None, elevation: float | None) -> list[str]:
    if latitude is None or longitude is None:
        return []
    lines = [f"#OBSLAT={latitude:+.4f}", f"#OBSLON={longitude:+.4f}"]
    return lines + ([f"#OBSELEV={elevation:.0f}"] if elevation is not None else [])


def aavso_report_lines(
    fit: TransitFit,
    *,
    star_name: str,
    planet_name: str,
    obscode: str = "",
    filter_name: str = "CV",
    exptime_s: float | None = None,
    binning: str = "1x1",
    notes: str = "",
    comp_stars: Iterable[str] = (),
    site: tuple[float | None, float | None, float | None] = (None, None, None),
) -> list[str]:
    """Lines of an AAVSO exoplanet report (the ``#TYPE=EXOPLANET`` format EXOTIC writes).

    Data rows hold the date (BJD_TDB), the detrended relative flux, its error and, when the
    fit was detrended, the systematics model (``DETREND_1``) of every point used in the fit.
    ``site`` is (latitude, longitude east, elevation in m) of the observatory.
    """
    p = fit.params
    priors = [f"Period={fit.extra.get('period', '')}"] if "period" in fit.extra else []
    if fit.predicted_tc is not None:
        err = f" +/- {fit.predicted_tc_err:.6f}" if fit.predicted_tc_err else ""
        priors.append(f"Tc={fit.predicted_tc:.6f}{err}")
    results = [
        f"Tc={p['tc'].median:.6f} +/- {p['tc'].err:.6f}",
        f"Rp/R*={p['rp_rs'].median:.5f} +/- {p['rp_rs'].err:.5f}",
        f"a/R*={p['a_rs'].median:.4f} +/- {p['a_rs'].err:.4f}",
        f"inc={p['inc'].median:.3f} +/- {p['inc'].err:.3f}",
    ]
    head = [
        "#TYPE=EXOPLANET",
        f"#OBSCODE={obscode}",
        "#SECONDARY_OBSCODES=",
        f"#SOFTWARE=nightpipe {__version__}",
        "#DELIM=,",
        f"#DATE_TYPE={fit.lc.time_scale}",
        "#OBSTYPE=CCD",
        f"#STAR_NAME={star_name}",
        f"#EXOPLANET_NAME={planet_name}",
        f"#BINNING={binning}",
        f"#EXPOSURE_TIME={'' if exptime_s is None else f'{exptime_s:g}'}",
        *_site(*site),
        f"#COMP_STAR-XC={','.join(comp_stars)}",
        f"#NOTES={notes}",
        f"#DETREND_PARAMETERS={', '.join(fit.detrend_vectors).upper() or 'NONE'}",
        "#MEASUREMENT_TYPE=Rnflux",
        f"#FILTER={filter_name}",
        f"#PRIORS={','.join(priors)}",
        f"#RESULTS={','.join(results)}",
        "#DATE,DIFF,ERR,DETREND_1" if fit.detrend_vectors else "#DATE,DIFF,ERR",
    ]
    t = fit.lc.time[fit.used]
    f = fit.detrended_flux
    e = fit.lc.flux_err[fit.used] / fit.systematics
    if not fit.detrend_vectors:
        return head + [f"{ti:.8f},{fi:.7f},{ei:.7f}" for ti, fi, ei in zip(t, f, e, strict=True)]
    rows = [
        f"{ti:.8f},{fi:.7f},{ei:.7f},{si:.7f}"
        for ti, fi, ei, si in zip(t, f, e, fit.systematics, strict=True)
    ]
    return head + rows


def write_aavso_report(path: Path | str, fit: TransitFit, **kwargs: Any) -> Path:
    """Write :func:`aavso_report_lines` to ``path`` atomically."""
    path = Path(path)
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(aavso_report_lines(fit, **kwargs)) + "\n")
    return path
