"""The detector model as pure functions: bias pattern, dark current, cosmetics, read-out.

Everything works in electrons until :func:`readout`, which adds read noise, converts to ADU
with the gain, adds the bias, applies the non-linear roll-off near the ADC maximum and
returns unsigned 16-bit integers.
"""

from __future__ import annotations

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
    if np.any(high):
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


def expose_and_read(
    mean: np.ndarray,
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
    """Draw the collected electrons around ``mean`` and read them out as a camera does.

    The charge is Poisson-distributed: drawn exactly where the mean is below ``exact_below``
    electrons, and from the normal approximation (same mean and variance, skewness below 0.19)
    above. It is clipped at the full well, read noise is added, and the result converted to
    ADU: ``clip(rint(roll_off(e / gain + bias + bias_offset)), 0, adc_max)`` as unsigned 16-bit
    integers (see :func:`roll_off`).

    Parameters
    ----------
    mean
        Expected electrons in each pixel of the whole read-out (0 in the overscan).
    bias
        Noiseless bias pattern, ADU, same shape.
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
        uint16 raw image.
    """
    from nightpipe.simulate.kernels import classify_kernel, expose_kernel

    mean = np.ascontiguousarray(mean, dtype=np.float32)
    low_means, n_near = classify_kernel(mean, float(exact_below), float(full_well))
    if low_means.size and low_means.max() > 0:
        low_counts = rng.poisson(low_means).astype(np.float64)
    else:  # nothing to draw (a bias frame): the read noise alone
        low_counts = np.zeros(max(low_means.size, 1))
    extra = rng.standard_normal(max(n_near, 1))
    normal = rng.standard_normal(mean.shape, dtype=np.float32)
    out = np.empty(mean.shape, dtype=np.uint16)
    expose_kernel(
        mean,
        normal,
        low_counts,
        extra,
        np.ascontiguousarray(bias, dtype=np.float32),
        out,
        float(gain),
        float(read_noise),
        float(bias_offset),
        float(full_well),
        float(knee),
        float(adc_max),
        float(exact_below),
    )
    return out
