"""The combination kernel against independent oracles (astropy sigma_clip, ccdproc.combine, numpy)."""

from __future__ import annotations

import hashlib
import itertools
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.stats import mad_std, sigma_clip

from nightpipe.calib.combine import (
    CombineOptions,
    FitsRowReader,
    combine_arrays,
    combine_files,
    sorting_network,
)
from nightpipe.config import CalibrationConfig
from nightpipe.errors import CalibrationError, FitsReadError
from nightpipe.progress import CountingProgress


def _stack(n: int = 11, ny: int = 30, nx: int = 40, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    st = rng.normal(100.0, 5.0, (n, ny, nx)).astype(np.float32)
    st[3, 5, 5] = 1e4  # cosmic ray
    st[0, 6, 6] = -500.0  # dead value
    st[:, 7, 7] = np.nan  # no data at all
    st[2:5, 8, 8] = np.nan  # partly missing
    st[:, 9, 9] = 5.0  # constant pixel: zero dispersion
    return st


def _astropy_clipped(st: np.ndarray, iters: int, lo: float = 3.0, hi: float = 3.0) -> np.ma.MaskedArray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sigma_clip(
            st, sigma_lower=lo, sigma_upper=hi, maxiters=iters, axis=0, cenfunc="median", stdfunc="mad_std"
        )


@pytest.mark.parametrize("n", range(1, 13))
def test_sorting_network_sorts_every_zero_one_input(n: int) -> None:
    # 0-1 principle: a comparator network sorting all 0/1 inputs sorts everything
    pairs = sorting_network(n)
    assert (pairs[:, 0] < pairs[:, 1]).all() and (pairs < n).all()
    for bits in itertools.product((0, 1), repeat=n):
        values = list(bits)
        for i, j in pairs:
            if values[i] > values[j]:
                values[i], values[j] = values[j], values[i]
        assert values == sorted(values)


@pytest.mark.parametrize("n", [17, 50, 100])
def test_sorting_network_sorts_random_values(n: int) -> None:
    rng = np.random.default_rng(n)
    pairs = sorting_network(n)
    for _ in range(50):
        v = rng.normal(size=n)
        for i, j in pairs:
            if v[i] > v[j]:
                v[i], v[j] = v[j], v[i]
        assert np.all(np.diff(v) >= 0)


@pytest.mark.parametrize("iters", [1, 2, 5])
@pytest.mark.parametrize(("lo", "hi"), [(3.0, 3.0), (2.0, 2.5), (1.0, 1.0)])
def test_sigma_clipped_median_equals_astropy_sigma_clip(iters: int, lo: float, hi: float) -> None:
    st = _stack()
    ours = combine_arrays(st, CombineOptions(max_iters=iters, sigma_low=lo, sigma_high=hi, band_rows=7))
    clipped = _astropy_clipped(st, iters, lo, hi)
    expected = np.ma.median(clipped, axis=0).filled(np.nan)
    np.testing.assert_array_equal(np.isnan(ours.data), np.isnan(expected))
    np.testing.assert_allclose(ours.data, expected, rtol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(ours.nused, (~clipped.mask).sum(axis=0))
    np.testing.assert_array_equal(ours.nvalid, np.isfinite(st).sum(axis=0))


def test_agrees_with_ccdproc_combine_with_nans_and_outliers() -> None:
    ccdproc = pytest.importorskip("ccdproc")
    from astropy.nddata import CCDData

    st = _stack(n=9, ny=20, nx=25, seed=3)
    ccds = [CCDData(frame, unit="adu") for frame in st]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = ccdproc.combine(
            ccds,
            method="median",
            sigma_clip=True,
            sigma_clip_low_thresh=3,
            sigma_clip_high_thresh=3,
            sigma_clip_func="median",
            sigma_clip_dev_func="mad_std",
        )
    ours = combine_arrays(st, CombineOptions(max_iters=1))
    good = np.isfinite(ours.data)
    np.testing.assert_allclose(ours.data[good], peer.data[good], rtol=1e-6)
    # ccdproc's uncertainty is mad_std/sqrt(k); ours adds the median's sqrt(pi/2) efficiency
    peer_err = np.asarray(peer.uncertainty.array) * math.sqrt(math.pi / 2)
    np.testing.assert_allclose(ours.uncert[good], peer_err[good], rtol=1e-5, atol=1e-6)


def test_agrees_with_ccdproc_with_the_benchmark_functions() -> None:
    ccdproc = pytest.importorskip("ccdproc")
    from astropy.nddata import CCDData

    rng = np.random.default_rng(7)
    st = rng.poisson(1000, (12, 16, 16)).astype(np.float32)
    st[rng.integers(0, 12, 30), rng.integers(0, 16, 30), rng.integers(0, 16, 30)] = 60000.0
    peer = ccdproc.combine(
        [CCDData(frame, unit="adu") for frame in st],
        method="median",
        sigma_clip=True,
        sigma_clip_func=np.ma.median,
        sigma_clip_dev_func=mad_std,
    )
    ours = combine_arrays(st, CombineOptions(max_iters=1))
    np.testing.assert_allclose(ours.data, peer.data, rtol=1e-6)


def test_mean_median_and_minmax_without_clipping_match_numpy() -> None:
    st = _stack()
    st[:, 7, 7] = 1.0  # give every pixel data
    st[2:5, 8, 8] = 3.0
    mean = combine_arrays(st, CombineOptions(method="mean", clip="none"))
    np.testing.assert_allclose(mean.data, st.mean(axis=0), rtol=1e-5)
    std_err = st.std(axis=0, ddof=1) / math.sqrt(st.shape[0])
    np.testing.assert_allclose(mean.uncert, std_err, rtol=1e-4, atol=1e-6)
    median = combine_arrays(st, CombineOptions(method="median", clip="none"))
    np.testing.assert_allclose(median.data, np.median(st, axis=0), rtol=1e-6)
    minmax = combine_arrays(st, CombineOptions(method="mean", clip="minmax", minmax_low=2, minmax_high=1))
    expected = np.sort(st, axis=0)[2:-1].mean(axis=0)
    np.testing.assert_allclose(minmax.data, expected, rtol=1e-5)
    assert (minmax.nused == st.shape[0] - 3).all()


def test_masked_values_are_ignored() -> None:
    st = _stack()
    mask = np.zeros(st.shape, bool)
    mask[0] = True  # the whole first frame is masked
    ours = combine_arrays(st, CombineOptions(max_iters=3), mask=mask)
    plain = combine_arrays(st[1:], CombineOptions(max_iters=3))
    np.testing.assert_array_equal(ours.data, plain.data)
    with pytest.raises(CalibrationError):
        combine_arrays(st, mask=mask[:, :3])


def test_pixels_without_data_are_nan_and_counted() -> None:
    ours = combine_arrays(_stack())
    assert np.isnan(ours.data[7, 7]) and np.isnan(ours.uncert[7, 7]) and ours.nused[7, 7] == 0
    assert ours.data[9, 9] == 5.0 and ours.uncert[9, 9] == 0.0
    assert ours.nused[5, 5] == 10 and ours.data[5, 5] < 200
    stats = ours.statistics()
    assert stats["empty_pixels"] == 1 and stats["nframes"] == 11
    assert 0 < stats["rejected_fraction"] < 0.05


@pytest.mark.parametrize("method", ["median", "mean"])
def test_uncertainty_plane_is_the_true_standard_error(method: str) -> None:
    # Monte-Carlo: scatter of the combined value over many independent pixels vs the plane
    rng = np.random.default_rng(11)
    st = rng.normal(0.0, 4.0, (25, 200, 200)).astype(np.float32)
    clip = "sigma" if method == "median" else "none"  # a clipped mean is not Gaussian-efficient
    ours = combine_arrays(st, CombineOptions(method=method, clip=clip, max_iters=5))  # type: ignore[arg-type]
    observed = float(np.std(ours.data))
    predicted = float(np.sqrt(np.mean(ours.uncert.astype(np.float64) ** 2)))
    assert observed == pytest.approx(predicted, rel=0.08)
    expected = 4.0 / math.sqrt(25) * (math.sqrt(math.pi / 2) if method == "median" else 1.0)
    assert observed == pytest.approx(expected, rel=0.08)


def test_options_from_settings_and_validation() -> None:
    cal = CalibrationConfig(clip="minmax", combine_method="mean", band_rows=17)
    opts = CombineOptions.from_settings(cal)
    assert (opts.clip, opts.method, opts.band_rows) == ("minmax", "mean", 17)
    with pytest.raises(CalibrationError):
        CombineOptions(method="mode")  # type: ignore[arg-type]
    with pytest.raises(CalibrationError):
        combine_arrays(np.zeros((3, 4)))


# --------------------------------------------------------------------------- files


def _write(path: Path, data: np.ndarray, **header: float) -> Path:
    hdu = fits.PrimaryHDU(data)
    for key, value in header.items():
        hdu.header[key] = value
    hdu.writeto(path)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_combine_files_equals_in_memory_and_never_changes_raw_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    frames = rng.integers(900, 1100, (7, 37, 23)).astype(np.uint16)
    frames[2, 10, 10] = 65535
    paths = []
    for i, frame in enumerate(frames):
        hdu = fits.PrimaryHDU(frame)  # uint16 -> int16 with BZERO=32768
        p = tmp_path / f"bias {i}.fits"  # names with spaces
        hdu.writeto(p)
        paths.append(p)
    before = [_digest(p) for p in paths]
    progress = CountingProgress()
    result = combine_files(paths, CombineOptions(band_rows=8), progress=progress)
    expected = combine_arrays(frames.astype(np.float32), CombineOptions(band_rows=256))
    np.testing.assert_array_equal(result.data, expected.data)
    np.testing.assert_array_equal(result.uncert, expected.uncert)
    assert progress.done == 5 and progress.total == 5
    assert [_digest(p) for p in paths] == before


def test_row_reader_scales_and_blanks(tmp_path: Path) -> None:
    data = np.arange(40, dtype=np.int32).reshape(5, 8)
    path = _write(tmp_path / "scaled.fits", data, BSCALE=0.5, BZERO=2**31, BLANK=7)
    with FitsRowReader(path) as reader:
        rows = reader.read_rows(1, 3)
    expected = (data[1:3].astype(np.float64) * 0.5 + 2**31).astype(np.float32)
    expected[data[1:3] == 7] = np.nan
    np.testing.assert_array_equal(rows, expected)
    floats = _write(tmp_path / "f.fits", np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4))
    with FitsRowReader(floats) as reader:
        np.testing.assert_array_equal(reader.read_all(), fits.getdata(floats))


def test_row_reader_reads_extensions_and_compressed_files(tmp_path: Path) -> None:
    data = np.arange(600, dtype=np.uint16).reshape(20, 30)
    mef = tmp_path / "mef.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data)]).writeto(mef)
    with FitsRowReader(mef) as reader:
        assert reader.index == 1
        np.testing.assert_array_equal(reader.read_rows(5, 9), data[5:9])
    fz = tmp_path / "c.fits.fz"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data)]).writeto(fz)
    with FitsRowReader(fz) as reader:
        np.testing.assert_array_equal(reader.read_rows(3, 11), data[3:11])


def test_bad_files_are_typed_errors_naming_the_file(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.fits", np.zeros((50, 50), np.int16))
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(good.read_bytes()[: 2880 + 1000])
    with pytest.raises(FitsReadError, match="truncated"):
        FitsRowReader(truncated)
    junk = tmp_path / "notes.fits"
    junk.write_text("not a fits file at all\n" * 200)
    with pytest.raises(FitsReadError, match="notes.fits"):
        FitsRowReader(junk)
    with pytest.raises(FitsReadError, match="not found"):
        FitsRowReader(tmp_path / "missing.fits")
    table = tmp_path / "table.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("a", "E", array=[1.0])])]
    ).writeto(table)
    with pytest.raises(FitsReadError, match="no 2-D image"):
        FitsRowReader(table)
    other = _write(tmp_path / "other.fits", np.zeros((40, 50), np.int16))
    with pytest.raises(CalibrationError, match="other.fits"):
        combine_files([good, other])
    with pytest.raises(CalibrationError, match="nothing to combine"):
        combine_files([])


def test_band_memory_bound_limits_rows_not_results(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    frames = rng.normal(500, 20, (6, 40, 30)).astype(np.float32)
    paths = [_write(tmp_path / f"f{i}.fits", frame) for i, frame in enumerate(frames)]
    # 6 frames x 30 columns x 4 bytes = 720 bytes per row: a 2 kB bound gives 2-row bands
    progress = CountingProgress()
    bounded = combine_files(paths, CombineOptions(band_rows=256, max_band_bytes=2048), progress=progress)
    assert progress.done == 20
    np.testing.assert_array_equal(bounded.data, combine_arrays(frames).data)
