"""Pixel response of the optics and detector: vignetting, dust donuts, pixel non-uniformity."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Dust:
    """One out-of-focus dust shadow ("donut"): a ring darker than its centre."""

    x: float
    y: float
    radius: float
    depth: float
    filter: str  # a filter name, or "*" for dust on the sensor window (all filters)

    def to_dict(self) -> dict[str, float | str]:
        """Plain data for the truth file."""
        return asdict(self)


def draw_dust(
    rng: np.random.Generator, shape: tuple[int, int], filters: tuple[str, ...], n_dust: int, depth: float
) -> list[Dust]:
    """Place ``n_dust`` donuts per filter, half of them shared by all filters."""
    ny, nx = shape
    scale = min(ny, nx)
    dust: list[Dust] = []
    n_shared = n_dust // 2

    def one(name: str) -> Dust:
        radius = float(rng.uniform(0.015, 0.05) * scale + 3)
        return Dust(
            x=float(rng.uniform(0, nx)),
            y=float(rng.uniform(0, ny)),
            radius=radius,
            depth=float(rng.uniform(0.25, 1.0) * depth),
            filter=name,
        )

    dust.extend(one("*") for _ in range(n_shared))
    for name in filters:
        dust.extend(one(name) for _ in range(n_dust - n_shared))
    return dust


def vignetting_map(shape: tuple[int, int], corner_loss: float, centre: tuple[float, float]) -> np.ndarray:
    """Illumination falling off as ``1 / (1 + (r/f)^2)^2`` (cos^4 law), ``1 - corner_loss`` at the corners.

    Parameters
    ----------
    shape
        ``(rows, columns)``.
    corner_loss
        Fractional loss at the farthest corner from ``centre``.
    centre
        ``(x, y)`` of the optical axis, pixels.
    """
    ny, nx = shape
    cx, cy = centre
    y, x = np.ogrid[:ny, :nx]
    r2 = (x - cx) ** 2 + (y - cy) ** 2
    corners = [(0, 0), (0, ny - 1), (nx - 1, 0), (nx - 1, ny - 1)]
    rc2 = max((px - cx) ** 2 + (py - cy) ** 2 for px, py in corners)
    if corner_loss <= 0:
        return np.ones(shape, dtype=np.float32)
    k = ((1.0 - corner_loss) ** -0.5 - 1.0) / rc2
    return (1.0 / (1.0 + k * r2) ** 2).astype(np.float32)


def dust_map(shape: tuple[int, int], dust: list[Dust], filter_name: str) -> np.ndarray:
    """Multiplicative transmission of the donuts that affect ``filter_name``.

    Each donut absorbs ``depth`` on its ring (0.6-1 of its radius) and half of that inside,
    with soft edges of 1.5 pixels.
    """
    out = np.ones(shape, dtype=np.float32)
    ny, nx = shape
    for d in dust:
        if d.filter not in ("*", filter_name):
            continue
        r_out = d.radius + 3
        y0, y1 = max(int(d.y - r_out), 0), min(int(d.y + r_out) + 1, ny)
        x0, x1 = max(int(d.x - r_out), 0), min(int(d.x + r_out) + 1, nx)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        r = np.hypot(xx - d.x, yy - d.y)
        edge = 1.0 / (1.0 + np.exp((r - d.radius) / 0.75))
        ring = 1.0 / (1.0 + np.exp(-(r - 0.6 * d.radius) / 0.75))
        absorb = d.depth * edge * (0.5 + 0.5 * ring)
        out[y0:y1, x0:x1] *= (1.0 - absorb).astype(np.float32)
    return out


def prnu_map(rng: np.random.Generator, shape: tuple[int, int], rms: float) -> np.ndarray:
    """Pixel-to-pixel sensitivity: 1 plus Gaussian scatter of ``rms``."""
    out = rng.standard_normal(shape, dtype=np.float32)
    out *= np.float32(rms)
    out += np.float32(1.0)
    return out


def gradient_map(shape: tuple[int, int], amplitude: float, angle: float) -> np.ndarray:
    """A linear illumination gradient: ``1 +- amplitude/2`` across the frame along ``angle`` (rad)."""
    ny, nx = shape
    size = max(nx, ny)
    ux = ((np.arange(nx) - nx / 2) * (amplitude * np.cos(angle) / size)).astype(np.float32)
    uy = ((np.arange(ny) - ny / 2) * (amplitude * np.sin(angle) / size) + 1.0).astype(np.float32)
    return uy[:, None] + ux[None, :]
