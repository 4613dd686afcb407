"""Automatic, explained choice of comparison stars, noise weights (Broeg 2005), leave-one-out curves.

Every star other than the target is a candidate. Hard rules reject, each with a reason shown to
the user: present in fewer than ``min_presence`` of the frames; saturated or non-linear in more
than 2 % of them; on bad pixels, at the edge, or blended in more than 10 %; closer than
``edge_margin`` pixels to the edge; a neighbour within 2.5 FWHM (in one frame's positions, so
that the rule holds when the field turns); more than 2.5 mag brighter or
fainter than the target; a known variable (VSX veto); and, iteratively, a relative scatter against
the ensemble of the other candidates above ``variability_sigma`` times the median scatter
(against the median of the others, rejecting the worst star each round).

The survivors are scored from 0 to 1 as the product of four terms: brightness similarity
``exp(-|dm|)``, colour similarity ``exp(-|dc| / 0.3)`` (1 when colours are unknown), isolation
``min(1, d / 5 FWHM)`` and stability ``sigma_min / sigma``; the best ``max_comparisons`` are kept.
Their weights follow Broeg, Fernandez & Neuhauser (2005): ``w_i = 1 / sigma_i^2`` where
``sigma_i`` is the scatter of star ``i`` against the weighted ensemble of the others, iterated
to convergence.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from nightpipe.errors import TimeseriesError
from nightpipe.frames.flags import BAD_PIXEL_FLAGS, PixelFlag

log = logging.getLogger(__name__)
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

SATURATION_FLAGS = int(PixelFlag.SATURATED | PixelFlag.NONLINEAR)
BAD_FLAGS = int(BAD_PIXEL_FLAGS | PixelFlag.NO_DATA | PixelFlag.EDGE | PixelFlag.BLENDED)


@dataclass(frozen=True)
class Candidate:
    """One candidate comparison star: its score, weight and why it was rejected (if it was)."""

    star: int
    score: float
    weight: float
    used: bool
    reasons: tuple[str, ...]
    components: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the user."""
        parts = ", ".join(f"{k} {v:.3g}" for k, v in self.components.items())
        state = "used" if self.used else "rejected: " + "; ".join(self.reasons) if self.reasons else "spare"
        factor = self.components.get("seeing_factor", 1.0)
        if self.used and factor < 1.0:
            r, t = self.components.get("seeing_r", 0.0), self.components.get("seeing_t", 0.0)
            state += f", weight x {factor:.2f} because its flux follows the seeing (r {r:+.2f}, t {t:+.1f})"
        return f"star {self.star}: score {self.score:.3f}, weight {self.weight:.3g} ({parts}) -> {state}"


@dataclass(frozen=True, eq=False)
class ComparisonChoice:
    """The comparison stars chosen for one target, with the evidence."""

    stars: IntArray
    weights: FloatArray
    candidates: tuple[Candidate, ...]
    leave_one_out: FloatArray
    manual: bool

    def report(self) -> list[str]:
        """Lines describing every candidate, used ones first."""
        ranked = sorted(self.candidates, key=lambda c: (not c.used, -c.score))
        return [c.describe() for c in ranked]


def robust_std(values: FloatArray, axis: int | None = None) -> FloatArray:
    """1.4826 x median absolute deviation, ignoring NaN."""
    med = np.nanmedian(values, axis=axis, keepdims=True)
    return np.asarray(1.4826 * np.nanmedian(np.abs(values - med), axis=axis), dtype=np.float64)


def ensemble_ratios(flux: FloatArray, weights: FloatArray) -> FloatArray:
    """Each star's flux over the weighted ensemble of the others, normalised to median 1 (F x C).

    ``flux`` is F x C (one column per comparison), each column first normalised by its median.
    """
    norm = flux / np.nanmedian(flux, axis=0)
    filled = np.nan_to_num(norm, nan=0.0)
    present = np.isfinite(norm).astype(np.float64)
    wsum = (filled * weights).sum(axis=1, keepdims=True)
    wtot = (present * weights).sum(axis=1, keepdims=True)
    others = (wsum - filled * weights) / np.where(
        wtot - present * weights > 0, wtot - present * weights, np.nan
    )
    ratio = norm / others
    return np.asarray(ratio / np.nanmedian(ratio, axis=0), dtype=np.float64)


def median_ensemble_scatter(flux: FloatArray) -> FloatArray:
    """Scatter of each star (F x C) against the median of the others (robust to one variable star)."""
    norm = flux / np.nanmedian(flux, axis=0)
    out = np.empty(flux.shape[1])
    for c in range(flux.shape[1]):
        others = np.nanmedian(np.delete(norm, c, axis=1), axis=1)
        ratio = norm[:, c] / others
        out[c] = float(np.nanstd(ratio / np.nanmedian(ratio)))
    return out


def broeg_weights(
    flux: FloatArray, *, iterations: int = 20, tol: float = 1e-4
) -> tuple[FloatArray, FloatArray]:
    """Broeg et al. (2005) weights ``1/sigma_i^2`` of comparison stars (F x C fluxes in).

    Returns ``(weights normalised to sum 1, sigma of each star against the others)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> f = 1000 * (1 + rng.normal(0, [0.001, 0.001, 0.01], (200, 3)))
    >>> w, s = broeg_weights(f)
    >>> bool(w[2] < w[0] / 10)
    True
    """
    n = flux.shape[1]
    if n < 2:
        return np.ones(n), np.zeros(n)
    weights = np.full(n, 1.0 / n)
    sigma = np.ones(n)
    for _ in range(iterations):
        sigma = np.nanstd(ensemble_ratios(flux, weights), axis=0)
        sigma = np.where(sigma > 0, sigma, np.nanmin(sigma[sigma > 0]) if np.any(sigma > 0) else 1.0)
        new = 1.0 / sigma**2
        new /= new.sum()
        done = np.max(np.abs(new - weights)) < tol
        weights = new
        if done:
            break
    return weights, sigma


def _fraction(mask: NDArray[np.bool_]) -> FloatArray:
    return np.asarray(mask.mean(axis=0), dtype=np.float64)


def choose_comparisons(
    flux: FloatArray,
    target: int,
    *,
    flags: NDArray[np.integer] | None = None,
    x: FloatArray | None = None,
    y: FloatArray | None = None,
    shape: tuple[int, int] | None = None,
    positions: FloatArray | None = None,
    fwhm: float = 3.0,
    colour: FloatArray | None = None,
    vetoed: NDArray[np.bool_] | None = None,
    veto_labels: Mapping[int, str] | None = None,
    manual: Sequence[int] = (),
    max_comparisons: int = 10,
    edge_margin: float = 10.0,
    min_presence: float = 0.95,
    variability_sigma: float = 3.0,
    seeing: FloatArray | None = None,
) -> ComparisonChoice:
    """Choose, score and weight comparison stars for ``target`` (rules in the module doc).

    Parameters
    ----------
    flux
        F x S fluxes of every matched star (one aperture), NaN where missing.
    target
        Column of the target.
    flags, x, y
        F x S source flags and pixel positions (optional; the related rules are skipped without).
    shape
        Image shape (ny, nx) for the edge rule.
    positions
        S x 2 positions of the stars in one frame (the reference frame) for the neighbour rule:
        distances there hold in every frame however the field turns. Default: the median of
        ``x``, ``y`` over the frames, which holds only for a field that drifts without turning.
    fwhm
        Typical FWHM in pixels (isolation rule).
    colour, vetoed, veto_labels
        Per-star catalogue colour (NaN unknown), a known-variable veto and why each vetoed star
        is known to vary (``{star: 'VSX EY UMa (RRAB)'}``; default 'VSX').
    manual
        Star columns to use instead of the automatic choice (still weighted and reported).
    seeing
        The frames' FWHM: a comparison whose flux relative to the others follows it is
        down-weighted (:mod:`nightpipe.timeseries.seeing_weights`).

    Raises
    ------
    TimeseriesError
        When no comparison star survives; the message lists the main reasons.
    """
    F, S = flux.shape
    target_flux = float(np.nanmedian(flux[:, target]))
    dm = -2.5 * np.log10(np.clip(np.nanmedian(flux, axis=0), 1e-30, None) / max(target_flux, 1e-30))
    nearest = _nearest_neighbour(positions, x, y, S)
    reasons = _rule_reasons(
        flux, target, dm, nearest, flags, x, y, shape, fwhm, vetoed, edge_margin, min_presence
    )
    for star, label in (veto_labels or {}).items():
        if star in reasons:
            reasons[star] = [
                f"known variable ({label})" if w == "known variable (VSX)" else w for w in reasons[star]
            ]
    survivors = [s for s, why in reasons.items() if not why]
    sigma = _reject_variables(flux, survivors, reasons, variability_sigma)
    finite_sig = [sigma[s] for s in survivors if np.isfinite(sigma[s]) and sigma[s] > 0]
    sig_min = min(finite_sig) if finite_sig else 1.0
    parts = {s: _score_parts(s, target, dm, nearest, sigma, sig_min, fwhm, colour) for s in reasons}
    score = {s: float(np.prod(list(p.values()))) for s, p in parts.items()}

    is_manual = bool(manual)
    if is_manual:
        chosen = [int(s) for s in manual if s != target]
        for s in chosen:
            if s not in reasons:
                raise TimeseriesError(f"manual comparison star {s} is not a matched star")
            if reasons[s]:
                log.warning("manual comparison star %d kept despite: %s", s, "; ".join(reasons[s]))
    else:
        chosen = sorted(survivors, key=lambda s: -score[s])[:max_comparisons]
    if not chosen:
        common = sorted({r.split(" ")[0] for why in reasons.values() for r in why})
        raise TimeseriesError(
            f"no usable comparison star among {len(reasons)} candidates (reasons: {', '.join(common)})",
            hint="list comparison stars by hand in timeseries.targets[].comparisons",
        )
    comp_flux = _fill(flux[:, chosen])
    weights, comp_sigma = broeg_weights(comp_flux) if len(chosen) > 1 else (np.ones(1), np.zeros(1))
    loo = ensemble_ratios(comp_flux, weights) if len(chosen) > 1 else np.ones((F, 1))
    seeing_parts: dict[int, dict[str, float]] = {}
    if seeing is not None and len(chosen) > 2:
        from nightpipe.timeseries.seeing_weights import seeing_factors

        factor, r_see, t_see = seeing_factors(loo, np.asarray(seeing, dtype=np.float64))
        if np.any(factor < 1):
            weights = weights * factor / np.sum(weights * factor)
            loo = ensemble_ratios(comp_flux, weights)
        seeing_parts = {
            s: {"seeing_r": float(r_see[i]), "seeing_t": float(t_see[i]), "seeing_factor": float(factor[i])}
            for i, s in enumerate(chosen)
        }
    candidates = []
    for s, why in reasons.items():
        used = s in chosen
        weight = float(weights[chosen.index(s)]) if used else 0.0
        comp = dict(parts[s])
        comp["dmag"] = float(dm[s])
        comp["scatter"] = float(comp_sigma[chosen.index(s)]) if used else float(sigma[s])
        comp.update(seeing_parts.get(s, {}))
        candidates.append(Candidate(s, score[s], weight, used, tuple(why), comp))
    log.info(
        "%d comparison stars %s (of %d candidates); weights %s",
        len(chosen),
        "given" if is_manual else "chosen",
        len(reasons),
        np.round(weights, 3).tolist(),
    )
    return ComparisonChoice(np.asarray(chosen, dtype=np.int64), weights, tuple(candidates), loo, is_manual)


def _nearest_neighbour(
    positions: FloatArray | None, x: FloatArray | None, y: FloatArray | None, n_stars: int
) -> FloatArray:
    """Each star's distance (px) to its nearest matched neighbour (inf without positions)."""
    nearest = np.full(n_stars, np.inf)
    if positions is not None:
        pos = np.asarray(positions, dtype=np.float64)
    elif x is not None and y is not None:
        pos = np.column_stack([np.nanmedian(x, axis=0), np.nanmedian(y, axis=0)])
    else:
        return nearest
    dist = np.hypot(*(pos[:, None, :] - pos[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(dist, np.inf)
    return np.asarray(np.nan_to_num(dist, nan=np.inf).min(axis=1))


def _edge_distance(x: FloatArray, y: FloatArray, s: int, shape: tuple[int, int]) -> float:
    """How close star ``s`` comes to the frame's border over the night (-1 when never placed)."""
    if not np.any(np.isfinite(x[:, s])):
        return -1.0
    return float(
        min(
            np.nanmin(x[:, s]),
            np.nanmin(y[:, s]),
            shape[1] - 1 - np.nanmax(x[:, s]),
            shape[0] - 1 - np.nanmax(y[:, s]),
        )
    )


def _rule_reasons(
    flux: FloatArray,
    target: int,
    dm: FloatArray,
    nearest: FloatArray,
    flags: NDArray[np.integer] | None,
    x: FloatArray | None,
    y: FloatArray | None,
    shape: tuple[int, int] | None,
    fwhm: float,
    vetoed: NDArray[np.bool_] | None,
    edge_margin: float,
    min_presence: float,
) -> dict[int, list[str]]:
    """For every star but the target, the rules it breaks (empty: a candidate)."""
    reasons: dict[int, list[str]] = {s: [] for s in range(flux.shape[1]) if s != target}
    presence = _fraction(np.isfinite(flux) & (flux > 0))
    sat = _fraction((flags & SATURATION_FLAGS) > 0) if flags is not None else None
    bad = _fraction((flags & BAD_FLAGS) > 0) if flags is not None else None
    for s, why in reasons.items():
        if presence[s] < min_presence:
            why.append(f"found in only {100 * presence[s]:.0f} % of frames")
        if sat is not None and sat[s] > 0.02:
            why.append(f"saturated or non-linear in {100 * sat[s]:.0f} % of frames")
        if bad is not None and bad[s] > 0.10:
            why.append(f"bad pixels, edge or blend in {100 * bad[s]:.0f} % of frames")
        if x is not None and y is not None and shape is not None:
            edge = _edge_distance(x, y, s, shape)
            if edge < edge_margin:
                why.append(f"within {edge:.0f} px of the edge")
        if nearest[s] < 2.5 * fwhm:
            why.append(f"neighbour at {nearest[s]:.1f} px (< 2.5 FWHM)")
        if not np.isfinite(dm[s]) or abs(dm[s]) > 2.5:
            why.append(f"{dm[s]:+.1f} mag from the target")
        if vetoed is not None and vetoed[s]:
            why.append("known variable (VSX)")
    return reasons


def _reject_variables(
    flux: FloatArray, survivors: list[int], reasons: dict[int, list[str]], variability_sigma: float
) -> dict[int, float]:
    """Drop, one at a time, the star scattering most against the ensemble of the others while it
    exceeds ``variability_sigma`` x the median scatter (``survivors`` and ``reasons`` are updated);
    returns each candidate's last scatter (NaN when never measured)."""
    sigma = {s: np.nan for s in reasons}
    while len(survivors) >= 3:
        scat = median_ensemble_scatter(_fill(flux[:, survivors]))
        for s, v in zip(survivors, scat, strict=True):
            sigma[s] = float(v)
        limit = variability_sigma * float(np.median(scat))
        worst = int(np.argmax(scat))
        if scat[worst] <= limit:
            break
        reasons[survivors[worst]].append(
            f"variable or noisy: scatter {100 * scat[worst]:.2f} % "
            f"vs ensemble median {100 * np.median(scat):.2f} %"
        )
        survivors.pop(worst)
    return sigma


def _score_parts(
    s: int,
    target: int,
    dm: FloatArray,
    nearest: FloatArray,
    sigma: dict[int, float],
    sig_min: float,
    fwhm: float,
    colour: FloatArray | None,
) -> dict[str, float]:
    """The factors of a candidate's score: brightness, colour, isolation and stability."""
    parts = {
        "brightness": float(np.exp(-abs(dm[s]))) if np.isfinite(dm[s]) else 0.0,
        "colour": 1.0,
        "isolation": float(min(1.0, nearest[s] / (5 * fwhm))),
        "stability": float(sig_min / sigma[s]) if np.isfinite(sigma[s]) and sigma[s] > 0 else 1.0,
    }
    if colour is not None and np.isfinite(colour[s]) and np.isfinite(colour[target]):
        parts["colour"] = float(np.exp(-abs(colour[s] - colour[target]) / 0.3))
    return parts


def _fill(flux: FloatArray) -> FloatArray:
    """Fluxes with non-positive values set to NaN (missing)."""
    return np.where(np.isfinite(flux) & (flux > 0), flux, np.nan)
