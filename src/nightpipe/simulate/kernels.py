"""Compiled (numba) inner loops of the generator: star stamps and the camera read-out.

They do exactly what the numpy reference functions in :mod:`nightpipe.simulate.psf` and
:mod:`nightpipe.simulate.camera` describe, in one pass over memory; the tests compare both.
"""

from __future__ import annotations

import math

import numba
import numpy as np

GAUSSIAN = 0
MOFFAT = 1


@numba.njit(cache=True, nogil=True)
def _profile(r2: float, kind: int, inv_scale: float, beta: float) -> float:
    t = r2 * inv_scale
    if kind == GAUSSIAN:
        return math.exp(-0.5 * t)
    base = 1.0 + t
    if beta == 3.0:
        return 1.0 / (base * base * base)
    return base ** (-beta)


@numba.njit(cache=True, nogil=True)
def add_stars(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    radius: np.ndarray,
    kind: int,
    inv_scale: float,
    beta: float,
    oversample: int,
) -> None:  # pragma: no cover - compiled
    """Add each star's pixel-integrated, stamp-normalised profile to ``image`` (float64, in place).

    ``inv_scale`` is ``1/sigma^2`` (Gaussian) or ``1/alpha^2`` (Moffat); ``radius`` the stamp
    half-size of each star.
    """
    ny, nx = image.shape
    step = 1.0 / oversample
    for k in range(x.size):
        rad = radius[k]
        ix = int(np.rint(x[k]))
        iy = int(np.rint(y[k]))
        size = 2 * rad + 1
        stamp = np.empty((size, size))
        total = 0.0
        for j in range(size):
            for i in range(size):
                acc = 0.0
                for sj in range(oversample):
                    dy = iy - rad + j + (sj + 0.5) * step - 0.5 - y[k]
                    for si in range(oversample):
                        dx = ix - rad + i + (si + 0.5) * step - 0.5 - x[k]
                        acc += _profile(dx * dx + dy * dy, kind, inv_scale, beta)
                stamp[j, i] = acc
                total += acc
        if total <= 0.0:
            continue
        norm = flux[k] / total
        for j in range(size):
            gy = iy - rad + j
            if gy < 0 or gy >= ny:
                continue
            for i in range(size):
                gx = ix - rad + i
                if 0 <= gx < nx:
                    image[gy, gx] += stamp[j, i] * norm


@numba.njit(cache=True, nogil=True)
def classify_kernel(mean: np.ndarray, exact_below: float, full_well: float) -> tuple[np.ndarray, int]:
    """The means drawn exactly (below ``exact_below``), in raster order, and the near-full-well count.

    Uses the same tests as :func:`expose_kernel`.
    """  # pragma: no cover - compiled
    ny, nx = mean.shape
    n_low = 0
    n_near = 0
    for j in range(ny):
        for i in range(nx):
            m = mean[j, i]
            if m < exact_below:
                n_low += 1
            elif m + 6.0 * math.sqrt(m) > full_well:
                n_near += 1
    low = np.empty(n_low)
    k = 0
    for j in range(ny):
        for i in range(nx):
            m = mean[j, i]
            if m < exact_below:
                low[k] = m
                k += 1
    return low, n_near


@numba.njit(cache=True, nogil=True)
def expose_kernel(
    mean: np.ndarray,
    normal: np.ndarray,
    low_counts: np.ndarray,
    extra: np.ndarray,
    bias: np.ndarray,
    out: np.ndarray,
    gain: float,
    read_noise: float,
    bias_offset: float,
    full_well: float,
    knee: float,
    adc_max: float,
    exact_below: float,
) -> None:  # pragma: no cover - compiled
    """Photon noise, full well, read noise, gain, bias, roll-off and 16-bit clipping in one pass.

    Pixels are visited in raster order. Where ``mean < exact_below`` the collected charge is the
    next Poisson draw of ``low_counts`` and the read noise uses ``normal``; elsewhere photon and
    read noise are one normal draw of variance ``mean + read_noise^2``, except near the full well,
    where the charge is clipped before the read noise (the next value of ``extra``) is added.
    """
    ny, nx = mean.shape
    inv_gain = 1.0 / gain
    span = adc_max - knee
    rn2 = read_noise * read_noise
    kl = 0
    ke = 0
    for j in range(ny):
        for i in range(nx):
            m = mean[j, i]
            if m < exact_below:
                e = min(low_counts[kl], full_well) + read_noise * normal[j, i]
                kl += 1
            elif m + 6.0 * math.sqrt(m) > full_well:
                e = min(m + math.sqrt(m) * normal[j, i], full_well) + read_noise * extra[ke]
                ke += 1
            else:
                e = m + math.sqrt(m + rn2) * normal[j, i]
            v = e * inv_gain + bias[j, i] + bias_offset
            if v > knee:
                v = knee + span * (1.0 - math.exp(-(v - knee) / span))
            v = np.rint(v)
            if v < 0.0:
                v = 0.0
            elif v > adc_max:
                v = adc_max
            out[j, i] = np.uint16(v)
