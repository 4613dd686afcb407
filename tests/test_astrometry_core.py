"""Unit tests of the pure astrometry functions: fitting, matching, hints, detection, index reading."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from nightpipe.astrometry.checks import check_wcs, header_has_celestial_wcs, refine_wcs, wcs_geometry
from nightpipe.astrometry.fitting import (
    SipTerms,
    fit_wcs,
    inverse_sip,
    make_wcs,
    residuals_arcsec,
    tan_deproject,
    tan_project,
)
from nightpipe.astrometry.hints import hints_from_header, pointing_from_header, scale_from_header
from nightpipe.astrometry.index_catalog import IndexCatalog, RefStars
from nightpipe.astrometry.match import (
    match_points,
    match_points_any_orientation,
    rotation_matrix,
    turn_angle_deg,
    vote_offset,
)
from nightpipe.astrometry.series import NightSolver
from nightpipe.astrometry.sources import StarList, frame_stars
from nightpipe.config import AstrometryConfig, PhotometryConfig
from nightpipe.errors import AstrometryError, CatalogError
from nightpipe.frames.flags import PixelFlag
from nightpipe.photometry.frame_sources import detect_frame

INDEX_DIR = Path("/usr/share/astrometry")
SHAPE = (500, 650)


def _truth_wcs(sip: bool = True) -> tuple:
    cd = np.array([[-1.434e-3, 4.6e-6], [-4.8e-6, -1.435e-3]])
    terms = None
    if sip:
        a = np.zeros((3, 3))
        b = np.zeros((3, 3))
        a[2, 0], a[0, 2], a[1, 1] = 9e-7, -1.5e-6, 1.1e-7
        b[2, 0], b[0, 2], b[1, 1] = -1.6e-6, 4.3e-6, -8.7e-7
        crpix = np.array([325.5, 250.5])
        ap, bp = inverse_sip(a, b, 2, 650, 500, crpix)
        terms = SipTerms(2, a, b, ap, bp)
    return make_wcs((31.2486, 46.741), (325.5, 250.5), cd, terms, SHAPE), terms


def test_tan_projection_round_trip() -> None:
    rng = np.random.default_rng(0)
    ra = 31.0 + rng.uniform(-0.5, 0.5, 100)
    dec = 46.7 + rng.uniform(-0.5, 0.5, 100)
    xi, eta = tan_project(ra, dec, 31.0, 46.7)
    ra2, dec2 = tan_deproject(xi, eta, 31.0, 46.7)
    assert np.allclose(ra2, ra, atol=1e-10) and np.allclose(dec2, dec, atol=1e-10)


def test_projection_agrees_with_astropy_wcs() -> None:
    wcs, _ = _truth_wcs(sip=False)
    px = np.array([[0.0, 0.0], [649.0, 499.0], [100.0, 400.0]])
    sky = wcs.all_pix2world(px, 0)
    xi, eta = tan_project(sky[:, 0], sky[:, 1], *wcs.wcs.crval)
    expected = (px + 1 - wcs.wcs.crpix) @ wcs.wcs.cd.T
    assert np.allclose(np.column_stack([xi, eta]), expected, atol=1e-10)


def test_fit_recovers_sip_wcs_from_points() -> None:
    truth, _ = _truth_wcs(sip=True)
    rng = np.random.default_rng(1)
    px = rng.uniform([0, 0], [649, 499], (60, 2))
    sky = truth.all_pix2world(px, 0)
    fit = fit_wcs(px[:, 0], px[:, 1], sky[:, 0], sky[:, 1], shape=SHAPE, sip_order=2)
    grid = rng.uniform([0, 0], [649, 499], (200, 2))
    back = fit.all_world2pix(truth.all_pix2world(grid, 0), 0)
    assert np.max(np.hypot(*(back - grid).T)) < 1e-4
    assert fit.sip is not None and fit.sip.a_order == 2


def test_fit_with_fixed_sip_and_noise_gives_expected_rms() -> None:
    truth, sip = _truth_wcs(sip=True)
    rng = np.random.default_rng(2)
    px = rng.uniform([0, 0], [649, 499], (400, 2))
    sky = truth.all_pix2world(px, 0)
    noisy = px + rng.normal(0, 0.1, px.shape)
    fit = fit_wcs(noisy[:, 0], noisy[:, 1], sky[:, 0], sky[:, 1], shape=SHAPE, fixed_sip=sip)
    res = residuals_arcsec(fit, noisy[:, 0], noisy[:, 1], sky[:, 0], sky[:, 1])
    # 0.1 px per axis -> 0.1 * sqrt(2) px radial RMS, at 5.17 arcsec/px
    assert np.sqrt(np.mean(res**2)) == pytest.approx(0.1 * np.sqrt(2) * 5.166, rel=0.1)


def test_fit_rejects_too_few_points() -> None:
    with pytest.raises(ValueError, match="too few"):
        fit_wcs(np.arange(3.0), np.arange(3.0), np.arange(3.0), np.arange(3.0), shape=SHAPE, sip_order=2)


def test_geometry_of_a_known_wcs() -> None:
    cd = np.array([[-1e-3, 0.0], [0.0, 1e-3]])  # north up, east left
    geo = wcs_geometry(make_wcs((97.6, 29.7), (500.5, 500.5), cd, None, (1000, 1000)), (1000, 1000))
    assert geo.pixel_scale == pytest.approx(3.6, rel=1e-4)
    assert min(geo.rotation, 360 - geo.rotation) < 0.01
    assert not geo.flipped
    rot = np.radians(30.0)
    cd30 = 1e-3 * np.array([[-np.cos(rot), np.sin(rot)], [np.sin(rot), np.cos(rot)]])
    geo30 = wcs_geometry(make_wcs((97.6, 29.7), (500.5, 500.5), cd30, None, (1000, 1000)), (1000, 1000))
    assert min(abs(geo30.rotation - 30), abs(geo30.rotation - 330)) < 0.05


def test_vote_offset_with_outliers_and_missing_stars() -> None:
    rng = np.random.default_rng(4)
    a = rng.uniform(0, 600, (50, 2))
    moved = a[10:] + np.array([-270.3, 12.8]) + rng.normal(0, 0.2, (40, 2))
    b = np.vstack([moved, rng.uniform(0, 600, (15, 2))])
    shift, votes = vote_offset(a, b, max_shift=400)
    assert np.allclose(shift, [-270.3, 12.8], atol=0.3)
    assert votes >= 30


def test_match_points_recovers_a_small_rotation() -> None:
    rng = np.random.default_rng(5)
    src = rng.uniform(0, 600, (80, 2))
    angle = np.radians(0.3)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rot.T + [35.0, -20.0] + rng.normal(0, 0.05, src.shape)
    match = match_points(src, dst, max_shift=200)
    assert match is not None and len(match) >= 75
    assert np.allclose(match.matrix[:, :2], rot, atol=1e-3)
    assert np.array_equal(match.src_index, match.dst_index)


def test_match_points_gives_up_on_unrelated_lists() -> None:
    rng = np.random.default_rng(6)
    assert (
        match_points(
            rng.uniform(0, 600, (40, 2)), rng.uniform(0, 600, (40, 2)), max_shift=300, min_matches=10
        )
        is None
    )


@pytest.mark.parametrize(("angle", "mirror"), [(180.0, False), (90.0, False), (-33.7, False), (12.0, True)])
def test_match_any_orientation_turned_mirrored_cropped(angle: float, mirror: bool) -> None:
    rng = np.random.default_rng(8)
    ref = rng.uniform(0, [650, 500], (150, 2))  # brightest first, as star lists are
    turn = rotation_matrix(angle, mirror=mirror)
    centre = np.array([325.0, 250.0])
    frame = (ref - centre) @ turn.T + centre + [41.0, -17.0] + rng.normal(0, 0.2, ref.shape)
    seen = np.flatnonzero(np.all((frame >= 0) & (frame <= [650, 500]), axis=1) & (rng.random(150) > 0.15))
    noise = rng.uniform(0, [650, 500], (25, 2))  # sources the reference does not have
    dst = np.vstack([frame[seen], noise])
    order = np.argsort(np.arange(dst.shape[0]) + rng.normal(0, 5, dst.shape[0]))  # brightness jitters
    dst, truth = dst[order], np.r_[seen, -np.ones(25, int)][order]
    shifted = match_points(ref, dst, max_shift=500)
    assert shifted is None or len(shifted) < 0.2 * seen.size  # a shift alone finds chance pairs at best
    match = match_points_any_orientation(ref, dst)
    assert match is not None and len(match) >= 0.9 * seen.size
    assert np.array_equal(truth[match.dst_index], match.src_index)  # every pair is the same star
    assert turn_angle_deg(match.matrix) == pytest.approx(angle, abs=0.05)
    assert (np.linalg.det(match.matrix[:, :2]) < 0) == mirror


def test_match_any_orientation_gives_up_on_unrelated_lists() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.uniform(0, 600, (40, 2)), rng.uniform(0, 600, (40, 2))
    assert match_points_any_orientation(a, b, min_matches=10) is None


def _frame_stars(img: np.ndarray, flags: np.ndarray | None = None) -> StarList:
    return frame_stars(img, detect_frame(img, PhotometryConfig(), mask=flags))


def test_frame_stars_finds_injected_positions() -> None:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:200, :300]
    truth = rng.uniform([10, 10], [290, 190], (20, 2))
    fluxes = np.geomspace(2e4, 1e3, 20)
    img = np.full((200, 300), 300.0)
    for (x, y), f in zip(truth, fluxes, strict=True):
        img += f / (2 * np.pi * 1.3**2) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.3**2))
    img += rng.normal(0, 3, img.shape)
    stars = _frame_stars(img.astype(np.float32))
    assert len(stars) == 20
    assert np.allclose(stars.xy[:5], truth[:5], atol=0.05)  # brightest first, same order
    assert stars.fwhm_px == pytest.approx(2.3548 * 1.3, rel=0.15)
    assert not stars.saturated.any()
    # a calibrated frame's SATURATED bits mark the star on them
    flags = np.zeros(img.shape, np.uint16)
    x0, y0 = np.rint(truth[0]).astype(int)
    flags[y0, x0] = int(PixelFlag.SATURATED)
    marked = _frame_stars(img.astype(np.float32), flags)
    assert marked.saturated[0] and not marked.saturated[1:].any()


def test_frame_stars_handles_nan_and_rejects_bad_shapes() -> None:
    img = np.random.default_rng(8).normal(100, 2, (100, 100)).astype(np.float32)
    img[:, :10] = np.nan
    assert len(_frame_stars(img)) <= 2
    with pytest.raises(AstrometryError, match="2-D"):
        frame_stars(np.zeros((3, 4, 5)), detect_frame(img, PhotometryConfig()))
    solver = NightSolver(AstrometryConfig(), IndexCatalog([]))
    with pytest.raises(AstrometryError, match="source detection failed"):
        solver.detect(np.full((20, 20), np.nan, np.float32))


def test_hints_from_header_variants() -> None:
    header = fits.Header(
        {"OBJCTRA": "02 04 10.3", "OBJCTDEC": "+46 41 16", "FOCALLEN": 1000.0, "XPIXSZ": 9.0}
    )
    ra, dec = pointing_from_header(header)
    assert ra == pytest.approx(31.04292, abs=1e-4) and dec == pytest.approx(46.68778, abs=1e-4)
    assert scale_from_header(header) == pytest.approx(1.8564, rel=1e-3)
    unbinned = fits.Header({"FOCALLEN": 1000.0, "PIXSIZE1": 4.5, "XBINNING": 2})
    assert scale_from_header(unbinned) == pytest.approx(1.8564, rel=1e-3)
    assert scale_from_header(fits.Header({"IM_SCALE": 5.21})) == 5.21
    assert pointing_from_header(fits.Header({"RA": "garbage"})) == (None, None)
    hints = hints_from_header(fits.Header(), AstrometryConfig(pixel_scale=2.0, scale_tolerance=0.2))
    assert (hints.ra, hints.scale_low, hints.scale_high) == (None, 1.6, 2.4)


def test_header_wcs_detection() -> None:
    wcs, _ = _truth_wcs(sip=True)
    assert header_has_celestial_wcs(wcs.to_header(relax=True)) is not None
    assert header_has_celestial_wcs(fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN"})) is None
    assert header_has_celestial_wcs(fits.Header({"RA": 10.0})) is None


def test_refine_and_check_on_synthetic_catalogue() -> None:
    truth, _ = _truth_wcs(sip=True)
    rng = np.random.default_rng(9)
    px = rng.uniform([5, 5], [644, 494], (40, 2))
    sky = truth.all_pix2world(px, 0)
    refs = RefStars(sky[:, 0], sky[:, 1], np.linspace(8, 12, 40))
    noisy = px + rng.normal(0, 0.1, px.shape)
    stars = StarList(
        noisy[:, 0], noisy[:, 1], np.linspace(1e5, 1e3, 40), np.ones(40), np.zeros(40, bool), 3.0, SHAPE
    )
    # a WCS 4 pixels off: the check with shift voting measures the offset as residual, refinement removes it
    off = truth.deepcopy()
    off.wcs.crpix = off.wcs.crpix + np.array([4.0, -3.0])
    bad = check_wcs(off, stars, refs, radius_px=3.0, max_shift_px=10.0)
    assert bad.n_matched >= 35 and bad.rms_px == pytest.approx(5.0, abs=0.3)
    refined = refine_wcs(off, stars, refs, sip_order=2, radius_px=3.0, max_shift_px=10.0)
    assert refined is not None
    assert refined.quality.n_matched >= 35
    assert refined.quality.rms_px == pytest.approx(0.14, abs=0.05)


def _have_index() -> bool:
    return any(INDEX_DIR.glob("index-*.fits"))


@pytest.mark.skipif(
    not _have_index(), reason="astrometry.net index files not installed in /usr/share/astrometry"
)
@pytest.mark.skipif(
    shutil.which("query-starkd") is None, reason="astrometry.net's query-starkd not installed"
)
def test_index_catalog_agrees_with_query_starkd() -> None:
    path = INDEX_DIR / "index-tycho2-09.littleendian.fits"
    if not path.exists():
        pytest.skip("index-tycho2-09 not installed")
    out = subprocess.run(
        ["query-starkd", "-r", "31.04", "-d", "46.69", "-R", "0.6", "-t", "MAG_VT", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    oracle = np.array(
        [[float(v) for v in line.split(",")] for line in out.splitlines() if line and line[0].isdigit()]
    )
    cat = IndexCatalog.from_dirs([INDEX_DIR], max_files=None)
    cat = IndexCatalog([f for f in cat.files if f.path == path])
    stars = cat.cone(31.04, 46.69, 0.6)
    assert len(stars) == oracle.shape[0] > 10
    order = np.lexsort((stars.dec, stars.ra))
    oorder = np.lexsort((oracle[:, 1], oracle[:, 0]))
    assert np.allclose(stars.ra[order], oracle[oorder, 0], atol=1e-4)
    assert np.allclose(stars.dec[order], oracle[oorder, 1], atol=1e-4)
    assert np.allclose(stars.mag[order], oracle[oorder, 2], atol=1e-3)


def test_index_catalog_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no astrometry.net index files"):
        IndexCatalog.from_dirs([tmp_path])
    (tmp_path / "index-broken.fits").write_bytes(b"not a fits file at all")
    with pytest.raises(CatalogError, match="index-broken.fits"):
        IndexCatalog.from_dirs([tmp_path])
