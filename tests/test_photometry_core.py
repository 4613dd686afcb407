"""Background, detection, shapes, aperture photometry and source tables on synthetic and real frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from scipy.spatial import cKDTree

from nightpipe.config import PhotometryConfig
from nightpipe.errors import PhotometryError
from nightpipe.frames.flags import PixelFlag
from nightpipe.photometry.aperture import aperture_photometry, circle_rect_overlap
from nightpipe.photometry.background import global_background, mesh_background
from nightpipe.photometry.detect import detect_sources
from nightpipe.photometry.measure import CameraParams, measure_frame
from nightpipe.photometry.profiles import curve_of_growth, fit_profile, radial_profile
from nightpipe.photometry.shape import measure_shapes
from nightpipe.photometry.synthetic import make_star_field, moffat_alpha
from nightpipe.photometry.table import build_source_table, read_source_table, write_source_table


def _match(x: np.ndarray, y: np.ndarray, tx: np.ndarray, ty: np.ndarray, tol: float = 1.0):
    dist, idx = cKDTree(np.column_stack([tx, ty])).query(np.column_stack([x, y]))
    return dist < tol, idx


# ----------------------------------------------------------------------------- background


def test_global_background_ignores_stars_and_mask() -> None:
    field = make_star_field((256, 256), 40, sky=300.0, gain=2.0, read_noise=5.0, seed=1)
    mask = np.zeros(field.data.shape, np.uint16)
    data = field.data.copy()
    data[:20] = 1e5
    mask[:20] = PixelFlag.SATURATED
    level, rms = global_background(data, mask)
    expected_rms = np.sqrt(300.0 * 2.0 + 25.0) / 2.0
    assert abs(level - 300.0) < 0.1 * expected_rms  # star wings bias a clipped median slightly
    assert abs(rms / expected_rms - 1) < 0.05


def test_mesh_background_follows_a_gradient() -> None:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:300, :400]
    truth = 100.0 + 0.05 * xx + 0.02 * yy
    image = (truth + rng.normal(0, 3.0, truth.shape)).astype(np.float32)
    bkg = mesh_background(image, box=32, filter_size=3)
    inner = (slice(40, -40), slice(40, -40))
    assert np.max(np.abs(bkg.level[inner] - truth[inner])) < 1.0
    assert abs(np.median(bkg.rms) - 3.0) < 0.15
    assert bkg.level.shape == image.shape and bkg.level.dtype == np.float32


def test_mesh_background_nan_and_masked_meshes_are_filled() -> None:
    rng = np.random.default_rng(4)
    image = rng.normal(50.0, 2.0, (128, 128)).astype(np.float32)
    image[:40, :40] = np.nan
    mask = np.zeros(image.shape, np.uint16)
    mask[80:, 80:] = PixelFlag.DEAD
    image[80:, 80:] = -1e4
    bkg = mesh_background(image, mask, box=32)
    assert np.all(np.isfinite(bkg.level))
    assert np.max(np.abs(bkg.level - 50.0)) < 1.0


def test_mesh_background_rejects_bad_input() -> None:
    with pytest.raises(PhotometryError, match="2-D"):
        mesh_background(np.zeros(10))
    with pytest.raises(PhotometryError, match="no mesh"):
        mesh_background(np.full((64, 64), np.nan))
    with pytest.raises(PhotometryError, match="mask shape"):
        mesh_background(np.zeros((64, 64)), np.zeros((32, 32), np.uint16))


# ----------------------------------------------------------------------------- detection


def test_detection_finds_the_stars_with_accurate_centroids() -> None:
    field = make_star_field((512, 512), 150, fwhm=3.0, flux_range=(3e3, 1e5), min_separation=12, seed=5)
    bkg = mesh_background(field.data)
    det = detect_sources(field.data, bkg.level, bkg.rms, detect_sigma=5.0)
    ok, idx = _match(det.x, det.y, field.x, field.y)
    assert ok.sum() >= 0.97 * field.x.size  # completeness of bright, separated stars
    assert (~ok).sum() <= 2  # spurious detections
    err = np.hypot(det.x[ok] - field.x[idx[ok]], det.y[ok] - field.y[idx[ok]])
    assert np.median(err) < 0.05


def test_detection_deblends_a_close_pair_and_flags() -> None:
    field = make_star_field((120, 120), 0, seed=0, sky=100.0)
    from nightpipe.photometry.synthetic import star_stamp

    image = field.model.astype(np.float64).copy()
    for x, y, f in [(50.0, 60.0, 20000.0), (56.5, 60.0, 8000.0), (5.0, 100.0, 10000.0)]:
        ix, iy = round(x), round(y)
        image[iy - 15 : iy + 16, max(ix - 15, 0) : ix + 16] += (star_stamp(x - ix, y - iy, 15, 3.0) * f)[
            :, max(15 - ix, 0) :
        ]
    image = np.random.default_rng(1).normal(image, 3.0).astype(np.float32)
    det = detect_sources(image, 100.0, 3.0, edge_margin=10, saturation=1e9)
    assert len(det) == 3
    pair = np.abs(det.y - 60.0) < 1
    assert pair.sum() == 2
    assert np.all(det.flags[pair] & PixelFlag.BLENDED)
    edge = det.x < 10
    assert edge.sum() == 1 and det.flags[edge][0] & PixelFlag.EDGE


def test_detection_skips_bad_pixels_and_flags_saturation() -> None:
    field = make_star_field((128, 128), 1, flux_range=(5e5, 5e5), fwhm=3.0, seed=2, margin=50)
    data = field.data.copy()
    data[data > 20000] = 20000
    mask = np.zeros(data.shape, np.uint16)
    mask[10, 10] = PixelFlag.HOT
    data[10, 10] = 1e6  # a hot pixel: never a source
    bkg = mesh_background(data, mask, box=32)
    det = detect_sources(data, bkg.level, bkg.rms, mask=mask, saturation=20000)
    assert len(det) == 1
    assert det.flags[0] & PixelFlag.SATURATED


# ----------------------------------------------------------------------------- shapes and profiles


@pytest.mark.parametrize(
    ("profile", "beta", "fwhm"), [("gaussian", 0.0, 3.0), ("moffat", 2.5, 3.5), ("moffat", 4.0, 5.0)]
)
def test_frame_fwhm_within_five_percent(profile: str, beta: float, fwhm: float) -> None:
    field = make_star_field(
        (400, 400),
        60,
        fwhm=fwhm,
        profile=profile,
        beta=beta or 3.0,
        min_separation=25,
        seed=6,  # type: ignore[arg-type]
    )
    meas = measure_frame(field.data, PhotometryConfig(), camera=CameraParams(gain=field.gain, read_noise=8.0))
    assert abs(meas.fwhm / fwhm - 1) < 0.05
    assert abs(np.nanmedian(meas.shapes.fwhm) / fwhm - 1) < 0.05


def test_shapes_of_an_elliptical_gaussian() -> None:
    yy, xx = np.mgrid[:61, :61].astype(float)
    sa, sb, th = 3.0, 2.0, np.radians(30.0)
    dx, dy = xx - 30.2, yy - 29.7
    u = dx * np.cos(th) + dy * np.sin(th)
    v = -dx * np.sin(th) + dy * np.cos(th)
    star = np.exp(-0.5 * (u**2 / sa**2 + v**2 / sb**2))
    shp = measure_shapes(star, np.array([30.2]), np.array([29.7]))
    # point-sampled Gaussian: the 1/12 px^2 pixel correction makes a and b slightly smaller
    assert abs(shp.a[0] - np.sqrt(sa**2 - 1 / 12)) < 0.02
    assert abs(shp.b[0] - np.sqrt(sb**2 - 1 / 12)) < 0.02
    assert abs(shp.theta[0] - 30.0) < 0.5
    assert abs(shp.ellipticity[0] - (1 - shp.b[0] / shp.a[0])) < 1e-9


def test_profile_fit_and_curve_of_growth() -> None:
    from nightpipe.photometry.synthetic import star_stamp

    stamp = star_stamp(0.3, -0.2, 20, 4.0, profile="moffat", beta=2.5) * 1000.0
    fit = fit_profile(stamp, np.array([20.3]), np.array([19.8]), fwhm_guess=3.0)
    assert abs(fit.fwhm - 4.0) < 0.02 and abs(fit.beta - 2.5) < 0.05
    gfit = fit_profile(stamp, np.array([20.3]), np.array([19.8]), model="gaussian")
    assert gfit.model == "gaussian" and 3.0 < gfit.fwhm < 5.0
    radii = np.array([2.0, 4.0, 8.0, 16.0])
    cog = curve_of_growth(stamp, 20.3, 19.8, radii)
    alpha = moffat_alpha(4.0, 2.5)
    analytic = 1000.0 * (1 - (1 + radii**2 / alpha**2) ** (1 - 2.5))
    assert np.all(np.diff(cog) > 0)
    # pixel integration blurs the core: 1 % at 1 FWHM, negligible further out
    np.testing.assert_allclose(cog[1], analytic[1], rtol=0.02)
    np.testing.assert_allclose(cog[2:], analytic[2:], rtol=0.002)
    prof = radial_profile(stamp, 20.3, 19.8, 10.0)
    assert prof.bin_mean[0] > prof.bin_mean[-1]


# ----------------------------------------------------------------------------- apertures


def test_circle_rect_overlap_is_exact() -> None:
    r = 2.3
    total = sum(
        circle_rect_overlap(x - 0.5, x + 0.5, y - 0.5, y + 0.5, r) for x in range(-4, 5) for y in range(-4, 5)
    )
    assert abs(total - np.pi * r * r) < 1e-10
    assert abs(circle_rect_overlap(-10, 10, 0, 10, 1.0) - np.pi / 2) < 1e-12
    assert circle_rect_overlap(2, 3, 2, 3, 1.0) == 0.0


def test_aperture_photometry_agrees_with_photutils() -> None:
    from astropy.stats import SigmaClip
    from photutils.aperture import ApertureStats, CircularAnnulus, CircularAperture
    from photutils.aperture import aperture_photometry as pu_photometry

    field = make_star_field((300, 300), 40, seed=7)
    xy = np.column_stack([field.x, field.y])
    radii = [2.5, 4.0, 7.5]
    ours = aperture_photometry(field.data, field.x, field.y, radii, annulus=(10.0, 15.0))
    stats = ApertureStats(field.data, CircularAnnulus(xy, 10.0, 15.0), sigma_clip=SigmaClip(3.0, maxiters=5))
    table = pu_photometry(field.data, [CircularAperture(xy, r) for r in radii], method="exact")
    np.testing.assert_allclose(ours.sky, stats.median, rtol=1e-6)
    for k, r in enumerate(radii):
        ref = np.asarray(table[f"aperture_sum_{k}"]) - stats.median * np.pi * r * r
        np.testing.assert_allclose(ours.flux[:, k], ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())


def test_aperture_errors_follow_the_ccd_equation() -> None:
    image = np.full((60, 60), 100.0)
    res = aperture_photometry(
        image, np.array([30.0]), np.array([30.0]), [4.0], background=100.0, gain=2.0, read_noise=5.0, dark=3.0
    )
    area = np.pi * 16
    expected = np.sqrt(area * (100.0 * 2.0 + 3.0 + 25.0)) / 2.0
    assert abs(res.area[0, 0] - area) < 1e-9
    assert abs(res.flux_err[0, 0] - expected) < 1e-9
    # an uncertainty map replaces the pixel terms
    res2 = aperture_photometry(
        image, np.array([30.0]), np.array([30.0]), [4.0], background=100.0, uncertainty=np.full((60, 60), 3.0)
    )
    assert abs(res2.flux_err[0, 0] - np.sqrt(np.sum(0) + 9.0 * float(np.sum(_weights_sq(4.0))))) < 1e-6


def _weights_sq(r: float) -> np.ndarray:
    w = [
        circle_rect_overlap(x - 0.5, x + 0.5, y - 0.5, y + 0.5, r) for x in range(-6, 7) for y in range(-6, 7)
    ]
    return np.square(w)


def test_flux_pulls_have_unit_width() -> None:
    """Recovered fluxes match the truth within the stated errors (Gaussian stars, big aperture)."""
    pulls = []
    for seed in range(3):
        field = make_star_field(
            (400, 400),
            60,
            fwhm=3.0,
            profile="gaussian",
            min_separation=30,
            flux_range=(1e3, 1e5),
            seed=10 + seed,
        )
        res = aperture_photometry(
            field.data,
            field.x,
            field.y,
            [9.0],
            annulus=(12.0, 20.0),
            gain=field.gain,
            read_noise=field.read_noise,
        )
        pulls.append((res.flux[:, 0] - field.flux) / res.flux_err[:, 0])
    pull = np.concatenate(pulls)
    assert abs(np.mean(pull)) < 0.25
    assert 0.85 < np.std(pull) < 1.15


def test_aperture_flags_mask_edge_and_neighbours() -> None:
    image = np.full((50, 50), 10.0, dtype=np.float32)
    mask = np.zeros(image.shape, np.uint16)
    mask[20, 20] = PixelFlag.COSMIC_RAY
    x = np.array([20.0, 23.0, 2.0, 40.0])
    y = np.array([20.0, 20.0, 40.0, 10.0])
    image[10, 40] = 70000
    res = aperture_photometry(image, x, y, [3.0, 5.0], annulus=(8.0, 12.0), mask=mask, saturation=65000)
    assert res.flags[0] & PixelFlag.COSMIC_RAY and res.flags[0] & PixelFlag.NEIGHBOUR
    assert res.flags[1] & PixelFlag.NEIGHBOUR
    assert res.flags[2] & PixelFlag.EDGE
    assert res.flags[3] & PixelFlag.SATURATED
    with pytest.raises(PhotometryError, match="radii"):
        aperture_photometry(image, x, y, [0.0])
    with pytest.raises(PhotometryError, match="annulus"):
        aperture_photometry(image, x, y, [3.0], annulus=(5.0, 4.0))


# ----------------------------------------------------------------------------- tables


@pytest.mark.parametrize("suffix", [".fits", ".ecsv"])
def test_source_table_round_trip(tmp_path: Path, suffix: str) -> None:
    field = make_star_field((256, 256), 25, seed=8, min_separation=15)
    meas = measure_frame(field.data, PhotometryConfig(), camera=CameraParams(gain=field.gain))
    meta = {"frame": "it's x.fits", "exptime": 30.0, "gain": 1.5, "note": "long " * 40}
    table = build_source_table(meas, pixel_scale=1.2, meta=meta)
    path = write_source_table(table, tmp_path / "sources" / f"my frame{suffix}")
    back = read_source_table(path)
    assert back.meta == table.meta  # nested lists and dicts, long strings and quotes survive
    for name in table.colnames:
        assert back[name].dtype == table[name].dtype and back[name].description == table[name].description
        np.testing.assert_array_equal(np.asarray(back[name]), np.asarray(table[name]))
    assert back["aper_flux"].shape == (len(meas.detections), len(meas.radii))
    assert back.meta["aper_radii_px"] == pytest.approx(list(meas.radii))
    assert back.meta["fwhm_arcsec"] == pytest.approx(meas.fwhm * 1.2)
    assert back["x"].unit == "pix" and back["aper_flux"].unit == "adu"
    assert np.all(np.isnan(back["ra"]))
    assert not list(path.parent.glob(".*"))  # no temporary file left behind
    with pytest.raises(PhotometryError, match="cannot read"):
        read_source_table(tmp_path / "missing.ecsv")
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(path.read_bytes()[:3000] if suffix == ".fits" else b"SIMPLE  =")
    with pytest.raises(PhotometryError, match="truncated.fits"):
        read_source_table(truncated)


# ----------------------------------------------------------------------------- real data


def test_hatp32_bright_stars_and_seeing(shared_data: Path) -> None:
    from nightpipe.frames.fitsio import read_image

    data, _header = read_image(shared_data / "hatp32-microobservatory" / "HATP-32171220013343.FITS")
    meas = measure_frame(data, PhotometryConfig(), camera=CameraParams(gain=1.0, saturation=4095))
    assert len(meas.detections) > 30
    # MicroObservatory at 5.2"/px: stars are a little under-sampled, FWHM about 1.5-3 px
    assert 1.2 < meas.fwhm < 3.5
    # HAT-P-32 and EXOTIC's two comparison stars (exotic-reference/inits.json pixel positions)
    for x, y in [(424, 286), (465, 183), (512, 263)]:
        assert np.min(np.hypot(meas.detections.x - x, meas.detections.y - y)) < 8


def test_wasp12_dss_stars(shared_data: Path) -> None:
    from astropy.coordinates import SkyCoord

    from nightpipe.frames.fitsio import read_image
    from nightpipe.photometry.step import sky_positions

    folder = shared_data / "wasp12-dss"
    data, header = read_image(folder / "wasp_12.Rc.060.fits")
    meas = measure_frame(data, PhotometryConfig(), camera=CameraParams(gain=1.0))
    assert len(meas.detections) > 100
    assert 1.5 < meas.fwhm < 4.0  # 3.6"/px DSS cut-out: about 8" seeing-plus-plate blur
    ra, dec, scale = sky_positions(header, meas.detections.x, meas.detections.y)
    assert ra is not None and dec is not None and scale == pytest.approx(3.6, rel=0.01)
    # WASP-12 and the AstroImageJ comparison stars of the radec file are all detected
    rows = [
        line.split(",")[:2]
        for line in (folder / "wasp_12.Rc.060.radec.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    wanted = SkyCoord([r[0] for r in rows], [r[1] for r in rows], unit=("hourangle", "deg"))
    found = SkyCoord(ra, dec, unit="deg")
    _idx, sep, _d = wanted.match_to_catalog_sky(found)
    assert np.all(sep.arcsec < 2 * 3.6)


def test_sky_from_the_background_map_matches_the_annulus() -> None:
    field = make_star_field((300, 300), 30, seed=9, min_separation=25, flux_range=(5e3, 1e5))
    cam = CameraParams(gain=field.gain, read_noise=field.read_noise)
    by_annulus = measure_frame(field.data, PhotometryConfig(), camera=cam)
    by_map = measure_frame(field.data, PhotometryConfig(sky="background"), camera=cam)
    assert by_map.annulus is None and by_annulus.annulus is not None
    np.testing.assert_allclose(by_map.photometry.sky, field.sky, atol=1.0)
    diff = by_map.photometry.flux[:, -1] - by_annulus.photometry.flux[:, -1]
    assert np.all(np.abs(diff) < 3 * by_annulus.photometry.flux_err[:, -1])


def test_source_table_fits_is_read_by_astropy_and_strings_fall_back(tmp_path: Path) -> None:
    field = make_star_field((256, 256), 25, seed=8, min_separation=15)
    meas = measure_frame(field.data, PhotometryConfig(), camera=CameraParams(gain=field.gain))
    table = build_source_table(meas, meta={"frame": "x.fits"})
    path = write_source_table(table, tmp_path / "t.fits")
    other = Table.read(path, hdu="SOURCES", mask_invalid=False)  # the same file through astropy
    for name in table.colnames:
        np.testing.assert_array_equal(np.asarray(other[name]), np.asarray(table[name]))
        assert other[name].unit == table[name].unit and other[name].dtype.kind == table[name].dtype.kind
    table["label"] = [f"s{i}" for i in range(len(table))]  # strings: written by astropy instead
    back = read_source_table(write_source_table(table, tmp_path / "s.fits"))
    assert list(back["label"]) == list(table["label"]) and back.meta == table.meta
    assert back["flags"].description == table["flags"].description  # descriptions kept too
