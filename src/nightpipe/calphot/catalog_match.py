"""Sky cross-matching of detected sources to a reference catalogue."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord


@dataclass(frozen=True)
class Match:
    """Pairs ``(source[i], reference[ref_index[i]])`` with their separations in arcsec."""

    source_index: np.ndarray
    ref_index: np.ndarray
    separation_arcsec: np.ndarray


def match_radius_arcsec(
    wcs_rms_arcsec: float | None, pixel_scale_arcsec: float, *, floor: float = 1.0
) -> float:
    """A match radius that follows the WCS residuals: 3 x RMS, at least ``floor`` and half a pixel."""
    rms = wcs_rms_arcsec if wcs_rms_arcsec is not None and np.isfinite(wcs_rms_arcsec) else pixel_scale_arcsec
    return float(max(3.0 * rms, floor, 0.5 * pixel_scale_arcsec))


def crossmatch(
    ra: np.ndarray, dec: np.ndarray, ref_ra: np.ndarray, ref_dec: np.ndarray, radius_arcsec: float
) -> Match:
    """Nearest reference star within ``radius_arcsec`` of each source, one-to-one.

    When two sources claim the same reference star, only the closer keeps it.
    """
    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    empty = Match(np.zeros(0, int), np.zeros(0, int), np.zeros(0))
    good = np.isfinite(ra) & np.isfinite(dec)
    ref_good = np.isfinite(ref_ra) & np.isfinite(ref_dec)
    if not good.any() or not ref_good.any():
        return empty
    src_idx = np.flatnonzero(good)
    ref_idx = np.flatnonzero(ref_good)
    sources = SkyCoord(ra[src_idx] * u.deg, dec[src_idx] * u.deg)
    refs = SkyCoord(np.asarray(ref_ra)[ref_idx] * u.deg, np.asarray(ref_dec)[ref_idx] * u.deg)
    nearest, sep, _ = sources.match_to_catalog_sky(refs)
    sep_arcsec = sep.to_value(u.arcsec)
    keep = sep_arcsec <= radius_arcsec
    s, r, d = src_idx[keep], ref_idx[nearest[keep]], sep_arcsec[keep]
    order = np.argsort(d, kind="stable")
    _, first = np.unique(r[order], return_index=True)
    chosen = np.sort(order[first])
    return Match(s[chosen], r[chosen], d[chosen])
