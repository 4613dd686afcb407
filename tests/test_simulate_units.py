"""Pure functions of the generator against independent oracles (astropy, analytic formulas)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from astropy.io import fits
from astropy.time import Time

from nightpipe.frames.timing import altitudes_deg
from nightpipe.simulate.camera import dark_scale, expose_and_read, inverse_roll_off, roll_off
from nightpipe.simulate.cosmics import cosmic_tracks
from nightpipe.simulate.fitswrite import write_uint16_fits
from nightpipe.simulate.noise import ccd_noise
from nightpipe.simulate.observing import airmass_kasten_young, bjd_tdb, young_scintillation
from nightpipe.simulate.psf import enclosed_fraction, render_stars, render_stars_compiled
from nightpipe.simulate.stars import cumulative_counts, draw_magnitudes, tan_wcs

LOCATION = EarthLocation.from_geodetic(-110.8783 * u.deg, 31.6811 * u.deg, 2345 * u.m)


@pytest.mark.parametrize("kind", ["moffat", "gaussian"])
def test_render_conserves_flux_and_centroid(kind: str) -> None:
    x, y = np.array([20.3, 40.71]), np.array([30.6, 12.25])
    flux = np.array([5e3, 2e5])
    img = render_stars((64, 64), x, y, flux, 3.0, kind)
    assert img.sum() == pytest.approx(flux.sum(), rel=1e-5)
    yy, xx = np.mgrid[:64, :64]
    for i in range(2):
        near = (np.hypot(xx - x[i], yy - y[i]) < 9) & (img > 0)
        w = np.where(near, img, 0)
        assert (w * xx).sum() / w.sum() == pytest.approx(x[i], abs=0.005)
        assert (w * yy).sum() / w.sum() == pytest.approx(y[i], abs=0.005)


@pytest.mark.parametrize("kind", ["moffat", "gaussian"])
def test_compiled_rendering_equals_numpy(kind: str) -> None:
    rng = np.random.default_rng(3)
    n = 300
    x, y = rng.uniform(-5, 133, n), rng.uniform(-5, 133, n)
    flux = 10 ** rng.uniform(2, 6, n)
    a = render_stars((128, 128), x, y, flux, 2.7, kind, 2.5)
    b = render_stars_compiled((128, 128), x, y, flux, 2.7, kind, 2.5)
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-3 * a.max() * 1e-3)


def test_gaussian_width_matches_fwhm() -> None:
    fwhm = 4.0
    img = render_stars((64, 64), np.array([32.0]), np.array([32.0]), np.array([1e6]), fwhm, "gaussian")
    _yy, xx = np.mgrid[:64, :64]
    var = (img * (xx - 32.0) ** 2).sum() / img.sum()
    sigma = fwhm / 2.3548200450309493
    assert var == pytest.approx(sigma**2 + 1 / 12, rel=0.02)  # pixel integration adds 1/12


def test_moffat_enclosed_fraction_matches_rendering() -> None:
    fwhm = 3.0
    img = render_stars((96, 96), np.array([48.0]), np.array([48.0]), np.array([1e6]), fwhm, "moffat", 3.0)
    img /= 1e6  # a bright star: the full stamp
    yy, xx = np.mgrid[:96, :96]
    r = np.hypot(xx - 48, yy - 48)
    inside = img[r <= 1.5 * fwhm].sum()
    # the round stamp (radius 4 FWHM) holds all the light: the analytic fraction, renormalised
    expected = enclosed_fraction(1.5 * fwhm, fwhm) / enclosed_fraction(4 * fwhm, fwhm)
    assert inside == pytest.approx(float(expected), rel=0.02)  # pixelated aperture


def test_dark_scale_doubles_every_step() -> None:
    assert dark_scale(-4.0, -10.0, 6.0) == pytest.approx(2.0)
    assert dark_scale(-22.0, -10.0, 6.0) == pytest.approx(0.25)


def test_roll_off_is_continuous_monotonic_and_invertible() -> None:
    x = np.linspace(0, 120000, 5001)
    y = roll_off(x.copy(), 55000.0, 65535.0)
    assert np.all(np.diff(y) > 0) and y.max() < 65535.0
    assert np.array_equal(y[x <= 55000], x[x <= 55000])
    np.testing.assert_allclose(inverse_roll_off(y, 55000.0, 65535.0), x, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("mean_e", [0.0, 4.0, 400.0, 20000.0])
def test_expose_and_read_photon_transfer(mean_e: float) -> None:
    rng = np.random.default_rng(5)
    gain, rn, bias = 2.0, 8.0, 1000.0
    raw = expose_and_read(
        np.full((400, 400), mean_e, dtype=np.float32),
        np.full((400, 400), bias, dtype=np.float32),
        rng=rng,
        gain=gain,
        read_noise=rn,
        bias_offset=0.0,
        full_well=1e6,
        knee=60000.0,
        adc_max=65535,
    ).astype(float)
    assert raw.mean() == pytest.approx(bias + mean_e / gain, abs=5 * raw.std() / 400)
    expected_var = mean_e / gain**2 + (rn / gain) ** 2 + 1 / 12
    assert raw.var() == pytest.approx(expected_var, rel=0.02)


def test_expose_and_read_saturates_at_full_well() -> None:
    rng = np.random.default_rng(1)
    raw = expose_and_read(
        np.full((50, 50), 5e5, dtype=np.float32),
        np.full((50, 50), 500.0, dtype=np.float32),
        rng=rng,
        gain=1.0,
        read_noise=5.0,
        bias_offset=0.0,
        full_well=1e5,
        knee=0.85 * 65535,
        adc_max=65535,
    )
    expected = roll_off(np.array([1e5 + 500.0]), 0.85 * 65535, 65535)[0]
    assert np.median(raw) == pytest.approx(expected, abs=15)
    assert raw.max() <= 65535


def test_airmass_and_altitude_against_astropy() -> None:
    assert float(airmass_kasten_young(np.array([90.0]))[0]) == pytest.approx(1.0, abs=1e-3)
    assert float(airmass_kasten_young(np.array([30.0]))[0]) == pytest.approx(1.995, abs=0.005)
    times = Time("2017-12-20T02:00:00") + np.arange(0, 8 * 3600, 1800) * u.s
    # the simulator's altitudes are the pipeline's (frames.timing.altitudes_deg)
    ours = altitudes_deg(
        times.utc.jd, 31.3121, 46.7691, LOCATION.lat.deg, LOCATION.lon.deg, LOCATION.height.to_value(u.m)
    )
    ref = SkyCoord(31.3121 * u.deg, 46.7691 * u.deg).transform_to(
        AltAz(obstime=times, location=LOCATION, pressure=0)
    )
    np.testing.assert_allclose(ours, ref.alt.deg, atol=0.002)


def test_bjd_against_astropy() -> None:
    times = Time("2017-12-20T02:00:00") + np.arange(0, 8 * 3600, 1800) * u.s
    ours = bjd_tdb(times, LOCATION, 31.3121, 46.7691)
    t = Time(times, location=LOCATION)
    ref = (t.tdb + t.light_travel_time(SkyCoord(31.3121 * u.deg, 46.7691 * u.deg), ephemeris="builtin")).jd
    np.testing.assert_allclose((ours - ref) * 86400, 0, atol=1e-3)


def test_young_scintillation_formula() -> None:
    # 0.09 * 35^(-2/3) * 1.2^1.75 * exp(-2345/8000) / sqrt(120)
    value = float(young_scintillation(35.0, np.array([1.2]), 2345.0, 60.0)[0])
    assert value == pytest.approx(0.09 * 35 ** (-2 / 3) * 1.2**1.75 * np.exp(-2345 / 8000) / np.sqrt(120))
    assert 5e-4 < value < 1e-3


def test_ccd_equation() -> None:
    # bright star: photon-limited, sigma/F = 1/sqrt(F)
    assert float(ccd_noise(np.array([1e8]), 10, np.array([0.0]), 0.0, 0.0, 0.0)[0]) == pytest.approx(1e-4)
    # faint star: background-limited
    value = float(ccd_noise(np.array([100.0]), 50, np.array([100.0]), 10.0, 10.0, 1.0)[0])
    assert value == pytest.approx(np.sqrt(100 + 50 * (100 + 10 + 100 + 0.289**2)) / 100)


def test_luminosity_function_slopes() -> None:
    rng = np.random.default_rng(2)
    mags = draw_magnitudes(rng, 200_000, 19.0)
    assert mags.min() >= 6.0 and mags.max() <= 19.0
    counts, _edges = np.histogram(mags, bins=np.arange(10, 19.5, 1.0))
    slopes = np.diff(np.log10(counts))
    assert np.mean(slopes[:4]) == pytest.approx(0.39, abs=0.03)  # V = 10..15
    assert np.mean(slopes[-3:]) == pytest.approx(0.30, abs=0.03)  # fainter
    assert cumulative_counts(15.0) == pytest.approx(8 * 10 ** (0.39 * 5))


def test_tan_wcs_orientation() -> None:
    w = tan_wcs(100.0, 30.0, 2.0, 0.0, (200, 200))
    ra0, dec0 = w.all_pix2world(99.5, 99.5, 0)
    assert float(ra0) == pytest.approx(100.0) and float(dec0) == pytest.approx(30.0)
    _ra1, dec1 = w.all_pix2world(99.5, 109.5, 0)  # +y is north
    assert float(dec1) - 30.0 == pytest.approx(20 / 3600, rel=1e-3)
    ra2, _ = w.all_pix2world(109.5, 99.5, 0)  # +x is west (east left)
    assert float(ra2) < 100.0


def test_cosmic_tracks() -> None:
    rng = np.random.default_rng(4)
    pixels, charge = cosmic_tracks(rng, (100, 120), 30)
    assert pixels.shape[1] == 2 and len(pixels) >= 25
    assert np.all((pixels[:, 0] < 100) & (pixels[:, 1] < 120) & (pixels >= 0).all(axis=1))
    assert len(np.unique(pixels, axis=0)) == len(pixels)
    assert np.all(charge > 100)


def test_fast_fits_writer_round_trips_through_astropy(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    data = rng.integers(0, 65536, (37, 53)).astype(np.uint16)
    data[0, 0], data[0, 1] = 0, 65535
    cards = [
        ("DATE-OBS", "2017-12-19T18:33:43.317-0700", "local time"),
        ("EXPTIME", 60.0, "s"),
        ("CCD-TEMP", -9.953877, ""),
        ("JD", 2458107.684027778, "Julian date"),
        ("TINY", 1e-5, ""),
        ("HUGE", -3.5e21, ""),
        ("XBINNING", 2, ""),
        ("FLAG", False, ""),
        ("OBSERVER", "O'Brien", "a quote"),
        ("LONGCOM", 1.5, "x" * 120),
    ]
    path = write_uint16_fits(tmp_path / "f.fits", data, cards)
    with fits.open(path) as hdul:
        hdul.verify("exception")
        h = hdul[0].header
        assert h["BITPIX"] == 16 and h["BZERO"] == 32768
        np.testing.assert_array_equal(hdul[0].data, data)
        assert hdul[0].data.dtype == np.uint16
    for key, value, _ in cards:
        assert h[key] == value
    assert path.stat().st_size % 2880 == 0


def test_poisson_inversion_matches_the_poisson_law() -> None:
    from scipy import stats

    from nightpipe.simulate.kernels import poisson_inverse

    rng = np.random.default_rng(12)
    for lam in (0.05, 3.0, 25.0):
        draws = poisson_inverse(np.full(200_000, lam), rng.random(200_000))
        values, counts = np.unique(draws, return_counts=True)
        expected = stats.poisson.pmf(values, lam) * draws.size
        keep = expected > 20
        chi2 = np.sum((counts[keep] - expected[keep]) ** 2 / expected[keep])
        assert chi2 < stats.chi2.ppf(0.999, keep.sum() - 1)
        assert draws.mean() == pytest.approx(lam, rel=0.01 if lam > 1 else 0.05)


def test_linear_camera_without_roll_off() -> None:
    rng = np.random.default_rng(2)
    mean = np.linspace(0, 2e5, 400 * 400, dtype=np.float32).reshape(400, 400)
    raw = expose_and_read(
        mean,
        np.zeros((400, 400), dtype=np.float32),
        rng=rng,
        gain=2.0,
        read_noise=1.0,
        bias_offset=0.0,
        full_well=1e9,
        knee=65535.0,  # no roll-off: linear up to the ADC maximum, then clipped
        adc_max=65535,
    ).astype(float)
    linear = mean < 1.2e5
    np.testing.assert_allclose(raw[linear], mean[linear] / 2.0, atol=6 * np.sqrt(mean[linear].max()) / 2)
    assert np.all(raw[mean > 1.4e5] == 65535)
