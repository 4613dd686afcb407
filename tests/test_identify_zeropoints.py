"""Gaia colours into the zero points: the identify step's Gaia answers as a reference catalogue,
and a colour term fitted automatically when the catalogue gives the stars a colour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from nightpipe.calphot.catalog_match import crossmatch
from nightpipe.calphot.frame import colour_term_usable
from nightpipe.calphot.step import default_catalogs
from nightpipe.calphot.transforms import filter_band, reference_magnitudes
from nightpipe.calphot.zeropoint import fit_zero_point
from nightpipe.catalogs import vizier
from nightpipe.catalogs.answers import AnswerCache
from nightpipe.config import load_settings
from nightpipe.errors import CatalogError
from nightpipe.identify.gaia_reference import gaia_reference
from nightpipe.identify.match import separation_arcsec
from nightpipe.identify.service import FieldQuery
from nightpipe.identify.vizier_services import GaiaService

RECORDED = Path(__file__).parent / "data" / "identify" / "gaia_dr3_archive_two_sources.vot"


def test_colour_term_needs_coloured_stars_with_a_spread() -> None:
    rng = np.random.default_rng(0)
    assert colour_term_usable(rng.normal(0.8, 0.4, 30))
    assert not colour_term_usable(np.full(30, np.nan))  # Tycho-2 VT alone: no colour
    assert not colour_term_usable(rng.normal(0.8, 0.4, 6))  # too few
    assert not colour_term_usable(rng.normal(0.8, 0.02, 30))  # no lever arm


def test_identify_gaia_answer_serves_the_zero_points_offline(tmp_path: Path) -> None:
    overrides = [f"paths.cache={str(tmp_path)!r}", "catalog.order=['gaia', 'tycho2']", "catalog.offline=true"]
    settings = load_settings(None, environ={}, overrides=overrides)
    service = GaiaService(max_mag=settings.identify.gaia_max_mag)
    gaia = service.parse(RECORDED.read_bytes())
    ra, dec = float(gaia["ra"][0]), float(gaia["dec"][0])
    radius = 1.01 * float(separation_arcsec(ra, dec, gaia["ra"][1], gaia["dec"][1])) / 3600  # holds both
    answers = AnswerCache(tmp_path)
    with pytest.raises(CatalogError, match="no cached Gaia answer"):
        gaia_reference(answers, service, FieldQuery(ra, dec, radius))
    answers.put(
        "gaia", service.payload(FieldQuery(ra, dec, radius)), RECORDED.read_bytes(), service_version="t"
    )
    table = default_catalogs(settings).cone(ra, dec, radius)
    assert table.meta["catalog"] == "gaia" and len(table) == 2
    assert {"G", "BP", "RP", "e_G", "e_BP", "e_RP"} <= set(table.colnames)
    assert np.all(table["e_G"] > 0) and np.all(table["e_G"] < 0.01)  # bright stars: from flux S/N
    ref = reference_magnitudes(table, "clear")
    np.testing.assert_allclose(ref.colour, table["BP"] - table["RP"])


def test_eyuma_colour_term_against_gaia_colours_is_fitted_and_sane(shared_data: Path) -> None:
    """94 real R frames of EY UMa against Refcat2 (Gaia G, BP, RP): the colour term is switched on
    by the catalogue's colours, is consistent with zero (the Gaia-to-R transformation already
    carries the colour), agrees between the two halves of the night and costs no residual RMS."""
    folder = shared_data / "stellarphot-eyuma"
    phot = Table.read(folder / "2014-12-29-ey-uma-9.fits", hdu=1)
    refcat = vizier.parse(vizier.SPECS["refcat2"], Table.read(folder / "all_refcat2_ey_uma.ecsv"))
    ref = reference_magnitudes(refcat, filter_band("R"))
    assert ref.source == "gaia"
    files = np.asarray(phot["file"]).astype(str)
    terms, errs, rms_plain, rms_colour = [], [], [], []
    for name in np.unique(files):
        frame = phot[files == name]
        m = crossmatch(frame["RA"], frame["Dec"], refcat["ra"], refcat["dec"], 3.0)
        colour = ref.colour[m.ref_index]
        assert colour_term_usable(colour)
        inst = np.asarray(frame["mag_inst_R"])[m.source_index]
        inst_err = np.asarray(frame["mag_error"])[m.source_index]
        args = (inst, inst_err, ref.mag[m.ref_index], ref.err[m.ref_index], colour)
        plain, coloured = fit_zero_point(*args), fit_zero_point(*args, fit_colour=True)
        assert coloured.colour_term is not None and coloured.colour_term_err is not None
        terms.append(coloured.colour_term)
        errs.append(coloured.colour_term_err)
        rms_plain.append(plain.rms)
        rms_colour.append(coloured.rms)
    terms_a = np.asarray(terms)
    mean, err = float(np.mean(terms_a)), float(np.median(errs)) / np.sqrt(len(terms_a))
    assert abs(mean) < 0.1  # measured -0.029 mag per mag of BP-RP
    assert abs(np.mean(terms_a[:47]) - np.mean(terms_a[47:])) < 0.05
    assert np.median(rms_colour) <= np.median(rms_plain) + 1e-3
    assert err < 0.02


def test_second_order_extinction_from_the_colour_terms(tmp_path: Path) -> None:
    from nightpipe.calphot.night_products import NightFrames, write_night_products

    rng = np.random.default_rng(5)
    airmass = np.linspace(1.05, 2.2, 40)
    k2, c0, err = 0.04, 0.12, 0.01
    terms = c0 - k2 * airmass + rng.normal(0, err, airmass.size)
    done = NightFrames(colour_series=[(float(x), float(c), err) for x, c in zip(airmass, terms, strict=True)])
    products = write_night_products(tmp_path, "2026-12-07", done, "gaia", 11.0)
    assert products.k2 is not None and products.k2_err is not None
    assert abs(products.k2 - k2) < 3 * products.k2_err and products.k2_err < 0.01
    flat = NightFrames(colour_series=[(1.2, 0.1, 0.01), (1.25, 0.1, 0.01)])  # too few frames
    assert write_night_products(tmp_path, "2026-12-07", flat, "gaia", 11.0).k2 is None
