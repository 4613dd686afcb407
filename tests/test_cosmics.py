"""Cosmic rays: full astroscrappy and the fast windowed mode, on gmos-cosmics and injected hits."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from scipy import ndimage, signal

from nightpipe.calib.cosmics import (
    CosmicParams,
    CosmicResult,
    axis_sharpness,
    detect_cosmics,
    detect_cosmics_fast,
    detect_cosmics_full,
    estimate_psf,
    gaussian_sharpness,
    laplacian_plus,
    screen_candidates,
)
from nightpipe.errors import CalibrationError

GMOS = CosmicParams(gain=1.933, read_noise=4.24)  # values of astroscrappy's own GMOS test
# the two cosmic rays of the GMOS cut-out, as located by astroscrappy's test suite
COSMIC1 = (slice(41, 72), slice(142, 161))
COSMIC2 = (slice(117, 147), slice(35, 43))


def star_field_with_cosmics(
    size: int = 384, nstars: int = 120, ncosmics: int = 40, seed: int = 7
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded star field (Gaussian PSF, Poisson + read noise, ADU, gain 1.5) and injected tracks."""
    rng = np.random.default_rng(seed)
    gain, rn, sky, sigma = 1.5, 8.0, 300.0, 1.4
    image = np.full((size, size), sky)
    yy, xx = np.mgrid[:size, :size]
    for x, y, flux in zip(
        rng.uniform(8, size - 8, nstars),
        rng.uniform(8, size - 8, nstars),
        10 ** rng.uniform(2.5, 5.0, nstars),
        strict=True,
    ):
        sl = (slice(int(y) - 8, int(y) + 9), slice(int(x) - 8, int(x) + 9))
        r2 = (xx[sl] - x) ** 2 + (yy[sl] - y) ** 2
        image[sl] += flux / (2 * np.pi * sigma**2) * np.exp(-r2 / (2 * sigma**2))
    image = (rng.poisson(image * gain) + rng.normal(0, rn, image.shape)) / gain
    truth = np.zeros(image.shape, dtype=bool)
    for _ in range(ncosmics):
        x0, y0 = rng.integers(6, size - 6, 2)
        angle, length, amp = rng.uniform(0, np.pi), rng.integers(1, 7), rng.uniform(300, 4000)
        for t in range(length):
            px, py = round(x0 + t * np.cos(angle)), round(y0 + t * np.sin(angle))
            image[py, px] += amp * rng.uniform(0.5, 1.0)
            truth[py, px] = True
    return image.astype(np.float32), truth


@pytest.fixture(scope="module")
def gmos(shared_data: Path) -> np.ndarray:
    with fits.open(shared_data / "gmos-cosmics" / "gmos.fits") as hdul:
        return np.asarray(hdul["SCI"].data, dtype=np.float32)


@pytest.fixture(scope="module")
def field() -> tuple[np.ndarray, np.ndarray]:
    return star_field_with_cosmics()


@pytest.fixture(scope="module")
def field_results(field: tuple[np.ndarray, np.ndarray]) -> tuple[CosmicResult, CosmicResult]:
    """Full and fast runs (with cleaning) on the star field, computed once for the module."""
    params = CosmicParams(gain=1.5, read_noise=8.0, clean=True)
    return detect_cosmics_full(field[0], params), detect_cosmics_fast(field[0], params)


def _objects(mask: np.ndarray) -> list[tuple[slice, slice]]:
    labels, _ = ndimage.label(mask)
    return [sl for sl in ndimage.find_objects(labels) if sl is not None]


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_gmos_cosmic_rays_are_flagged(gmos: np.ndarray, mode: str) -> None:
    result = detect_cosmics(gmos, mode, GMOS)
    assert result is not None
    objects = _objects(result.mask)
    assert COSMIC1 in objects
    assert COSMIC2 in objects
    # the two long tracks make almost all of the flagged pixels
    assert result.mask[COSMIC1].sum() + result.mask[COSMIC2].sum() >= 0.95 * result.npixels


def test_fast_equals_full_on_gmos(gmos: np.ndarray) -> None:
    full = detect_cosmics_full(gmos, GMOS)
    fast = detect_cosmics_fast(gmos, GMOS)
    assert np.array_equal(full.mask, fast.mask)
    assert fast.examined_fraction < 1.0


def test_injected_cosmics_recall_and_fast_agreement(
    field: tuple[np.ndarray, np.ndarray], field_results: tuple[CosmicResult, CosmicResult]
) -> None:
    _, truth = field
    full, fast = field_results
    recall_full = (full.mask & truth).sum() / truth.sum()
    recall_fast = (fast.mask & truth).sum() / truth.sum()
    assert recall_full > 0.95
    assert recall_fast == recall_full
    # fast never flags what astroscrappy does not, and finds all it finds on real hits
    assert not (fast.mask & ~full.mask).any()
    near_truth = ndimage.binary_dilation(truth, iterations=2)
    assert np.array_equal(fast.mask & near_truth, full.mask & near_truth)
    assert fast.examined_fraction < 0.5


def test_screen_is_a_superset_of_first_pass_detections(field: tuple[np.ndarray, np.ndarray]) -> None:
    image, truth = field
    params = CosmicParams(gain=1.5, read_noise=8.0)
    ys, xs = screen_candidates(image, params)
    screened = np.zeros(image.shape, dtype=bool)
    screened[ys, xs] = True
    # every injected hit brighter than 10 sigma of the local noise has a candidate within 1 px
    bright = truth & (image - ndimage.median_filter(image, 5) > 10 * np.sqrt(300 / 1.5 + (8 / 1.5) ** 2))
    reach = ndimage.binary_dilation(screened, structure=np.ones((3, 3), dtype=bool))
    assert bright.sum() > 20
    assert not (bright & ~reach).any()


def test_laplacian_plus_equals_subsample_convolve_rebin() -> None:
    rng = np.random.default_rng(2)
    image = rng.normal(100, 10, (20, 24)).astype(np.float64)
    sub = np.kron(image, np.ones((2, 2)))
    kernel = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], dtype=np.float64)
    conv = signal.convolve2d(np.pad(sub, 1, mode="edge"), kernel, mode="valid")
    conv[conv < 0] = 0
    rebinned = conv.reshape(20, 2, 24, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(laplacian_plus(image), rebinned, rtol=1e-12)


def test_cleaning_replaces_hits_with_local_sky(
    field: tuple[np.ndarray, np.ndarray], field_results: tuple[CosmicResult, CosmicResult]
) -> None:
    image, truth = field
    for result in field_results:
        assert result.cleaned is not None
        hit = result.mask & truth
        assert np.median(result.cleaned[hit] - image[hit]) < -200
        assert np.array_equal(result.cleaned[~result.mask], image[~result.mask])


def test_masked_and_nan_pixels_are_not_flagged() -> None:
    image, _ = star_field_with_cosmics(size=96, nstars=5, ncosmics=0, seed=3)
    image[40, 40] += 3000
    image[60, 60] += 3000
    image[10, 10] = np.nan
    inmask = np.zeros(image.shape, dtype=bool)
    inmask[60, 60] = True
    for mode in ("full", "fast"):
        result = detect_cosmics(image, mode, CosmicParams(gain=1.5, read_noise=8.0), inmask=inmask)
        assert result is not None
        assert result.mask[40, 40]
        assert not result.mask[60, 60]
        assert not result.mask[10, 10]


def test_modes_and_errors() -> None:
    image = np.zeros((16, 16), np.float32)
    assert detect_cosmics(image, "off", CosmicParams()) is None
    with pytest.raises(CalibrationError, match="unknown cosmic-ray mode"):
        detect_cosmics(image, "quick", CosmicParams())
    with pytest.raises(CalibrationError, match="2-D"):
        detect_cosmics_full(np.zeros(5, np.float32), CosmicParams())
    with pytest.raises(CalibrationError, match="gain"):
        detect_cosmics_fast(image, replace(CosmicParams(), gain=0.0))


HATP32 = CosmicParams(gain=1.0, read_noise=15.0, saturation=4095.0)  # examples/hatp32.toml


@pytest.fixture(scope="module")
def hatp32(shared_data: Path) -> np.ndarray:
    path = shared_data / "hatp32-microobservatory" / "HATP-32171220020312.FITS"
    return np.asarray(fits.getdata(path), dtype=np.float32)


def _brightest_unsaturated_stars(image: np.ndarray, count: int = 60) -> np.ndarray:
    """(y, x) of the ``count`` brightest local maxima not near saturation (independent of the code)."""
    sky = np.median(image)
    smooth = ndimage.uniform_filter(image - sky, 3)
    peaks = (smooth == ndimage.maximum_filter(smooth, 9)) & (smooth > 30)
    peaks &= ndimage.maximum_filter(image, 5) < 4000
    peaks[:5], peaks[-5:], peaks[:, :5], peaks[:, -5:] = False, False, False, False
    ys, xs = np.nonzero(peaks)
    order = np.argsort(-smooth[ys, xs])[:count]
    return np.c_[ys[order], xs[order]]


def _stars_hit(mask: np.ndarray, stars: np.ndarray, radius: int = 3) -> int:
    return sum(bool(mask[y - radius : y + radius + 1, x - radius : x + radius + 1].any()) for y, x in stars)


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_hatp32_star_cores_not_flagged_injected_hits_found(hatp32: np.ndarray, mode: str) -> None:
    """Regression (follow-up of issue 6): undersampled star cores were flagged as cosmic rays."""
    stars = _brightest_unsaturated_stars(hatp32)
    assert len(stars) == 60
    inmask = hatp32 >= 4095
    classic = detect_cosmics(hatp32, mode, replace(HATP32, psf_veto=False), inmask=inmask)
    assert classic is not None
    assert _stars_hit(classic.mask, stars) >= 10  # the problem is real without the veto
    result = detect_cosmics(hatp32, mode, HATP32, inmask=inmask)
    assert result is not None
    assert 1.2 < result.extra["psf_fwhm"] < 3.0
    assert _stars_hit(result.mask, stars) <= 1  # < 2 % of the 60 brightest stars

    # sharp hits on the sky, on star wings and a short track, injected into a copy of the frame
    rng = np.random.default_rng(5)
    image = hatp32.copy()
    truth = np.zeros(image.shape, dtype=bool)
    # on the sky: away from stars (a hit merging with a star core's group is unflagged with it)
    busy = ndimage.binary_dilation(classic.mask | inmask | (image > np.median(image) + 100), iterations=4)
    spots = [(int(y), int(x)) for y, x in rng.integers(20, [480, 630], size=(60, 2))]
    spots = [s for s in spots if not busy[s]][:25]
    spots += [(int(y) + 2, int(x) + 2) for y, x in stars[:5]]  # on the wings of bright stars
    for y, x in spots:
        image[y, x] += rng.uniform(300, 2000)
        truth[y, x] = True
    for t in range(6):
        image[100 + t, 300 + t] += 800
        truth[100 + t, 300 + t] = True
    found = detect_cosmics(image, mode, HATP32, inmask=inmask)
    assert found is not None
    assert found.mask[truth].mean() >= 0.95
    assert _stars_hit(found.mask & ~truth & ~ndimage.binary_dilation(truth, iterations=2), stars) <= 1


def test_psf_veto_keeps_fast_equal_to_full_on_injected_field(field: tuple[np.ndarray, np.ndarray]) -> None:
    image, truth = field
    params = CosmicParams(gain=1.5, read_noise=8.0)
    full, fast = detect_cosmics_full(image, params), detect_cosmics_fast(image, params)
    assert full.extra["psf_fwhm"] > 0  # the veto ran
    assert (full.mask & truth).sum() / truth.sum() > 0.95
    assert not (fast.mask & ~full.mask).any()


def test_axis_sharpness_is_offset_independent_for_a_gaussian() -> None:
    sigma = 1.0
    for dy, dx in [(0.0, 0.0), (0.3, -0.4), (-0.5, 0.5)]:
        g = [np.exp(-((oy - dy) ** 2 + (ox - dx) ** 2) / (2 * sigma**2)) for oy, ox in _CROSS]
        assert axis_sharpness(np.array([g]))[0] == pytest.approx(gaussian_sharpness(2.3548 * sigma))
    assert axis_sharpness(np.array([[100.0, 0.0, 50, 50, 50]]))[0] == np.inf


_CROSS = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]


def test_estimate_psf_needs_stars() -> None:
    rng = np.random.default_rng(0)
    assert estimate_psf(rng.normal(100, 5, (64, 64))) is None
    with pytest.raises(CalibrationError, match="PSF FWHM"):
        detect_cosmics_full(np.zeros((16, 16), np.float32), replace(CosmicParams(), psf_fwhm=-1.0))


def test_matched_filter_fine_structure_spares_star_cores_but_not_gmos_tracks(
    hatp32: np.ndarray, gmos: np.ndarray
) -> None:
    """astroscrappy's fsmode='convolve' (``fine_structure="psf"``): why it is not the default."""
    stars = _brightest_unsaturated_stars(hatp32)
    inmask = hatp32 >= 4095
    convolve = replace(HATP32, fine_structure="psf", psf_veto=False)
    result = detect_cosmics_full(hatp32, convolve, inmask=inmask)
    assert result.extra["psf_fwhm"] > 0
    assert _stars_hit(result.mask, stars) <= 1
    tracks = detect_cosmics_full(gmos, replace(GMOS, fine_structure="psf", psf_fwhm=2.0, psf_veto=False))
    assert tracks.mask[COSMIC1].sum() + tracks.mask[COSMIC2].sum() < 0.5 * 168
    with pytest.raises(CalibrationError, match="fine-structure"):
        detect_cosmics_full(gmos, replace(GMOS, fine_structure="wavelet"))


def _test_images() -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    noisy = rng.normal(300, 20, (60, 70)).astype(np.float32)
    holes = noisy.copy()
    holes[5, 5] = np.nan
    holes[10:12, 30] = 5000
    holes[40, :] = -3
    ties = rng.integers(0, 5, (30, 40)).astype(np.float32)
    return [noisy, holes, ties, noisy[:1, :7].copy(), noisy[:9, :1].copy()]


def test_compiled_laplacian_and_first_pass_equal_the_array_versions() -> None:
    from nightpipe.calib import cosmics_screen

    rng = np.random.default_rng(12)
    for image in _test_images():
        for dtype in (np.float32, np.float64):
            ref = cosmics_screen._laplacian_plus_numpy(image.astype(dtype))
            got = laplacian_plus(image.astype(dtype))
            assert got.dtype == ref.dtype
            np.testing.assert_array_equal(got, ref)  # bit for bit (NaN where NaN)
        ys, xs = np.nonzero(rng.random(image.shape) < 0.5)
        sp_ref, ratio_ref = cosmics_screen._lacosmic_first_pass_numpy(image, ys, xs, GMOS)
        sp, ratio = cosmics_screen._lacosmic_first_pass_at(image, ys, xs, GMOS)
        np.testing.assert_array_equal(sp, sp_ref)
        np.testing.assert_array_equal(ratio, ratio_ref)


def test_sparse_filters_equal_whole_frame_filters() -> None:
    from nightpipe.calib import cosmics_psf, cosmics_screen

    rng = np.random.default_rng(13)
    image = rng.integers(0, 50, (40, 50)).astype(np.float32)  # many ties
    ys, xs = np.nonzero(np.ones(image.shape, bool))
    low = cosmics_screen._minimum5_at(image, ys, xs)
    np.testing.assert_array_equal(low, ndimage.minimum_filter(image, size=5, mode="nearest")[ys, xs])
    inner = np.zeros(image.shape, bool)
    inner[3:-3, 3:-3] = True
    py, px = cosmics_psf._local_maxima(image, *np.nonzero(inner), 3)
    expected = (image == ndimage.maximum_filter(image, size=7)) & inner
    assert set(zip(py.tolist(), px.tolist(), strict=True)) == set(zip(*np.nonzero(expected), strict=True))
    # each flagged group's brightest pixel, as ndimage.maximum_position (no ties here)
    smooth = rng.normal(size=(40, 50))
    labels, count = ndimage.label(smooth > 1.0, structure=np.ones((3, 3), bool))
    expected_peaks = ndimage.maximum_position(smooth, labels, index=np.arange(1, count + 1))
    for index, extent in enumerate(ndimage.find_objects(labels), start=1):
        assert cosmics_psf._group_peak(smooth, labels, index, extent) == tuple(
            map(int, expected_peaks[index - 1])
        )


def test_screen_equals_the_whole_frame_screen(gmos: np.ndarray, hatp32: np.ndarray) -> None:
    """The screen tests the 5x5 minimum only where L+ can pass; the candidates do not change."""
    from nightpipe.calib import cosmics_screen

    hat = CosmicParams(gain=1.0, read_noise=15.0, saturation=4095.0)
    cases = [(gmos, GMOS), (hatp32, hat), *((im, GMOS) for im in _test_images() if np.isfinite(im).all())]
    for image, params in cases:
        electrons = image * np.float32(params.gain)
        low = ndimage.minimum_filter(electrons, size=5, mode="nearest")
        noise = np.sqrt(np.maximum(low, np.float32(1e-5)) + np.float32(params.read_noise**2))
        first = np.nonzero(cosmics_screen._laplacian_plus_numpy(electrons) / (2.0 * noise) > params.sigclip)
        sp, ratio = cosmics_screen._lacosmic_first_pass_numpy(electrons, *first, params)
        keep = (sp > params.screen_sigclip_factor * params.sigclip) & (
            ratio > params.screen_objlim_factor * params.objlim
        )
        ys, xs = screen_candidates(image, params)
        np.testing.assert_array_equal(ys, first[0][keep])
        np.testing.assert_array_equal(xs, first[1][keep])
