"""The calibration arithmetic against ccdproc, a Monte-Carlo noise oracle, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from nightpipe.calib.apply import (
    ApplyParams,
    MasterArrays,
    apply_calibration,
    dark_coefficients,
    flag_counts,
)
from nightpipe.errors import CalibrationError
from nightpipe.frames.flags import PixelFlag

SHAPE = (40, 50)


def _masters(rng: np.random.Generator) -> MasterArrays:
    bias = (1000 + rng.normal(0, 5, SHAPE)).astype(np.float32)
    dark = (20 + rng.normal(0, 2, SHAPE)).astype(np.float32)  # 120 s dark, bias removed
    _yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    flat = (1 + 0.1 * (xx - SHAPE[1] / 2) / SHAPE[1] + rng.normal(0, 0.01, SHAPE)).astype(np.float32)
    return MasterArrays(bias=bias, dark=dark, dark_exptime=120.0, flat=flat)


def test_matches_ccdproc_ccd_process() -> None:
    ccdproc = pytest.importorskip("ccdproc")
    import astropy.units as u
    from astropy.nddata import CCDData

    rng = np.random.default_rng(3)
    m = _masters(rng)
    raw = (1500 + rng.normal(0, 20, SHAPE)).astype(np.float32)
    ours = apply_calibration(raw, m, ApplyParams(exptime=60.0, gain=1.0))
    theirs = ccdproc.ccd_process(
        CCDData(raw, unit="adu"),
        master_bias=CCDData(m.bias, unit="adu"),
        dark_frame=CCDData(m.dark, unit="adu"),
        master_flat=CCDData(m.flat, unit="adu"),
        dark_exposure=120 * u.s,
        data_exposure=60 * u.s,
        dark_scale=True,
    )
    # ccdproc divides by the flat normalised to its mean; ours is used as given
    expected = np.asarray(theirs.data) / float(np.mean(m.flat))
    np.testing.assert_allclose(ours.data, expected, rtol=2e-5)
    assert ours.bias_coeff == 1.0
    assert ours.dark_coeff == 0.5


def test_uncertainty_matches_monte_carlo() -> None:
    """The predicted standard deviation equals the scatter of many noisy realisations."""
    rng = np.random.default_rng(11)
    gain, rn = 1.6, 9.0
    m = _masters(rng)
    truth_e = np.linspace(50, 20000, SHAPE[0] * SHAPE[1]).reshape(SHAPE)  # electrons of signal
    dark_e = m.dark * 0.5 * gain
    runs = []
    for _ in range(400):
        electrons = rng.poisson(truth_e + dark_e) + rng.normal(0, rn, SHAPE)
        raw = (electrons / gain + m.bias).astype(np.float32)
        runs.append(apply_calibration(raw, m, ApplyParams(exptime=60.0, gain=gain, read_noise=rn)).data)
    measured = np.std(np.array(runs), axis=0)
    predicted = apply_calibration(
        ((truth_e + dark_e) / gain + m.bias).astype(np.float32),
        m,
        ApplyParams(exptime=60.0, gain=gain, read_noise=rn),
    ).uncertainty
    ratio = measured / predicted
    # 400 draws: the std of a std estimate is about 3.5 %; the median is far tighter
    assert abs(np.median(ratio) - 1) < 0.03
    assert np.all(np.abs(ratio - 1) < 0.2)


def test_master_uncertainties_add_in_quadrature() -> None:
    shape = (4, 4)
    raw = np.full(shape, 1100.0, np.float32)
    m = MasterArrays(
        bias=np.full(shape, 100.0, np.float32),
        bias_err=np.full(shape, 3.0, np.float32),
        dark=np.full(shape, 40.0, np.float32),
        dark_err=np.full(shape, 4.0, np.float32),
        dark_exptime=20.0,
        flat=np.full(shape, 2.0, np.float32),
        flat_err=np.full(shape, 0.02, np.float32),
    )
    out = apply_calibration(raw, m, ApplyParams(exptime=10.0, gain=2.0, read_noise=4.0))
    pre = 1100 - 100 - 0.5 * 40
    var = pre / 2.0 + (4.0 / 2.0) ** 2 + 3.0**2 + (0.5 * 4.0) ** 2
    sci = pre / 2.0
    expected = np.sqrt(var / 4.0 + sci**2 * (0.02 / 2.0) ** 2)
    np.testing.assert_allclose(out.data, sci, rtol=1e-6)
    np.testing.assert_allclose(out.uncertainty, expected, rtol=1e-5)


def test_dark_coefficients() -> None:
    assert dark_coefficients(60, has_bias=True, dark_exptime=None, dark_bias_included=False) == (1.0, 0.0)
    assert dark_coefficients(60, has_bias=False, dark_exptime=60.3, dark_bias_included=False) == (0.0, 1.0)
    assert dark_coefficients(60, has_bias=True, dark_exptime=60, dark_bias_included=True) == (0.0, 1.0)
    cb, cd = dark_coefficients(30, has_bias=True, dark_exptime=120, dark_bias_included=True)
    assert (cb, cd) == (0.75, 0.25)
    with pytest.raises(CalibrationError, match="without a master bias"):
        dark_coefficients(30, has_bias=False, dark_exptime=120, dark_bias_included=True)
    with pytest.raises(CalibrationError, match="dark scaling is off"):
        dark_coefficients(30, has_bias=True, dark_exptime=120, dark_bias_included=False, scaling=False)
    with pytest.raises(CalibrationError, match="exposure"):
        dark_coefficients(30, has_bias=True, dark_exptime=0.0, dark_bias_included=False)


def test_bias_included_dark_scaled_with_bias() -> None:
    rng = np.random.default_rng(5)
    bias = (1000 + rng.normal(0, 5, SHAPE)).astype(np.float32)
    current = rng.uniform(10, 30, SHAPE).astype(np.float32)  # dark current in 100 s
    dark_with_bias = bias + current
    raw = (bias + 0.3 * current + 500).astype(np.float32)  # 30 s frame with 500 ADU of sky
    m = MasterArrays(bias=bias, dark=dark_with_bias, dark_exptime=100.0, dark_bias_included=True)
    out = apply_calibration(raw, m, ApplyParams(exptime=30.0))
    np.testing.assert_allclose(out.data, 500.0, atol=1e-3)


def test_flags_saturation_nonlinear_nan_low_flat_and_bad_pixels() -> None:
    raw = np.full((5, 5), 1000.0, np.float32)
    raw[0, 0] = 65535
    raw[0, 1] = 60000
    raw[0, 2] = np.nan
    flat = np.ones((5, 5), np.float32)
    flat[1, 1] = 0.0
    flat[1, 2] = np.nan
    bad = np.zeros((5, 5), np.uint16)
    bad[2, 2] = PixelFlag.HOT
    params = ApplyParams(exptime=1.0, saturation=65535, nonlinear_level=0.9 * 65535)
    out = apply_calibration(raw, MasterArrays(flat=flat, bad_pixels=bad), params)
    assert out.mask[0, 0] == PixelFlag.SATURATED
    assert out.mask[0, 1] == PixelFlag.NONLINEAR
    assert out.mask[0, 2] == PixelFlag.NO_DATA and np.isnan(out.data[0, 2])
    assert out.mask[1, 1] == PixelFlag.LOW_FLAT and np.isnan(out.data[1, 1])
    assert out.mask[1, 2] == PixelFlag.LOW_FLAT
    assert out.mask[2, 2] == PixelFlag.HOT and out.data[2, 2] == 1000.0
    assert out.mask[4, 4] == 0
    assert flag_counts(out.mask) == {"SATURATED": 1, "HOT": 1, "NONLINEAR": 1, "NO_DATA": 1, "LOW_FLAT": 2}


def test_to_electrons_and_output_reuse() -> None:
    raw = np.full((6, 6), 300.0, np.float32)
    bufs = (np.empty((6, 6), np.float32), np.empty((6, 6), np.float32), np.empty((6, 6), np.uint16))
    out = apply_calibration(
        raw, MasterArrays(), ApplyParams(exptime=1.0, gain=2.0, read_noise=4.0, to_electrons=True), out=bufs
    )
    assert out.data is bufs[0]
    assert out.unit == "electron"
    np.testing.assert_allclose(out.data, 600.0)
    np.testing.assert_allclose(out.uncertainty, np.sqrt(600.0 + 16.0), rtol=1e-6)


def test_wrong_size_master_is_a_clear_error() -> None:
    raw = np.zeros((10, 12), np.float32)
    with pytest.raises(CalibrationError, match=r"master bias is 11x10 but the frame is 12x10"):
        apply_calibration(raw, MasterArrays(bias=np.zeros((10, 11), np.float32)), ApplyParams(exptime=1))


def test_zero_or_unnormalised_flat_is_a_clear_error() -> None:
    raw = np.zeros((10, 10), np.float32)
    with pytest.raises(CalibrationError, match="zero, negative or not finite"):
        apply_calibration(raw, MasterArrays(flat=np.zeros((10, 10), np.float32)), ApplyParams(exptime=1))
    with pytest.raises(CalibrationError, match="not normalised"):
        apply_calibration(
            raw, MasterArrays(flat=np.full((10, 10), 20000.0, np.float32)), ApplyParams(exptime=1)
        )


def test_non_image_and_bad_gain() -> None:
    with pytest.raises(CalibrationError, match="2-D"):
        apply_calibration(np.zeros(5, np.float32), MasterArrays(), ApplyParams(exptime=1))
    with pytest.raises(CalibrationError, match="gain"):
        apply_calibration(np.zeros((3, 3), np.float32), MasterArrays(), ApplyParams(exptime=1, gain=0))


@pytest.mark.parametrize("shape", [(64, 64), (7, 9), (1, 3), (0, 4)])
def test_flag_counts_match_bitwise_reference(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(3)
    mask = np.zeros(shape, np.uint16)
    if mask.size:
        spots = rng.integers(0, mask.size, max(1, mask.size // 5))
        mask.flat[spots] = rng.integers(0, 256, len(spots))
    expected = {f.name: int(np.count_nonzero(mask & int(f))) for f in PixelFlag if np.any(mask & int(f))}
    assert flag_counts(mask) == expected
    # a view that does not start on a 64-bit boundary
    if mask.size > 1:
        view = mask.ravel()[1:]
        ref = {f.name: int(np.count_nonzero(view & int(f))) for f in PixelFlag if np.any(view & int(f))}
        assert flag_counts(view) == ref
