"""The detector model as pure functions: bias pattern, dark current, cosmetics, read-out.

Everything works in electrons until :func:`expose_and_read`, which draws the photon noise, adds
read noise, converts to ADU
with the gain, adds the bias, applies the non-linear roll-off near the ADC maximum and
returns unsigned 16-bit integers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def bias_pattern(
    rng: np.random.Generator,
    shape: tuple[int, int],
    level: float,
    row_amplitude: float,
    col_amplitude: float,
) -> np.ndarray:
    """Fixed bias structure of a camera: a level plus a row and a column pattern (ADU).

    The row pattern is a slow wave plus small random row-to-row offsets (as amplifier
    drift during read-out makes); the column pattern is random column offsets.

    Parameters
    ----------
    rng
        Random generator (the pattern is a fixed property of the camera).
    shape
        ``(rows, columns)`` of the whole read-out, overscan included.
    level
        Mean bias level, ADU.
    row_amplitude, col_amplitude
        Amplitudes of the row and column patterns, ADU.

    Returns
    -------
    numpy.ndarray
        float32 array of the noiseless bias, ADU.
    """
    ny, nx = shape
    rows = np.arange(ny)
    phase = rng.uniform(0, 2 * np.pi)
    row = row_amplitude * (0.7 * np.sin(2 * np.pi * rows / max(ny, 1) * 1.5 + phase))
    row += row_amplitude * 0.3 * rng.standard_normal(ny)
    col = col_amplitude * rng.standard_normal(nx)
    return (level + row[:, None] + col[None, :]).astype(np.float32)


def dark_scale(temperature: float, ref_temp: float, doubling: float) -> float:
    """Factor multiplying the dark current at ``ref_temp`` for a CCD at ``temperature``.

    Examples
    --------
    >>> dark_scale(-4.0, -10.0, 6.0)
    2.0
    """
    return float(2.0 ** ((temperature - ref_temp) / doubling))


def dark_current_map(
    rng: np.random.Generator,
    shape: tuple[int, int],
    rate: float,
    hot_fraction: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Dark current per pixel at the reference temperature (e-/s), with hot pixels.

    Ordinary pixels scatter log-normally (20 %) around ``rate``; hot pixels get between
    50 and 5000 times ``rate`` (at least 2 e-/s), log-uniformly.

    Returns
    -------
    rates : numpy.ndarray
        float32 map, electrons per pixel per second.
    hot : numpy.ndarray
        ``(n, 2)`` integer array of hot pixel ``(y, x)`` positions.
    """
    ny, nx = shape
    rates = (rate * rng.lognormal(0.0, 0.2, size=shape)).astype(np.float32)
    n_hot = rng.binomial(ny * nx, hot_fraction) if hot_fraction > 0 else 0
    flat_index = rng.choice(ny * nx, size=n_hot, replace=False) if n_hot else np.zeros(0, dtype=np.int64)
    hot_rate = np.maximum(rate * 10 ** rng.uniform(np.log10(50), np.log10(5000), n_hot), 2.0)
    rates.ravel()[flat_index] = hot_rate
    hot = np.column_stack(np.unravel_index(np.sort(flat_index), shape)).astype(np.int64)
    return rates, hot


def dead_pixels(
    rng: np.random.Generator, shape: tuple[int, int], fraction: float, dead_column: bool
) -> tuple[np.ndarray, int | None]:
    """Pixels that do not respond to light.

    Returns
    -------
    dead : numpy.ndarray
        ``(n, 2)`` integer array of isolated dead ``(y, x)`` pixels.
    column : int or None
        Index of a dead column (partial: the lower 40 % of the rows), or ``None``.
    """
    ny, nx = shape
    n_dead = rng.binomial(ny * nx, fraction) if fraction > 0 else 0
    flat_index = np.sort(rng.choice(ny * nx, size=n_dead, replace=False)) if n_dead else np.zeros(0, int)
    dead = np.column_stack(np.unravel_index(flat_index, shape)).astype(np.int64)
    column = int(rng.integers(nx // 8, nx - nx // 8)) if dead_column and nx >= 16 else None
    return dead, column


def response_mask(
    shape: tuple[int, int], dead: np.ndarray, dead_column: int | None, column_rows: float = 0.4
) -> np.ndarray:
    """Float32 map that is 0 on dead pixels (and the lower part of the dead column), 1 elsewhere."""
    mask = np.ones(shape, dtype=np.float32)
    if dead.size:
        mask[dead[:, 0], dead[:, 1]] = 0.0
    if dead_column is not None:
        mask[: int(shape[0] * column_rows), dead_column] = 0.0
    return mask


def roll_off(adu: np.ndarray, knee: float, adc_max: float) -> np.ndarray:
    """Smooth non-linear compression above ``knee`` towards ``adc_max`` (in place, returned).

    Below the knee the response is linear; above it,
    ``y = k + (M - k) * (1 - exp(-(x - k) / (M - k)))``, continuous with slope 1 at the knee.
    """
    span = adc_max - knee
    high = adu > knee
    if span > 0 and np.any(high):
        adu[high] = knee + span * (1.0 - np.exp(-(adu[high] - knee) / span))
    return adu


def inverse_roll_off(adu: np.ndarray, knee: float, adc_max: float) -> np.ndarray:
    """Undo :func:`roll_off` (values at or above ``adc_max`` map to infinity)."""
    out = np.asarray(adu, dtype=np.float64).copy()
    span = adc_max - knee
    high = out > knee
    with np.errstate(divide="ignore", invalid="ignore"):
        out[high] = knee - span * np.log1p(-(out[high] - knee) / span)
    return out


@dataclass(frozen=True)
class Exposure:
    """The expected electrons of one exposure, by component (never summed into a full array).

    ``mean = dark * dark_factor + (light + sky) * response`` on the light-sensitive area, plus
    ``cosmic_charge`` at the sorted flat indices ``cosmic_index``; ``light`` and ``response``
    may be ``None`` (no light: bias and dark frames).
    """

    dark: np.ndarray
    dark_factor: float = 1.0
    light: np.ndarray | None = None
    response: np.ndarray | None = None
    sky: float = 0.0
    cosmic_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    cosmic_charge: np.ndarray = field(default_factory=lambda: np.zeros(0))


def expose_and_read(
    exposure: Exposure | np.ndarray,
    bias: np.ndarray,
    *,
    rng: np.random.Generator,
    gain: float,
    read_noise: float,
    bias_offset: float,
    full_well: float,
    knee: float,
    adc_max: int,
    exact_below: float = 30.0,
) -> np.ndarray:
    """Draw the collected electrons of an exposure and read them out as a camera does.

    The charge is Poisson-distributed: drawn exactly where the mean is below ``exact_below``
    electrons, and from the normal approximation (same mean and variance, skewness below 0.19)
    above. It is clipped at the full well, read noise is added, and the result converted to
    ADU: ``clip(rint(roll_off(e / gain + bias + bias_offset)), 0, adc_max)`` as unsigned 16-bit
    integers (see :func:`roll_off`). Columns of ``bias`` beyond the exposure's width are an
    overscan: bias and read noise only.

    Parameters
    ----------
    exposure
        The expected electrons, as an :class:`Exposure` or a plain array of means.
    bias
        Noiseless bias pattern of the whole read-out, ADU.
    rng
        Random generator of this frame.
    gain
        Electrons per ADU.
    read_noise
        Read noise, electrons RMS.
    bias_offset
        This frame's change of the bias level, ADU.
    full_well
        Charge above this is lost (blooming is not modelled).
    knee, adc_max
        Start of the non-linear roll-off and the ADC maximum, ADU.
    exact_below
        Means below this are drawn from the Poisson law itself.

    Returns
    -------
    numpy.ndarray
        uint16 raw image of ``bias.shape``.
    """
    from nightpipe.simulate.kernels import fix_kernel, mean_kernel, poisson_inverse, read_kernel

    if not isinstance(exposure, Exposure):
        exposure = Exposure(dark=np.asarray(exposure, dtype=np.float32))
    f32 = np.float32
    dark = np.ascontiguousarray(exposure.dark, dtype=f32)
    if exposure.light is None:
        light = response = np.zeros((0, 0), dtype=f32)
    else:
        light = np.ascontiguousarray(exposure.light, dtype=f32)
        response = exposure.response if exposure.response is not None else np.ones_like(dark)
        response = np.ascontiguousarray(response, dtype=f32)
    bias = np.ascontiguousarray(bias, dtype=f32)
    mean = np.empty(bias.shape, dtype=f32)
    mean_kernel(dark, float(exposure.dark_factor), light, response, float(exposure.sky), mean)
    if len(exposure.cosmic_index):
        rows, cols = np.divmod(np.asarray(exposure.cosmic_index, dtype=np.int64), dark.shape[1])
        mean[rows, cols] += np.asarray(exposure.cosmic_charge, dtype=f32)
    flat_mean = mean.ravel()
    # Poisson where 0 < mean < exact_below (a mean of 0 is exact in the common model)
    low = np.flatnonzero((flat_mean > 0) & (flat_mean < exact_below))
    # near the full well: mean + 6 sqrt(mean) > full_well
    near = np.flatnonzero(flat_mean > (np.sqrt(9.0 + full_well) - 3.0) ** 2)
    normal = rng.standard_normal(bias.shape, dtype=f32)
    counts = poisson_inverse(flat_mean[low].astype(np.float64), rng.random(low.size))
    extra = rng.standard_normal(near.size)
    out = np.empty(bias.shape, dtype=np.uint16)
    inv_gain, offset = 1.0 / float(gain), float(bias_offset)
    read_kernel(mean, normal, bias, out, inv_gain, float(read_noise), offset, float(adc_max))
    over = np.flatnonzero(out.ravel() > knee)
    over = np.setdiff1d(over, np.concatenate([low, near]), assume_unique=True) if over.size else over
    index = np.concatenate([low, near, over])
    if index.size:
        case = np.concatenate(
            [np.zeros(low.size, np.int8), np.ones(near.size, np.int8), np.full(over.size, 2, np.int8)]
        )
        fill = np.zeros(index.size)
        fill[: low.size] = counts
        fix_extra = np.zeros(index.size)
        fix_extra[low.size : low.size + near.size] = extra
        fix_kernel(
            index,
            case,
            fill,
            fix_extra,
            mean,
            normal,
            bias,
            out,
            inv_gain,
            float(read_noise),
            offset,
            float(full_well),
            float(knee),
            float(adc_max),
        )
    return out
