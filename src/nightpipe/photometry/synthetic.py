"""Seeded synthetic star fields with known truth, for tests and benchmarks.

Stars are circular Moffat or Gaussian profiles integrated over each pixel (by 5x5
sub-sampling), on a flat or tilted sky, with Poisson noise in electrons and Gaussian
read noise; the frame is returned in ADU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class StarField:
    """A synthetic frame and its truth."""

    data: np.ndarray
    """The noisy image, ADU (float32)."""
    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    """Total flux of each star, ADU."""
    sky: float
    """Sky level, ADU per pixel."""
    fwhm: float
    gain: float
    read_noise: float
    """Electrons."""
    model: np.ndarray
    """The noiseless image, ADU."""


def moffat_alpha(fwhm: float, beta: float) -> float:
    """Core width ``alpha`` of a Moffat profile of the given FWHM and ``beta``."""
    return fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))


def star_stamp(
    dx: float, dy: float, half: int, fwhm: float, *, profile: str = "moffat", beta: float = 3.0, sub: int = 5
) -> np.ndarray:
    """Unit-flux star sampled on a ``(2 half + 1)^2`` pixel stamp, centred at ``(half + dx, half + dy)``.

    Pixel values are averages over ``sub x sub`` points per pixel (pixel integration); the
    stamp is normalised by the analytic total flux, so light outside the stamp is lost.
    """
    offs = (np.arange(sub) + 0.5) / sub - 0.5
    grid = np.arange(-half, half + 1, dtype=np.float64)
    px = (grid[:, None] + offs[None, :]).ravel() - dx
    py = (grid[:, None] + offs[None, :]).ravel() - dy
    r2 = py[:, None] ** 2 + px[None, :] ** 2
    if profile == "gaussian":
        s = fwhm / 2.3548200450309493
        val = np.exp(-r2 / (2 * s * s)) / (2 * np.pi * s * s)
    else:
        a = moffat_alpha(fwhm, beta)
        val = (beta - 1) / (np.pi * a * a) * (1 + r2 / (a * a)) ** (-beta)
    n = 2 * half + 1
    return val.reshape(n, sub, n, sub).mean(axis=(1, 3))


def make_star_field(
    shape: tuple[int, int] = (512, 512),
    n_stars: int = 100,
    *,
    fwhm: float = 3.0,
    profile: Literal["moffat", "gaussian"] = "moffat",
    beta: float = 3.0,
    flux_range: tuple[float, float] = (2e3, 2e5),
    sky: float = 200.0,
    gain: float = 1.5,
    read_noise: float = 8.0,
    margin: int = 20,
    min_separation: float = 0.0,
    seed: int = 0,
) -> StarField:
    """Make a seeded star field with Poisson and read noise.

    Parameters
    ----------
    shape
        Image shape (ny, nx).
    n_stars
        Number of stars (fewer when ``min_separation`` cannot be honoured).
    fwhm, profile, beta
        The PSF.
    flux_range
        Fluxes are log-uniform in this range, ADU.
    sky, gain, read_noise
        Sky level (ADU), gain (e-/ADU), read noise (e-).
    margin
        No star centre closer than this to the edge.
    min_separation
        Least distance between stars, pixels (0: no constraint).
    seed
        Random seed.

    Returns
    -------
    StarField

    Examples
    --------
    >>> field = make_star_field((64, 64), 3, seed=1)
    >>> field.data.shape, field.x.size
    ((64, 64), 3)
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    xs = rng.uniform(margin, nx - 1 - margin, n_stars * 3)
    ys = rng.uniform(margin, ny - 1 - margin, n_stars * 3)
    if min_separation > 0:
        from scipy.spatial import cKDTree

        chosen: list[int] = []
        tree_points: list[tuple[float, float]] = []
        for i in range(xs.size):
            if len(chosen) == n_stars:
                break
            if tree_points:
                d, _ = cKDTree(np.array(tree_points)).query([xs[i], ys[i]])
                if d < min_separation:
                    continue
            chosen.append(i)
            tree_points.append((xs[i], ys[i]))
        idx = np.array(chosen, dtype=int)
    else:
        idx = np.arange(n_stars)
    xs, ys = xs[idx], ys[idx]
    flux = np.exp(rng.uniform(np.log(flux_range[0]), np.log(flux_range[1]), xs.size))
    model = np.full(shape, sky, dtype=np.float64)
    half = int(np.ceil(6 * fwhm))
    for x, y, f in zip(xs, ys, flux, strict=True):
        ix, iy = round(x), round(y)
        stamp = star_stamp(x - ix, y - iy, half, fwhm, profile=profile, beta=beta) * f
        y0, y1 = iy - half, iy + half + 1
        x0, x1 = ix - half, ix + half + 1
        sy0, sx0 = max(0, -y0), max(0, -x0)
        sy1 = stamp.shape[0] - max(0, y1 - ny)
        sx1 = stamp.shape[1] - max(0, x1 - nx)
        model[max(y0, 0) : min(y1, ny), max(x0, 0) : min(x1, nx)] += stamp[sy0:sy1, sx0:sx1]
    electrons = rng.poisson(model * gain).astype(np.float64) + rng.normal(0.0, read_noise, shape)
    return StarField(
        data=(electrons / gain).astype(np.float32),
        x=xs,
        y=ys,
        flux=flux,
        sky=sky,
        fwhm=fwhm,
        gain=gain,
        read_noise=read_noise,
        model=model.astype(np.float32),
    )
