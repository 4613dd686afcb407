"""Small registered frame cubes with static stars and Gaussian movers, in units of the noise: the
test bed of the faint-mover search (its tests and ``benchmarks/bench_movers_depth.py``).

A mover is ``(x0, y0, vx, vy, snr)``: its place on frame 0 in pixels, its motion in pixels per
frame and its per-frame SNR, the SNR of a PSF fit of a Gaussian of peak ``A`` in unit noise being
``A * sqrt(pi) * sigma``.
"""

from __future__ import annotations

import numpy as np

SKY = 10.0  # the cubes' constant sky level, in units of the noise


def static_field_cube(
    rng: np.random.Generator, frames: int, size: int, fwhm: float, stars: int = 15
) -> tuple[np.ndarray, np.ndarray]:
    """``frames`` frames of ``size`` x ``size`` with unit Gaussian noise over ``stars`` random
    static stars (peaks 5-200) and the sky; returns the cube (float64) and the noiseless static
    sky with its level.

    >>> cube, static = static_field_cube(np.random.default_rng(1), 4, 32, 3.0)
    >>> cube.shape, static.shape, bool(abs(float(np.median(cube - static))) < 0.1)
    ((4, 32, 32), (32, 32), True)
    """
    yy, xx = np.mgrid[0:size, 0:size]
    s = fwhm / 2.3548
    static = np.zeros((size, size))
    for _ in range(stars):
        x, y, a = rng.uniform(5, size - 5), rng.uniform(5, size - 5), rng.uniform(5, 200)
        static += a * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * s**2))
    cube = rng.normal(0, 1, (frames, size, size)) + static[None] + SKY
    return cube, static + SKY


def add_movers(cube: np.ndarray, movers: list[tuple[float, float, float, float, float]], fwhm: float) -> None:
    """Add each mover ``(x0, y0, vx, vy, snr)`` to every frame of ``cube`` in place."""
    frames, height, width = cube.shape
    yy, xx = np.mgrid[0:height, 0:width]
    s = fwhm / 2.3548
    for x0, y0, vx, vy, snr in movers:
        peak = snr / (np.sqrt(np.pi) * s)
        for k in range(frames):
            cube[k] += peak * np.exp(-((xx - x0 - vx * k) ** 2 + (yy - y0 - vy * k) ** 2) / (2 * s**2))
