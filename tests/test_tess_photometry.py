"""Aperture photometry of pixel files: real TESS/K2 data against lightkurve, synthetic truth."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from nightpipe.errors import PhotometryError
from nightpipe.tess.photometry import (
    aperture_sum,
    background_mask,
    median_image,
    photometer,
    regress_out,
    threshold_aperture,
)
from nightpipe.tess.readers import read_pixel_file
from nightpipe.tess.synthetic import InjectedTransit, gaussian_psf, write_synthetic_tpf

TESS_TPF = "tess-tpf/tess25155310-s01-first-cadences.fits.gz"
K2_IMAGE = "tess-tpf/ktwo201907706-c01-first-cadence.fits.gz"


def lightkurve() -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("lightkurve")


def test_real_tess_pipeline_aperture_photometry_matches_lightkurve(shared_data: Path) -> None:
    lk = lightkurve()
    path = shared_data / TESS_TPF
    result = photometer(read_pixel_file(path))  # default quality bitmask, pipeline aperture
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer_tpf = lk.read(str(path))  # lightkurve's default bitmask too
        peer = peer_tpf.to_lightcurve(aperture_mask="pipeline")
        peer_col, peer_row = peer_tpf.estimate_centroids(aperture_mask="pipeline")
    assert result.meta["aperture_source"] == "pipeline" and result.meta["aperture_px"] == 9
    assert result.meta["background_source"] == "file"  # SPOC fluxes are background-subtracted
    assert result.meta["time_scale"] == "BJD_TDB"
    # the first cadence (quality 8, Earth point) is dropped by both
    assert result.good.tolist() == [False, True, True, True, True]
    np.testing.assert_allclose(result.time[result.good], peer.time.jd, rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.flux[result.good], np.asarray(peer.flux.value), rtol=1e-6)
    np.testing.assert_allclose(result.flux_err[result.good], np.asarray(peer.flux_err.value), rtol=1e-6)
    tpf = read_pixel_file(path)
    # lightkurve sums in float32, we in float64: agreement to 1e-3 px
    np.testing.assert_allclose(
        result.centroid_col[result.good] + tpf.column, np.asarray(peer_col.value), atol=1e-3
    )
    np.testing.assert_allclose(
        result.centroid_row[result.good] + tpf.row, np.asarray(peer_row.value), atol=1e-3
    )
    # about 8000 e-/s for a Tmag 10.6 star (SPOC's SAP flux scale)
    assert 7000 < np.median(result.flux[result.good]) < 9000


def test_threshold_aperture_matches_lightkurve(shared_data: Path) -> None:
    lk = lightkurve()
    path = shared_data / TESS_TPF
    tpf = read_pixel_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = lk.read(str(path), quality_bitmask="none")
        for threshold in (1.0, 3.0, 10.0):
            expected = np.asarray(peer.create_threshold_mask(threshold=threshold))
            ours = threshold_aperture(median_image(tpf.flux), threshold)
            np.testing.assert_array_equal(ours, expected)
        everything = np.asarray(peer.create_threshold_mask(threshold=1.0, reference_pixel=None))
    np.testing.assert_array_equal(threshold_aperture(median_image(tpf.flux), 1.0, None), everything)


def test_real_k2_image_background_from_pixels(shared_data: Path) -> None:
    k2 = read_pixel_file(shared_data / K2_IMAGE)
    result = photometer(k2)
    assert result.meta["aperture_source"].startswith("threshold")
    assert result.meta["background_source"] == "pixels"  # kepimages FLUX_PLUS_BKG
    image = k2.flux[0]
    sky = background_mask(image, result.aperture)
    assert not (sky & result.aperture).any() and sky.sum() >= 50
    expected_bkg = float(np.median(image[sky]))
    assert result.background[0] == pytest.approx(expected_bkg)
    assert 220 < expected_bkg < 240  # the sky level visible in the image's corners
    expected = image[result.aperture].sum() - result.aperture.sum() * expected_bkg
    assert result.flux[0] == pytest.approx(expected)
    assert result.flux[0] > 15000
    assert np.isfinite(result.flux_err[0]) and result.meta["flux_err_source"].startswith("photon")
    # the default Kepler bitmask does not reject "possible thruster firing"
    assert result.good.tolist() == [True]
    assert photometer(k2, quality_bitmask="hard").good.tolist() == [False]


def test_synthetic_star_flux_and_background_are_recovered(tmp_path: Path) -> None:
    truth = write_synthetic_tpf(tmp_path / "flat.fits", n_cadences=200, bad_cadences=(7, 8), seed=3)
    tpf = read_pixel_file(truth.path)
    result = photometer(tpf)
    assert not result.good[7] and not result.good[8] and result.good.sum() == 198
    psf = gaussian_psf((11, 11), 5.0, 5.0, 1.0)
    expected = truth.star_flux * psf[result.aperture].sum()
    flux = result.flux[result.good]
    sem = np.std(flux) / np.sqrt(flux.size)
    assert abs(np.mean(flux) - expected) < 4 * sem
    # the pipeline errors describe the scatter
    assert np.std(flux) == pytest.approx(np.median(result.flux_err[result.good]), rel=0.15)
    # a TESScut-like cut-out: the background (80 e-/s/px) is measured from the pixels
    cut = write_synthetic_tpf(tmp_path / "cut.fits", n_cadences=50, tesscut=True, seed=4)
    res_cut = photometer(read_pixel_file(cut.path))
    assert res_cut.meta["background_source"] == "pixels"
    assert np.median(res_cut.background) == pytest.approx(80.0, abs=0.5)
    psf_sum = psf[res_cut.aperture].sum()
    assert np.median(res_cut.flux) == pytest.approx(truth.star_flux * psf_sum, rel=0.01)


def test_systematics_regression_removes_pointing_jitter(tmp_path: Path) -> None:
    transit = InjectedTransit(2458325.5, 3.0, rp_rs=0.1, a_rs=10.0, inclination=88.0)
    truth = write_synthetic_tpf(tmp_path / "jitter.fits", transit=transit, jitter_px=0.3, seed=5)
    tpf = read_pixel_file(truth.path)
    in_transit = np.abs(truth.time_bjd - transit.t0_bjd) < transit.duration_days / 2 + 0.01
    small = np.zeros(tpf.shape, dtype=bool)
    small[4:7, 4:7] = True  # a tight aperture loses light as the star moves
    centre = np.abs(truth.time_bjd - transit.t0_bjd) < 0.02
    true_depth = 1 - np.median(truth.model[centre])
    scatter = {}
    for method in ("none", "regression", "pld"):
        res = photometer(tpf, aperture=small, systematics=method, transit_mask=in_transit)  # type: ignore[arg-type]
        rel = res.flux / np.median(res.flux[~in_transit])
        scatter[method] = float(np.std(rel[~in_transit]))
        if method != "none":
            assert 1 - np.median(rel[centre]) == pytest.approx(true_depth, rel=0.1)
    white = float(np.median(res.flux_err / res.flux))
    assert scatter["none"] > 10 * white
    assert scatter["regression"] < 1.5 * white
    assert scatter["pld"] < 3 * white


def test_photometry_errors() -> None:
    flux = np.ones((3, 4, 4))
    with pytest.raises(PhotometryError, match="no pixel"):
        aperture_sum(flux, flux, np.zeros((4, 4), dtype=bool))
    with pytest.raises(PhotometryError, match="shape"):
        aperture_sum(flux, flux, np.ones((3, 3), dtype=bool))
    with pytest.raises(PhotometryError, match="too few cadences"):
        regress_out(np.ones(4), np.ones(4), np.arange(8.0).reshape(4, 2), np.ones(4, dtype=bool))


def test_photometer_rejects_unusable_choices(tmp_path: Path, shared_data: Path) -> None:
    tpf = read_pixel_file(shared_data / TESS_TPF)
    with pytest.raises(PhotometryError, match=r"custom aperture of shape \(3, 3\)"):
        photometer(tpf, aperture=np.ones((3, 3), dtype=bool))
    with pytest.raises(PhotometryError, match="too few cadences"):
        photometer(tpf, systematics="regression")
    cut = read_pixel_file(write_synthetic_tpf(tmp_path / "c.fits", n_cadences=5, tesscut=True).path)
    with pytest.raises(PhotometryError, match="no pipeline aperture"):
        photometer(cut, aperture="pipeline")
    custom = np.zeros(tpf.shape, dtype=bool)
    custom[5, 5] = True
    single = photometer(tpf, aperture=custom, quality_bitmask="none")
    np.testing.assert_allclose(single.flux, tpf.flux[:, 5, 5])
    assert single.meta["aperture_source"] == "custom"
