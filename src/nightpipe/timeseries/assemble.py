"""From the per-frame source tables of a night to the differential light curve of one target.

Steps: order frames by time, match stars across frames (:mod:`crossmatch`), find the target by
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
from nightpipe.timeseries.crossmatch import StarMatrix, crossmatch, pixel_scale_arcsec
from nightpipe.timeseries.differential import (
    ApertureChoice,
    choose_aperture,
    oot_scatter,
    out_of_transit,
    relative_flux,
    running_median_outliers,
)
from nightpipe.timeseries.lightcurve import LightCurve
from nightpipe.timeseries.transit import TransitPriors

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
    """Predicted mid-time and full duration (days) from the priors, or (None, None)."""
    if priors is None:
        return None, None
    pred = priors.predicted_tc(float(np.median(time)))
    if pred is None:
        return None, None
    a = priors.a_rs or 8.0
    rp = priors.rp_rs or 0.12
    b = a * math.cos(math.radians(priors.inc or 89.0))
    arg = math.sqrt(max((1 + rp) ** 2 - b**2, 0.0)) / a
    return pred[0], priors.period / math.pi * math.asin(min(arg, 1.0))


def _meta_vector(tables: Sequence[Table], key: str) -> FloatArray:
    return np.array(
        [float(t.meta.get(key, np.nan)) if t.meta.get(key) is not None else np.nan for t in tables]
    )


MIN_COMPARISONS = 3


def meridian_flip_index(orientation: NDArray[np.int8]) -> int | None:
    """Index of the first frame whose field orientation differs from the first known one."""
    known = np.flatnonzero(orientation != 0)
    if known.size == 0:
        return None
    changed = known[orientation[known] != orientation[known[0]]]
    return int(changed[0]) if changed.size else None


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
    scale = pixel_scale_arcsec(tables[matrix.ref_frame]) or 2.0
    star = matrix.find(target.ra, target.dec, radius_arcsec=max(3.0 * scale, 5.0))
    if star is None:
        raise TimeseriesError(
            f"target {target.name} (ra {target.ra:.5f}, dec {target.dec:.5f}) not found among the "
            "matched stars of the reference frame",
            hint="check the target coordinates and that the frames are plate-solved",
        )
    flux = matrix.gather(tables, "aper_flux")
    err = matrix.gather(tables, "aper_flux_err")
    if flux.ndim == 2:
        flux, err = flux[..., None], err[..., None]
    flags = (
        np.nan_to_num(matrix.gather(tables, "flags"), nan=0).astype(np.int64)
        if "flags" in tables[matrix.ref_frame].colnames
        else None
    )
    x = matrix.gather(tables, "x")
    y = matrix.gather(tables, "y")
    radii = tuple(float(r) for r in tables[matrix.ref_frame].meta.get("aper_radii_px", range(flux.shape[2])))
    mid = flux.shape[2] // 2
    ref_meta = tables[matrix.ref_frame].meta
    shape = (int(ref_meta["naxis2"]), int(ref_meta["naxis1"])) if "naxis1" in ref_meta else None
    fwhm = float(np.nanmedian(_meta_vector(tables, "fwhm_px")))
    manual = []
    for ra, dec in target.comparisons:
        found = matrix.find(ra, dec, radius_arcsec=max(3.0 * scale, 5.0))
        if found is None:
            raise TimeseriesError(f"manual comparison star at ra {ra:.5f}, dec {dec:.5f} not found")
        manual.append(found)
    vetoed = np.zeros(matrix.n_stars, dtype=bool)
    for ra, dec in target.vsx:
        found = matrix.find(ra, dec, radius_arcsec=max(2.0 * scale, 5.0))
        if found is not None:
            vetoed[found] = True

    def choose(n: int) -> ComparisonChoice:
        return choose_comparisons(
            flux[:, :, mid],
            star,
            flags=flags,
            x=x,
            y=y,
            shape=shape,
            fwhm=fwhm if math.isfinite(fwhm) else 3.0,
            vetoed=vetoed,
            manual=manual,
            max_comparisons=n,
            edge_margin=edge_margin,
        )

    choice = choose(max_comparisons)
    time_all = _meta_vector(tables, "bjd_tdb")
    tc, duration = transit_window(priors, time_all[np.isfinite(time_all)])
    oot_all = out_of_transit(time_all, tc, duration)
    count_scatter: dict[int, float] = {}
    if not manual and choice.stars.size > MIN_COMPARISONS:
        count_scatter = comparison_count_scatter(
            flux[:, :, mid], err[:, :, mid], star, choice, time_all, oot_all
        )
        best = min(count_scatter, key=lambda k: count_scatter[k])
        if best < choice.stars.size:
            choice = choose(best)
    comps = choice.stars
    rel, rel_err = relative_flux(
        flux[:, star, :], err[:, star, :], flux[:, comps, :], err[:, comps, :], choice.weights
    )

    time = _meta_vector(tables, "bjd_tdb")
    dropped: list[tuple[str, str]] = []
    good = np.isfinite(time) & np.all(np.isfinite(rel), axis=1) & np.all(rel > 0, axis=1)
    for i in np.flatnonzero(~good):
        why = "no BJD_TDB" if not np.isfinite(time[i]) else "target or a comparison star missing"
        dropped.append((frames[i], why))
    tc, duration = transit_window(priors, time[good])
    oot = out_of_transit(time, tc, duration)
    ap = choose_aperture(time[good], rel[good], radii, oot[good])
    outlier = np.zeros(len(tables), dtype=bool)
    outlier[good] = running_median_outliers(
        rel[good, ap.index] / np.nanmedian(rel[good, ap.index]), sigma=outlier_sigma
    )
    for i in np.flatnonzero(outlier):
        dropped.append((frames[i], f"outlier: > {outlier_sigma:g} x MAD from the median of its 6 neighbours"))
    keep = good & ~outlier
    if keep.sum() < 3:
        raise TimeseriesError(f"only {int(keep.sum())} usable frames for {target.name}")
    norm = np.nanmedian(rel[keep & oot], axis=0) if (keep & oot).any() else np.nanmedian(rel[keep], axis=0)
    rel_n, err_n = rel / norm, rel_err / norm
    aux = {
        "airmass": _meta_vector(tables, "airmass"),
        "fwhm": _meta_vector(tables, "fwhm_px"),
        "sky": matrix.gather(tables, "bkg")[:, star]
        if "bkg" in tables[matrix.ref_frame].colnames
        else _meta_vector(tables, "sky"),
        "x": x[:, star],
        "y": y[:, star],
        "exptime": _meta_vector(tables, "exptime"),
    }
    aux = {k: v for k, v in aux.items() if np.all(np.isfinite(v[keep]))}
    time_sources = {str(t.meta.get("time_source")) for t in tables if t.meta.get("time_source")}
    flip_index = meridian_flip_index(matrix.orientation(tables)[keep])
    lc = LightCurve(
        time=time,
        flux=rel_n[:, ap.index],
        flux_err=err_n[:, ap.index],
        jd_utc=_meta_vector(tables, "jd_utc"),
        aperture_flux=rel_n,
        aperture_flux_err=err_n,
        comparison_flux=flux[:, comps, ap.index],
        target_flux=flux[:, star, ap.index],
        aux=aux,
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
            "aperture_rule": ap.rule,
            "comparisons": [int(c) for c in comps],
            "comparison_weights": [float(w) for w in choice.weights],
            "comparisons_manual": choice.manual,
            "comparison_count_scatter": {str(k): v for k, v in count_scatter.items()},
            "outlier_rule": f"|flux - median of the 6 neighbours| > {outlier_sigma:g} x 1.4826 MAD",
            "n_outliers": int(outlier.sum()),
            "frames": frames,
            "naxis2": shape[0] if shape else None,
            "flip_index": flip_index,
        },
    ).select(keep)
    lc = lc.with_meta(frames=[f for f, k in zip(frames, keep, strict=True) if k])
    choice = replace(choice, leave_one_out=choice.leave_one_out[keep])
    return Assembled(lc, matrix, star, choice, ap, dropped)
