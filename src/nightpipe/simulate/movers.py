"""Several moving objects (asteroids) injected into a simulated night, each with its own start,
rate, direction and magnitude (:class:`MoverSpec`), trailed over the exposure.

The paths are drawn from a random stream of their own (``SeedSequence([seed, 6])``) and only when
a mover asks for a random start or direction, so a night without these movers draws exactly the
numbers it drew before (the demo night stays byte-identical).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nightpipe.errors import ConfigError

MOVER_STREAM = 6
"""Index of the movers' random stream in ``SeedSequence([seed, index])``."""
TRAIL_STEP_PX = 0.5
"""Spacing of the PSF copies that draw a mover's trail during one exposure, pixels."""


@dataclass(frozen=True)
class MoverSpec:
    """One moving object of a simulated night.

    Attributes
    ----------
    mag
        Magnitude (in the zero point's band, above the atmosphere).
    rate
        Apparent rate, arcsec per minute (ignored when ``rate_px`` is given).
    rate_px
        Apparent rate in pixels per frame (per cadence), or ``None``.
    angle
        Direction of motion on the reference pixel grid, degrees counter-clockwise from +x
        (``None``: random).
    x, y
        0-based reference-grid position at the first light's mid-exposure (``None``: random, the
        path then crosses the inner part of the frame).
    """

    mag: float
    rate: float = 1.0
    rate_px: float | None = None
    angle: float | None = None
    x: float | None = None
    y: float | None = None

    @classmethod
    def parse(cls, text: str) -> MoverSpec:
        """``mag=17.5,rate=2`` (arcsec/min) or ``mag=18,px=1.5`` (px/frame), optional ``angle``, ``x``,
        ``y``; what is left out (angle, start) is random."""
        names = {"mag": "mag", "rate": "rate", "px": "rate_px", "angle": "angle", "x": "x", "y": "y"}
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key.strip() not in names:
                raise ConfigError(
                    f"--mover {text!r}: {part!r} is not one of {', '.join(k + '=' for k in names)}",
                    hint="e.g. --mover mag=17.5,rate=2,angle=30,x=100,y=200",
                )
            try:
                values[names[key.strip()]] = float(value)
            except ValueError:
                raise ConfigError(f"--mover {text!r}: {value!r} is not a number") from None
        if "mag" not in values:
            raise ConfigError(f"--mover {text!r} has no mag=", hint="e.g. --mover mag=17.5,rate=2")
        return cls(**values)


@dataclass(frozen=True)
class MoverPaths:
    """Where each mover is in each light: reference-grid positions at mid-exposure, pixels per frame,
    the trail's half-length vector over the exposure, and the electrons per exposure."""

    x: np.ndarray  # (movers, lights)
    y: np.ndarray
    trail_x: np.ndarray  # (movers,) half of the displacement during one exposure
    trail_y: np.ndarray
    flux_e: np.ndarray  # (movers, lights)
    rate_px_frame: np.ndarray  # (movers,)
    rate_arcsec_min: np.ndarray
    angle_deg: np.ndarray


def mover_paths(
    specs: tuple[MoverSpec, ...],
    *,
    seed: int,
    n: int,
    size: int,
    scale: float,
    cadence: float,
    exptime: float,
    electrons: list[np.ndarray],
) -> MoverPaths | None:
    """The paths of ``specs`` over ``n`` lights (``electrons``: per mover per light), or ``None``."""
    if not specs or not n:
        return None
    rng: np.random.Generator | None = None

    def draw() -> np.random.Generator:
        nonlocal rng
        if rng is None:
            rng = np.random.default_rng(np.random.SeedSequence([seed, MOVER_STREAM]))
        return rng

    xs, ys, tx, ty, rates, arcsec, angles = [], [], [], [], [], [], []
    k = np.arange(n, dtype=float)
    for spec in specs:
        rate_px = spec.rate_px if spec.rate_px is not None else spec.rate / scale * cadence / 60.0
        angle = spec.angle if spec.angle is not None else math.degrees(draw().uniform(0, 2 * math.pi))
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        path = rate_px * (n - 1)
        x0 = spec.x if spec.x is not None else size / 2 - 0.5 * path * c + draw().uniform(-0.25, 0.25) * size
        y0 = spec.y if spec.y is not None else size / 2 - 0.5 * path * s + draw().uniform(-0.25, 0.25) * size
        xs.append(x0 + rate_px * k * c)
        ys.append(y0 + rate_px * k * s)
        half = 0.5 * rate_px * exptime / cadence
        tx.append(half * c)
        ty.append(half * s)
        rates.append(rate_px)
        arcsec.append(rate_px * scale * 60.0 / cadence)
        angles.append(angle % 360.0)
    return MoverPaths(
        np.array(xs), np.array(ys), np.array(tx), np.array(ty), np.asarray(electrons, float),
        np.array(rates), np.array(arcsec), np.array(angles),
    )  # fmt: skip


def trail_points(paths: MoverPaths, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference-grid points and electrons drawing every mover's trail in light ``i`` (PSF copies
    spaced by at most :data:`TRAIL_STEP_PX` along the motion during the exposure)."""
    xs, ys, fs = [], [], []
    for m in range(paths.x.shape[0]):
        length = 2.0 * math.hypot(paths.trail_x[m], paths.trail_y[m])
        steps = max(1, math.ceil(length / TRAIL_STEP_PX))
        u = (np.arange(steps) + 0.5) / steps * 2.0 - 1.0 if steps > 1 else np.zeros(1)
        xs.append(paths.x[m, i] + u * paths.trail_x[m])
        ys.append(paths.y[m, i] + u * paths.trail_y[m])
        fs.append(np.full(steps, paths.flux_e[m, i] / steps))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(fs)
