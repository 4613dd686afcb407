"""Zero points, band transformations, extinction and ensemble photometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import EarthLocation
from astropy.table import Table
from astropy.time import Time

from nightpipe.calphot.catalog_match import crossmatch, match_radius_arcsec
from nightpipe.calphot.ensemble import solve_ensemble
from nightpipe.calphot.extinction import airmass, airmass_from_altitude, fit_extinction
from nightpipe.calphot.transforms import filter_band, reference_magnitudes
from nightpipe.calphot.zeropoint import fit_zero_point, instrumental_mag
from nightpipe.catalogs import vizier
from nightpipe.errors import PhotometryError


def test_zero_point_recovered_with_outliers() -> None:
    rng = np.random.default_rng(1)
    n = 60
    cat = rng.uniform(9, 15, n)
    err = 0.005 + 0.02 * (cat - 9) / 6
    inst = cat - 22.5 + rng.normal(0, err)
    inst[:4] += np.array([0.8, -0.5, 1.2, 0.6])  # variables / blends
    fit = fit_zero_point(inst, err, cat, np.zeros(n))
    assert abs(fit.zero_point - 22.5) < 3 * fit.zero_point_err
    assert fit.zero_point_err < 0.005
    assert not fit.used[:4].any() and fit.used[4:].mean() > 0.95


def test_zero_point_pulls_have_unit_width() -> None:
    rng = np.random.default_rng(2)
    pulls = []
    for _ in range(300):
        err = rng.uniform(0.01, 0.05, 30)
        cat = rng.uniform(10, 14, 30)
        fit = fit_zero_point(cat - 20 + rng.normal(0, err), err, cat, np.zeros(30))
        pulls.append((fit.zero_point - 20.0) / fit.zero_point_err)
    assert 0.85 < np.std(pulls) < 1.2
    assert abs(np.mean(pulls)) < 0.2


def test_colour_term() -> None:
    rng = np.random.default_rng(3)
    colour = rng.uniform(0.2, 1.5, 80)
    cat = rng.uniform(10, 14, 80)
    inst = cat - 21.0 - 0.12 * colour + rng.normal(0, 0.01, 80)
    fit = fit_zero_point(inst, np.full(80, 0.01), cat, np.zeros(80), colour, fit_colour=True)
    assert fit.colour_term == pytest.approx(0.12, abs=3 * (fit.colour_term_err or 1))
    assert fit.zero_point == pytest.approx(21.0, abs=0.01)


def test_too_few_stars_is_an_error() -> None:
    with pytest.raises(PhotometryError, match="usable reference stars"):
        fit_zero_point(np.array([1.0, np.nan]), np.array([0.1, 0.1]), np.array([2.0, 3.0]), np.zeros(2))


def test_instrumental_mag_handles_negative_flux() -> None:
    mag, err = instrumental_mag(np.array([100.0, -5.0]), np.array([10.0, 1.0]), exptime=10.0)
    assert mag[0] == pytest.approx(-2.5) and np.isnan(mag[1])
    assert err[0] == pytest.approx(0.10857, rel=1e-3)  # 1.0857 * 10 / 100


def test_gaia_to_johnson_transformation_sun_like() -> None:
    # a solar-type star, BP-RP = 0.82: G - V = -0.02704 + 0.01424*0.82 - 0.2156*0.82^2 + 0.01426*0.82^3
    t = Table({"G": [10.0], "BP": [10.4], "RP": [9.58], "e_G": [0.001]})
    ref = reference_magnitudes(t, "V")
    x = 0.82
    expected = 10.0 - (-0.02704 + 0.01424 * x - 0.2156 * x**2 + 0.01426 * x**3)
    assert ref.mag[0] == pytest.approx(expected, abs=1e-6)
    assert ref.source == "gaia" and ref.err[0] > 0.03


def test_filter_bands() -> None:
    assert filter_band("Clear") == "clear"
    assert filter_band("Rc") == "R" and filter_band("V") == "V" and filter_band("SR") == "r"
    assert filter_band(None) == "clear"


def test_crossmatch_is_one_to_one() -> None:
    ref_ra, ref_dec = np.array([10.0, 10.01]), np.array([20.0, 20.0])
    ra = np.array([10.0, 10.0 + 0.5 / 3600, 10.01, 11.0])
    dec = np.array([20.0, 20.0, 20.0 + 0.3 / 3600, 20.0])
    m = crossmatch(ra, dec, ref_ra, ref_dec, 2.0)
    assert list(m.source_index) == [0, 2] and list(m.ref_index) == [0, 1]
    assert match_radius_arcsec(0.4, 5.2) == pytest.approx(2.6)


def test_airmass_and_extinction_recovered() -> None:
    assert airmass_from_altitude(np.array([90.0]))[0] == pytest.approx(1.0, abs=1e-3)
    assert airmass_from_altitude(np.array([30.0]))[0] == pytest.approx(1.995, abs=0.01)
    site = EarthLocation(lat=31.68 * u.deg, lon=-110.88 * u.deg, height=2345 * u.m)
    times = Time("2017-12-20T01:30:00") + np.linspace(0, 7, 40) * u.hour
    x = airmass(times, 31.0429, 46.6878, site)
    assert np.nanmin(x) > 1.0 and np.nanmax(x) > 1.5
    rng = np.random.default_rng(4)
    zp = 22.0 - 0.18 * x + rng.normal(0, 0.005, x.size)
    fit = fit_extinction(zp, np.full(x.size, 0.005), x)
    assert abs(fit.k - 0.18) < 3 * fit.k_err and fit.k_err < 0.02
    with pytest.raises(PhotometryError, match="airmass"):
        fit_extinction(zp[:2], np.full(2, 0.005), x[:2])


def test_ensemble_recovers_offsets_and_flags_the_variable() -> None:
    rng = np.random.default_rng(5)
    frames, stars = 80, 25
    true_m = rng.uniform(-10, -6, stars)
    offsets = rng.normal(0, 0.2, frames)
    offsets -= offsets.mean()
    err = np.tile(0.003 * 10 ** (0.2 * (true_m + 10)), (frames, 1))
    mags = true_m[None, :] + offsets[:, None] + rng.normal(0, err)
    mags[:, 3] += 0.3 * np.sin(np.linspace(0, 6, frames))  # a variable star
    mags[rng.random(mags.shape) < 0.05] = np.nan  # missing measurements
    sol = solve_ensemble(mags, err)
    assert not sol.comparison[3] and sol.comparison.sum() == stars - 1
    pulls = (sol.frame_offset - offsets) / sol.frame_offset_err
    assert np.all(np.abs(pulls) < 4.5) and 0.6 < np.std(pulls) < 1.4
    assert sol.star_rms[3] > 5 * np.median(sol.star_rms)


def _eyuma(shared_data: Path) -> tuple[Table, Table, Table]:
    folder = shared_data / "stellarphot-eyuma"
    phot = Table.read(folder / "2014-12-29-ey-uma-9.fits", hdu=1)
    apass = vizier.parse(vizier.SPECS["apass"], Table.read(folder / "all_apass_ey_uma.ecsv"))
    vsx = Table.read(folder / "unclipped_ey_uma_vsx.fits")
    return phot, apass, vsx


def test_eyuma_zero_point_is_stable_against_apass(shared_data: Path) -> None:
    """94 R frames of EY UMa: the zero point against APASS (r,i -> R) is stable through the night."""
    phot, apass, _ = _eyuma(shared_data)
    ref = reference_magnitudes(apass, filter_band("R"))
    files = np.asarray(phot["file"]).astype(str)
    zps, errs = [], []
    for name in np.unique(files):
        frame = phot[files == name]
        m = crossmatch(frame["RA"], frame["Dec"], apass["ra"], apass["dec"], 3.0)
        fit = fit_zero_point(
            np.asarray(frame["mag_inst_R"])[m.source_index],
            np.asarray(frame["mag_error"])[m.source_index],
            ref.mag[m.ref_index],
            ref.err[m.ref_index],
        )
        assert fit.n_used >= 15
        zps.append(fit.zero_point)
        errs.append(fit.zero_point_err)
    assert len(zps) == 94
    assert np.std(zps) < 0.03  # measured 0.017 mag over airmass 1.03-1.36
    assert np.median(errs) < 0.015


def test_eyuma_ensemble_outlier_is_the_vsx_variable(shared_data: Path) -> None:
    phot, _, vsx = _eyuma(shared_data)
    files, star = np.asarray(phot["file"]).astype(str), np.asarray(phot["star_id"])
    ufiles, ustars = np.unique(files), np.unique(star)
    mags = np.full((ufiles.size, ustars.size), np.nan)
    errs = mags.copy()
    i, j = np.searchsorted(ufiles, files), np.searchsorted(ustars, star)
    mags[i, j], errs[i, j] = phot["mag_inst_R"], phot["mag_error"]
    sol = solve_ensemble(mags, errs)
    outliers = ustars[~sol.comparison]
    assert outliers.size >= 1
    for sid in outliers:
        row = phot[star == sid][0]
        m = crossmatch(np.array([row["RA"]]), np.array([row["Dec"]]), vsx["ra"], vsx["dec"], 3.0)
        assert m.ref_index.size == 1, f"star {sid} flagged variable but not in VSX"
        assert "EY UMa" in str(vsx["id"][m.ref_index[0]])


def test_frame_without_wcs_is_named_as_such() -> None:
    from astropy.table import Table

    from nightpipe.calphot.frame import calibrate_table

    table = Table({"ra": np.full(5, np.nan), "dec": np.full(5, np.nan), "aper_flux": np.ones((5, 2))})
    with pytest.raises(PhotometryError, match="no WCS"):
        calibrate_table(table, Table(), "V")
