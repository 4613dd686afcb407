"""The simulated instrument's options: the detector (:class:`CameraOptions`) and the calibration
frames taken with it (:class:`CalibrationOptions`). :mod:`nightpipe.simulate.options` gathers them
into :class:`~nightpipe.simulate.options.SimOptions` (and re-exports them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class CameraOptions:
    """The detector: geometry, electronics, dark current and cosmetics.

    Attributes
    ----------
    size
        Image width and height of the light-sensitive area, binned pixels.
    binning
        On-chip binning (same in x and y): the pixel scale and dark current per pixel grow with it.
    pixel_size_um
        Unbinned pixel size, micrometres (for the cosmic-ray rate and headers).
    gain
        Electrons per ADU.
    gain_setting, offset_setting
        The CMOS camera's gain and offset *settings* the ``nina`` dialect writes in ``GAIN`` and
        ``OFFSET`` (ZWO units; they change nothing in the pixels here).
    header_egain
        Write the electrons per ADU (``EGAIN``) in the headers; ``False`` is a camera driver that
        does not report them (N.I.N.A. then writes no ``EGAIN``, only the ``GAIN`` setting).
    read_noise
        Read noise, electrons RMS.
    bias_level
        Mean bias, ADU.
    bias_row_amplitude, bias_col_amplitude
        Amplitude (ADU) of the fixed row and column bias pattern.
    bias_drift
        RMS of the frame-to-frame change of the bias level, ADU.
    overscan
        Width of an overscan strip appended on the right (0: none).
    adc_bits
        ADC depth: 16 for most cameras, 12 for MicroObservatory-like ones.
    nonlinear_knee
        Fraction of the ADC maximum above which the response rolls off smoothly to saturation
        (1: linear up to the ADC maximum).
    full_well
        Full-well capacity, electrons (charge above it is clipped before read-out).
    hot_pixel_fraction, dead_pixel_fraction
        Fractions of hot (high dark current) and dead (no response) pixels.
    dead_column
        Add one dead column (True) or not.
    dark_current
        Dark current at ``dark_ref_temp``, electrons per unbinned pixel per second.
    dark_ref_temp
        Reference temperature of ``dark_current``, degrees C.
    dark_doubling
        Temperature step that doubles the dark current, degrees C.
    ccd_temp
        Set point of the cooler, degrees C; each frame's temperature jitters around it.
    ccd_temp_jitter
        RMS of the frame temperature around the set point, degrees C.
    prnu
        Pixel-to-pixel response non-uniformity (RMS fraction).
    """

    size: int = 1024
    binning: int = 1
    pixel_size_um: float = 9.0
    gain: float = 1.5
    gain_setting: int = 139
    offset_setting: int = 21
    header_egain: bool = True
    read_noise: float = 9.0
    bias_level: float = 1000.0
    bias_row_amplitude: float = 3.0
    bias_col_amplitude: float = 2.0
    bias_drift: float = 0.5
    overscan: int = 0
    adc_bits: int = 16
    nonlinear_knee: float = 0.85
    full_well: float = 100_000.0
    hot_pixel_fraction: float = 2e-4
    dead_pixel_fraction: float = 5e-5
    dead_column: bool = True
    dark_current: float = 0.05
    dark_ref_temp: float = -10.0
    dark_doubling: float = 6.0
    ccd_temp: float = -10.0
    ccd_temp_jitter: float = 0.1
    prnu: float = 0.01


@dataclass(frozen=True)
class CalibrationOptions:
    """How many calibration frames, and of what kind.

    Attributes
    ----------
    n_bias
        Bias frames.
    dark_exptimes
        Exposure times of the dark series, seconds.
    n_dark
        Darks per exposure time.
    flat_filters
        Filters with flats (the light filter should be one of them).
    n_flat
        Flats per filter.
    flat_kind
        ``"twilight"`` (sky level falls from frame to frame, small gradient) or ``"dome"``.
    flat_level
        Target mean level of the flats, fraction of the ADC maximum.
    flat_exptime
        Exposure time of the flats, seconds.
    vignetting
        Fractional loss of light at the corners of the frame.
    n_dust
        Dust donuts per filter (half of them shared by all filters: dust on the sensor window).
    dust_depth
        Maximum fractional depth of a dust donut.
    """

    n_bias: int = 10
    dark_exptimes: tuple[float, ...] = (60.0, 120.0)
    n_dark: int = 5
    flat_filters: tuple[str, ...] = ("V",)
    n_flat: int = 10
    flat_kind: Literal["twilight", "dome"] = "twilight"
    flat_level: float = 0.4
    flat_exptime: float = 3.0
    vignetting: float = 0.15
    n_dust: int = 6
    dust_depth: float = 0.04
