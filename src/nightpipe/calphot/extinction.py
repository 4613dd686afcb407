"""Airmass and first-order atmospheric extinction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy import units as u
from astropy.coordinates import EarthLocation
from astropy.time import Time

from nightpipe.errors import PhotometryError
from nightpipe.frames.timing import altitudes_deg


def airmass_from_altitude(alt_deg: np.ndarray) -> np.ndarray:
    """Airmass from apparent altitude with Pickering (2002)'s formula (good to the horizon)."""
    h = np.asarray(alt_deg, float)
    with np.errstate(invalid="ignore"):
        x = 1.0 / np.sin(np.radians(h + 244.0 / (165.0 + 47.0 * np.power(np.clip(h, 0, 90), 1.1))))
    return np.where(h > 0, x, np.nan)


def airmass(
    times: Time, ra_deg: np.ndarray | float, dec_deg: np.ndarray | float, location: EarthLocation
) -> np.ndarray:
    """Airmass of (ra, dec) at ``times`` from ``location`` (one value per time, or per star)."""
    alt = altitudes_deg(
        np.asarray(times.utc.jd, float),
        np.atleast_1d(ra_deg),
        np.atleast_1d(dec_deg),
        float(location.lat.deg),
        float(location.lon.deg),
        float(location.height.to_value(u.m)),
    )
    return airmass_from_altitude(alt)


@dataclass(frozen=True)
class ExtinctionFit:
    """``ZP(X) = zp0 - k X``: the extinction coefficient k (mag/airmass) and the zero point above the air."""

    k: float
    k_err: float
    zp0: float
    zp0_err: float
    n: int


def fit_extinction(
    zero_points: np.ndarray, zero_point_errs: np.ndarray, airmasses: np.ndarray
) -> ExtinctionFit:
    """Weighted straight-line fit of the frames' zero points against airmass over a night.

    Raises
    ------
    PhotometryError
        With fewer than 3 frames or an airmass range under 0.05 (k is then not measurable:
        take it from the configuration instead).
    """
    zp, err, x = (np.asarray(a, float) for a in (zero_points, zero_point_errs, airmasses))
    ok = np.isfinite(zp) & np.isfinite(x) & np.isfinite(err) & (err > 0)
    if ok.sum() < 3 or np.ptp(x[ok]) < 0.05:
        raise PhotometryError(
            f"cannot fit extinction from {int(ok.sum())} frames "
            f"spanning airmass {np.ptp(x[ok]) if ok.any() else 0:.3f}",
            hint="observe over a wider airmass range or set the coefficient in the configuration",
        )
    design = np.column_stack([np.ones(ok.sum()), -x[ok]])
    w = 1.0 / err[ok] ** 2
    cov = np.linalg.inv(design.T @ (design * w[:, None]))
    params = cov @ (design.T @ (w * zp[ok]))
    resid = zp[ok] - design @ params
    chi2 = float(np.sum(w * resid**2)) / max(ok.sum() - 2, 1)
    cov = cov * max(chi2, 1.0)
    return ExtinctionFit(
        float(params[1]),
        float(np.sqrt(cov[1, 1])),
        float(params[0]),
        float(np.sqrt(cov[0, 0])),
        int(ok.sum()),
    )
