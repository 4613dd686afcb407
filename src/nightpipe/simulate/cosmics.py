"""Cosmic-ray hits: short straight tracks of a few pixels with thousands of electrons each."""

from __future__ import annotations

import numpy as np


def expected_hits(rate_cm2_min: float, area_cm2: float, exptime: float) -> float:
    """Mean number of cosmic rays in an exposure (the read-out time is ignored)."""
    return max(rate_cm2_min, 0.0) * area_cm2 * max(exptime, 0.0) / 60.0


def cosmic_tracks(rng: np.random.Generator, shape: tuple[int, int], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` cosmic-ray tracks.

    Each track starts at a random pixel, has a length of 1 + an exponential of mean 3 pixels and
    a random direction, and deposits a log-normal charge around 1500 e- per pixel.

    Returns
    -------
    pixels : numpy.ndarray
        ``(m, 2)`` integer ``(y, x)`` of every hit pixel (unique, sorted).
    electrons : numpy.ndarray
        Charge deposited in each of those pixels.
    """
    ny, nx = shape
    if n <= 0:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    y0 = rng.uniform(0, ny, n)
    x0 = rng.uniform(0, nx, n)
    length = 1.0 + rng.exponential(3.0, n)
    angle = rng.uniform(0, np.pi, n)
    energy = rng.lognormal(np.log(1500.0), 0.5, n)
    steps = np.ceil(length * 2).astype(int) + 1
    owner = np.repeat(np.arange(n), steps)
    frac = np.concatenate([np.linspace(0, 1, s) for s in steps])
    ys = np.floor(y0[owner] + frac * length[owner] * np.sin(angle[owner])).astype(np.int64)
    xs = np.floor(x0[owner] + frac * length[owner] * np.cos(angle[owner])).astype(np.int64)
    ok = (ys >= 0) & (ys < ny) & (xs >= 0) & (xs < nx)
    flat, first = np.unique(ys[ok] * nx + xs[ok], return_index=True)
    charge = energy[owner[ok][first]] * rng.uniform(0.6, 1.4, flat.size)
    pixels = np.column_stack(np.unravel_index(flat, shape)).astype(np.int64)
    return pixels, charge
