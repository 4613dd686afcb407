"""Inhomogeneous ensemble photometry (Honeycutt 1992).

Magnitudes ``m[i, j]`` of star j in frame i (NaN where not measured) are modelled as
``m[i, j] = M[j] + e[i]``: one mean magnitude per star and one offset per frame
(transparency, airmass, exposure). The weighted least-squares solution is found by
alternating the two closed-form updates; the gauge is fixed by a zero mean offset.
Stars that vary (large scatter about their mean after the offsets) are down-weighted
and then excluded from the offsets, iteratively.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.stats import mad_std

from nightpipe.errors import PhotometryError


@dataclass(frozen=True)
class EnsembleSolution:
    """Per-frame offsets, per-star mean magnitudes and scatter, and which stars set the offsets."""

    frame_offset: np.ndarray
    frame_offset_err: np.ndarray
    star_mag: np.ndarray
    star_rms: np.ndarray
    star_n: np.ndarray
    comparison: np.ndarray  # boolean per star: used for the offsets

    def corrected(self, mags: np.ndarray) -> np.ndarray:
        """Magnitudes with the frame offsets removed (``m[i, j] - e[i]``)."""
        return np.asarray(mags, float) - self.frame_offset[:, None]


def _solve(m: np.ndarray, w: np.ndarray, iters: int, tol: float) -> tuple[np.ndarray, np.ndarray]:
    n_frames, n_stars = m.shape
    e = np.zeros(n_frames)
    big_m = np.zeros(n_stars)
    filled = np.where(w > 0, m, 0.0)
    for _ in range(iters):
        wsum_star = w.sum(axis=0)
        big_m = np.where(
            wsum_star > 0, (w * (filled - e[:, None])).sum(axis=0) / np.maximum(wsum_star, 1e-300), np.nan
        )
        wsum_frame = w.sum(axis=1)
        new_e = np.where(
            wsum_frame > 0,
            (w * (filled - np.nan_to_num(big_m)[None, :])).sum(axis=1) / np.maximum(wsum_frame, 1e-300),
            np.nan,
        )
        new_e -= np.nanmean(new_e)
        if np.nanmax(np.abs(new_e - e)) < tol:
            e = new_e
            break
        e = np.nan_to_num(new_e)
    return e, big_m


def solve_ensemble(
    mags: np.ndarray,
    errs: np.ndarray,
    *,
    clip_sigma: float = 3.0,
    rounds: int = 5,
    iters: int = 500,
    tol: float = 1e-7,
) -> EnsembleSolution:
    """Solve ``m[i, j] = M[j] + e[i]`` with iterative rejection of variable stars.

    Parameters
    ----------
    mags, errs
        Arrays of shape (frames, stars); NaN marks a missing measurement.
    clip_sigma
        A star whose scatter exceeds the ensemble's typical scatter (at its error level)
        by this many robust standard deviations is excluded from the offsets.
    """
    m = np.asarray(mags, float)
    err = np.asarray(errs, float)
    if m.ndim != 2 or m.shape != err.shape:
        raise PhotometryError(f"ensemble needs matching 2-D arrays, got {m.shape} and {err.shape}")
    valid = np.isfinite(m) & np.isfinite(err) & (err > 0)
    if (valid.sum(axis=1) == 0).any():
        empty = int(np.flatnonzero(valid.sum(axis=1) == 0)[0])
        raise PhotometryError(f"frame {empty} has no measured star; drop it before the ensemble solution")
    comparison = valid.sum(axis=0) >= 2
    base_w = np.where(valid, 1.0 / np.where(valid, err, 1.0) ** 2, 0.0)
    for _ in range(rounds):
        w = base_w * comparison[None, :]
        e, big_m = _solve(m, w, iters, tol)
        resid = np.where(valid, m - e[:, None] - np.nan_to_num(big_m)[None, :], np.nan)
        with np.errstate(invalid="ignore"):
            chi = np.sqrt(np.nanmean((resid / np.where(valid, err, 1.0)) ** 2, axis=0))
        good = comparison & np.isfinite(chi)
        if good.sum() < 3:
            break
        centre = float(np.median(chi[good]))
        spread = max(float(mad_std(chi[good])), 1e-6)
        new_comparison = comparison & np.isfinite(chi) & (chi <= centre + clip_sigma * spread)
        if np.array_equal(new_comparison, comparison):
            break
        comparison = new_comparison
    w = base_w * comparison[None, :]
    e, big_m = _solve(m, w, iters, tol)
    # every star's mean from all its points with the final offsets
    wa = base_w
    big_m = np.where(
        wa.sum(axis=0) > 0,
        (wa * np.where(valid, m - e[:, None], 0.0)).sum(axis=0) / np.maximum(wa.sum(axis=0), 1e-300),
        np.nan,
    )
    resid = np.where(valid, m - e[:, None] - big_m[None, :], np.nan)
    rms = np.sqrt(np.nanmean(resid**2, axis=0)) if m.size else np.zeros(m.shape[1])
    e_err = 1.0 / np.sqrt(np.maximum(w.sum(axis=1), 1e-300))
    return EnsembleSolution(e, e_err, big_m, rms, valid.sum(axis=0), comparison)
