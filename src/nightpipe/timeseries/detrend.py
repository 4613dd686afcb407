"""Systematics vectors for detrending and their selection by the Bayesian information criterion.

The systematics model is linear in its coefficients: ``S(t) = c0 + sum_j c_j v_j(t)`` where the
``v_j`` are standardised auxiliary vectors (airmass, FWHM, sky, centroid shifts, time polynomials,
a meridian-flip step). The light-curve model is ``transit(t) * S(t)``; for any transit shape the
coefficients follow from a weighted linear least-squares solve, which is how the transit fit
treats them jointly (see :mod:`nightpipe.timeseries.transit`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from nightpipe.timeseries.lightcurve import LightCurve

log = logging.getLogger(__name__)
FloatArray = NDArray[np.float64]

#: The candidate vectors understood by :func:`detrend_vectors`.
KNOWN_VECTORS = ("airmass", "fwhm", "sky", "xshift", "yshift", "time", "time2", "flip")


def standardise(values: FloatArray) -> FloatArray | None:
    """Zero-mean, unit-variance copy of ``values``; ``None`` when constant or not finite."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or not np.all(np.isfinite(values)):
        return None
    std = float(np.std(values))
    if std == 0 or not math.isfinite(std):
        return None
    return (values - values.mean()) / std


def find_meridian_flip(x: FloatArray, y: FloatArray, *, min_jump_px: float = 20.0) -> int | None:
    """Index of the first frame after a meridian flip, from a jump of the target's pixel position.

    A flip rotates the field by 180 degrees, so the target's position jumps at once while the
    ordinary drift moves it by a few pixels per frame. The jump must exceed ``min_jump_px`` and
    ten times the median step; ``None`` when there is no such jump.
    """
    if x.size < 3:
        return None
    step = np.hypot(np.diff(x), np.diff(y))
    if not np.all(np.isfinite(step)):
        return None
    threshold = max(min_jump_px, 10.0 * float(np.median(step)))
    big = np.flatnonzero(step > threshold)
    if big.size == 0:
        return None
    return int(big[0] + 1)


def shifts_across_flip(
    x: FloatArray, y: FloatArray, index: int, turn_deg: float
) -> tuple[FloatArray, FloatArray]:
    """The target's pixel position as shift vectors across a meridian flip at ``index``.

    Each side is centred on its own median and the side after the flip is turned back by the
    field's turn across it (``turn_deg``, about 180), so that the drift reads the same way on
    both sides (the stars keep their place on the sky; under a vignetting symmetric about the
    centre, the flux changes the same way with it) and the jump at the flip is left to the
    ``flip`` step. Without this, the 180-degree jump of the position is fitted as a drift.
    """
    xs = np.array(x, dtype=np.float64)
    ys = np.array(y, dtype=np.float64)
    for side in (slice(None, index), slice(index, None)):
        xs[side] -= np.median(xs[side])
        ys[side] -= np.median(ys[side])
    c, s = math.cos(math.radians(turn_deg)), math.sin(math.radians(turn_deg))
    after_x, after_y = xs[index:].copy(), ys[index:].copy()
    xs[index:] = c * after_x - s * after_y
    ys[index:] = s * after_x + c * after_y
    return xs, ys


def detrend_vectors(lc: LightCurve, names: Sequence[str]) -> dict[str, FloatArray]:
    """The standardised candidate vectors of ``lc`` among ``names``.

    ``airmass``, ``fwhm`` and ``sky`` come from ``lc.aux``; ``xshift``/``yshift`` from the target
    centroid ``x``/``y`` (across a meridian flip whose turn the light curve knows,
    ``lc.meta["flip_turn_deg"]``, by :func:`shifts_across_flip`); ``time`` and ``time2`` are
    first and second order in time (``time`` implies ``time2`` is also a candidate); ``flip`` is
    a step at the meridian flip (from ``lc.meta["flip_index"]`` or a jump of the centroid).
    Vectors that are missing, constant or not finite are left out (and logged).
    """
    out: dict[str, FloatArray] = {}
    wanted = list(names)
    if "time" in wanted and "time2" not in wanted:
        wanted.append("time2")
    t = lc.time - lc.time.mean() if len(lc) else lc.time
    shifts: tuple[FloatArray | None, FloatArray | None] = (lc.aux.get("x"), lc.aux.get("y"))
    flip_at, turn = lc.meta.get("flip_index"), lc.meta.get("flip_turn_deg")
    inside = flip_at is not None and 0 < int(flip_at) < len(lc)
    if inside and turn is not None and "x" in lc.aux and "y" in lc.aux:
        shifts = shifts_across_flip(lc.aux["x"], lc.aux["y"], int(flip_at or 0), float(turn))
    for name in wanted:
        raw: FloatArray | None = None
        if name in ("airmass", "fwhm", "sky"):
            raw = lc.aux.get(name)
        elif name == "xshift":
            raw = shifts[0]
        elif name == "yshift":
            raw = shifts[1]
        elif name == "time":
            raw = t
        elif name == "time2":
            raw = t**2
        elif name == "flip":
            index = lc.meta.get("flip_index")
            if index is None and "x" in lc.aux and "y" in lc.aux:
                index = find_meridian_flip(lc.aux["x"], lc.aux["y"])
            if index is not None and 0 < int(index) < len(lc):
                raw = (np.arange(len(lc)) >= int(index)).astype(np.float64)
        else:
            log.warning("unknown detrending vector %r ignored (known: %s)", name, ", ".join(KNOWN_VECTORS))
            continue
        vec = None if raw is None else standardise(raw)
        if vec is None:
            log.debug("detrending vector %r unavailable or constant; left out", name)
            continue
        out[name] = vec
    return out


def design_matrix(vectors: Mapping[str, FloatArray], chosen: Sequence[str], n: int) -> FloatArray:
    """The systematics design matrix: a constant column then the ``chosen`` vectors."""
    columns = [np.ones(n)] + [vectors[name] for name in chosen]
    return np.column_stack(columns)


@dataclass(frozen=True)
class BicStep:
    """One model tried during the selection: its vectors, chi-square, parameter count and BIC."""

    vectors: tuple[str, ...]
    chi2: float
    n_params: int
    bic: float


def bic(chi2: float, n_params: int, n_points: int) -> float:
    """Bayesian information criterion ``chi2 + k ln N`` (Gaussian likelihood, known errors)."""
    return float(chi2 + n_params * math.log(max(n_points, 1)))


def select_vectors(
    fit: Callable[[tuple[str, ...]], tuple[float, int]],
    candidates: Sequence[str],
    n_points: int,
) -> tuple[tuple[str, ...], list[BicStep]]:
    """Greedy forward selection of detrending vectors by BIC.

    Parameters
    ----------
    fit
        Fits the full model (transit and systematics) with the given vectors and returns
        ``(chi2, number of free parameters)``.
    candidates
        Names of the available vectors. ``time2`` is only tried once ``time`` is in.
    n_points
        Number of data points (for the BIC penalty).

    Returns
    -------
    chosen, history
        The chosen vectors and every model tried, in order.

    Examples
    --------
    >>> def fit(vs):  # a toy: 'a' lowers chi2 a lot, 'b' hardly at all
    ...     return 100.0 - 60.0 * ("a" in vs) - 0.5 * ("b" in vs), 1 + len(vs)
    >>> select_vectors(fit, ["a", "b"], 100)[0]
    ('a',)
    """
    chosen: tuple[str, ...] = ()
    chi2, k = fit(chosen)
    best = BicStep(chosen, chi2, k, bic(chi2, k, n_points))
    history = [best]
    while True:
        trial_best: BicStep | None = None
        for name in candidates:
            if name in chosen or (name == "time2" and "time" not in chosen):
                continue
            trial = (*chosen, name)
            chi2, k = fit(trial)
            step = BicStep(trial, chi2, k, bic(chi2, k, n_points))
            history.append(step)
            if trial_best is None or step.bic < trial_best.bic:
                trial_best = step
        if trial_best is None or trial_best.bic >= best.bic:
            break
        best = trial_best
        chosen = best.vectors
    log.info("detrending chosen by BIC: %s (BIC %.1f)", ", ".join(chosen) or "constant only", best.bic)
    return chosen, history
