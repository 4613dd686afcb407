"""Source detection: thresholding a smoothed, background-subtracted frame, deblending, centroids.

The frame minus its background is smoothed by a small Gaussian (the matched filter of a
star), thresholded at ``detect_sigma x RMS`` and split into 8-connected segments; segments
smaller than ``min_area`` pixels are dropped. Every local maximum of the smoothed frame in a
segment is a candidate source; in a segment with several maxima (a blend) a fainter maximum
is kept only when it stands out from the saddle towards its brighter neighbour by more than
``detect_sigma`` times the smoothed noise and carries at least ``deblend_contrast`` of the
brighter peak. Positions are Gaussian-windowed centroids (SExtractor's XWIN/YWIN), iterated
from the peak pixel. Sources near the edge, touching flagged or saturated pixels, or blended
carry the matching :class:`~nightpipe.frames.flags.PixelFlag` bits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numba
import numpy as np

from nightpipe.errors import PhotometryError
from nightpipe.frames.flags import BAD_PIXEL_FLAGS, PixelFlag

log = logging.getLogger(__name__)

SMOOTH_FWHM = 2.0  # px; the detection filter (SExtractor's default gauss_2.0)


@dataclass(frozen=True)
class Detections:
    """Sources found on a frame (all arrays of length N, positions 0-based pixels)."""

    x: np.ndarray
    y: np.ndarray
    peak: np.ndarray
    """Highest background-subtracted pixel value near the centroid."""
    npix: np.ndarray
    """Pixels of the source's segment above the threshold."""
    flux_iso: np.ndarray
    """Background-subtracted sum over the segment (shared by blended sources)."""
    flags: np.ndarray
    """PixelFlag bits (uint16): SATURATED, bad pixels, EDGE, BLENDED."""

    def __len__(self) -> int:
        return int(self.x.size)


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


def windowed_centroids(
    image: np.ndarray, x0: np.ndarray, y0: np.ndarray, sigma: float, iters: int
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-windowed centroids (SExtractor XWIN/YWIN) iterated from ``(x0, y0)``.

    Parameters
    ----------
    image
        Background-subtracted image.
    x0, y0
        Starting positions (pixels, 0-based).
    sigma
        Standard deviation of the Gaussian window, pixels (about FWHM / 2.355).
    iters
        Iterations.

    Returns
    -------
    x, y : ndarray
    """
    zero = np.zeros((1, 1), dtype=np.float32)
    bkg = np.broadcast_to(zero, image.shape)
    return _centroids(
        image, bkg, np.zeros((0, 0), np.uint16), 0, np.asarray(x0), np.asarray(y0), sigma, iters
    )


@numba.njit(cache=True)
def _centroids(
    data: np.ndarray,
    bkg: np.ndarray,
    mask: np.ndarray,
    bad_bits: int,
    x0: np.ndarray,
    y0: np.ndarray,
    sigma: float,
    iters: int,
) -> tuple[np.ndarray, np.ndarray]:
    ny, nx = data.shape
    n = x0.size
    xs = x0.astype(np.float64).copy()
    ys = y0.astype(np.float64).copy()
    r = int(np.ceil(4 * sigma)) + 1
    inv = 1.0 / (2 * sigma * sigma)
    for k in range(n):
        x = xs[k]
        y = ys[k]
        for _ in range(iters):
            ix = round(x)
            iy = round(y)
            sw = 0.0
            sx = 0.0
            sy = 0.0
            for yy in range(max(iy - r, 0), min(iy + r + 1, ny)):
                dy = yy - y
                for xx in range(max(ix - r, 0), min(ix + r + 1, nx)):
                    dx = xx - x
                    d2 = dx * dx + dy * dy
                    if d2 > 16 * sigma * sigma:
                        continue
                    w = np.exp(-d2 * inv) * _clean_value(data, bkg, mask, bad_bits, yy, xx)
                    sw += w
                    sx += w * dx
                    sy += w * dy
            if sw <= 0:
                break
            # factor 2: the windowed centroid converges to the true centre for a Gaussian source
            stepx = 2.0 * sx / sw
            stepy = 2.0 * sy / sw
            if abs(stepx) > r or abs(stepy) > r:
                break
            x += stepx
            y += stepy
            if stepx * stepx + stepy * stepy < 1e-8:
                break
        if abs(x - x0[k]) <= 3 * sigma + 1 and abs(y - y0[k]) <= 3 * sigma + 1:
            xs[k] = x
            ys[k] = y
    return xs, ys


@numba.njit(cache=True)
def _peak_and_flags(
    raw: np.ndarray,
    bkg: np.ndarray,
    mask: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    radius: float,
    saturation: float,
    bad_bits: int,
) -> tuple[np.ndarray, np.ndarray]:
    ny, nx = raw.shape
    n = x.size
    peak = np.zeros(n, dtype=np.float32)
    flags = np.zeros(n, dtype=np.uint16)
    r = int(np.ceil(radius))
    for k in range(n):
        ix = round(x[k])
        iy = round(y[k])
        best = -np.inf
        f = 0
        for yy in range(max(iy - r, 0), min(iy + r + 1, ny)):
            for xx in range(max(ix - r, 0), min(ix + r + 1, nx)):
                if (xx - x[k]) ** 2 + (yy - y[k]) ** 2 > radius * radius:
                    continue
                v = _clean_value(raw, bkg, mask, 230, yy, xx)  # 230: HOT|DEAD|BAD_COLUMN|LOW_FLAT|NO_DATA
                if abs(xx - ix) <= 1 and abs(yy - iy) <= 1 and v > best:
                    best = v
                if mask.shape[0] > 0:
                    f |= mask[yy, xx] & bad_bits
                if raw[yy, xx] >= saturation:
                    f |= 1
        peak[k] = best if best > -np.inf else np.nan
        flags[k] = f
    return peak, flags


def detect_sources(
    data: np.ndarray,
    background: np.ndarray | float,
    rms: np.ndarray | float,
    *,
    mask: np.ndarray | None = None,
    detect_sigma: float = 5.0,
    min_area: int = 5,
    deblend_contrast: float = 0.005,
    edge_margin: int = 10,
    saturation: float = np.inf,
    smooth_fwhm: float = SMOOTH_FWHM,
    centroid_fwhm: float | None = None,
) -> Detections:
    """Find the sources of a frame.

    Parameters
    ----------
    data
        The image (not background-subtracted).
    background, rms
        Sky level and noise: per-pixel maps (:func:`~nightpipe.photometry.background.mesh_background`)
        or scalars.
    mask
        uint16 PixelFlag bits (non-zero pixels are never detected; their bits flag the sources).
    detect_sigma
        Threshold, in units of ``rms``, applied to the smoothed frame.
    min_area
        Fewest connected pixels above the threshold.
    deblend_contrast
        Least peak ratio for a fainter peak of a blend to count as a source.
    edge_margin
        Sources closer than this to the edge get ``EDGE``.
    saturation
        Raw level at or above which a pixel is saturated.
    smooth_fwhm
        FWHM of the Gaussian detection filter, pixels.
    centroid_fwhm
        FWHM of the centroiding window (default: ``smooth_fwhm``; pass the frame's FWHM when known).

    Returns
    -------
    Detections
        Sorted by decreasing peak.

    Examples
    --------
    >>> yy, xx = np.mgrid[:64, :64]
    >>> image = 10.0 + 500.0 * np.exp(-((xx - 30.3) ** 2 + (yy - 20.6) ** 2) / (2 * 1.5**2))
    >>> found = detect_sources(image, 10.0, 1.0)
    >>> len(found), round(float(found.x[0]), 2), round(float(found.y[0]), 2)
    (1, 30.3, 20.6)
    """
    if data.ndim != 2:
        raise PhotometryError(f"expected a 2-D image, got shape {data.shape}")
    shape = data.shape
    bkg = np.broadcast_to(np.asarray(background, dtype=np.float32), shape)
    noise = np.broadcast_to(np.asarray(rms, dtype=np.float32), shape)
    if mask is None:
        flagmask = np.zeros((0, 0), dtype=np.uint16)
    else:
        flagmask = np.asarray(mask, dtype=np.uint16)
        if flagmask.shape != shape:
            raise PhotometryError(f"mask shape {flagmask.shape} differs from the data shape {shape}")
    bad_bits = int(BAD_PIXEL_FLAGS | PixelFlag.NO_DATA)
    sigma_s = smooth_fwhm / 2.3548
    half = max(1, int(np.ceil(2.5 * sigma_s)))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma_s) ** 2)
    kernel /= kernel.sum()
    smooth, above = _smooth_threshold(data, bkg, flagmask, bad_bits, kernel, noise, float(detect_sigma))
    labels, nlab, areas, flux_sums, py, px = _label(above, smooth)
    if nlab == 0 or py.size == 0:
        return _empty()
    seg = labels[py, px]
    big = areas[seg] >= min_area
    py, px, seg = py[big], px[big], seg[big]
    if py.size == 0:
        return _empty()
    # noise of the smoothed image: a separable kernel k(x)k(y) scales white noise by sum(k^2)
    smooth_noise = noise * np.float32(np.sum(kernel**2))
    keep, blended = _deblend(smooth, py, px, seg, smooth_noise, float(detect_sigma), float(deblend_contrast))
    py, px, seg, blended = py[keep], px[keep], seg[keep], blended[keep]
    cfwhm = centroid_fwhm if centroid_fwhm is not None else max(smooth_fwhm, 2.0)
    x, y = _centroids(
        data, bkg, flagmask, bad_bits, px.astype(np.float64), py.astype(np.float64), cfwhm / 2.3548, 10
    )
    peak, flags = _peak_and_flags(
        data, bkg, flagmask, x, y, max(1.5, cfwhm), float(saturation), int(BAD_PIXEL_FLAGS | 1 | 8 | 16)
    )
    flags |= np.where(blended, np.uint16(PixelFlag.BLENDED), np.uint16(0))
    ny, nx = shape
    near_edge = (
        (x < edge_margin) | (y < edge_margin) | (x > nx - 1 - edge_margin) | (y > ny - 1 - edge_margin)
    )
    flags |= np.where(near_edge, np.uint16(PixelFlag.EDGE), np.uint16(0))
    order = np.argsort(-peak, kind="stable")
    log.debug("detected %d sources in %d segments", x.size, nlab)
    return Detections(
        x=x[order],
        y=y[order],
        peak=peak[order],
        npix=areas[seg][order].astype(np.int32),
        flux_iso=flux_sums[seg][order].astype(np.float64),
        flags=flags[order].astype(np.uint16),
    )


def _empty() -> Detections:
    f = np.zeros(0, dtype=np.float64)
    return Detections(
        x=f,
        y=f.copy(),
        peak=np.zeros(0, dtype=np.float32),
        npix=np.zeros(0, dtype=np.int32),
        flux_iso=f.copy(),
        flags=np.zeros(0, dtype=np.uint16),
    )
