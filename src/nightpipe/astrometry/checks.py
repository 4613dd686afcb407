"""Checking and refining a WCS against reference stars: cross-match, fit, residuals.

A WCS is judged by how well it puts catalogue stars (from the index files) on the detected
stars: the number of matches, the residual RMS on the sky (arcsec) and in pixels. The same
functions refine a WCS (re-fit CRVAL, CD and optionally SIP to the matches) and validate a
WCS found in a header.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS, FITSFixedWarning, NoConvergence

from nightpipe.astrometry.fitting import SipTerms, fit_wcs, residuals_arcsec
from nightpipe.astrometry.index_catalog import RefStars
from nightpipe.astrometry.match import nearest_pairs, vote_offset
from nightpipe.astrometry.sources import StarList

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WcsGeometry:
    """Where a WCS puts the frame: centre, scale and orientation."""

    ra_center: float
    dec_center: float
    pixel_scale: float  # arcsec per pixel (geometric mean of the axes, at the centre)
    rotation: float  # position angle of the image +y axis, degrees east of north, [0, 360)
    flipped: bool  # True when the image has the unusual parity (east to the right with north up)


@dataclass(frozen=True)
class WcsQuality:
    """How well a WCS fits the reference stars."""

    n_matched: int
    n_reference: int
    rms_arcsec: float
    rms_px: float
    geometry: WcsGeometry


@dataclass(frozen=True)
class RefinedWcs:
    """A refined WCS, its quality, and the matched pairs (indices into stars and references)."""

    wcs: WCS
    quality: WcsQuality
    star_index: np.ndarray
    ref_index: np.ndarray


def wcs_geometry(wcs: WCS, shape: tuple[int, int]) -> WcsGeometry:
    """Centre, pixel scale, rotation and parity of a celestial WCS over an image of ``shape``."""
    height, width = shape
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    pts = wcs.all_pix2world(np.array([[cx, cy], [cx + 1, cy], [cx, cy + 1]]), 0)
    ra0, dec0 = np.radians(pts[0])
    vecs = []
    for ra, dec in np.radians(pts[1:]):
        de = np.cos(dec) * np.sin(ra - ra0)  # east
        dn = np.cos(dec0) * np.sin(dec) - np.sin(dec0) * np.cos(dec) * np.cos(ra - ra0)  # north
        vecs.append(np.degrees([de, dn]) * 3600.0)
    ex, ey = vecs
    scale = float(np.sqrt(abs(ex[0] * ey[1] - ex[1] * ey[0])))
    rotation = float(np.degrees(np.arctan2(ey[0], ey[1])) % 360.0)
    flipped = bool(ex[0] * ey[1] - ex[1] * ey[0] > 0)
    return WcsGeometry(float(pts[0][0]), float(pts[0][1]), scale, rotation, flipped)


def refs_on_frame(
    wcs: WCS, refs: RefStars, shape: tuple[int, int], *, margin: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions (N x 2, 0-based) and indices of the reference stars falling on the frame."""
    if len(refs) == 0:
        return np.empty((0, 2)), np.empty(0, int)
    height, width = shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            xy = wcs.all_world2pix(np.column_stack([refs.ra, refs.dec]), 0, quiet=True)
        except NoConvergence as exc:  # pragma: no cover - quiet=True returns the best guess
            xy = exc.best_solution
    inside = (
        np.all(np.isfinite(xy), axis=1)
        & (xy[:, 0] >= -margin)
        & (xy[:, 0] <= width - 1 + margin)
        & (xy[:, 1] >= -margin)
        & (xy[:, 1] <= height - 1 + margin)
    )
    index = np.flatnonzero(inside)
    return xy[index], index


def quality_of(
    wcs: WCS, stars: StarList, refs: RefStars, si: np.ndarray, ri: np.ndarray, n_reference: int
) -> WcsQuality:
    """Residual statistics of matched pairs under ``wcs``."""
    geometry = wcs_geometry(wcs, stars.shape)
    if si.size == 0:
        return WcsQuality(0, n_reference, np.nan, np.nan, geometry)
    res = residuals_arcsec(wcs, stars.x[si], stars.y[si], refs.ra[ri], refs.dec[ri])
    rms = float(np.sqrt(np.mean(res**2)))
    return WcsQuality(int(si.size), n_reference, rms, rms / geometry.pixel_scale, geometry)


def match_to_refs(
    wcs: WCS,
    stars: StarList,
    refs: RefStars,
    *,
    radius_px: float,
    max_shift_px: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Pair detected stars with reference stars under ``wcs``.

    With ``max_shift_px`` > 0 a common offset (a header WCS a few pixels off) is voted first.
    Returns indices into ``stars`` and ``refs``, and the number of reference stars on the frame.
    """
    ref_xy, ref_index = refs_on_frame(wcs, refs, stars.shape, margin=2.0)
    if ref_xy.shape[0] == 0 or len(stars) == 0:
        return np.empty(0, int), np.empty(0, int), int(ref_xy.shape[0])
    star_xy = stars.xy
    shift = np.zeros(2)
    if max_shift_px > 0:
        n_vote = max(40, 2 * ref_xy.shape[0])
        shift, votes = vote_offset(ref_xy, star_xy[:n_vote], max_shift=max_shift_px, cell=max(radius_px, 2.0))
        if votes < 3:
            shift = np.zeros(2)
    si, rj = nearest_pairs(star_xy, ref_xy + shift, radius=radius_px)
    return si, ref_index[rj], int(ref_xy.shape[0])


def refine_wcs(
    wcs: WCS,
    stars: StarList,
    refs: RefStars,
    *,
    sip_order: int = 2,
    fixed_sip: SipTerms | None = None,
    radius_px: float = 3.0,
    max_shift_px: float = 0.0,
    clip: float = 3.0,
    iterations: int = 3,
    min_matches: int = 6,
) -> RefinedWcs | None:
    """Re-fit ``wcs`` to the reference stars it matches; ``None`` when too few match.

    The SIP order is lowered when there are too few matches for it (at least three stars per
    free parameter of each axis are required). With ``fixed_sip`` only CRVAL and CD are fitted.
    Stars further than ``clip`` times the RMS are rejected before the next iteration.
    """
    si, ri, n_ref = match_to_refs(wcs, stars, refs, radius_px=radius_px, max_shift_px=max_shift_px)
    current = wcs
    for step in range(iterations):
        if si.size < min_matches:
            log.debug("only %d reference stars matched (need %d)", si.size, min_matches)
            return None
        order = 0 if fixed_sip is not None else sip_order
        while order >= 2 and si.size < 3 * ((order + 1) * (order + 2) // 2):
            order -= 1
        crval0 = (float(current.wcs.crval[0]), float(current.wcs.crval[1]))
        try:
            current = fit_wcs(
                stars.x[si],
                stars.y[si],
                refs.ra[ri],
                refs.dec[ri],
                shape=stars.shape,
                sip_order=order,
                fixed_sip=fixed_sip,
                crval0=crval0,
            )
        except (ValueError, np.linalg.LinAlgError) as exc:
            log.debug("WCS fit failed: %s", exc)
            return None
        res = residuals_arcsec(current, stars.x[si], stars.y[si], refs.ra[ri], refs.dec[ri])
        rms = float(np.sqrt(np.mean(res**2)))
        keep = res <= max(clip * rms, 0.05)
        if step == iterations - 1:
            break
        # re-match under the better WCS with a tighter radius, dropping outliers
        scale = wcs_geometry(current, stars.shape).pixel_scale
        radius = max(1.0, min(radius_px, 3.0 * clip * rms / scale))
        si2, ri2, n_ref = match_to_refs(current, stars, refs, radius_px=radius)
        if si2.size >= min_matches:
            res2 = residuals_arcsec(current, stars.x[si2], stars.y[si2], refs.ra[ri2], refs.dec[ri2])
            keep2 = res2 <= max(clip * rms, 0.05)
            si, ri = si2[keep2], ri2[keep2]
        else:
            si, ri = si[keep], ri[keep]
    quality = quality_of(current, stars, refs, si, ri, n_ref)
    return RefinedWcs(current, quality, si, ri)


def check_wcs(
    wcs: WCS,
    stars: StarList,
    refs: RefStars,
    *,
    radius_px: float = 3.0,
    max_shift_px: float = 0.0,
) -> WcsQuality:
    """Measure a WCS as it is (no fit): matches to reference stars and residual RMS.

    With ``max_shift_px`` a constant offset is tolerated while pairing, so that a WCS that is
    a few pixels off still shows its (large) residuals instead of zero matches.
    """
    si, ri, n_ref = match_to_refs(wcs, stars, refs, radius_px=radius_px, max_shift_px=max_shift_px)
    return quality_of(wcs, stars, refs, si, ri, n_ref)


def header_has_celestial_wcs(header: object) -> WCS | None:
    """The celestial WCS of a header when it has one (CTYPE RA/DEC and a scale), else ``None``."""
    from astropy.io import fits

    if not isinstance(header, fits.Header):
        return None
    if not str(header.get("CTYPE1", "")).upper().startswith("RA") or not str(
        header.get("CTYPE2", "")
    ).upper().startswith("DEC"):
        return None
    if (
        "CRVAL1" not in header
        or "CRVAL2" not in header
        or not any(k in header for k in ("CD1_1", "CDELT1", "PC1_1"))
    ):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = WCS(header, naxis=2, relax=True)
    except (ValueError, KeyError, MemoryError) as exc:
        log.debug("header WCS unreadable: %s", exc)
        return None
    if not wcs.has_celestial or not np.all(np.isfinite(wcs.wcs.crval)):
        return None
    try:
        det = float(np.linalg.det(wcs.pixel_scale_matrix))
    except (ValueError, np.linalg.LinAlgError):
        return None
    return wcs if det != 0.0 and np.isfinite(det) else None


__all__ = [
    "RefinedWcs",
    "WcsGeometry",
    "WcsQuality",
    "check_wcs",
    "header_has_celestial_wcs",
    "match_to_refs",
    "quality_of",
    "refine_wcs",
    "refs_on_frame",
    "wcs_geometry",
]
