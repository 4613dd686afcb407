"""Calibrating one frame's source table against a reference catalogue (pure: tables in, tables out)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.table import Table

from nightpipe.calphot.accuracy import catalog_contamination, neighbour_contamination, usable_measurements
from nightpipe.calphot.catalog_match import Match, crossmatch, match_radius_arcsec
from nightpipe.calphot.transforms import Reference, reference_magnitudes
from nightpipe.calphot.zeropoint import ZeroPointFit, fit_zero_point, instrumental_mag
from nightpipe.errors import PhotometryError


@dataclass(frozen=True)
class FrameCalibration:
    """The zero-point fit of one frame, its matches, and the table with calibrated magnitudes."""

    fit: ZeroPointFit
    match: Match
    reference: Reference
    inst_mag: np.ndarray  # per source of the table
    fit_sources: np.ndarray  # table rows that entered the fit (fit.used indexes these)
    fit_refs: np.ndarray  # their catalogue rows
    aperture_index: int
    aperture_px: float
    table: Table


def choose_aperture(table: Table, fwhm_factor: float = 2.5) -> int:
    """The aperture whose radius is nearest ``fwhm_factor`` x the frame FWHM (photometric, not best-SNR)."""
    radii = np.asarray(table.meta.get("aper_radii_px") or [], float)
    if radii.size == 0:
        raise PhotometryError(
            "source table has no 'aper_radii_px' in its metadata",
            hint="re-run the photometry step of this version",
        )
    fwhm = table.meta.get("fwhm_px")
    if fwhm is None or not np.isfinite(fwhm):
        return int(radii.size // 2)
    return int(np.argmin(np.abs(radii - fwhm_factor * float(fwhm))))


MIN_COLOURED = 10  # stars with a catalogue colour needed to fit a colour term
MIN_COLOUR_SPREAD = 0.15  # mag of colour spread (robust std) needed to fit a colour term


def colour_term_usable(colour: np.ndarray) -> bool:
    """Whether enough fit stars have a catalogue colour, spread enough, for a colour term.

    With Gaia BP-RP (from the cross-matching cache or online) this holds in almost any field;
    with Tycho-2 VT alone (no colour) it never does, and the zero point stays colour-free.
    """
    known = np.asarray(colour, float)
    known = known[np.isfinite(known)]
    if known.size < MIN_COLOURED:
        return False
    spread = 1.4826 * float(np.median(np.abs(known - np.median(known))))
    return spread >= MIN_COLOUR_SPREAD


def calibrate_table(
    table: Table,
    catalog: Table,
    band: str,
    *,
    wcs_rms_arcsec: float | None = None,
    pixel_scale_arcsec: float = 1.0,
    sigma: float = 3.0,
    fit_colour: bool | None = None,
    max_contamination: float = 0.01,
    max_cat_err: float = 0.1,
    min_precise: int = 5,
    aperture_fwhm_factor: float = 2.5,
) -> FrameCalibration:
    """Fit the zero point of a frame and add ``mag``, ``mag_err``, ``cat_id``, ``cat_mag`` columns.

    Only clean sources take part in the fit: no saturated, non-linear, cosmic-ray, bad or
    edge pixel in the aperture, and neighbours (detected, or catalogue stars the detection
    did not split) putting at most ``max_contamination`` of the star's flux into its aperture
    (columns ``contam`` and ``cat_contam``); and, when at least ``min_precise`` of them have
    one, a catalogue error under ``max_cat_err``. Every source with a positive flux gets a
    calibrated magnitude. ``fit_colour`` None (the default) fits a colour term when the
    catalogue gives enough fit stars a colour (:func:`colour_term_usable`); magnitudes then
    include it, at each star's catalogue colour (the fit stars' median colour when unknown).
    The aperture is the one nearest ``aperture_fwhm_factor`` x FWHM. The zero point, its error
    and provenance go into the table's ``meta``.
    """
    if not {"ra", "dec", "aper_flux"} <= set(table.colnames):
        raise PhotometryError("source table lacks ra/dec/aper_flux columns", hint="solve the frame first")
    if not np.isfinite(np.asarray(table["ra"], float)).any():
        raise PhotometryError(
            "the frame has no WCS (its sources have no sky positions)",
            hint="see why `nightpipe solve` failed on it",
        )
    k = choose_aperture(table, aperture_fwhm_factor)
    radius = float(np.asarray(table.meta["aper_radii_px"], float)[k])
    flux = np.asarray(table["aper_flux"], float)
    flux_err = np.asarray(table["aper_flux_err"], float)
    if flux.ndim == 2:
        flux, flux_err = flux[:, k], flux_err[:, k]
    exptime = float(table.meta.get("exptime") or 1.0)
    inst, inst_err = instrumental_mag(flux, flux_err, exptime)
    ref = reference_magnitudes(catalog, band)
    if not np.isfinite(ref.mag).any():
        raise PhotometryError(
            f"catalogue {catalog.meta.get('catalog')} has no magnitudes usable for band {band}"
        )
    radius_arcsec = match_radius_arcsec(wcs_rms_arcsec, pixel_scale_arcsec)
    match = crossmatch(table["ra"], table["dec"], catalog["ra"], catalog["dec"], radius_arcsec)
    flags = np.asarray(table["flags"], int) if "flags" in table.colnames else np.zeros(len(table), int)
    fwhm = float(table.meta.get("fwhm_px") or np.nan)
    total = np.asarray(table["aper_flux"], float)
    total = total[:, -1] if total.ndim == 2 else total
    contam = neighbour_contamination(
        np.asarray(table["x"], float), np.asarray(table["y"], float), total, radius, fwhm
    )
    cat_contam_all = catalog_contamination(
        np.asarray(catalog["ra"], float),
        np.asarray(catalog["dec"], float),
        ref.mag,
        radius,
        fwhm,
        pixel_scale_arcsec,
    )
    cat_contam = np.full(len(table), np.nan)
    cat_contam[match.source_index] = cat_contam_all[match.ref_index]
    clean = usable_measurements(
        flags[match.source_index],
        np.nan_to_num(contam[match.source_index], nan=np.inf),
        cat_contam[match.source_index],
        max_contamination=max_contamination,
    )
    # faint catalogue stars enter a magnitude-limited catalogue when they scatter bright: keep them
    # out of the fit when enough well-measured stars remain
    precise = clean & ~(ref.err[match.ref_index] > max_cat_err)
    if precise.sum() >= min_precise:
        clean = precise
    s, r = match.source_index[clean], match.ref_index[clean]
    if fit_colour is None:
        fit_colour = colour_term_usable(ref.colour[r])
    fit = fit_zero_point(
        inst[s], inst_err[s], ref.mag[r], ref.err[r], ref.colour[r], fit_colour=fit_colour, sigma=sigma
    )
    out = table.copy()
    out["mag"] = inst + fit.zero_point
    if fit.colour_term is not None:  # each star at its own catalogue colour; the fit's median colour else
        star_colour = np.full(len(out), float(np.nanmedian(ref.colour[r])))
        known = np.isfinite(ref.colour[match.ref_index])
        star_colour[match.source_index[known]] = ref.colour[match.ref_index][known]
        out["mag"] = inst + fit.zero_point + fit.colour_term * star_colour
    out["mag_err"] = np.hypot(inst_err, fit.zero_point_err)
    cat_id = np.full(len(out), "", dtype=object)
    cat_id[match.source_index] = np.asarray(catalog["id"]).astype(str)[match.ref_index]
    out["cat_id"] = cat_id.astype(str)
    out["contam"] = contam
    out["contam"].description = "flux of detected neighbours in the aperture / own flux (Gaussian PSF)"
    out["cat_contam"] = cat_contam
    out["cat_contam"].description = "flux of other catalogue stars in the aperture / own (catalogue) flux"
    for column, values in (
        ("cat_ra", np.asarray(catalog["ra"], float)[match.ref_index]),
        ("cat_dec", np.asarray(catalog["dec"], float)[match.ref_index]),
        ("cat_sep", match.separation_arcsec),
        ("cat_mag", ref.mag[match.ref_index]),
        ("cat_err", ref.err[match.ref_index]),
    ):
        filled = np.full(len(out), np.nan)
        filled[match.source_index] = values
        out[column] = filled
    out.meta.update(
        {
            "zero_point": fit.zero_point,
            "zero_point_err": fit.zero_point_err,
            "zero_point_rms": fit.rms,
            "zero_point_n": fit.n_used,
            "zero_point_catalog": str(catalog.meta.get("catalog")),
            "zero_point_band": ref.band,
            "zero_point_band_source": ref.source,
            "zero_point_aperture_px": radius,
        }
    )
    return FrameCalibration(fit, match, ref, inst, s, r, k, radius, out)
