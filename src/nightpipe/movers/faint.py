"""Faint movers by synthetic tracking on a cube of registered frames: static sky removed, the
velocity grid searched (:mod:`nightpipe.movers.synthetic`), the peaks above the threshold fitted
and confirmed in the individual frames (:mod:`nightpipe.movers.confirm`), duplicates merged."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from nightpipe.movers.confirm import ConfirmedTrack, ConfirmOptions, confirms, dedupe, fit_track
from nightpipe.movers.stack_kernels import StackKernel
from nightpipe.movers.synthetic import best_plan, peaks, prepare, search, velocity_grid

log = logging.getLogger(__name__)
F32 = NDArray[np.float32]
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class FaintOptions:
    """The search: fastest motion over the night (px), grid step, stack threshold, peaks tried."""

    max_shift_px: float = 26.0
    step_px: float = 1.0
    threshold: float = 6.5
    max_peaks: int = 100
    static: str = "median"  # or "halves": each half of the night against the other half's median
    confirm: ConfirmOptions = field(default_factory=ConfirmOptions)


@dataclass(frozen=True)
class FaintResult:
    """Confirmed tracks, how many peaks were tried and rejected, and the search's rate."""

    tracks: list[ConfirmedTrack]
    peaks: int
    rejected: int
    seconds: float
    frame_pixels_per_s: float


def frame_noise(static_free: F32) -> F64:
    """Robust (MAD) noise of each static-subtracted frame."""
    out = []
    for frame in static_free:
        v = frame[np.isfinite(frame)].ravel()[::7]
        out.append(1.4826 * float(np.median(np.abs(v - np.median(v)))) if v.size else np.inf)
    return np.asarray(out, float)


def subtract_static(cube: F32, times: F64, *, chunk_rows: int = 128) -> F32:
    """The static sky removed in place: from each frame of one half of the night (in time), the median
    of the frames of the other half. A mover then leaves no trace of itself in its own template (a
    median of all the frames would absorb part of a slow one, which stays for many frames on the same
    pixels) unless it moves less than its size between the halves."""
    order = np.argsort(times, kind="stable")
    first, second = np.array_split(order, 2)
    for y0 in range(0, cube.shape[1], chunk_rows):
        block = cube[:, y0 : y0 + chunk_rows]
        med_first = np.nanmedian(block[first], axis=0)
        med_second = np.nanmedian(block[second], axis=0)
        block[first] -= med_second[None]
        block[second] -= med_first[None]
    return cube


def find_faint(
    registered: F32, times: F64, fwhm_px: float, options: FaintOptions, *, kernel: StackKernel | None = None
) -> FaintResult:
    """Synthetic tracking on ``registered`` (frames, H, W) taken at ``times`` (days); pixels off a
    frame are NaN (a pixel off every frame stays without data, silently)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        return _find_faint(registered, times, fwhm_px, options, kernel)


def _find_faint(
    registered: F32, times: F64, fwhm_px: float, options: FaintOptions, kernel: StackKernel | None
) -> FaintResult:
    t = np.asarray(times, float)
    static_free = np.array(registered, dtype=np.float32, copy=True)
    if options.static == "halves":
        subtract_static(static_free, t)
    else:
        for y0 in range(0, static_free.shape[1], 128):
            block = static_free[:, y0 : y0 + 128]
            block -= np.nanmedian(block, axis=0)[None]
    noise = frame_noise(static_free)
    span = float(np.ptp(t))
    grid = velocity_grid(
        span,
        options.max_shift_px / span,
        step_px=options.step_px,
        min_motion_px=options.confirm.min_motion_px,
    )
    plan = best_plan(t, grid)
    cube = prepare(static_free.copy(), fwhm_px, subtract_static=False)
    result = search(cube, plan, kernel=kernel, exact_above=options.threshold, fwhm_px=fwhm_px)
    del cube
    found = peaks(result, options.threshold)[: options.max_peaks]
    confirmed: list[ConfirmedTrack] = []
    rejected = 0
    for peak in found:
        track = fit_track(
            static_free, t, plan.t_ref, peak, fwhm_px, noise, window_fwhm=options.confirm.window_fwhm
        )
        ok, why = confirms(track, t, options.confirm) if track is not None else (False, "fit failed")
        if ok and track is not None:
            confirmed.append(track)
        else:
            rejected += 1
            log.debug("peak at (%.0f, %.0f) SNR %.1f not confirmed: %s", peak.x, peak.y, peak.snr, why)
    tracks = dedupe(confirmed, t, radius_px=max(2.0, fwhm_px))
    return FaintResult(tracks, len(found), rejected, result.seconds, result.frame_pixels_per_s)
