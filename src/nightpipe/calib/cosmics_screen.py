"""L.A.Cosmic's first-pass statistics outside astroscrappy: the fast mode's candidate screen.

:func:`screen_candidates` picks the pixels where L.A.Cosmic could flag a cosmic ray in its first
pass (why the screen is a superset of astroscrappy's candidates: :mod:`nightpipe.calib.cosmics`):
a whole-frame bound on ``L+`` (:func:`laplacian_plus`), then L.A.Cosmic's own ``S'`` and ``S'/F``
at the surviving pixels only (:func:`_lacosmic_first_pass_at`). Both are compiled; the array
versions kept here are their references, equal bit for bit.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from nightpipe.calib.cosmics_kernels import first_pass_kernel, laplacian_plus_kernel
from nightpipe.calib.cosmics_params import CosmicParams


def laplacian_plus(image: np.ndarray) -> np.ndarray:
    """L.A.Cosmic's ``L+``: Laplacian of the 2x-subsampled image, clipped at 0, rebinned.

    For block replication the four sub-pixels of a pixel ``v`` with neighbours
    left/right/up/down ``L, R, U, D`` have Laplacians ``2v-L-U``, ``2v-R-U``, ``2v-L-D``,
    ``2v-R-D``; ``L+`` is the mean of their positive parts. Edges repeat the border.
    One compiled pass, with the same operations in the same order (and so the same float32
    values) as the array expression in :func:`_laplacian_plus_numpy`.
    """
    image = np.ascontiguousarray(image)
    if image.ndim != 2 or image.dtype not in (np.float32, np.float64) or image.size == 0:
        return _laplacian_plus_numpy(image)
    return laplacian_plus_kernel(image)


def _laplacian_plus_numpy(image: np.ndarray) -> np.ndarray:
    """:func:`laplacian_plus` as array operations (the reference of the compiled version)."""
    p = np.pad(image, 1, mode="edge")
    v2 = 2.0 * image
    left, right = p[1:-1, :-2], p[1:-1, 2:]
    up, down = p[:-2, 1:-1], p[2:, 1:-1]
    out = np.maximum(v2 - left - up, 0)
    out += np.maximum(v2 - right - up, 0)
    out += np.maximum(v2 - left - down, 0)
    out += np.maximum(v2 - right - down, 0)
    out *= 0.25
    return out


def _sepmed(patch: np.ndarray, size: int) -> np.ndarray:
    """Separable median (rows, then columns) of every ``size`` x ``size`` window of (N, h, w) patches."""
    rows = np.median(sliding_window_view(patch, size, axis=2), axis=-1)
    return np.median(sliding_window_view(rows, size, axis=1), axis=-1)


def _lacosmic_first_pass_at(
    electrons: np.ndarray, ys: np.ndarray, xs: np.ndarray, params: CosmicParams
) -> tuple[np.ndarray, np.ndarray]:
    """L.A.Cosmic's first-pass ``S'`` and fine-structure contrast ``S'/F`` at the given pixels.

    Computed from the 9x9 neighbourhood of each pixel with the same separable medians as
    astroscrappy (``sepmed=True``): noise from the 5x5 median, ``S' = S - med5(S)``,
    ``F = (med3 - med7(med3)) / noise``. Compiled; every median is of an odd number of
    values and every operation is done in float32 in the order of the array version
    (:func:`_lacosmic_first_pass_numpy`), so the values are the same.
    """
    padded = np.pad(np.asarray(electrons, dtype=np.float32), 4, mode="edge")
    sp_out = np.empty(len(ys), dtype=np.float32)
    ratio_out = np.empty(len(ys), dtype=np.float32)
    rn2 = np.float32(params.read_noise**2)
    first_pass_kernel(padded, np.asarray(ys, np.int64), np.asarray(xs, np.int64), rn2, sp_out, ratio_out)
    return sp_out, ratio_out


def _lacosmic_first_pass_numpy(
    electrons: np.ndarray, ys: np.ndarray, xs: np.ndarray, params: CosmicParams
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_lacosmic_first_pass_at` as array operations (the reference of the compiled version)."""
    padded = np.pad(electrons, 4, mode="edge")
    offsets = np.arange(9)
    sp_out = np.empty(len(ys), dtype=np.float32)
    ratio_out = np.empty(len(ys), dtype=np.float32)
    rn2 = np.float32(params.read_noise**2)
    step = 10000  # bounded memory for crowded frames
    for start in range(0, len(ys), step):
        yy = ys[start : start + step]
        xx = xs[start : start + step]
        patch = padded[yy[:, None, None] + offsets[None, :, None], xx[:, None, None] + offsets[None, None, :]]
        noise = np.sqrt(np.maximum(_sepmed(patch, 5), np.float32(1e-5)) + rn2)  # (N, 5, 5), centred
        lap = _lplus_stack(patch)  # (N, 7, 7)
        sig = lap[:, 1:6, 1:6] / (2.0 * noise)  # S at the 5x5 positions around the pixel
        sp = sig[:, 2, 2] - np.median(sig.reshape(len(yy), 25), axis=-1)
        med3 = np.median(sliding_window_view(patch, (3, 3), axis=(1, 2)).reshape(len(yy), 7, 7, 9), axis=-1)
        med7 = np.median(np.median(med3, axis=2), axis=1)
        fine = np.maximum((med3[:, 3, 3] - med7) / noise[:, 2, 2], np.float32(0.01))
        sp_out[start : start + step] = sp
        ratio_out[start : start + step] = sp / fine
    return sp_out, ratio_out


def _lplus_stack(patch: np.ndarray) -> np.ndarray:
    """``L+`` of the inner 7x7 of (N, 9, 9) patches (uses the ring of neighbours)."""
    v2 = 2.0 * patch[:, 1:-1, 1:-1]
    left, right = patch[:, 1:-1, :-2], patch[:, 1:-1, 2:]
    up, down = patch[:, :-2, 1:-1], patch[:, 2:, 1:-1]
    out = np.maximum(v2 - left - up, 0)
    out += np.maximum(v2 - right - up, 0)
    out += np.maximum(v2 - left - down, 0)
    out += np.maximum(v2 - right - down, 0)
    return out * 0.25


def screen_candidates(data: np.ndarray, params: CosmicParams) -> tuple[np.ndarray, np.ndarray]:
    """Pixels where L.A.Cosmic could detect a cosmic ray in its first pass (row, column arrays).

    A cheap whole-frame superset test (:mod:`nightpipe.calib.cosmics`) picks candidates; L.A.Cosmic's own
    first-pass statistics are then computed at those pixels only and candidates are kept
    when ``S' > screen_sigclip_factor * sigclip`` and ``S'/F > screen_objlim_factor * objlim``
    (factors below 1 leave a margin for edge handling and rounding).
    """
    electrons = data * np.float32(params.gain)
    lplus = laplacian_plus(electrons)
    rn2 = np.float32(params.read_noise**2)
    # the noise is at least that of the frame's lowest value: only pixels whose L+ passes
    # with that noise (a small margin for rounding) can pass with their own 5x5 minimum
    lowest = float(np.nanmin(electrons)) if np.isfinite(electrons).any() else 0.0
    floor = max(lowest, 1e-5)
    bound = 2.0 * params.sigclip * np.sqrt(floor + float(rn2)) * (1 - 1e-4)
    ys, xs = np.nonzero(lplus > bound)
    if len(ys) > electrons.size // 8:  # a frame with a very low minimum: filter it whole
        low = ndimage.minimum_filter(electrons, size=5, mode="nearest")[ys, xs]
    else:
        low = _minimum5_at(electrons, ys, xs)
    np.maximum(low, np.float32(1e-5), out=low)
    low += rn2
    noise = np.sqrt(low, out=low)
    significance = lplus[ys, xs] / (2.0 * noise)
    passed = significance > params.sigclip
    ys, xs = ys[passed], xs[passed]
    if len(ys) == 0:
        return ys, xs
    sp, ratio = _lacosmic_first_pass_at(electrons, ys, xs, params)
    keep = (sp > params.screen_sigclip_factor * params.sigclip) & (
        ratio > params.screen_objlim_factor * params.objlim
    )
    return ys[keep], xs[keep]


def _minimum5_at(image: np.ndarray, ys: np.ndarray, xs: np.ndarray, step: int = 50000) -> np.ndarray:
    """``ndimage.minimum_filter(image, 5, mode="nearest")`` at the pixels (ys, xs) only."""
    padded = np.pad(image, 2, mode="edge")
    offsets = np.arange(5)
    out = np.empty(len(ys), dtype=image.dtype)
    for start in range(0, len(ys), step):
        yy, xx = ys[start : start + step], xs[start : start + step]
        patch = padded[yy[:, None, None] + offsets[None, :, None], xx[:, None, None] + offsets[None, None, :]]
        out[start : start + step] = patch.min(axis=(1, 2))
    return out
