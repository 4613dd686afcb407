"""Cosmic-ray detection: astroscrappy (L.A.Cosmic) on the whole frame, or a fast windowed mode.

``full`` runs :func:`astroscrappy.detect_cosmics` on the whole frame.

``fast`` gives astroscrappy's answer at a fraction of the cost by running it only where a
cosmic ray can be. L.A.Cosmic flags a pixel in its first pass only if its Laplacian
signal-to-noise ``S' = S - med5(S)`` exceeds ``sigclip``, where ``S = L+ / (2 N)`` and the
noise ``N = sqrt(med5(data) + rn**2)``. Since ``med5(S) >= 0`` and the 5x5 minimum is at
most the 5x5 (separable) median, ``S_screen = L+ / (2 sqrt(min5(data) + rn**2)) > sigclip``
holds for every such pixel: this screen, computed with a few vectorised array operations,
is a superset of astroscrappy's first-pass candidates. Candidates that also fail a
relaxed version of the fine-structure (star rejection) test, computed only at candidate
pixels, are dropped. Later L.A.Cosmic iterations and the neighbour growth only add pixels
next to earlier detections, so astroscrappy is run on small windows around the surviving
candidates (``grow`` trusted pixels around them plus ``context`` pixels of input for its
median filters) and its flags are kept inside the trusted part. On frames with a few
hundred cosmic rays this examines a few percent of the pixels; ``benchmarks/bench_cosmics.py``
measures the speed-up and the agreement with the full run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import astroscrappy
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage
from threadpoolctl import threadpool_limits

from nightpipe.errors import CalibrationError

log = logging.getLogger(__name__)

MODES = ("off", "full", "fast")


@dataclass(frozen=True)
class CosmicParams:
    """Parameters of L.A.Cosmic (astroscrappy names in brackets).

    Attributes
    ----------
    gain
        Electrons per data unit (``gain``); 1 for data already in electrons.
    read_noise
        Read noise, electrons (``readnoise``).
    sigclip
        Laplacian-to-noise limit (``sigclip``).
    objlim
        Contrast limit between Laplacian and fine structure (``objlim``).
    sigfrac
        Fraction of ``sigclip`` for neighbouring pixels (``sigfrac``).
    saturation
        Saturation level in data units; astroscrappy gets it in electrons (``satlevel``).
    niter
        L.A.Cosmic iterations (``niter``).
    clean
        Return a cleaned image (cosmic-ray pixels replaced by a masked 5x5 mean).
    threads
        OpenMP threads of a full-frame astroscrappy run (``None``: its default, all cores).
        Per-frame parallelism is the pipeline's job, so one thread is the default; the fast
        mode always uses one thread (its many small calls would wait on thread barriers).
    grow
        Fast mode: pixels around each candidate cluster where flags are kept.
    context
        Fast mode: extra input pixels around the kept region, for astroscrappy's filters.
    screen_sigclip_factor, screen_objlim_factor
        Fast mode: candidates are kept when L.A.Cosmic's first-pass significance and
        contrast, computed at the candidate, exceed these fractions of ``sigclip`` and ``objlim``.
    """

    gain: float = 1.0
    read_noise: float = 6.5
    sigclip: float = 4.5
    objlim: float = 5.0
    sigfrac: float = 0.3
    saturation: float = 65535.0
    niter: int = 4
    clean: bool = False
    threads: int | None = 1
    grow: int = 8
    context: int = 8
    screen_sigclip_factor: float = 0.8
    screen_objlim_factor: float = 0.5


@dataclass(frozen=True)
class CosmicResult:
    """Which pixels are cosmic rays, and optionally the cleaned image.

    Attributes
    ----------
    mask
        Boolean array, True on cosmic-ray pixels.
    cleaned
        The image with cosmic-ray pixels replaced (same units as the input), or ``None``.
    mode
        ``"full"`` or ``"fast"``.
    candidates
        Fast mode: number of screened candidate pixels that were examined.
    windows
        Fast mode: number of windows astroscrappy ran on.
    examined_fraction
        Fraction of the frame's pixels astroscrappy read (1 in full mode).
    """

    mask: np.ndarray
    cleaned: np.ndarray | None
    mode: str
    candidates: int = 0
    windows: int = 0
    examined_fraction: float = 1.0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def npixels(self) -> int:
        """Number of flagged pixels."""
        return int(np.count_nonzero(self.mask))


def _check(data: np.ndarray, params: CosmicParams) -> np.ndarray:
    if data.ndim != 2:
        raise CalibrationError(f"cosmic-ray detection needs a 2-D image, got {data.ndim} dimensions")
    if params.gain <= 0:
        raise CalibrationError(f"gain {params.gain!r} must be positive", hint="set camera.gain")
    return np.ascontiguousarray(data, dtype=np.float32)


def _scrappy(
    data: np.ndarray, inmask: np.ndarray | None, params: CosmicParams, threads: int | None
) -> tuple[np.ndarray, np.ndarray]:
    with threadpool_limits(limits=threads, user_api="openmp"):
        return _scrappy_call(data, inmask, params)


def _scrappy_call(
    data: np.ndarray, inmask: np.ndarray | None, params: CosmicParams
) -> tuple[np.ndarray, np.ndarray]:
    mask, cleaned = astroscrappy.detect_cosmics(
        data,
        inmask=inmask,
        sigclip=params.sigclip,
        sigfrac=params.sigfrac,
        objlim=params.objlim,
        gain=params.gain,
        readnoise=params.read_noise,
        satlevel=params.saturation * params.gain,
        niter=params.niter,
        sepmed=True,
        cleantype="meanmask",
        fsmode="median",
    )
    return np.asarray(mask, dtype=bool), np.asarray(cleaned, dtype=np.float32)


def fill_bad_pixels(data: np.ndarray, bad: np.ndarray, size: int = 5) -> np.ndarray:
    """A copy of ``data`` with ``bad`` pixels replaced by the median of their good neighbours.

    Dead columns, hot pixels and NaNs would otherwise look like sharp features to
    L.A.Cosmic and drag their neighbours into the cosmic-ray mask. Pixels without a good
    neighbour in the ``size`` x ``size`` box get the median of the whole frame.
    """
    out = data.copy()
    ys, xs = np.nonzero(bad)
    if len(ys) == 0:
        return out
    half = size // 2
    padded = np.pad(np.where(bad, np.nan, data).astype(np.float32), half, constant_values=np.nan)
    offsets = np.arange(size)
    good_all = data[~bad]
    fallback = np.float32(np.median(good_all)) if good_all.size else np.float32(0)
    for start in range(0, len(ys), 50000):
        yy, xx = ys[start : start + 50000], xs[start : start + 50000]
        patch = padded[yy[:, None, None] + offsets[None, :, None], xx[:, None, None] + offsets[None, None, :]]
        flat = patch.reshape(len(yy), -1)
        has_good = np.isfinite(flat).any(axis=1)
        values = np.full(len(yy), fallback, dtype=np.float32)
        if has_good.any():
            values[has_good] = np.nanmedian(flat[has_good], axis=1)
        out[yy, xx] = values
    return out


def _prepare_inmask(
    data: np.ndarray, inmask: np.ndarray | None, bad: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fill non-finite and ``bad`` pixels (astroscrappy cannot take NaN) and mask them."""
    nonfinite = ~np.isfinite(data)
    fill = nonfinite if bad is None else (np.asarray(bad, dtype=bool) | nonfinite)
    mask = fill if inmask is None else (np.asarray(inmask, dtype=bool) | fill)
    if fill.any():
        data = fill_bad_pixels(data, fill)
    return data, mask


def detect_cosmics_full(
    data: np.ndarray,
    params: CosmicParams,
    inmask: np.ndarray | None = None,
    bad: np.ndarray | None = None,
) -> CosmicResult:
    """Run astroscrappy (L.A.Cosmic) on the whole frame.

    Parameters
    ----------
    data
        The image including its sky (ADU, or electrons with ``gain=1``).
    params
        L.A.Cosmic parameters.
    inmask
        Pixels to ignore (True), e.g. saturated or bad pixels; never flagged.
    bad
        Pixels whose values are meaningless (dead, hot, NaN): replaced by the median of
        their good neighbours before detection, and never flagged.

    Returns
    -------
    CosmicResult
        The cosmic-ray mask and, with ``params.clean``, the cleaned image.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(1).normal(100, 3, (64, 64)).astype(np.float32)
    >>> img[30, 30] += 500
    >>> bool(detect_cosmics_full(img, CosmicParams(read_noise=3.0)).mask[30, 30])
    True
    """
    image, mask_in = _prepare_inmask(_check(data, params), inmask, bad)
    mask, cleaned = _scrappy(image, mask_in, params, params.threads)
    mask &= ~mask_in
    # astroscrappy round-trips every pixel through electrons; keep unflagged ones bit-exact
    result = np.where(mask, cleaned, image) if params.clean else None
    return CosmicResult(mask=mask, cleaned=result, mode="full")


def laplacian_plus(image: np.ndarray) -> np.ndarray:
    """L.A.Cosmic's ``L+``: Laplacian of the 2x-subsampled image, clipped at 0, rebinned.

    For block replication the four sub-pixels of a pixel ``v`` with neighbours
    left/right/up/down ``L, R, U, D`` have Laplacians ``2v-L-U``, ``2v-R-U``, ``2v-L-D``,
    ``2v-R-D``; ``L+`` is the mean of their positive parts. Edges repeat the border.
    """
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
    ``F = (med3 - med7(med3)) / noise``.
    """
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

    A cheap whole-frame superset test (module docstring) picks candidates; L.A.Cosmic's own
    first-pass statistics are then computed at those pixels only and candidates are kept
    when ``S' > screen_sigclip_factor * sigclip`` and ``S'/F > screen_objlim_factor * objlim``
    (factors below 1 leave a margin for edge handling and rounding).
    """
    electrons = data * np.float32(params.gain)
    low = ndimage.minimum_filter(electrons, size=5, mode="nearest")
    np.maximum(low, np.float32(1e-5), out=low)
    low += np.float32(params.read_noise**2)
    noise = np.sqrt(low, out=low)
    significance = laplacian_plus(electrons)
    significance /= 2.0 * noise
    ys, xs = np.nonzero(significance > params.sigclip)
    if len(ys) == 0:
        return ys, xs
    sp, ratio = _lacosmic_first_pass_at(electrons, ys, xs, params)
    keep = (sp > params.screen_sigclip_factor * params.sigclip) & (
        ratio > params.screen_objlim_factor * params.objlim
    )
    return ys[keep], xs[keep]


def _windows(
    shape: tuple[int, int], ys: np.ndarray, xs: np.ndarray, grow: int, cell: int = 4
) -> list[tuple[slice, slice]]:
    """Boxes covering candidate clusters (candidates within about ``cell`` px merge)."""
    grid = np.zeros((shape[0] // cell + 1, shape[1] // cell + 1), dtype=bool)
    grid[ys // cell, xs // cell] = True
    labels, _ = ndimage.label(ndimage.binary_dilation(grid), structure=np.ones((3, 3), dtype=bool))
    boxes: list[tuple[slice, slice]] = []
    for index, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        inside = labels[sl] == index
        # the candidate cells of this component, without the dilation ring
        members = inside & grid[sl]
        rows = np.nonzero(members.any(axis=1))[0]
        cols = np.nonzero(members.any(axis=0))[0]
        y0 = (sl[0].start + rows[0]) * cell - grow
        y1 = (sl[0].start + rows[-1] + 1) * cell + grow
        x0 = (sl[1].start + cols[0]) * cell - grow
        x1 = (sl[1].start + cols[-1] + 1) * cell + grow
        boxes.append((slice(max(y0, 0), min(y1, shape[0])), slice(max(x0, 0), min(x1, shape[1]))))
    return boxes


def detect_cosmics_fast(
    data: np.ndarray,
    params: CosmicParams,
    inmask: np.ndarray | None = None,
    bad: np.ndarray | None = None,
) -> CosmicResult:
    """astroscrappy's flags, computed only in windows around screened candidates.

    Parameters
    ----------
    data
        The image including its sky (ADU, or electrons with ``gain=1``).
    params
        L.A.Cosmic parameters, plus ``grow``, ``context`` and ``screen_objlim_factor``.
    inmask
        Pixels to ignore (True); never flagged.
    bad
        Pixels whose values are meaningless, filled before detection (see
        :func:`detect_cosmics_full`).

    Returns
    -------
    CosmicResult
        Mask (and cleaned image with ``params.clean``), with the number of candidates,
        windows and the fraction of the frame examined.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(1).normal(100, 3, (64, 64)).astype(np.float32)
    >>> img[30, 30] += 500
    >>> bool(detect_cosmics_fast(img, CosmicParams(read_noise=3.0)).mask[30, 30])
    True
    """
    image, mask_in = _prepare_inmask(_check(data, params), inmask, bad)
    shape = (image.shape[0], image.shape[1])
    ys, xs = screen_candidates(image, params)
    mask = np.zeros(shape, dtype=bool)
    cleaned = image.copy() if params.clean else None
    boxes = _windows(shape, ys, xs, params.grow) if len(ys) else []
    examined = 0
    ctx = params.context
    for inner in boxes:
        y0, y1 = max(inner[0].start - ctx, 0), min(inner[0].stop + ctx, shape[0])
        x0, x1 = max(inner[1].start - ctx, 0), min(inner[1].stop + ctx, shape[1])
        win_mask, win_clean = _scrappy(image[y0:y1, x0:x1], mask_in[y0:y1, x0:x1], params, 1)
        examined += (y1 - y0) * (x1 - x0)
        iy = slice(inner[0].start - y0, inner[0].stop - y0)
        ix = slice(inner[1].start - x0, inner[1].stop - x0)
        found = win_mask[iy, ix]
        mask[inner] |= found
        if cleaned is not None:
            cleaned[inner] = np.where(found, win_clean[iy, ix], cleaned[inner])
    mask &= ~mask_in
    return CosmicResult(
        mask=mask,
        cleaned=cleaned,
        mode="fast",
        candidates=len(ys),
        windows=len(boxes),
        examined_fraction=examined / image.size,
    )


def detect_cosmics(
    data: np.ndarray,
    mode: str,
    params: CosmicParams,
    inmask: np.ndarray | None = None,
    bad: np.ndarray | None = None,
) -> CosmicResult | None:
    """Dispatch on ``mode`` (``off``, ``full``, ``fast``); ``None`` for ``off``.

    Raises
    ------
    CalibrationError
        For an unknown mode.
    """
    if mode == "off":
        return None
    if mode == "full":
        return detect_cosmics_full(data, params, inmask, bad)
    if mode == "fast":
        return detect_cosmics_fast(data, params, inmask, bad)
    raise CalibrationError(
        f"unknown cosmic-ray mode {mode!r}", hint=f"set calibration.cosmic_rays to one of {MODES}"
    )
