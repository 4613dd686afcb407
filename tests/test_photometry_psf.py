"""Empirical PSF building and fitting, against the truth and against photutils PSFPhotometry."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from nightpipe.config import PhotometryConfig
from nightpipe.frames.flags import PixelFlag
from nightpipe.photometry.measure import CameraParams, measure_frame
from nightpipe.photometry.psf import build_epsf, fit_psf
from nightpipe.photometry.synthetic import make_star_field, star_stamp
from nightpipe.photometry.table import build_source_table


@pytest.fixture(scope="module")
def field():
    return make_star_field(
        (600, 600), 150, fwhm=3.0, sky=0.0, flux_range=(5e3, 2e5), min_separation=12, seed=21
    )


@pytest.fixture(scope="module")
def epsf(field):
    bright = np.argsort(-field.flux)[:60]
    return build_epsf(field.data, field.x[bright], field.y[bright], fwhm=3.0, others=(field.x, field.y))


def test_epsf_matches_the_true_psf(epsf) -> None:
    truth = star_stamp(0.0, 0.0, 8, 3.0, profile="moffat", beta=3.0)
    yy, xx = np.mgrid[-8:9, -8:9]
    model = epsf.evaluate(xx.ravel().astype(float), yy.ravel().astype(float)).reshape(truth.shape)
    assert np.max(np.abs(model - truth)) < 0.06 * truth.max()  # 60 noisy stars
    assert abs(model.sum() - truth.sum()) < 0.04


def test_psf_fluxes_match_the_truth_within_errors(field, epsf) -> None:
    variance = (np.maximum(field.model, 0) * field.gain + field.read_noise**2) / field.gain**2
    rng = np.random.default_rng(0)
    x0 = field.x + rng.normal(0, 0.2, field.x.size)
    y0 = field.y + rng.normal(0, 0.2, field.x.size)
    res = fit_psf(field.data, x0, y0, epsf, variance=variance, fit_half=3)
    assert not np.any(res.flags & PixelFlag.FIT_FAILED)
    assert np.median(np.hypot(res.x - field.x, res.y - field.y)) < 0.05
    # the ePSF's normalisation (flux scale) is known to a few per cent; relative fluxes, which
    # differential photometry uses, scatter as their errors say
    scale = np.median(res.flux / field.flux)
    assert abs(scale - 1) < 0.04
    pull = (res.flux / scale - field.flux) / res.flux_err
    assert abs(np.mean(pull)) < 0.3
    assert 0.8 < np.std(pull) < 1.25
    assert np.all(res.qfit < 0.2)


def test_close_pairs_are_fitted_jointly(epsf) -> None:
    image = np.zeros((60, 60))
    stars = [(28.0, 30.0, 40000.0), (32.2, 30.4, 20000.0)]  # 1.4 FWHM apart
    for x, y, f in stars:
        ix, iy = round(x), round(y)
        image[iy - 15 : iy + 16, ix - 15 : ix + 16] += star_stamp(x - ix, y - iy, 15, 3.0) * f
    image += np.random.default_rng(3).normal(0, 2.0, image.shape)
    xs = np.array([28.3, 31.9])
    ys = np.array([29.8, 30.6])
    joint = fit_psf(image, xs, ys, epsf, variance=4.0, fit_half=3)
    np.testing.assert_allclose(joint.flux, [40000.0, 20000.0], rtol=0.01)
    alone = fit_psf(image, xs, ys, epsf, variance=4.0, fit_half=3, group=False)
    assert np.max(np.abs(alone.flux / [40000.0, 20000.0] - 1)) > 0.05  # neighbours' light biases lone fits


def test_psf_fluxes_agree_with_photutils(field, epsf) -> None:
    from astropy.table import Table
    from photutils.psf import ImagePSF, PSFPhotometry

    sel = np.arange(40)
    ours = fit_psf(field.data, field.x[sel], field.y[sel], epsf, fit_half=3, group=False)
    model = ImagePSF(epsf.data, oversampling=epsf.oversampling)
    phot = PSFPhotometry(model, (7, 7), aperture_radius=4)
    init = Table({"x": field.x[sel], "y": field.y[sel], "flux": ours.flux})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = phot(field.data, init_params=init)
    rel = ours.flux / np.asarray(theirs["flux_fit"]) - 1
    assert np.median(np.abs(rel)) < 2e-4
    assert np.max(np.abs(rel)) < 2e-3
    np.testing.assert_allclose(ours.x, np.asarray(theirs["x_fit"]), atol=0.01)


def test_measure_frame_with_psf_columns() -> None:
    f = make_star_field((300, 300), 40, seed=22, min_separation=15)
    meas = measure_frame(f.data, PhotometryConfig(psf=True), camera=CameraParams(gain=f.gain, read_noise=8.0))
    table = build_source_table(meas)
    assert {"psf_flux", "psf_flux_err", "psf_qfit"} <= set(table.colnames)
    good = table["flags"] == 0
    ratio = np.asarray(table["psf_flux"])[good] / np.asarray(table["aper_flux"])[good, -1]
    assert abs(np.median(ratio) - 1) < 0.06  # largest aperture (3 FWHM) holds ~99 % of a Moffat star
    bright = np.asarray(table["aper_flux"])[good, -1] > 2e4
    assert np.std(ratio[bright] / np.median(ratio)) < 0.02
