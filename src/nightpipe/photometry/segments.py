"""The compiled kernels that find segments of a frame: the smoothed, thresholded image
(:func:`_smooth_threshold`), 8-connected labelling with the local maxima of each segment
(:func:`_label`) and the deblending of segments with several maxima (:func:`_deblend`).
:func:`nightpipe.photometry.detect.detect_sources` drives them.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _deblend(
    smooth: np.ndarray,
    py: np.ndarray,
    px: np.ndarray,
    seg: np.ndarray,
    noise: np.ndarray,
    nsigma: float,
    contrast: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the peaks that stand out from the saddle towards a brighter kept peak of their segment.

    Peaks are processed from the brightest down; returns (keep, blended).
    """
    n = py.size
    keep = np.zeros(n, dtype=np.bool_)
    blended = np.zeros(n, dtype=np.bool_)
    height = np.empty(n)
    for i in range(n):
        height[i] = smooth[py[i], px[i]]
    order = np.argsort(-height)
    # peaks of one segment are compared with each other only; build per-segment lists lazily
    kept_idx = np.empty(n, dtype=np.int64)
    nkept = 0
    for oi in range(n):
        i = order[oi]
        best = -1
        bestd = 1e30
        for kk in range(nkept):
            k = kept_idx[kk]
            if seg[k] != seg[i]:
                continue
            d = (py[k] - py[i]) ** 2 + (px[k] - px[i]) ** 2
            if d < bestd:
                bestd = d
                best = k
        if best < 0:
            keep[i] = True
            kept_idx[nkept] = i
            nkept += 1
            continue
        # minimum of the smoothed image along the segment between the two peaks
        steps = int(np.sqrt(bestd) * 2) + 2
        low = height[i]
        for s in range(1, steps):
            t = s / steps
            yy = round(py[i] + t * (py[best] - py[i]))
            xx = round(px[i] + t * (px[best] - px[i]))
            low = min(low, smooth[yy, xx])
        prominence = height[i] - low
        if prominence > nsigma * noise[py[i], px[i]] and height[i] >= contrast * height[best]:
            keep[i] = True
            blended[i] = True
            blended[best] = True
            kept_idx[nkept] = i
            nkept += 1
    return keep, blended


@numba.njit(cache=True, inline="always")
def _clean_value(data: np.ndarray, bkg: np.ndarray, mask: np.ndarray, bad_bits: int, y: int, x: int) -> float:
    """Background-subtracted value of a pixel; 0 for NaN or flagged pixels."""
    v = data[y, x] - bkg[y, x]
    if not np.isfinite(v) or (mask.shape[0] > 0 and (mask[y, x] & bad_bits) != 0):
        return 0.0
    return v


FILTER_BLOCK = 64  # rows per block of the detection filter (each block has its own small buffer)


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=True)
def _smooth_threshold(
    data: np.ndarray,
    bkg: np.ndarray,
    mask: np.ndarray,
    bad_bits: int,
    kernel: np.ndarray,
    noise: np.ndarray,
    nsigma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Separable filter of the background-subtracted frame and ``smooth > nsigma x noise``.

    Rows are processed in blocks in parallel; each block filters its rows (plus the kernel's
    half-width above and below) horizontally into a small buffer, then vertically, so no
    full-frame intermediate image is needed. Flagged or NaN pixels count as 0 and are never
    above the threshold.
    """
    ny, nx = data.shape
    h = kernel.size // 2
    kern = kernel.astype(np.float32)
    smooth = np.empty((ny, nx), dtype=np.float32)
    above = np.zeros((ny, nx), dtype=np.uint8)
    use_mask = mask.shape[0] > 0
    nblocks = (ny + FILTER_BLOCK - 1) // FILTER_BLOCK
    for b in numba.prange(nblocks):
        y0 = b * FILTER_BLOCK
        y1 = min(y0 + FILTER_BLOCK, ny)
        rows = y1 - y0 + 2 * h
        buf = np.zeros((rows, nx), dtype=np.float32)
        line = np.zeros(nx + 2 * h, dtype=np.float32)
        for r in range(rows):
            y = y0 - h + r
            if y < 0 or y >= ny:
                continue
            for x in range(nx):
                line[x + h] = _clean_value(data, bkg, mask, bad_bits, y, x)
            dst = buf[r]
            for x in range(nx):
                acc = np.float32(0.0)
                for k in range(2 * h + 1):
                    acc += kern[k] * line[x + k]
                dst[x] = acc
        for y in range(y0, y1):
            out = smooth[y]
            for x in range(nx):
                out[x] = 0.0
            for k in range(2 * h + 1):
                w = kern[k]
                src = buf[y - y0 + k]
                for x in range(nx):
                    out[x] += w * src[x]
            for x in range(nx):
                flagged = use_mask and (mask[y, x] & bad_bits) != 0
                if out[x] > nsigma * noise[y, x] and np.isfinite(data[y, x]) and not flagged:
                    above[y, x] = 1
    return smooth, above


@numba.njit(cache=True)
def _find_root(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@numba.njit(cache=True, inline="always")
def _is_peak(smooth: np.ndarray, y: int, x: int) -> bool:
    """Local maximum over the 8 neighbours (strict on one side: one peak per plateau)."""
    ny, nx = smooth.shape
    v = smooth[y, x]
    for dy in range(-1, 2):
        yy = y + dy
        if yy < 0 or yy >= ny:
            continue
        for dx in range(-1, 2):
            xx = x + dx
            if (dy == 0 and dx == 0) or xx < 0 or xx >= nx:
                continue
            w = smooth[yy, xx]
            if w > v or (w == v and (dy < 0 or (dy == 0 and dx < 0))):
                return False
    return True


@numba.njit(cache=True)
def _label(
    above: np.ndarray, smooth: np.ndarray
) -> tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """8-connected labelling (union-find) of ``above``.

    Returns the label image, the number of segments, each segment's area and sum of
    ``smooth``, and the local maxima of ``smooth`` inside segments (rows, columns).
    """
    ny, nx = above.shape
    labels = np.zeros((ny, nx), dtype=np.int32)
    cap = 1024
    parent = np.arange(cap, dtype=np.int64)
    pixels = np.empty(4096, dtype=np.int64)
    npx = 0
    nxt = 1
    for y in range(ny):
        for x in range(nx):
            if above[y, x] == 0:
                continue
            if npx == pixels.size:
                grown_px = np.empty(pixels.size * 2, dtype=np.int64)
                grown_px[:npx] = pixels
                pixels = grown_px
            pixels[npx] = y * nx + x
            npx += 1
            best = 0
            for dy, dx in ((0, -1), (-1, -1), (-1, 0), (-1, 1)):
                yy = y + dy
                xx = x + dx
                if yy < 0 or xx < 0 or xx >= nx:
                    continue
                lab = labels[yy, xx]
                if lab == 0:
                    continue
                if best == 0:
                    best = lab
                else:
                    ra = _find_root(parent, best)
                    rb = _find_root(parent, lab)
                    if ra != rb:
                        if ra < rb:
                            parent[rb] = ra
                        else:
                            parent[ra] = rb
            if best == 0:
                if nxt >= cap:
                    grown = np.arange(cap * 2, dtype=np.int64)
                    grown[:cap] = parent
                    parent = grown
                    cap *= 2
                best = nxt
                nxt += 1
            labels[y, x] = best
    # compact the roots into 1..nlab
    final = np.zeros(nxt, dtype=np.int32)
    nlab = 0
    for i in range(1, nxt):
        if _find_root(parent, i) == i:
            nlab += 1
            final[i] = nlab
    for i in range(1, nxt):
        final[i] = final[_find_root(parent, i)]
    area = np.zeros(nlab + 1, dtype=np.int64)
    flux = np.zeros(nlab + 1, dtype=np.float64)
    py = []
    px = []
    for k in range(npx):
        y = pixels[k] // nx
        x = pixels[k] % nx
        lab = final[labels[y, x]]
        labels[y, x] = lab
        area[lab] += 1
        flux[lab] += smooth[y, x]
        if _is_peak(smooth, y, x):
            py.append(y)
            px.append(x)
    return labels, nlab, area, flux, np.array(py, dtype=np.int64), np.array(px, dtype=np.int64)
