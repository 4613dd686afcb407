"""Least-squares TAN and TAN-SIP fits from matched pixel and sky positions (pure numpy).

The model is the FITS one: pixel offsets from CRPIX ``(u, v)`` are distorted by the SIP
polynomials, ``U = u + A(u, v)``, ``V = v + B(u, v)``, mapped to the tangent plane by the CD
matrix, ``(xi, eta) = CD (U, V)``, and de-projected gnomonically around CRVAL. Fitting the
tangent-plane coordinates of the catalogue stars as polynomials of ``(u, v)`` gives CD (linear
terms), the SIP coefficients (higher terms, through CD^-1) and a CRVAL correction (constant
terms); a few iterations converge. With ``fixed_sip`` only CRVAL and CD are fitted, keeping a
distortion measured once on a reference frame.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS, FITSFixedWarning, Sip


@dataclass(frozen=True)
class SipTerms:
    """SIP distortion coefficients (forward A, B and inverse AP, BP), order ``order``."""

    order: int
    a: np.ndarray
    b: np.ndarray
    ap: np.ndarray
    bp: np.ndarray


def tan_project(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic projection (degrees on the tangent plane) of positions around (ra0, dec0)."""
    r, d = np.radians(ra), np.radians(dec)
    r0, d0 = np.radians(ra0), np.radians(dec0)
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(r - r0)
    xi = np.cos(d) * np.sin(r - r0) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(r - r0)) / cosc
    return np.degrees(xi), np.degrees(eta)


def tan_deproject(xi: np.ndarray, eta: np.ndarray, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`tan_project`: positions (degrees) of tangent-plane points."""
    x, y = np.radians(xi), np.radians(eta)
    d0 = np.radians(dec0)
    denom = np.cos(d0) - y * np.sin(d0)
    ra = np.radians(ra0) + np.arctan2(x, denom)
    dec = np.arctan2(np.sin(d0) + y * np.cos(d0), np.hypot(x, denom))
    return np.degrees(ra) % 360.0, np.degrees(dec)


def _terms(order: int, *, min_degree: int = 0) -> list[tuple[int, int]]:
    return [(p, q) for n in range(min_degree, order + 1) for p in range(n, -1, -1) for q in [n - p]]


def _design(u: np.ndarray, v: np.ndarray, terms: list[tuple[int, int]]) -> np.ndarray:
    return np.column_stack([u**p * v**q for p, q in terms]) if terms else np.empty((u.size, 0))


def _sip_eval(coeffs: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    out = np.zeros_like(u, dtype=float)
    for p in range(coeffs.shape[0]):
        for q in range(coeffs.shape[1]):
            if coeffs[p, q] != 0.0:
                out += coeffs[p, q] * u**p * v**q
    return out


def apply_sip(sip: SipTerms | None, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distorted offsets ``(u + A(u, v), v + B(u, v))``; unchanged without SIP."""
    if sip is None:
        return u, v
    return u + _sip_eval(sip.a, u, v), v + _sip_eval(sip.b, u, v)


def inverse_sip(
    a: np.ndarray, b: np.ndarray, order: int, width: float, height: float, crpix: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fit the inverse polynomials AP, BP (order ``order + 1``) on a grid over the image."""
    inv_order = order + 1
    gx, gy = np.meshgrid(np.linspace(0, width, 25), np.linspace(0, height, 25))
    u = gx.ravel() + 1 - crpix[0]
    v = gy.ravel() + 1 - crpix[1]
    big_u = u + _sip_eval(a, u, v)
    big_v = v + _sip_eval(b, u, v)
    terms = _terms(inv_order, min_degree=1)
    design = _design(big_u, big_v, terms)
    cu, *_ = np.linalg.lstsq(design, u - big_u, rcond=None)
    cv, *_ = np.linalg.lstsq(design, v - big_v, rcond=None)
    ap = np.zeros((inv_order + 1, inv_order + 1))
    bp = np.zeros((inv_order + 1, inv_order + 1))
    for (p, q), cu_i, cv_i in zip(terms, cu, cv, strict=True):
        ap[p, q], bp[p, q] = cu_i, cv_i
    return ap, bp


def make_wcs(
    crval: tuple[float, float],
    crpix: tuple[float, float],
    cd: np.ndarray,
    sip: SipTerms | None,
    shape: tuple[int, int],
) -> WCS:
    """An astropy WCS (TAN, or TAN-SIP with ``sip``) from its parts; ``crpix`` is 1-based."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(naxis=2)
        wcs.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"] if sip is not None else ["RA---TAN", "DEC--TAN"]
        wcs.wcs.crval = [crval[0] % 360.0, crval[1]]
        wcs.wcs.crpix = [crpix[0], crpix[1]]
        wcs.wcs.cd = np.asarray(cd, float)
        wcs.wcs.cunit = ["deg", "deg"]
        wcs.wcs.radesys = "ICRS"
        if sip is not None:
            wcs.sip = Sip(sip.a, sip.b, sip.ap, sip.bp, wcs.wcs.crpix)
        wcs.pixel_shape = (shape[1], shape[0])
        wcs.wcs.set()
    return wcs


def sip_of(wcs: WCS) -> SipTerms | None:
    """The SIP terms of a WCS, or ``None``."""
    if wcs.sip is None:
        return None
    order = int(wcs.sip.a_order)
    ap = wcs.sip.ap if wcs.sip.ap is not None else np.zeros((order + 1, order + 1))
    bp = wcs.sip.bp if wcs.sip.bp is not None else np.zeros((order + 1, order + 1))
    return SipTerms(order, np.array(wcs.sip.a), np.array(wcs.sip.b), np.array(ap), np.array(bp))


def fit_wcs(
    x: np.ndarray,
    y: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    *,
    shape: tuple[int, int],
    sip_order: int = 0,
    fixed_sip: SipTerms | None = None,
    crval0: tuple[float, float] | None = None,
    iterations: int = 4,
) -> WCS:
    """Fit a TAN (or TAN-SIP) WCS to matched 0-based pixel positions and sky positions.

    Parameters
    ----------
    x, y
        0-based pixel positions of the stars.
    ra, dec
        Their catalogue positions, degrees.
    shape
        Image shape (rows, columns); CRPIX is put at the image centre.
    sip_order
        Fit SIP polynomials of this order (0 or 1: a plain TAN fit). Ignored with ``fixed_sip``.
    fixed_sip
        Keep this distortion and fit only CRVAL and CD.
    crval0
        Starting tangent point (default: the mean catalogue position).
    iterations
        Re-projections around the improved tangent point.

    Returns
    -------
    astropy.wcs.WCS

    Raises
    ------
    ValueError
        When there are fewer stars than free parameters.

    Examples
    --------
    >>> from nightpipe.astrometry.fitting import make_wcs
    >>> cd = np.array([[-1.4e-3, 0], [0, 1.4e-3]])
    >>> truth = make_wcs((31.0, 46.7), (325.5, 250.5), cd, None, (500, 650))
    >>> px = np.random.default_rng(0).uniform(0, 600, (30, 2))
    >>> sky = truth.all_pix2world(px, 0)
    >>> fit = fit_wcs(px[:, 0], px[:, 1], sky[:, 0], sky[:, 1], shape=(500, 650))
    >>> bool(np.allclose(fit.wcs.crval, [31.0, 46.7], atol=1e-9))
    True
    """
    x, y, ra, dec = (np.asarray(a, float) for a in (x, y, ra, dec))
    order = 1 if fixed_sip is not None else max(1, sip_order)
    terms = _terms(order)
    if x.size < len(terms) + 1:
        raise ValueError(f"{x.size} stars are too few for {len(terms)} parameters per axis")
    height, width = shape
    crpix = np.array([width / 2.0 + 0.5, height / 2.0 + 0.5])
    u = x + 1.0 - crpix[0]
    v = y + 1.0 - crpix[1]
    big_u, big_v = apply_sip(fixed_sip, u, v)
    if crval0 is None:
        mean = np.array(
            [
                np.cos(np.radians(dec)) * np.cos(np.radians(ra)),
                np.cos(np.radians(dec)) * np.sin(np.radians(ra)),
                np.sin(np.radians(dec)),
            ]
        ).mean(axis=1)
        crval = (
            float(np.degrees(np.arctan2(mean[1], mean[0])) % 360),
            float(np.degrees(np.arcsin(mean[2] / np.linalg.norm(mean)))),
        )
    else:
        crval = (float(crval0[0]), float(crval0[1]))
    design = _design(big_u, big_v, terms)
    cx = cy = np.zeros(len(terms))
    for _ in range(max(1, iterations)):
        xi, eta = tan_project(ra, dec, *crval)
        cx, *_ = np.linalg.lstsq(design, xi, rcond=None)
        cy, *_ = np.linalg.lstsq(design, eta, rcond=None)
        # constant terms: the tangent point seen from CRPIX is off by (cx0, cy0); move CRVAL there
        new_ra, new_dec = tan_deproject(np.array([cx[0]]), np.array([cy[0]]), *crval)
        crval = (float(new_ra[0]), float(new_dec[0]))
    index = {t: i for i, t in enumerate(terms)}
    cd = np.array([[cx[index[(1, 0)]], cx[index[(0, 1)]]], [cy[index[(1, 0)]], cy[index[(0, 1)]]]])
    sip: SipTerms | None = fixed_sip
    if fixed_sip is None and order >= 2:
        cd_inv = np.linalg.inv(cd)
        a = np.zeros((order + 1, order + 1))
        b = np.zeros((order + 1, order + 1))
        for (p, q), i in index.items():
            if p + q >= 2:
                a[p, q], b[p, q] = cd_inv @ np.array([cx[i], cy[i]])
        ap, bp = inverse_sip(a, b, order, width, height, crpix)
        sip = SipTerms(order, a, b, ap, bp)
    return make_wcs(crval, (float(crpix[0]), float(crpix[1])), cd, sip, shape)


def residuals_arcsec(wcs: WCS, x: np.ndarray, y: np.ndarray, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """On-sky distance (arcsec) between the WCS position of each pixel and its catalogue star."""
    world = wcs.all_pix2world(np.column_stack([x, y]), 0)
    xi, eta = tan_project(world[:, 0], world[:, 1], float(np.median(ra)), float(np.median(dec)))
    cxi, ceta = tan_project(np.asarray(ra), np.asarray(dec), float(np.median(ra)), float(np.median(dec)))
    return np.asarray(np.hypot(xi - cxi, eta - ceta) * 3600.0)
