"""Radial profiles of stars, Moffat/Gaussian fits with their FWHM, and curves of growth.

A fit uses the pixels of one or several stars (background-subtracted), each with its own
amplitude (solved linearly inside the fit) and a shared shape; the model is integrated over
each pixel (3x3 sub-samples), so the FWHM is that of the star, not of its pixelated image.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np
from scipy.optimize import least_squares

from nightpipe.errors import PhotometryError

log = logging.getLogger(__name__)

SUB = 3
_OFFSETS = (np.arange(SUB) + 0.5) / SUB - 0.5


@dataclass(frozen=True)
class ProfileFit:
    """A fitted radial profile."""

    model: str
    """``moffat`` or ``gaussian``."""
    fwhm: float
    """Pixels."""
    alpha: float
    """Moffat core width (or Gaussian sigma), pixels."""
    beta: float
    """Moffat index (``inf`` for a Gaussian)."""
    amplitudes: np.ndarray
    """Peak value of each star's model."""
    n_stars: int
    rms: float
    """RMS of the residuals relative to the peaks."""

    def evaluate(self, r: np.ndarray, amplitude: float = 1.0) -> np.ndarray:
        """The fitted profile at radii ``r`` (point values), scaled to ``amplitude`` at r = 0."""
        return amplitude * _shape(np.asarray(r, dtype=float) ** 2, self.alpha, self.beta, self.model)


@dataclass(frozen=True)
class RadialProfile:
    """Pixel distances and values around one star, and their azimuthal average in bins."""

    r: np.ndarray
    value: np.ndarray
    bin_r: np.ndarray
    bin_mean: np.ndarray


def _shape(r2: np.ndarray, alpha: float, beta: float, model: str) -> np.ndarray:
    if model == "gaussian":
        return np.asarray(np.exp(-0.5 * r2 / (alpha * alpha)))
    return np.asarray((1.0 + r2 / (alpha * alpha)) ** (-beta))


@numba.njit(cache=True, nogil=True)
def _pixel_means(r2: np.ndarray, alpha: float, beta: float, gaussian: bool) -> np.ndarray:
    """The unit-peak profile averaged over each pixel's sub-samples (rows of ``r2``)."""
    npix, nsub = r2.shape
    inv = 1.0 / (alpha * alpha)
    out = np.empty(npix)
    for i in range(npix):
        total = 0.0
        for j in range(nsub):
            if gaussian:
                total += np.exp(-0.5 * r2[i, j] * inv)
            else:
                total += (1.0 + r2[i, j] * inv) ** (-beta)
        out[i] = total / nsub
    return out


def _fwhm(alpha: float, beta: float, model: str) -> float:
    if model == "gaussian":
        return float(2.0 * np.sqrt(2.0 * np.log(2.0)) * alpha)
    return float(2.0 * alpha * np.sqrt(2.0 ** (1.0 / beta) - 1.0))


def star_pixels(
    image: np.ndarray, x: float, y: float, radius: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets ``dx, dy`` from ``(x, y)`` and values of the finite pixels within ``radius``."""
    ny, nx = image.shape
    x0, x1 = max(int(np.floor(x - radius)), 0), min(int(np.ceil(x + radius)), nx - 1)
    y0, y1 = max(int(np.floor(y - radius)), 0), min(int(np.ceil(y + radius)), ny - 1)
    yy, xx = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
    dx = (xx - x).ravel()
    dy = (yy - y).ravel()
    val = np.asarray(image[y0 : y1 + 1, x0 : x1 + 1], dtype=float).ravel()
    keep = (dx * dx + dy * dy <= radius * radius) & np.isfinite(val)
    return dx[keep], dy[keep], val[keep]


def radial_profile(
    image: np.ndarray, x: float, y: float, radius: float, bin_width: float = 0.5
) -> RadialProfile:
    """Radial profile of the star at ``(x, y)`` on a background-subtracted image.

    Examples
    --------
    >>> yy, xx = np.mgrid[:21, :21]
    >>> prof = radial_profile(np.exp(-((xx - 10) ** 2 + (yy - 10) ** 2) / 8.0), 10.0, 10.0, 8.0)
    >>> float(prof.value.max())
    1.0
    """
    dx, dy, val = star_pixels(image, x, y, radius)
    r = np.hypot(dx, dy)
    edges = np.arange(0.0, radius + bin_width, bin_width)
    idx = np.digitize(r, edges) - 1
    counts = np.bincount(idx, minlength=edges.size)[: edges.size - 1]
    sums = np.bincount(idx, weights=val, minlength=edges.size)[: edges.size - 1]
    rs = np.bincount(idx, weights=r, minlength=edges.size)[: edges.size - 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return RadialProfile(r=r, value=val, bin_r=rs / counts, bin_mean=sums / counts)


def fit_profile(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    *,
    fwhm_guess: float = 3.0,
    model: Literal["moffat", "gaussian"] = "moffat",
    radius: float | None = None,
) -> ProfileFit:
    """Fit one Moffat (or Gaussian) shape to the stars at ``(x, y)`` of a background-subtracted image.

    Parameters
    ----------
    image
        Background-subtracted image.
    x, y
        Centres of the stars (fixed), 0-based pixels. Use bright, isolated, unsaturated stars.
    fwhm_guess
        Starting FWHM, pixels.
    model
        ``moffat`` (alpha and beta free) or ``gaussian``.
    radius
        Pixels used around each star (default ``3 x fwhm_guess``, at least 5).

    Returns
    -------
    ProfileFit

    Raises
    ------
    PhotometryError
        When no star has usable pixels or the fit fails.

    Examples
    --------
    >>> from nightpipe.photometry.synthetic import star_stamp
    >>> stamp = star_stamp(0.2, -0.3, 12, 4.0, profile="moffat", beta=3.0)
    >>> fit = fit_profile(stamp, np.array([12.2]), np.array([11.7]), fwhm_guess=3.0)
    >>> round(fit.fwhm, 1), round(fit.beta, 1)
    (4.0, 3.0)
    """
    xs = np.atleast_1d(np.asarray(x, dtype=float))
    ys = np.atleast_1d(np.asarray(y, dtype=float))
    rad = max(5.0, 3.0 * fwhm_guess) if radius is None else float(radius)
    stars = [star_pixels(image, xi, yi, rad) for xi, yi in zip(xs, ys, strict=True)]
    stars = [s for s in stars if s[2].size >= 9]
    if not stars:
        raise PhotometryError("no star with usable pixels for the profile fit")
    dxs = [s[0] for s in stars]
    dys = [s[1] for s in stars]
    vals = [s[2] for s in stars]
    # sub-pixel sample offsets (integration over each pixel)
    gx, gy = np.meshgrid(_OFFSETS, _OFFSETS)
    ox, oy = gx.ravel(), gy.ravel()
    # every star's pixels in one array (star index per pixel): one compiled pass per evaluation
    dx_all, dy_all, v_all = np.concatenate(dxs), np.concatenate(dys), np.concatenate(vals)
    star = np.repeat(np.arange(len(vals)), [v.size for v in vals])
    r2_all = np.ascontiguousarray((dx_all[:, None] + ox) ** 2 + (dy_all[:, None] + oy) ** 2)
    scale_all = np.array([max(float(np.max(v)), 1e-12) for v in vals])[star]
    gaussian = model == "gaussian"

    def unpack(p: np.ndarray) -> tuple[float, float]:
        alpha = float(np.exp(p[0]))
        beta = float(np.exp(p[1])) + 1.0 if model == "moffat" else np.inf
        return alpha, beta

    def amplitudes(m: np.ndarray) -> np.ndarray:
        """The least-squares amplitude of each star for the unit-peak model ``m``."""
        num = np.bincount(star, weights=m * v_all, minlength=len(vals))
        den = np.bincount(star, weights=m * m, minlength=len(vals))
        return np.asarray(num / np.maximum(den, 1e-300))

    def residuals(p: np.ndarray) -> np.ndarray:
        alpha, beta = unpack(p)
        m = _pixel_means(r2_all, alpha, beta, gaussian)
        return np.asarray((v_all - amplitudes(m)[star] * m) / scale_all)

    if model == "moffat":
        beta0 = 3.0
        alpha0 = fwhm_guess / (2.0 * np.sqrt(2.0 ** (1.0 / beta0) - 1.0))
        p0 = np.array([np.log(alpha0), np.log(beta0 - 1.0)])
    else:
        p0 = np.array([np.log(fwhm_guess / 2.3548), 0.0])
    try:
        sol = least_squares(residuals, p0, method="lm" if model == "moffat" else "trf", x_scale=1.0)
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise PhotometryError(f"profile fit failed: {exc}") from None
    alpha, beta = unpack(sol.x)
    amps = amplitudes(_pixel_means(r2_all, alpha, beta, gaussian))
    res = residuals(sol.x)
    return ProfileFit(
        model=model,
        fwhm=_fwhm(alpha, beta, model),
        alpha=alpha,
        beta=beta,
        amplitudes=amps,
        n_stars=len(stars),
        rms=float(np.sqrt(np.mean(res**2))),
    )


def curve_of_growth(
    image: np.ndarray, x: float, y: float, radii: np.ndarray, *, sky: float = 0.0
) -> np.ndarray:
    """Flux inside each radius (exact apertures), minus ``sky`` per pixel.

    Examples
    --------
    >>> img = np.zeros((21, 21))
    >>> img[10, 10] = 5.0
    >>> curve_of_growth(img, 10.0, 10.0, np.array([1.0, 3.0])).tolist()
    [5.0, 5.0]
    """
    from nightpipe.photometry.aperture import aperture_photometry

    res = aperture_photometry(
        np.asarray(image, dtype=np.float32) - np.float32(sky),
        np.array([x]),
        np.array([y]),
        np.asarray(radii, dtype=float),
        background=0.0,
    )
    return np.asarray(res.flux[0])
