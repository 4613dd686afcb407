"""Stars, fluxes, the transit and the photometric noise of a synthetic night match its truth."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sep
from astropy.io import fits

from nightpipe.errors import ConfigError
from nightpipe.simulate import (
    CalibrationOptions,
    CameraOptions,
    SimOptions,
    SiteOptions,
    SkyOptions,
    StarList,
    TransitOptions,
    Truth,
    simulate_night,
)

GAIN = 1.5


def read(path: Path) -> np.ndarray:
    return np.asarray(fits.getdata(path), dtype=float)


@pytest.fixture(scope="module")
def flat_night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    """A Gaussian-PSF night with a perfectly flat response, to compare fluxes directly."""
    opts = SimOptions(
        seed=11,
        camera=CameraOptions(size=256, gain=GAIN, prnu=0.0, hot_pixel_fraction=0.0, dead_column=False),
        calibration=CalibrationOptions(
            n_bias=6, dark_exptimes=(60.0,), n_dark=3, n_flat=0, vignetting=0.0, n_dust=0
        ),
        site=SiteOptions(n_lights=3, cadence=600.0),
        sky=SkyOptions(psf="gaussian", fwhm=4.0, cosmic_rate=0.0),
        mag_limit=16.0,
    )
    out = tmp_path_factory.mktemp("flatnight")
    return out, simulate_night(out, opts)


def _calibrated(outdir: Path, truth: Truth, entry: dict) -> np.ndarray:
    bias = np.mean([read(outdir / f["file"]) for f in truth.frames_of("bias")], axis=0)
    dark = np.mean([read(outdir / f["file"]) for f in truth.frames_of("dark")], axis=0) - bias
    return read(outdir / entry["file"]) - bias - dark * entry["exptime"] / 60.0


def test_aperture_fluxes_match_truth(flat_night: tuple[Path, Truth]) -> None:
    outdir, truth = flat_night
    light = truth.lights()[1]
    data = np.ascontiguousarray(_calibrated(outdir, truth, light))
    x, y = truth.star_positions(light)
    flux = np.asarray(light["star_flux_e"])
    fwhm = light["fwhm_px"]
    r = 2.5 * fwhm
    peak_adu = flux * 0.8825 / fwhm**2 / GAIN
    # isolated, unsaturated, well inside the frame
    dist = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    np.fill_diagonal(dist, np.inf)
    crowded = ((dist < 3 * r) & (flux[None, :] > 0.01 * flux[:, None])).any(axis=1)
    good = (~crowded) & (flux > 1e4) & (peak_adu < 40000) & (x > 3 * r) & (x < 256 - 3 * r)
    good &= (y > 3 * r) & (y < 256 - 3 * r)
    assert good.sum() >= 5
    measured, _err, _ = sep.sum_circle(data, x[good], y[good], r, bkgann=(r + 4, r + 12), err=0.0, gain=None)
    measured = measured * GAIN
    noise = np.sqrt(flux[good] + np.pi * r**2 * (light["sky_e"] + 9.0**2 + 60 * 0.05) * 1.05)
    ratio = measured / flux[good]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.01)
    chi = (measured - flux[good]) / noise
    assert np.mean(np.abs(chi) < 4) >= 0.9


def test_star_count_matches_detections(flat_night: tuple[Path, Truth]) -> None:
    outdir, truth = flat_night
    light = truth.lights()[0]
    data = np.ascontiguousarray(_calibrated(outdir, truth, light))
    bkg = sep.Background(data)
    sources = sep.extract(data - bkg.back(), 3.0, err=bkg.globalrms, minarea=5)
    x, y = truth.star_positions(light)
    flux = np.asarray(light["star_flux_e"])
    fwhm = light["fwhm_px"]
    inside = (x > 5) & (x < 251) & (y > 5) & (y < 251)
    peak_snr = flux * 0.8825 / fwhm**2 / np.sqrt(light["sky_e"] + 81.0)
    should = inside & (peak_snr > 10)
    assert should.sum() >= 20
    d = np.hypot(sources["x"][:, None] - x[None, :], sources["y"][:, None] - y[None, :])
    found = (d < 2.0).any(axis=0)
    assert found[should].mean() >= 0.95
    matched = (d[:, inside | (peak_snr > 1)] < 2.5).any(axis=1)
    assert matched.mean() >= 0.9  # few spurious detections
    # the field's density follows the model: the truth count is what the options ask for
    total = int(inside.sum())
    assert 10 < total < 500


@pytest.fixture(scope="module")
def transit_night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    opts = SimOptions(
        seed=5,
        camera=CameraOptions(size=200, gain=GAIN, hot_pixel_fraction=0.0),
        calibration=CalibrationOptions(n_bias=5, dark_exptimes=(60.0,), n_dark=3, n_flat=5),
        site=SiteOptions(n_lights=16, cadence=1080.0, exptime=60.0),
        sky=SkyOptions(cosmic_rate=0.0, jitter=0.5, drift=(4.0, -2.0)),
        transit=TransitOptions(rp=0.15, a=6.0, inc=88.9, u=(0.45, 0.2)),
        density_scale=3.0,
        target_mag=12.0,
    )
    out = tmp_path_factory.mktemp("transit")
    return out, simulate_night(out, opts)


def test_noiseless_transit_shape(transit_night: tuple[Path, Truth]) -> None:
    _, truth = transit_night
    tr = truth.transit
    t = np.array([f["bjd_tdb"] for f in truth.lights()])
    rel = np.array([f["target_rel_flux"] for f in truth.lights()])
    b = tr["a"] * np.cos(np.radians(tr["inc"]))
    t14 = (
        tr["period"]
        / np.pi
        * np.arcsin(np.sqrt((1 + tr["rp"]) ** 2 - b**2) / (tr["a"] * np.sin(np.radians(tr["inc"]))))
    )
    half_exp = 60.0 / 86400
    outside = np.abs(t - tr["t0_bjd_tdb"]) > t14 / 2 + half_exp
    inside = np.abs(t - tr["t0_bjd_tdb"]) < t14 / 2 - half_exp
    assert outside.any() and inside.any()
    assert np.all(rel[outside] == 1.0)
    assert np.all(rel[inside] < 1.0)
    # limb-darkened depth: between rp^2 and rp^2 * (1 + u1 + u2)-ish
    depth = 1 - rel.min()
    assert tr["rp"] ** 2 < depth < 1.35 * tr["rp"] ** 2


def test_uniform_disc_depth_is_rp_squared(tmp_path: Path) -> None:
    opts = SimOptions(
        camera=CameraOptions(size=32),
        calibration=CalibrationOptions(n_bias=0, n_dark=0, n_flat=0),
        site=SiteOptions(n_lights=9, cadence=600.0),
        transit=TransitOptions(rp=0.1, u=(0.0, 0.0), a=8.0, inc=90.0),
    )
    truth = simulate_night(tmp_path, opts)
    rel = np.array([f["target_rel_flux"] for f in truth.lights()])
    assert rel.min() == pytest.approx(1 - 0.1**2, abs=1e-6)


def test_measured_light_curve_follows_truth(transit_night: tuple[Path, Truth]) -> None:
    outdir, truth = transit_night
    bias = np.mean([read(outdir / f["file"]) for f in truth.frames_of("bias")], axis=0)
    dark = np.mean([read(outdir / f["file"]) for f in truth.frames_of("dark")], axis=0) - bias
    flats = [read(outdir / f["file"]) - bias - dark * f["exptime"] / 60.0 for f in truth.frames_of("flat")]
    flat = np.mean([f / np.median(f) for f in flats], axis=0)
    flat = np.where(flat > 0.2, flat, np.nan)
    target = truth.field["target_index"]
    mags = np.asarray(truth.field["stars"]["mag"])
    x0, y0 = np.asarray(truth.field["stars"]["x"]), np.asarray(truth.field["stars"]["y"])
    ok = (x0 > 25) & (x0 < 175) & (y0 > 25) & (y0 < 175) & (mags < 14.0) & (mags > 11.5)
    ok[target] = False
    comps = np.flatnonzero(ok)
    assert comps.size >= 3
    ratios, expected, noise = [], [], []
    for light in truth.lights():
        data = np.ascontiguousarray(np.nan_to_num((read(outdir / light["file"]) - bias - dark) / flat))
        x, y = truth.star_positions(light)
        r = 2.0 * light["fwhm_px"]
        f, _, _ = sep.sum_circle(data, x[comps], y[comps], r, bkgann=(r + 5, r + 12))
        ft, _, _ = sep.sum_circle(data, x[[target]], y[[target]], r, bkgann=(r + 5, r + 12))
        ratios.append(ft[0] / f.sum())
        expected.append(light["target_rel_flux"])
        noise.append(light["noise"]["total"])
    ratios_a = np.asarray(ratios)
    expected_a = np.asarray(expected)
    scale = np.sum(ratios_a * expected_a) / np.sum(expected_a**2)
    resid = ratios_a / scale - expected_a
    # the residual scatter is photometric noise of the order of the truth's expectation
    assert np.std(resid) < 2.5 * np.median(noise)
    measured_depth = 1 - (ratios_a / scale).min()
    assert measured_depth == pytest.approx(1 - expected_a.min(), abs=4 * np.median(noise) + 0.002)


def test_given_star_list_is_placed(tmp_path: Path) -> None:
    ra0, dec0 = 40.0, 30.0
    rng = np.random.default_rng(0)
    ra = ra0 + rng.uniform(-0.02, 0.02, 40) / np.cos(np.radians(dec0))
    dec = dec0 + rng.uniform(-0.02, 0.02, 40)
    mag = rng.uniform(9, 14, 40)
    opts = SimOptions(
        camera=CameraOptions(size=128),
        calibration=CalibrationOptions(n_bias=0, n_dark=0, n_flat=0),
        site=SiteOptions(ra=ra0, dec=dec0, n_lights=1),
        sky=SkyOptions(pixel_scale=1.2, drift=(0.0, 0.0), jitter=0.0, cosmic_rate=0.0),
        stars=StarList(ra, dec, mag),
        write_wcs=True,
        target_mag=12.0,
    )
    truth = simulate_night(tmp_path, opts)
    stars = truth.field["stars"]
    assert set(np.round(stars["ra"], 9)) <= set(np.round(ra, 9))
    target = truth.field["target_index"]
    x, y = np.asarray(stars["x"]), np.asarray(stars["y"])
    central = (np.abs(x - 64) < 32) & (np.abs(y - 64) < 32)
    assert abs(stars["mag"][target] - 12.0) == np.min(np.abs(np.asarray(stars["mag"])[central] - 12.0))
    # the written WCS puts each catalogue star where the truth says
    from astropy.wcs import WCS

    light = truth.lights()[0]
    w = WCS(fits.getheader(tmp_path / light["file"]))
    px, py = w.all_world2pix(stars["ra"], stars["dec"], 0)
    tx, ty = truth.star_positions(light)
    np.testing.assert_allclose(px, tx, atol=1e-6)
    np.testing.assert_allclose(py, ty, atol=1e-6)
    # and the brightest star in the frame is where it should be
    data = read(tmp_path / light["file"])
    inside = np.flatnonzero((x > 5) & (x < 122) & (y > 5) & (y < 122))
    brightest = inside[np.argmin(np.asarray(stars["mag"])[inside])]
    bx, by = round(x[brightest]), round(y[brightest])
    assert data[by, bx] > np.median(data) + 1000
    assert data[by, bx] >= data[by - 3 : by + 4, bx - 3 : bx + 4].max() - 50  # the peak is there


def test_field_rotation_and_meridian_flip_put_stars_where_the_truth_says(tmp_path: Path) -> None:
    from astropy.wcs import WCS

    opts = SimOptions(
        camera=CameraOptions(size=128, hot_pixel_fraction=0.0),
        calibration=CalibrationOptions(n_bias=0, n_dark=0, n_flat=0),
        site=SiteOptions(n_lights=4, cadence=900.0),
        sky=SkyOptions(cosmic_rate=0.0, jitter=0.0, field_rotation=30.0, flip_at=2, flip_shift=(6.0, -4.0)),
        write_wcs=True,
        density_scale=0.5,
    )
    truth = simulate_night(tmp_path, opts)
    lights = truth.lights()
    turn = np.array([f["rotation_deg"] for f in lights])
    np.testing.assert_allclose(turn, [0.0, 7.5, 195.0, 202.5], atol=1e-6)  # 30 deg/h, 15 min apart
    assert [f["pier_side"] for f in lights] == ["EAST", "EAST", "WEST", "WEST"]
    stars = truth.field["stars"]
    mag = np.asarray(stars["mag"])
    for light in lights:
        header = fits.getheader(tmp_path / light["file"])
        assert header["PIERSIDE"] == light["pier_side"]
        x, y = truth.star_positions(light)
        px, py = WCS(header).all_world2pix(stars["ra"], stars["dec"], 0)  # the true WCS agrees
        np.testing.assert_allclose(px, x, atol=1e-6)
        np.testing.assert_allclose(py, y, atol=1e-6)
        data = read(tmp_path / light["file"])
        inside = np.flatnonzero((x > 6) & (x < 121) & (y > 6) & (y < 121))
        brightest = inside[np.argmin(mag[inside])]
        bx, by = round(x[brightest]), round(y[brightest])
        assert data[by, bx] >= data[by - 3 : by + 4, bx - 3 : bx + 4].max() - 50  # the peak is there
        assert data[by, bx] > np.median(data) + 500


def test_variable_and_moving_object(tmp_path: Path) -> None:
    opts = SimOptions(
        camera=CameraOptions(size=96),
        calibration=CalibrationOptions(n_bias=0, n_dark=0, n_flat=0),
        site=SiteOptions(n_lights=6, cadence=900.0),
        variable_comparison=True,
        moving_object=True,
        density_scale=3.0,
    )
    truth = simulate_night(tmp_path, opts)
    var = truth.variable
    assert var is not None and var["index"] != truth.field["target_index"]
    rel = np.array([f["variable_rel_flux"] for f in truth.lights()])
    assert rel.max() - rel.min() > 0.5 * var["amplitude"]
    flux = np.array([f["star_flux_e"][var["index"]] for f in truth.lights()])
    airmass = np.array([f["airmass"] for f in truth.lights()])
    base = flux / rel / 10 ** (-0.4 * truth.field["extinction"] * airmass)
    np.testing.assert_allclose(base, base[0], rtol=1e-9)
    moves = np.array([[f["moving"]["x"] - f["dx"], f["moving"]["y"] - f["dy"]] for f in truth.lights()])
    step = np.hypot(*np.diff(moves, axis=0).T)
    expected = opts.moving_rate / opts.scale * opts.site.cadence / 60
    np.testing.assert_allclose(step, expected, rtol=1e-9)


def test_cosmic_rays_in_truth_are_in_pixels(tmp_path: Path) -> None:
    opts = SimOptions(
        camera=CameraOptions(size=128, hot_pixel_fraction=0.0),
        calibration=CalibrationOptions(n_bias=0, n_dark=0, n_flat=0),
        site=SiteOptions(n_lights=2),
        sky=SkyOptions(cosmic_rate=3000.0),
        density_scale=0.2,
    )
    opts = replace(opts, transit=replace(opts.transit, enabled=False))
    truth = simulate_night(tmp_path, opts)
    light = truth.lights()[0]
    assert light["cosmic_count"] > 15
    pix = np.asarray(light["cosmic_pixels"])
    data = read(tmp_path / light["file"])
    background = np.median(data)
    assert np.median(data[pix[:, 0], pix[:, 1]]) > background + 200


def test_target_below_horizon_is_an_error(tmp_path: Path) -> None:
    opts = SimOptions(
        camera=CameraOptions(size=32),
        calibration=CalibrationOptions(n_bias=0, n_dark=0, n_flat=0),
        site=SiteOptions(ra=200.0, dec=-30.0, n_lights=2),
    )
    with pytest.raises(ConfigError, match="altitude"):
        simulate_night(tmp_path / "n", opts)
    assert not (tmp_path / "n").exists()  # nothing written
