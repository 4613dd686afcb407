"""Compiled (numba) inner loops of the generator: star stamps, the camera read-out, Poisson draws.

``add_stars`` computes what the numpy reference :func:`nightpipe.simulate.psf.render_stars`
does (the tests compare both); the read-out kernels implement
:func:`nightpipe.simulate.camera.expose_and_read`, whose statistics the tests check against the
photon-transfer relation.
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
        stamp = np.zeros((size, size))
        total = 0.0
        r2max = rad * rad
        for j in range(size):
            for i in range(size):
                cx = ix - rad + i - x[k]
                cy = iy - rad + j - y[k]
                if cx * cx + cy * cy > r2max:  # a round stamp centred on the star: no centroid bias
                    continue
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
def mean_kernel(
    dark: np.ndarray,
    dark_factor: float,
    light: np.ndarray,
    response: np.ndarray,
    sky: float,
    mean: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """``mean = dark * dark_factor + (light + sky) * response`` on the light-sensitive area.

    ``mean`` covers the whole read-out; its columns beyond ``dark.shape[1]`` (the overscan)
    are set to zero. An empty ``light`` means no light at all (bias and dark frames).
    """
    ny, nx = dark.shape
    total = mean.shape[1]
    if light.shape[0] > 0:
        for j in range(ny):
            for i in range(nx):
                mean[j, i] = dark[j, i] * dark_factor + (light[j, i] + sky) * response[j, i]
    else:
        for j in range(ny):
            for i in range(nx):
                mean[j, i] = dark[j, i] * dark_factor
    for j in range(ny):
        for i in range(nx, total):
            mean[j, i] = 0.0


@numba.njit(cache=True, nogil=True)
def read_kernel(
    mean: np.ndarray,
    normal: np.ndarray,
    bias: np.ndarray,
    out: np.ndarray,
    inv_gain: float,
    read_noise: float,
    offset: float,
    adc_max: float,
) -> None:  # pragma: no cover - compiled
    """The common case of every pixel, without branches (so that it vectorises).

    Photon and read noise as one normal draw of variance ``mean + read_noise^2``, conversion to
    ADU, bias, rounding and clipping. Pixels needing more (Poisson draws, full well, roll-off)
    are then redone by :func:`fix_kernel`.
    """
    ny, nx = mean.shape
    rn2 = read_noise * read_noise
    for j in range(ny):
        for i in range(nx):
            m = mean[j, i]
            e = m + math.sqrt(max(m, 0.0) + rn2) * normal[j, i]
            v = np.rint(e * inv_gain + bias[j, i] + offset)
            out[j, i] = np.uint16(min(max(v, 0.0), adc_max))


@numba.njit(cache=True, nogil=True)
def fix_kernel(
    index: np.ndarray,
    case: np.ndarray,
    counts: np.ndarray,
    extra: np.ndarray,
    mean: np.ndarray,
    normal: np.ndarray,
    bias: np.ndarray,
    out: np.ndarray,
    inv_gain: float,
    read_noise: float,
    offset: float,
    full_well: float,
    knee: float,
    adc_max: float,
) -> None:  # pragma: no cover - compiled
    """Redo the special pixels (flat indices ``index``) with their exact model.

    ``case`` 0: Poisson draw ``counts[k]`` plus read noise; 1: normal photon noise clipped at the
    full well, then read noise ``extra[k]``; 2: the common model. All then get the non-linear
    roll-off above ``knee``.
    """
    nx = mean.shape[1]
    span = adc_max - knee
    rn2 = read_noise * read_noise
    for k in range(index.size):
        j = index[k] // nx
        i = index[k] - j * nx
        m = mean[j, i]
        if case[k] == 0:
            e = min(counts[k], full_well) + read_noise * normal[j, i]
        elif case[k] == 1:
            e = min(m + math.sqrt(m) * normal[j, i], full_well) + read_noise * extra[k]
        else:
            e = m + math.sqrt(max(m, 0.0) + rn2) * normal[j, i]
        v = e * inv_gain + bias[j, i] + offset
        if v > knee and span > 0.0:
            v = knee + span * (1.0 - math.exp(-(v - knee) / span))
        v = np.rint(v)
        out[j, i] = np.uint16(min(max(v, 0.0), adc_max))


@numba.njit(cache=True, nogil=True)
def poisson_inverse(means: np.ndarray, uniforms: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Poisson draws of small ``means`` (below about 50) by inversion of the CDF with ``uniforms``.

    Exact up to floating-point rounding, and several times faster than numpy's generator for
    small means (its cost grows with the mean).
    """
    out = np.empty(means.size)
    for k in range(means.size):
        lam = means[k]
        p = math.exp(-lam)
        s = p
        n = 0
        u = uniforms[k]
        while u > s and n < 1000:
            n += 1
            p *= lam / n
            s += p
        out[k] = n
    return out
