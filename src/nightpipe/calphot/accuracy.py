"""How well calibrated magnitudes agree with the reference catalogue, measured honestly.

The measurement behind issue #9's acceptance figure: for each catalogue star, the night-averaged
calibrated magnitude minus the catalogue magnitude, over the measurements that can be trusted:

- not saturated and not in the non-linear range (``SATURATED``, ``NONLINEAR``), no cosmic ray,
  bad pixel, missing data or edge in the aperture;
- not blended: the flux that neighbours put into the star's aperture, for a Gaussian PSF of
  the frame's FWHM (:func:`neighbour_contamination`), is below ``max_contamination`` both from
  the detected sources and from the other catalogue stars (a pair the detection did not split).
  This replaces the ``BLENDED``/``NEIGHBOUR`` flags, which at 5"/px mark most bright stars
  whether or not the neighbour reaches the aperture;
- measured in at least ``min_frames`` frames.

Stars are never chosen by their residual. The figures: plain RMS of the per-star residuals
(about zero, so a mean offset counts), robust RMS (``mad_std`` about the median), the median
offset, and what the catalogue errors and the measurement errors alone would give, so the
rest of the scatter (colour terms of an unfiltered camera against VT, mostly) is explicit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.stats import mad_std
from astropy.table import Table
from scipy import special
from scipy.spatial import cKDTree

from nightpipe.frames.flags import BAD_PIXEL_FLAGS, PixelFlag

UNTRUSTED_FLAGS = int(
    BAD_PIXEL_FLAGS
    | PixelFlag.SATURATED
    | PixelFlag.NONLINEAR
    | PixelFlag.COSMIC_RAY
    | PixelFlag.NO_DATA
    | PixelFlag.EDGE
    | PixelFlag.FIT_FAILED
)
"""Flags that make a measurement unusable for the catalogue comparison (blends are judged by
their measured contamination instead of the ``BLENDED``/``NEIGHBOUR`` bits)."""

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def aperture_fraction(distance_px: np.ndarray, radius_px: float, fwhm_px: float) -> np.ndarray:
    """Fraction of a circular Gaussian star's flux that falls in an aperture ``distance_px`` away.

    Exact for a Gaussian PSF: the non-central chi-square distribution with two degrees of
    freedom (Marcum Q function).

    Examples
    --------
    >>> round(float(aperture_fraction(np.array([0.0]), 2.0, 2.0 / FWHM_TO_SIGMA)[0]), 4)  # R = sigma
    0.3935
    """
    sigma = float(fwhm_px) * FWHM_TO_SIGMA
    d = np.asarray(distance_px, float) / sigma
    return np.asarray(special.chndtr((float(radius_px) / sigma) ** 2, 2, d**2))  # ncx2 CDF


def neighbour_contamination(
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    radius_px: float,
    fwhm_px: float,
    *,
    reach_fwhm: float = 4.0,
) -> np.ndarray:
    """Per star, the flux its neighbours put into its aperture, as a fraction of its own flux.

    ``flux`` is any flux measure proportional to each star's total (aperture fluxes, or
    ``10**(-0.4 mag)``); stars without a positive flux neither count nor are counted
    (NaN for themselves). Neighbours farther than ``radius_px + reach_fwhm * fwhm_px`` are
    ignored (their share is below 1e-6 of their flux).
    """
    x, y, flux = (np.asarray(a, float) for a in (x, y, flux))
    out = np.full(x.size, np.nan)
    good = np.isfinite(x) & np.isfinite(y) & np.isfinite(flux) & (flux > 0)
    idx = np.flatnonzero(good)
    if idx.size == 0:
        return out
    out[idx] = 0.0
    if idx.size < 2 or not np.isfinite(fwhm_px) or fwhm_px <= 0:
        return out
    tree = cKDTree(np.column_stack([x[idx], y[idx]]))
    pairs = tree.query_pairs(float(radius_px + reach_fwhm * fwhm_px), output_type="ndarray")
    if pairs.size == 0:
        return out
    a, b = idx[pairs[:, 0]], idx[pairs[:, 1]]
    share = aperture_fraction(np.hypot(x[a] - x[b], y[a] - y[b]), radius_px, fwhm_px)
    own = aperture_fraction(np.zeros(1), radius_px, fwhm_px)[0]
    # flux of b inside a's aperture over a's own flux inside it, and the other way round
    np.add.at(out, a, flux[b] * share / (flux[a] * own))
    np.add.at(out, b, flux[a] * share / (flux[b] * own))
    return out


def catalog_contamination(
    ra: np.ndarray,
    dec: np.ndarray,
    mag: np.ndarray,
    radius_px: float,
    fwhm_px: float,
    pixel_scale_arcsec: float,
) -> np.ndarray:
    """:func:`neighbour_contamination` of catalogue stars from the other catalogue stars.

    Positions are projected on the tangent plane at their mean (enough for the distances
    between close pairs in a field of a few degrees); fluxes are ``10**(-0.4 mag)``.
    """
    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    if ra.size == 0:
        return np.zeros(0)
    ok = np.isfinite(ra) & np.isfinite(dec)
    ra0 = float(np.degrees(np.angle(np.mean(np.exp(1j * np.radians(ra[ok])))))) if ok.any() else 0.0
    dec0 = float(np.mean(dec[ok])) if ok.any() else 0.0
    dra = (ra - ra0 + 180.0) % 360.0 - 180.0
    scale = 3600.0 / float(pixel_scale_arcsec)
    px = dra * np.cos(np.radians(dec0)) * scale
    py = (dec - dec0) * scale
    with np.errstate(over="ignore"):
        flux = 10 ** (-0.4 * np.asarray(mag, float))
    return neighbour_contamination(px, py, flux, radius_px, fwhm_px)


@dataclass(frozen=True)
class CatalogAgreement:
    """Night-averaged calibrated magnitudes against the catalogue, per star and overall.

    ``rms`` is about zero (a mean offset counts); ``robust_rms`` is ``mad_std`` about the
    median. ``expected_rms`` is what the catalogue errors and the errors of the night means
    alone would give; ``excess_rms`` the rest, in quadrature (0 when the errors explain all).
    """

    n_stars: int
    rms: float
    robust_rms: float
    median_offset: float
    mean_offset: float
    weighted_rms: float
    expected_rms: float
    catalog_rms: float
    excess_rms: float
    max_cat_mag: float
    stars: Table  # cat_id, cat_mag, cat_err, mag, mag_err, scatter, n_frames, residual

    def summary(self) -> str:
        """One line for logs and terminals."""
        if self.n_stars == 0:
            return f"no catalogue star brighter than {self.max_cat_mag:g} was usable"
        return (
            f"{self.n_stars} stars < {self.max_cat_mag:g}: calibrated - catalogue RMS {self.rms:.3f} "
            f"(robust {self.robust_rms:.3f}, median {self.median_offset:+.3f}) mag; "
            f"catalogue and measurement errors explain {self.expected_rms:.3f}, "
            f"the rest {self.excess_rms:.3f}"
        )


def usable_measurements(
    flags: np.ndarray,
    contamination: np.ndarray,
    catalog_contamination: np.ndarray | None = None,
    *,
    max_contamination: float = 0.01,
) -> np.ndarray:
    """Boolean mask of measurements fit for the catalogue comparison (see the module doc)."""
    flags = np.asarray(flags, np.int64)
    ok = ((flags & UNTRUSTED_FLAGS) == 0) & (np.asarray(contamination, float) <= max_contamination)
    if catalog_contamination is not None:
        ok &= ~(np.asarray(catalog_contamination, float) > max_contamination)
    return np.asarray(ok)


def catalog_agreement(
    cat_id: np.ndarray,
    cat_mag: np.ndarray,
    cat_err: np.ndarray,
    mag: np.ndarray,
    mag_err: np.ndarray,
    usable: np.ndarray,
    *,
    max_cat_mag: float = 11.0,
    min_frames: int = 5,
) -> CatalogAgreement:
    """Per catalogue star, the night mean of its usable calibrated magnitudes against the catalogue.

    Parameters
    ----------
    cat_id, cat_mag, cat_err
        Per measurement (one source in one frame): the matched catalogue star, its magnitude
        and error ("" / NaN for unmatched sources).
    mag, mag_err
        The calibrated magnitude of the measurement and its error.
    usable
        Which measurements to use (:func:`usable_measurements`).
    max_cat_mag
        Only stars brighter than this catalogue magnitude enter the figures.
    min_frames
        Stars with fewer usable frames are left out.

    Examples
    --------
    >>> ids = np.repeat(np.array(["a", "b", "c"]), 5)
    >>> cat = np.repeat(np.array([9.0, 10.0, 10.5]), 5)
    >>> mags = cat + np.repeat(np.array([0.1, -0.1, 0.0]), 5)
    >>> res = catalog_agreement(ids, cat, np.full(15, 0.05), mags, np.full(15, 0.02), np.ones(15, bool))
    >>> res.n_stars, round(res.rms, 4), round(res.median_offset, 4)
    (3, 0.0816, 0.0)
    """
    cat_id = np.asarray(cat_id).astype(str)
    cat_mag, cat_err = np.asarray(cat_mag, float), np.asarray(cat_err, float)
    mag, mag_err = np.asarray(mag, float), np.asarray(mag_err, float)
    use = (
        np.asarray(usable, bool)
        & (cat_id != "")
        & np.isfinite(cat_mag)
        & (cat_mag < max_cat_mag)
        & np.isfinite(mag)
        & np.isfinite(mag_err)
        & (mag_err > 0)
    )
    ids, inverse = np.unique(cat_id[use], return_inverse=True)
    n = np.bincount(inverse, minlength=ids.size)
    w = 1.0 / mag_err[use] ** 2
    wsum = np.bincount(inverse, w, minlength=ids.size)
    mean = np.bincount(inverse, w * mag[use], minlength=ids.size) / np.maximum(wsum, 1e-300)
    dev = mag[use] - mean[inverse]
    scatter = np.sqrt(np.bincount(inverse, dev**2, minlength=ids.size) / np.maximum(n, 1))
    # error of the night mean: the formal one, or the scatter of the frames when larger
    err = np.maximum(1.0 / np.sqrt(np.maximum(wsum, 1e-300)), scatter / np.sqrt(np.maximum(n - 1, 1)))
    first = np.zeros(ids.size, int)
    first[inverse[::-1]] = np.flatnonzero(use)[::-1]
    star_cat, star_err = cat_mag[first], np.nan_to_num(cat_err[first])
    keep = n >= min_frames
    stars = Table(
        {
            "cat_id": ids[keep],
            "cat_mag": star_cat[keep],
            "cat_err": star_err[keep],
            "mag": mean[keep],
            "mag_err": err[keep],
            "scatter": scatter[keep],
            "n_frames": n[keep],
            "residual": (mean - star_cat)[keep],
        }
    )
    stars.sort("cat_mag")
    resid = np.asarray(stars["residual"], float)
    if resid.size == 0:
        nan = float("nan")
        return CatalogAgreement(0, nan, nan, nan, nan, nan, nan, nan, nan, max_cat_mag, stars)
    var = np.asarray(stars["cat_err"], float) ** 2 + np.asarray(stars["mag_err"], float) ** 2
    rms = float(np.sqrt(np.mean(resid**2)))
    expected = float(np.sqrt(np.mean(var)))
    wts = 1.0 / np.maximum(var, 1e-8)
    return CatalogAgreement(
        n_stars=int(resid.size),
        rms=rms,
        robust_rms=float(mad_std(resid)) if resid.size > 1 else 0.0,
        median_offset=float(np.median(resid)),
        mean_offset=float(np.mean(resid)),
        weighted_rms=float(np.sqrt(np.sum(wts * resid**2) / np.sum(wts))),
        expected_rms=expected,
        catalog_rms=float(np.sqrt(np.mean(np.asarray(stars["cat_err"], float) ** 2))),
        excess_rms=float(np.sqrt(max(rms**2 - expected**2, 0.0))),
        max_cat_mag=max_cat_mag,
        stars=stars,
    )
