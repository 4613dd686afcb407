"""Confirming a synthetic-tracking peak in the individual frames.

A peak of the search (a place at ``t_ref`` and a velocity on the grid) is fitted again in the
registered, static-subtracted frames (not filtered, not clipped): a Gaussian PSF of the night's
FWHM whose centre moves uniformly, ``p(t) = p0 + v (t - t_ref)``, with one amplitude per frame,
fitted by least squares on a window around the predicted place in every frame (the position
and velocity shared, 4 + N parameters). The per-frame amplitudes give a per-frame SNR and their
optimal combination the track's SNR; the track is confirmed when that SNR passes the threshold,
both halves of the night see it (``min_half_fraction`` of the expected half-SNR each: a cosmic
ray or an artefact of one frame does not), no single frame carries most of it, and it moves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares

from nightpipe.movers.synthetic import Peak

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class ConfirmOptions:
    """What a confirmed track needs."""

    min_snr: float = 7.0
    min_half_fraction: float = 0.4  # each half's SNR >= this x total / sqrt(2)
    max_frame_share: float = 0.5  # the largest frame's share of the summed SNR^2
    min_motion_px: float = 2.0
    window_fwhm: float = 1.5  # half-width of the fit window, in FWHM


@dataclass(frozen=True)
class ConfirmedTrack:
    """A track fitted in the frames: position at ``t_ref`` and velocity (px, px/day, registered grid),
    their 1-sigma errors, per-frame amplitudes (peak, data units) and SNR, the combined SNR."""

    x: float
    y: float
    vx: float
    vy: float
    sigma: F64  # (4,) x, y, vx, vy
    amplitude: F64
    amplitude_err: F64
    snr: float
    t_ref: float

    def position(self, t: F64) -> tuple[F64, F64]:
        """Registered-grid place at times ``t`` (days)."""
        dt = np.asarray(t, float) - self.t_ref
        return self.x + self.vx * dt, self.y + self.vy * dt


def _windows(cube: F32, xc: F64, yc: F64, half: int) -> tuple[F64, F64, F64, np.ndarray]:
    """Pixel values and their coordinates in a (2 half + 1)^2 window around each frame's place."""
    n, height, width = cube.shape
    off = np.arange(-half, half + 1)
    ix = np.rint(xc).astype(int)[:, None, None] + off[None, None, :]
    iy = np.rint(yc).astype(int)[:, None, None] + off[None, :, None]
    ix, iy = np.broadcast_arrays(ix, iy)
    inside = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height)
    k = np.broadcast_to(np.arange(n)[:, None, None], ix.shape)
    values = np.where(inside, cube[k, np.clip(iy, 0, height - 1), np.clip(ix, 0, width - 1)], 0.0)
    values = np.nan_to_num(values.astype(np.float64))
    return values, ix.astype(float), iy.astype(float), inside & np.isfinite(values)


def fit_track(
    cube: F32, times: F64, t_ref: float, peak: Peak, fwhm_px: float, noise: F64, *, window_fwhm: float = 1.5
) -> ConfirmedTrack | None:
    """Least-squares fit of a uniformly moving Gaussian PSF to every frame (see the module)."""
    n = cube.shape[0]
    sigma_psf = fwhm_px / 2.3548
    half = max(2, math.ceil(window_fwhm * fwhm_px))
    dt = np.asarray(times, float) - t_ref
    values, ix, iy, good = _windows(cube, peak.x + peak.vx * dt, peak.y + peak.vy * dt, half)
    if good.sum() < 10:
        return None
    w = good / np.asarray(noise, float)[:, None, None]

    def profiles(p: F64) -> F64:
        x = p[0] + p[2] * dt
        y = p[1] + p[3] * dt
        r2 = (ix - x[:, None, None]) ** 2 + (iy - y[:, None, None]) ** 2
        return np.exp(-0.5 * r2 / sigma_psf**2)

    def amplitudes(prof: F64) -> F64:
        num = (w**2 * prof * values).sum(axis=(1, 2))
        den = (w**2 * prof**2).sum(axis=(1, 2))
        return np.where(den > 0, num / np.maximum(den, 1e-30), 0.0)

    def residuals(p: F64) -> F64:
        prof = profiles(p)  # the amplitudes solved linearly for the given track (variable projection)
        return (w * (values - amplitudes(prof)[:, None, None] * prof)).ravel()

    start = np.array([peak.x, peak.y, peak.vx, peak.vy], float)
    span = max(float(np.ptp(dt)), 1e-6)
    scale = np.array([1.0, 1.0, 1.0 / span, 1.0 / span])
    try:
        fit = least_squares(residuals, start, x_scale=scale, method="trf", max_nfev=60)
    except (ValueError, np.linalg.LinAlgError):
        return None
    prof = profiles(fit.x)
    amp = amplitudes(prof)
    den = (w**2 * prof**2).sum(axis=(1, 2))
    amp_err = np.where(den > 0, 1.0 / np.sqrt(np.maximum(den, 1e-30)), np.inf)
    jac = fit.jac
    dof = max(1, jac.shape[0] - 4 - n)
    chi2 = float((fit.fun**2).sum()) / dof
    try:
        cov = np.linalg.inv(jac.T @ jac) * max(chi2, 1.0)
        sig = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        sig = np.full(4, np.inf)
    ok = np.isfinite(amp_err)
    wt = 1.0 / amp_err[ok] ** 2
    snr = float((amp[ok] * wt).sum() / math.sqrt(wt.sum())) if ok.any() else 0.0
    return ConfirmedTrack(
        float(fit.x[0]), float(fit.x[1]), float(fit.x[2]), float(fit.x[3]), sig, amp, amp_err, snr, t_ref
    )


def half_snrs(track: ConfirmedTrack, times: F64) -> tuple[float, float]:
    """The combined SNR of the first and of the second half of the frames (in time)."""
    order = np.argsort(times)
    out = []
    for part in np.array_split(order, 2):
        a, e = track.amplitude[part], track.amplitude_err[part]
        ok = np.isfinite(e)
        wt = 1.0 / e[ok] ** 2
        out.append(float((a[ok] * wt).sum() / math.sqrt(wt.sum())) if ok.any() else 0.0)
    return out[0], out[1]


def confirms(track: ConfirmedTrack, times: F64, options: ConfirmOptions) -> tuple[bool, str]:
    """Whether a fitted track is a mover, and why not."""
    if track.snr < options.min_snr:
        return False, f"SNR {track.snr:.1f} < {options.min_snr}"
    first, second = half_snrs(track, times)
    need = options.min_half_fraction * track.snr / math.sqrt(2.0)
    if min(first, second) < need:
        return False, f"seen in one half of the night only (SNR {first:.1f} / {second:.1f})"
    s2 = np.where(np.isfinite(track.amplitude_err), (track.amplitude / track.amplitude_err) ** 2, 0.0)
    s2 = np.where(track.amplitude > 0, s2, 0.0)
    if s2.sum() > 0 and s2.max() > options.max_frame_share * s2.sum():
        return False, "one frame carries most of the signal"
    motion = math.hypot(track.vx, track.vy) * float(np.ptp(times))
    if motion < options.min_motion_px:
        return False, f"moves {motion:.1f} px over the night (static residue)"
    return True, ""


def dedupe(tracks: list[ConfirmedTrack], times: F64, radius_px: float) -> list[ConfirmedTrack]:
    """Tracks of one object (peaks of neighbouring velocities) reduced to the best: two tracks are one
    when they stay within ``radius_px`` at the first and the last frame."""
    kept: list[ConfirmedTrack] = []
    ends = np.array([float(np.min(times)), float(np.max(times))])
    for track in sorted(tracks, key=lambda t: -t.snr):
        x, y = track.position(ends)
        same = (
            bool(np.all(np.hypot(x - k.position(ends)[0], y - k.position(ends)[1]) < radius_px)) for k in kept
        )
        if not any(same):
            kept.append(track)
    return kept
