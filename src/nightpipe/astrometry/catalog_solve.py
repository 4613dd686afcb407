"""A WCS from the detected stars matched to the catalogue stars of the hinted field.

For a field smaller than the installed index files' quads (or one ``solve-field`` could not
solve), each catalogue source is tried in turn: Tycho-2 read from the index files' star tables,
then Gaia DR3 from the identify step's cached answers when one covers the field. The stars around
the hinted position are matched by triangles (:func:`~nightpipe.astrometry.catalog_match.triangle_match`),
the pairs give a first WCS, and that WCS is refined and checked on the same catalogue like any
other solution. When no source solves the frame, the reason says what each one had.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nightpipe.astrometry.catalog_match import nominal_pixels, triangle_match
from nightpipe.astrometry.checks import RefinedWcs, refine_wcs
from nightpipe.astrometry.fitting import fit_wcs
from nightpipe.astrometry.index_catalog import IndexCatalog, RefStars
from nightpipe.astrometry.solver import Hints
from nightpipe.astrometry.sources import StarList
from nightpipe.errors import CatalogError

log = logging.getLogger(__name__)

MAX_REFS = 40  # the brightest catalogue stars of the field that form triangles


@dataclass(frozen=True)
class CatalogueSource:
    """A catalogue the frame's stars can be matched to: its name and a cone search
    ``cone(ra, dec, radius_deg) -> RefStars`` (brightest first; may raise CatalogError)."""

    name: str
    cone: Callable[[float, float, float], RefStars]


def tycho_source(catalog: IndexCatalog) -> CatalogueSource:
    """Tycho-2 (or whatever the index files were built from), from their star tables."""
    return CatalogueSource("the index files' stars", catalog.cone)


@dataclass(frozen=True)
class CatalogueAttempt:
    """What one catalogue gave for one frame."""

    source: str
    n_in_field: int | None  # None: the catalogue could not be read for the field
    solution: RefinedWcs | None
    refs: RefStars | None
    why: str


def _field_radius_deg(shape: tuple[int, int], scale_arcsec: float) -> float:
    return 0.5 * float(np.hypot(*shape)) * scale_arcsec / 3600.0


def _attempt(
    source: CatalogueSource,
    stars: StarList,
    hints: Hints,
    *,
    sip_order: int,
    min_matches: int,
    max_rms_arcsec: float,
) -> CatalogueAttempt:
    assert hints.ra is not None and hints.dec is not None
    assert hints.scale_low is not None and hints.scale_high is not None
    nominal = 0.5 * (hints.scale_low + hints.scale_high)
    half_diag = _field_radius_deg(stars.shape, hints.scale_high)
    # the pointing of a mount is good to a fraction of a small field: look one half-field around it
    radius = half_diag + min(hints.radius_deg, half_diag)
    try:
        refs = source.cone(hints.ra, hints.dec, radius)
    except CatalogError as exc:
        return CatalogueAttempt(source.name, None, None, None, exc.message)
    xy = nominal_pixels(refs, hints.ra, hints.dec, nominal)
    height, width = stars.shape
    on_field = (np.abs(xy[:, 0]) <= width * hints.scale_high / nominal / 2) & (
        np.abs(xy[:, 1]) <= height * hints.scale_high / nominal / 2
    )
    n_field = int(on_field.sum())
    in_field = f"{n_field} star{'' if n_field == 1 else 's'} in the field"
    if len(refs) < min_matches:
        return CatalogueAttempt(source.name, n_field, None, refs, in_field)
    bright = np.arange(min(len(refs), MAX_REFS))
    radius_px = max(4.0, 1.5 * (stars.fwhm_px if np.isfinite(stars.fwhm_px) else 2.0))
    # dst = refs in nominal pixels, src = detected stars: the scale dst/src is actual/nominal
    match = triangle_match(
        stars.xy,
        xy[bright],
        scale_lo=hints.scale_low / nominal,
        scale_hi=hints.scale_high / nominal,
        radius=radius_px,
        min_matches=min(6, min_matches),
    )
    if match is None:
        return CatalogueAttempt(source.name, n_field, None, refs, f"{in_field}, no triangles matched")
    star_i, ref_i = match.src_index, bright[match.dst_index]
    guess = fit_wcs(
        stars.x[star_i], stars.y[star_i], refs.ra[ref_i], refs.dec[ref_i], shape=stars.shape, sip_order=0
    )
    refined = refine_wcs(
        guess, stars, refs, sip_order=sip_order, radius_px=radius_px, min_matches=min_matches
    )
    if refined is None:
        return CatalogueAttempt(
            source.name, n_field, None, refs, f"{in_field}, {len(match)} matched, too few"
        )
    q = refined.quality
    if q.n_matched < min_matches:
        why = f"{in_field}, only {q.n_matched} matched (need {min_matches})"
        return CatalogueAttempt(source.name, n_field, None, refs, why)
    if not q.rms_arcsec <= max_rms_arcsec:
        why = f"{in_field}, residual RMS {q.rms_arcsec:.2f} arcsec"
        return CatalogueAttempt(source.name, n_field, None, refs, why)
    return CatalogueAttempt(source.name, n_field, refined, refs, "")


def solve_by_catalogue(
    stars: StarList,
    hints: Hints,
    sources: tuple[CatalogueSource, ...],
    *,
    sip_order: int,
    min_matches: int,
    max_rms_arcsec: float,
) -> tuple[CatalogueAttempt | None, str]:
    """The first catalogue that gives a checked WCS for the frame, or ``None`` and why not.

    Needs a position and a scale hint; each source's attempt says how many of its stars fall
    in the field and how far the match went.
    """
    if hints.ra is None or hints.dec is None or hints.scale_low is None or hints.scale_high is None:
        missing = "position" if hints.ra is None or hints.dec is None else "pixel scale"
        return None, f"no catalogue match: the header gives no {missing} (set astrometry.pixel_scale)"
    reasons = []
    for source in sources:
        attempt = _attempt(
            source, stars, hints, sip_order=sip_order, min_matches=min_matches, max_rms_arcsec=max_rms_arcsec
        )
        if attempt.solution is not None:
            log.debug("solved by matching %d stars to %s", attempt.solution.quality.n_matched, source.name)
            return attempt, ""
        reasons.append(f"{source.name}: {attempt.why}")
    return None, "no catalogue match (" + "; ".join(reasons) + ")"


def gaia_cache_source(settings: object) -> CatalogueSource:
    """Gaia DR3 from the identify step's cached answers (``paths.cache``), brightest first in G.

    The cone raises :class:`~nightpipe.errors.CatalogError` when no cached answer covers it.
    """
    from nightpipe.config import Settings
    from nightpipe.identify.gaia_reference import identify_gaia_cone

    assert isinstance(settings, Settings)
    cone = identify_gaia_cone(settings)

    def gaia(ra: float, dec: float, radius_deg: float) -> RefStars:
        table = cone(ra, dec, radius_deg, None)
        mag = np.asarray(table["G"], float)
        order = np.argsort(np.where(np.isfinite(mag), mag, np.inf), kind="stable")
        return RefStars(
            np.asarray(table["ra"], float)[order], np.asarray(table["dec"], float)[order], mag[order]
        )

    return CatalogueSource("Gaia DR3 (identify cache)", gaia)


def catalogue_sources(settings: object, catalog: IndexCatalog) -> tuple[CatalogueSource, ...]:
    """The catalogues a small field is matched to, in order: the index files' stars, then Gaia
    from the identify step's cache."""
    return (tycho_source(catalog), gaia_cache_source(settings))


__all__ = [
    "CatalogueAttempt",
    "CatalogueSource",
    "catalogue_sources",
    "gaia_cache_source",
    "solve_by_catalogue",
    "tycho_source",
]
