"""The arithmetic of calibrating one science frame: bias, scaled dark, flat, errors, flags.

Everything here is pure: arrays in, arrays out, no files and no database. The work is
done by one fused, compiled (numba) pass over the pixels in float32 that computes the
science value, its standard deviation and the uint16 mask of
:class:`nightpipe.frames.flags.PixelFlag` bits together, so a 2048x2048 frame costs about
one read of each input plane.

The model, per pixel, in ADU (``raw`` already overscan-subtracted and trimmed)::

    pre  = raw - cb * bias - cd * dark
    sci  = pre / flat                                   (x gain when converting to e-)
    var  = (max(pre, 0) / gain + (rn / gain)**2 + cb**2 s_bias**2 + cd**2 s_dark**2) / flat**2
           + sci**2 * (s_flat / flat)**2

``cb`` and ``cd`` come from :func:`dark_coefficients`: a plain dark (bias removed) is
scaled by ``exptime / dark_exptime``; a dark that still contains the bias is used as is
when the exposures match, or split into bias and dark current with the master bias when
they do not.

The compiled pixel passes are in :mod:`nightpipe.calib.apply_kernel`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from nightpipe.calib.apply_kernel import calibrate_pixels, flag_counts
from nightpipe.errors import CalibrationError

log = logging.getLogger(__name__)

__all__ = [
    "ApplyParams",
    "Calibrated",
    "MasterArrays",
    "apply_calibration",
    "check_flat",
    "check_master_shapes",
    "dark_coefficients",
    "flag_counts",
]

_EMPTY = np.zeros((1, 1), dtype=np.float32)
_EMPTY_MASK = np.zeros((1, 1), dtype=np.uint16)


@dataclass(frozen=True)
class MasterArrays:
    """The master planes applied to a frame (any may be missing), all in ADU except the flat.

    Attributes
    ----------
    bias, bias_err
        Master bias and its standard error.
    dark, dark_err
        Master dark for ``dark_exptime`` seconds, and its standard error.
    dark_exptime
        Exposure of the master dark, seconds.
    dark_bias_included
        True when the dark still contains the bias (no separate bias was subtracted).
    flat, flat_err
        Normalised master flat (median about 1) and its standard error.
    bad_pixels
        uint16 :class:`PixelFlag` bits of known bad pixels (hot, dead, bad column, low flat).
    """

    bias: np.ndarray | None = None
    bias_err: np.ndarray | None = None
    dark: np.ndarray | None = None
    dark_err: np.ndarray | None = None
    dark_exptime: float | None = None
    dark_bias_included: bool = False
    flat: np.ndarray | None = None
    flat_err: np.ndarray | None = None
    bad_pixels: np.ndarray | None = None


@dataclass(frozen=True)
class ApplyParams:
    """Per-frame numbers the arithmetic needs.

    Attributes
    ----------
    exptime
        Exposure of the science frame, seconds.
    gain
        Electrons per ADU.
    read_noise
        Read noise, electrons.
    saturation
        Level (ADU, in the units of ``raw`` as given) at and above which a pixel is saturated.
    nonlinear_level
        Level (ADU) above which a pixel is flagged non-linear.
    to_electrons
        Multiply the result (and its uncertainty) by the gain.
    min_flat
        A normalised flat below this marks the pixel LOW_FLAT and its value NaN.
    exposure_tolerance
        Relative difference of exposures still counted as "the same exposure".
    dark_scaling
        Allow scaling a dark of another exposure.
    """

    exptime: float
    gain: float = 1.0
    read_noise: float = 0.0
    saturation: float = math.inf
    nonlinear_level: float = math.inf
    to_electrons: bool = False
    min_flat: float = 0.05
    exposure_tolerance: float = 0.01
    dark_scaling: bool = True


@dataclass(frozen=True)
class Calibrated:
    """The three planes of a calibrated frame and what was done.

    Attributes
    ----------
    data
        Science values, float32 (ADU, or electrons with ``to_electrons``).
    uncertainty
        One-sigma standard deviation of ``data``, float32, same unit.
    mask
        uint16 :class:`PixelFlag` bits (0: good).
    bias_coeff, dark_coeff
        The coefficients ``cb`` and ``cd`` applied to the master bias and dark.
    unit
        ``"adu"`` or ``"electron"``.
    """

    data: np.ndarray
    uncertainty: np.ndarray
    mask: np.ndarray
    bias_coeff: float
    dark_coeff: float
    unit: str


def dark_coefficients(
    exptime: float,
    *,
    has_bias: bool,
    dark_exptime: float | None,
    dark_bias_included: bool,
    tolerance: float = 0.01,
    scaling: bool = True,
) -> tuple[float, float]:
    """Coefficients ``(cb, cd)`` of the master bias and dark for a frame of ``exptime`` seconds.

    Parameters
    ----------
    exptime
        Exposure of the science frame, seconds.
    has_bias
        A master bias is available.
    dark_exptime
        Exposure of the master dark, or ``None`` when there is no dark.
    dark_bias_included
        The dark still contains the bias.
    tolerance
        Relative exposure difference below which the dark is used unscaled.
    scaling
        Whether scaling a dark to another exposure is allowed.

    Returns
    -------
    tuple of float
        ``cb`` and ``cd`` such that the frame is corrected by ``raw - cb*bias - cd*dark``.

    Raises
    ------
    CalibrationError
        When the dark cannot be used: a bias-included dark of another exposure without a
        master bias, scaling disabled with another exposure, or a non-positive exposure.

    Examples
    --------
    >>> dark_coefficients(60.0, has_bias=True, dark_exptime=120.0, dark_bias_included=False)
    (1.0, 0.5)
    >>> dark_coefficients(60.0, has_bias=True, dark_exptime=120.0, dark_bias_included=True)
    (0.5, 0.5)
    """
    cb = 1.0 if has_bias else 0.0
    if dark_exptime is None:
        return cb, 0.0
    if not (dark_exptime > 0 and math.isfinite(dark_exptime)):
        raise CalibrationError(f"master dark has exposure {dark_exptime!r} s", hint="rebuild the dark master")
    if not (exptime >= 0 and math.isfinite(exptime)):
        raise CalibrationError(f"frame exposure {exptime!r} s cannot scale a dark", hint="check EXPTIME")
    same = abs(exptime - dark_exptime) <= tolerance * dark_exptime
    scale = 1.0 if same else exptime / dark_exptime
    if not same and not scaling:
        raise CalibrationError(
            f"no dark of {exptime:g} s (have {dark_exptime:g} s) and dark scaling is off",
            hint="take darks of this exposure or set calibration.dark_scaling = true",
        )
    if not dark_bias_included:
        return cb, scale
    if same:
        return 0.0, 1.0
    if not has_bias:
        raise CalibrationError(
            f"the dark of {dark_exptime:g} s includes the bias and cannot be scaled to {exptime:g} s "
            "without a master bias",
            hint="add bias frames to the library or take darks of this exposure",
        )
    return 1.0 - scale, scale


def check_master_shapes(shape: tuple[int, ...], masters: MasterArrays) -> None:
    """Raise :class:`CalibrationError` when a master plane does not have the frame's shape."""
    for name in ("bias", "bias_err", "dark", "dark_err", "flat", "flat_err", "bad_pixels"):
        plane = getattr(masters, name)
        if plane is not None and plane.shape != shape:
            raise CalibrationError(
                f"master {name} is {plane.shape[1]}x{plane.shape[0]} but the frame is {shape[1]}x{shape[0]}",
                hint="use masters of the same size and binning (after trimming)",
            )


def check_flat(flat: np.ndarray, min_flat: float) -> None:
    """Reject a flat that cannot be divided by: mostly zero, negative or not finite.

    Raises
    ------
    CalibrationError
        When more than half of the flat is below ``min_flat`` or not finite, or its median
        is far from 1 (not normalised).
    """
    good = np.isfinite(flat) & (flat >= min_flat)
    frac = 1.0 - float(np.count_nonzero(good)) / flat.size
    if frac > 0.5:
        raise CalibrationError(
            f"{100 * frac:.0f} % of the master flat is zero, negative or not finite",
            hint="rebuild the flat master from well-exposed flats",
        )
    median = float(np.median(flat[good]))
    if not 0.2 < median < 5.0:
        raise CalibrationError(
            f"the master flat is not normalised (median {median:.3g})",
            hint="flats must be divided by their central level before use",
        )


def _plane(array: np.ndarray | None, dtype: type) -> np.ndarray:
    if array is None:
        return _EMPTY_MASK if dtype is np.uint16 else _EMPTY
    return np.ascontiguousarray(array, dtype=dtype)


def apply_calibration(
    raw: np.ndarray,
    masters: MasterArrays,
    params: ApplyParams,
    *,
    out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    check_masters: bool = True,
) -> Calibrated:
    """Calibrate one frame with the masters given, in one fused pass.

    Parameters
    ----------
    raw
        The frame (ADU), already overscan-subtracted and trimmed; converted to float32.
    masters
        The master planes; missing ones are simply not applied.
    params
        Exposure, gain, read noise, saturation and options.
    out
        Optional preallocated ``(data, uncertainty, mask)`` arrays to reuse between frames.
    check_masters
        Check the flat (:func:`check_flat`); a caller that checked its masters once when
        loading them passes ``False`` to save a median per frame. Shapes are always checked.

    Returns
    -------
    Calibrated
        Science, uncertainty and mask planes, and the bias/dark coefficients used.

    Raises
    ------
    CalibrationError
        When a master has another shape, the flat is unusable, or the dark cannot be used.

    Examples
    --------
    >>> import numpy as np
    >>> raw = np.full((4, 4), 1100.0, dtype=np.float32)
    >>> m = MasterArrays(bias=np.full((4, 4), 100.0, np.float32), flat=np.full((4, 4), 2.0, np.float32))
    >>> float(apply_calibration(raw, m, ApplyParams(exptime=10.0)).data[0, 0])
    500.0
    """
    if raw.ndim != 2:
        raise CalibrationError(f"a frame must be a 2-D image, got {raw.ndim} dimensions")
    check_master_shapes(raw.shape, masters)
    if masters.flat is not None and check_masters:
        check_flat(masters.flat, params.min_flat)
    if params.gain <= 0 or not math.isfinite(params.gain):
        raise CalibrationError(f"gain {params.gain!r} must be a positive number", hint="set camera.gain")
    cb, cd = dark_coefficients(
        params.exptime,
        has_bias=masters.bias is not None,
        dark_exptime=masters.dark_exptime if masters.dark is not None else None,
        dark_bias_included=masters.dark_bias_included,
        tolerance=params.exposure_tolerance,
        scaling=params.dark_scaling,
    )
    if out is None:
        sci = np.empty(raw.shape, dtype=np.float32)
        unc = np.empty(raw.shape, dtype=np.float32)
        mask = np.empty(raw.shape, dtype=np.uint16)
    else:
        sci, unc, mask = out
    has = np.array(
        [
            masters.bias is not None,
            masters.bias_err is not None and masters.bias is not None,
            masters.dark is not None,
            masters.dark_err is not None and masters.dark is not None,
            masters.flat is not None,
            masters.flat_err is not None and masters.flat is not None,
            masters.bad_pixels is not None,
        ]
    )
    out_scale = params.gain if params.to_electrons else 1.0
    calibrate_pixels(
        np.ascontiguousarray(raw, dtype=np.float32),
        _plane(masters.bias, np.float32),
        _plane(masters.bias_err, np.float32),
        _plane(masters.dark, np.float32),
        _plane(masters.dark_err, np.float32),
        _plane(masters.flat, np.float32),
        _plane(masters.flat_err, np.float32),
        _plane(masters.bad_pixels, np.uint16),
        has,
        cb,
        cd,
        1.0 / params.gain,
        (params.read_noise / params.gain) ** 2,
        params.saturation,
        params.nonlinear_level,
        params.min_flat,
        out_scale,
        sci,
        unc,
        mask,
    )
    return Calibrated(
        data=sci,
        uncertainty=unc,
        mask=mask,
        bias_coeff=cb if masters.bias is not None else 0.0,
        dark_coeff=cd,
        unit="electron" if params.to_electrons else "adu",
    )
