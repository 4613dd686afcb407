"""From the per-frame source tables of a night to the differential light curve of one target.

Steps: order frames by time, match stars across frames (:mod:`star_identity`), find the target by
its coordinates through the frames' WCS, choose and weight the comparison stars
(:mod:`comparisons`), compute the relative flux for every aperture (:mod:`differential`), keep the
aperture with the lowest out-of-transit scatter, reject outliers by the running-median rule, and
collect the time, airmass, FWHM, sky and centroid vectors. The number of comparison stars is the
one (among the best-ranked 3, 5, 8, 10, 15, 20, 30... up to ``max_comparisons``) that gives the
target the lowest out-of-transit scatter, as an observer would judge it in AstroImageJ.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from astropy.table import Table
from numpy.typing import NDArray

from nightpipe.errors import TimeseriesError
from nightpipe.timeseries.comparisons import ComparisonChoice, choose_comparisons
from nightpipe.timeseries.differential import (
    ApertureChoice,
    choose_aperture,
    curve_of_growth,
    oot_scatter,
    out_of_transit,
    relative_flux,
)
from nightpipe.timeseries.flips import find_flip
from nightpipe.timeseries.lightcurve import LightCurve
from nightpipe.timeseries.star_identity import StarMatrix, crossmatch, pixel_scale_arcsec
from nightpipe.timeseries.transit import TransitPriors
from nightpipe.timeseries.usable import usable_frames

log = logging.getLogger(__name__)
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class TargetSpec:
    """Where the target is and which comparisons to use (empty: automatic)."""

    name: str
    ra: float
    dec: float
    comparisons: tuple[tuple[float, float], ...] = ()
    vsx: tuple[tuple[float, float], ...] = ()
    vsx_labels: tuple[str, ...] = ()  # why each vsx star is variable ('VSX EY UMa (RRAB)'); default 'VSX'
    pixel: tuple[float, float] | None = None  # (x, y) in the first frame: a night without WCS


@dataclass(frozen=True, eq=False)
class Assembled:
    """A built light curve and how it was built."""

    lc: LightCurve
    matrix: StarMatrix
    target_star: int
    comparisons: ComparisonChoice
    aperture: ApertureChoice
    dropped: list[tuple[str, str]] = field(default_factory=list)


def transit_window(priors: TransitPriors | None, time: FloatArray) -> tuple[float | None, float | None]:
    """Predicted mid-time and the full width (days) of the window the transit may fall in.

    The points outside it choose the aperture and the number of comparison stars, so it must hold
    the whole transit, or the choice prefers the aperture in which the transit is shallowest.
    Without a/Rs it is that of a star of 0.4 solar densities on a central transit
    (``a/Rs = 4.2 P^(2/3) x 0.4^(1/3)``, a longer transit than most), and it is widened by
    twice the prediction's error on each side.
    """
    if priors is None:
        return None, None
    pred = priors.predicted_tc(float(np.median(time)))
    if pred is None:
        return None, None
    if priors.a_rs is not None:
        a, inc = priors.a_rs, priors.inc or 89.0
    else:
        a, inc = LOW_DENSITY_A_RS * priors.period ** (2.0 / 3.0), 90.0
    rp = priors.rp_rs or 0.12
    b = a * math.cos(math.radians(inc))
    arg = math.sqrt(max((1 + rp) ** 2 - b**2, 0.0)) / a
    duration = priors.period / math.pi * math.asin(min(arg, 1.0))
    return pred[0], duration + 4.0 * min(pred[1], 0.05)


#: a/Rs per day^(2/3) of the period for a star of 0.4 solar densities (Kepler's third law).
LOW_DENSITY_A_RS = 4.2 * 0.4 ** (1.0 / 3.0)


def _meta_vector(tables: Sequence[Table], key: str) -> FloatArray:
    return np.array(
        [float(t.meta.get(key, np.nan)) if t.meta.get(key) is not None else np.nan for t in tables]
    )


MIN_COMPARISONS = 3


def _fwhm_factor(meta: Any, index: int) -> float | None:
    """The aperture as a multiple of each frame's FWHM, when the photometry step scaled them so."""
    settings = meta.get("photometry_settings") or {}
    factors = settings.get("aperture_fwhm_factors") or ()
    if settings.get("aperture_radii_px") or index >= len(factors):
        return None
    return float(factors[index])


def comparison_count_scatter(
    flux: FloatArray,
    err: FloatArray,
    star: int,
    choice: ComparisonChoice,
    time: FloatArray,
    oot: NDArray[np.bool_],
) -> dict[int, float]:
    """Out-of-transit scatter of the target's relative flux using the best K ranked comparisons.

    K runs over 3, 5, 8, 10, 15, 20, 30... up to the number chosen; each ensemble is weighted
    by its own Broeg weights. The caller keeps the K with the lowest scatter.
    """
    from nightpipe.timeseries.comparisons import broeg_weights

    out: dict[int, float] = {}
    ranked = choice.stars
    steps = [k for k in (3, 5, 8, 10, 15, 20, 30, 40, 50, 75, 100) if k < ranked.size] + [int(ranked.size)]
    for k in steps:
        comps = ranked[:k]
        cflux = np.where(np.isfinite(flux[:, comps]) & (flux[:, comps] > 0), flux[:, comps], np.nan)
        weights, _ = broeg_weights(cflux)
        rel, _ = relative_flux(flux[:, star], err[:, star], flux[:, comps], err[:, comps], weights)
        ok = np.isfinite(rel) & np.isfinite(time)
        if ok.sum() < 10:
            continue
        out[k] = oot_scatter(
            time[ok], rel[ok] / np.nanmedian(rel[ok & oot] if (ok & oot).any() else rel[ok]), oot[ok]
        )
    log.info("comparison count vs target scatter: %s", {k: f"{100 * v:.3f} %" for k, v in out.items()})
    return out


@dataclass(frozen=True)
class _Located:
    """The target, the manual comparison stars and the vetoed (variable) stars in the star matrix."""

    star: int
    manual: list[int]
    vetoed: NDArray[np.bool_]
    veto_labels: dict[int, str]


def _find_pixel(matrix: StarMatrix, pixel: tuple[float, float], radius_px: float = 5.0) -> int | None:
    """The reference star at ``pixel`` of the first frame (mapped onto the reference frame), or None."""
    transform = matrix.transforms[0]
    xy = np.asarray([pixel[0], pixel[1], 1.0])
    x, y = (transform @ xy) if np.all(np.isfinite(transform)) else xy[:2]
    dist = np.hypot(matrix.ref_x - x, matrix.ref_y - y)
    if not np.any(np.isfinite(dist)):
        return None
    best = int(np.nanargmin(dist))
    return best if dist[best] <= radius_px else None


def _locate(matrix: StarMatrix, target: TargetSpec, scale: float) -> _Located:
    star = matrix.find(target.ra, target.dec, radius_arcsec=max(3.0 * scale, 5.0))
    if star is None and target.pixel is not None:
        star = _find_pixel(matrix, target.pixel)
    if star is None:
        raise TimeseriesError(
            f"target {target.name} (ra {target.ra:.5f}, dec {target.dec:.5f}) not found among the "
            "matched stars of the reference frame",
            hint="check the target coordinates and that the frames are plate-solved",
        )
    manual = []
    for ra, dec in target.comparisons:
        found = matrix.find(ra, dec, radius_arcsec=max(3.0 * scale, 5.0))
        if found is None:
            raise TimeseriesError(f"manual comparison star at ra {ra:.5f}, dec {dec:.5f} not found")
        manual.append(found)
    vetoed = np.zeros(matrix.n_stars, dtype=bool)
    labels: dict[int, str] = {}
    for k, (ra, dec) in enumerate(target.vsx):
        found = matrix.find(ra, dec, radius_arcsec=max(2.0 * scale, 5.0))
        if found is not None and found != star:
            vetoed[found] = True
            labels.setdefault(found, target.vsx_labels[k] if k < len(target.vsx_labels) else "VSX")
    return _Located(star, manual, vetoed, labels)


@dataclass(frozen=True)
class _Photometry:
    """Every matched star's measurements across the night (frames x stars [x apertures])."""

    flux: FloatArray
    err: FloatArray
    flags: NDArray[np.int64] | None
    x: FloatArray
    y: FloatArray
    radii: tuple[float, ...]
    shape: tuple[int, int] | None
    fwhm: float
    ref_xy: FloatArray  # S x 2, the stars in the reference frame
    fwhm_series: FloatArray  # each frame's FWHM, px


def _gather(tables: Sequence[Table], matrix: StarMatrix) -> _Photometry:
    flux = matrix.gather(tables, "aper_flux")
    err = matrix.gather(tables, "aper_flux_err")
    if flux.ndim == 2:
        flux, err = flux[..., None], err[..., None]
    ref = tables[matrix.ref_frame]
    flags = (
        np.nan_to_num(matrix.gather(tables, "flags"), nan=0).astype(np.int64)
        if "flags" in ref.colnames
        else None
    )
    radii = tuple(float(r) for r in ref.meta.get("aper_radii_px", range(flux.shape[2])))
    shape = (int(ref.meta["naxis2"]), int(ref.meta["naxis1"])) if "naxis1" in ref.meta else None
    fwhm_series = _meta_vector(tables, "fwhm_px")
    fwhm = float(np.nanmedian(fwhm_series))
    x, y = matrix.gather(tables, "x"), matrix.gather(tables, "y")
    ref_xy = np.column_stack([matrix.ref_x, matrix.ref_y])
    return _Photometry(flux, err, flags, x, y, radii, shape, fwhm, ref_xy, fwhm_series)


def _comparisons(
    phot: _Photometry,
    where: _Located,
    time: FloatArray,
    priors: TransitPriors | None,
    max_comparisons: int,
    edge_margin: float,
) -> tuple[ComparisonChoice, dict[int, float]]:
    """The comparison ensemble, with the number of stars that gives the least out-of-transit scatter."""
    mid = phot.flux.shape[2] // 2
    seeing = phot.fwhm_series if np.isfinite(phot.fwhm_series).sum() >= 8 else None

    def choose(n: int) -> ComparisonChoice:
        return choose_comparisons(
            phot.flux[:, :, mid],
            where.star,
            flags=phot.flags,
            x=phot.x,
            y=phot.y,
            shape=phot.shape,
            positions=phot.ref_xy,
            fwhm=phot.fwhm if math.isfinite(phot.fwhm) else 3.0,
            vetoed=where.vetoed,
            veto_labels=where.veto_labels,
            manual=where.manual,
            max_comparisons=n,
            edge_margin=edge_margin,
            seeing=seeing,
        )

    choice = choose(max_comparisons)
    tc, duration = transit_window(priors, time[np.isfinite(time)])
    oot = out_of_transit(time, tc, duration)
    count_scatter: dict[int, float] = {}
    if not where.manual and choice.stars.size > MIN_COMPARISONS:
        count_scatter = comparison_count_scatter(
            phot.flux[:, :, mid], phot.err[:, :, mid], where.star, choice, time, oot
        )
        # a night of fewer than 10 usable frames has no scatter to compare: keep every comparison
        best = min(count_scatter, key=lambda k: count_scatter[k]) if count_scatter else choice.stars.size
        if best < choice.stars.size:
            choice = choose(best)
    return choice, count_scatter


def _aux_vectors(
    tables: Sequence[Table], matrix: StarMatrix, phot: _Photometry, star: int, keep: NDArray[np.bool_]
) -> dict[str, FloatArray]:
    """Detrending vectors of the target: airmass, FWHM, sky, position, exposure (where all finite)."""
    aux = {
        "airmass": _meta_vector(tables, "airmass"),
        "fwhm": _meta_vector(tables, "fwhm_px"),
        "sky": matrix.gather(tables, "bkg")[:, star]
        if "bkg" in tables[matrix.ref_frame].colnames
        else _meta_vector(tables, "sky"),
        "x": phot.x[:, star],
        "y": phot.y[:, star],
        "exptime": _meta_vector(tables, "exptime"),
    }
    return {k: v for k, v in aux.items() if np.all(np.isfinite(v[keep]))}


def _flip_meta(tables: Sequence[Table], matrix: StarMatrix, keep: NDArray[np.bool_]) -> dict[str, Any]:
    """The meridian flip for the light curve's meta: ``flip_index`` (in the kept frames; None
    without a flip or without kept frames on both sides), ``flip_turn_deg``, ``flip_source``."""
    sides = [str(t.meta["pier_side"]) if t.meta.get("pier_side") else None for t in tables]
    flip = find_flip(matrix.rotation_deg(), sides)
    index = None if flip is None else int(keep[: flip.index].sum())
    if flip is None or index is None or not 0 < index < int(keep.sum()):
        return {"flip_index": None}
    log.info(
        "meridian flip before frame %s (from %s): the field turned by %.1f degrees",
        tables[flip.index].meta.get("frame", flip.index),
        flip.source,
        flip.turn_deg,
    )
    return {"flip_index": index, "flip_turn_deg": flip.turn_deg, "flip_source": flip.source}


def build_lightcurve(
    tables: Sequence[Table],
    target: TargetSpec,
    *,
    priors: TransitPriors | None = None,
    max_comparisons: int = 50,
    outlier_sigma: float = 4.0,
    edge_margin: float = 10.0,
) -> Assembled:
    """Build the differential light curve of ``target`` from a night's source tables.

    Raises
    ------
    TimeseriesError
        When the target is not found through the WCS, or no comparison star is usable.
    """
    order = np.argsort(_meta_vector(tables, "bjd_tdb"), kind="stable")
    tables = [tables[i] for i in order]
    frames = [str(t.meta.get("frame", i)) for i, t in enumerate(tables)]
    matrix = crossmatch(tables)
    where = _locate(matrix, target, pixel_scale_arcsec(tables[matrix.ref_frame]) or 2.0)
    star = where.star
    phot = _gather(tables, matrix)
    time = _meta_vector(tables, "bjd_tdb")
    choice, count_scatter = _comparisons(phot, where, time, priors, max_comparisons, edge_margin)
    comps = choice.stars
    flux, err = phot.flux, phot.err
    rel, rel_err = relative_flux(
        flux[:, star, :], err[:, star, :], flux[:, comps, :], err[:, comps, :], choice.weights
    )

    def aperture(good: NDArray[np.bool_]) -> ApertureChoice:
        tc, duration = transit_window(priors, time[good])
        oot_good = out_of_transit(time, tc, duration)[good]
        return choose_aperture(time[good], rel[good], phot.radii, oot_good)

    target_flags = phot.flags[:, star] if phot.flags is not None else None
    good, outlier, ap, dropped = usable_frames(frames, time, rel, aperture, outlier_sigma, target_flags)
    tc, duration = transit_window(priors, time[good])
    oot = out_of_transit(time, tc, duration)
    keep = good & ~outlier
    if keep.sum() < 3:
        raise TimeseriesError(f"only {int(keep.sum())} usable frames for {target.name}")
    norm = np.nanmedian(rel[keep & oot], axis=0) if (keep & oot).any() else np.nanmedian(rel[keep], axis=0)
    rel_n, err_n = rel / norm, rel_err / norm
    ref_meta = tables[matrix.ref_frame].meta
    radii, shape = phot.radii, phot.shape
    time_sources = {str(t.meta.get("time_source")) for t in tables if t.meta.get("time_source")}
    lc = LightCurve(
        time=time,
        flux=rel_n[:, ap.index],
        flux_err=err_n[:, ap.index],
        jd_utc=_meta_vector(tables, "jd_utc"),
        aperture_flux=rel_n,
        aperture_flux_err=err_n,
        comparison_flux=flux[:, comps, ap.index],
        target_flux=flux[:, star, ap.index],
        aux=_aux_vectors(tables, matrix, phot, star, keep),
        meta={
            "target": target.name,
            "ra": target.ra,
            "dec": target.dec,
            "time_scale": "BJD_TDB",
            "time_source": "; ".join(sorted(time_sources)) or "source-table meta bjd_tdb (mid-exposure)",
            "aperture_px": radii[ap.index] if ap.index < len(radii) else None,
            "aperture_fwhm_factor": _fwhm_factor(ref_meta, ap.index),
            "aperture_radii_px": list(radii),
            "aperture_scatter": list(ap.scatter),
            "aperture_growth": curve_of_growth(flux[:, star, :], keep & oot),
            "aperture_rule": ap.rule,
            "comparisons": [int(c) for c in comps],
            "comparison_weights": [float(w) for w in choice.weights],
            "comparisons_manual": choice.manual,
            "comparison_count_scatter": {str(k): v for k, v in count_scatter.items()},
            "outlier_rule": f"|flux - median of the 6 neighbours| > {outlier_sigma:g} x 1.4826 MAD",
            "n_outliers": int(outlier.sum()),
            "frames": frames,
            "reference_frame": frames[matrix.ref_frame],
            "annulus_px": ref_meta.get("annulus_px"),
            "naxis2": shape[0] if shape else None,
            **_flip_meta(tables, matrix, keep),
        },
    ).select(keep)
    lc = lc.with_meta(frames=[f for f, k in zip(frames, keep, strict=True) if k])
    choice = replace(choice, leave_one_out=choice.leave_one_out[keep])
    return Assembled(lc, matrix, star, choice, ap, dropped)
