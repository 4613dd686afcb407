"""Build the star field of a night: random or given stars, the target, a variable, a moving object."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS

from nightpipe.errors import ConfigError
from nightpipe.simulate.options import SimOptions
from nightpipe.simulate.stars import draw_magnitudes, expected_count, latitude_factor, tan_wcs


@dataclass(frozen=True)
class StarField:
    """Stars in the reference frame (before drift and jitter).

    ``x``, ``y`` are 0-based pixel positions under the reference WCS; ``target`` is the index of
    the transit target; ``variable`` the index of the variable comparison star or -1.
    """

    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray
    x: np.ndarray
    y: np.ndarray
    target: int
    variable: int
    wcs: WCS


def field_margin(options: SimOptions) -> float:
    """Pixels around the frame where stars are kept, so that drift and jitter bring none from
    nowhere; a field that turns brings in the corners of the circle around the frame, a flip
    the mount's re-pointing."""
    sky = options.sky
    margin = float(np.hypot(*sky.drift) + 5 * sky.jitter + 20)
    if sky.flip_at is not None:
        margin += float(np.hypot(*sky.flip_shift))
    if sky.field_rotation != 0.0:
        margin += (np.sqrt(2.0) - 1.0) / 2.0 * options.camera.size
    return margin


def _pick_target(x: np.ndarray, y: np.ndarray, mag: np.ndarray, shape: tuple[int, int], want: float) -> int:
    ny, nx = shape
    central = (np.abs(x - nx / 2) < nx / 4) & (np.abs(y - ny / 2) < ny / 4)
    if not np.any(central):
        raise ConfigError(
            "no star of the given star list falls in the central half of the frame",
            hint="check the pointing (site.ra, site.dec) against the star list",
        )
    score = np.where(central, np.abs(mag - want), np.inf)
    return int(np.argmin(score))


def _pick_variable(x: np.ndarray, y: np.ndarray, mag: np.ndarray, shape: tuple[int, int], target: int) -> int:
    ny, nx = shape
    inside = (x > 0.1 * nx) & (x < 0.9 * nx) & (y > 0.1 * ny) & (y < 0.9 * ny)
    score = np.where(inside, np.abs(mag - mag[target]), np.inf)
    score[target] = np.inf
    index = int(np.argmin(score))
    return index if np.isfinite(score[index]) else -1


def build_field(options: SimOptions, rng: np.random.Generator) -> StarField:
    """Place the stars of the night.

    With ``options.stars`` the given stars are projected through a TAN WCS at the pointing and
    the one nearest ``target_mag`` in the central half becomes the target. Otherwise a random
    field is drawn with the luminosity function of :mod:`nightpipe.simulate.stars`, scaled by the
    Galactic latitude of the pointing, and a target of ``target_mag`` is added near the centre.
    """
    size = options.camera.size
    shape = (size, size)
    wcs = tan_wcs(options.site.ra, options.site.dec, options.scale, options.sky.rotation, shape)
    margin = field_margin(options)
    if options.stars is not None:
        ra, dec, mag = options.stars.ra, options.stars.dec, options.stars.mag
        x, y = wcs.all_world2pix(ra, dec, 0)
        keep = np.isfinite(x) & (x > -margin) & (x < size + margin) & (y > -margin) & (y < size + margin)
        ra, dec, mag, x, y = ra[keep], dec[keep], mag[keep], x[keep], y[keep]
        target = _pick_target(x, y, mag, shape, options.target_mag)
    else:
        side_deg = (size + 2 * margin) * options.scale / 3600.0
        density = options.density_scale * latitude_factor(options.site.ra, options.site.dec)
        n = int(rng.poisson(expected_count(side_deg**2, options.mag_limit, density)))
        mag = draw_magnitudes(rng, n, options.mag_limit)
        x = rng.uniform(-margin, size + margin, n)
        y = rng.uniform(-margin, size + margin, n)
        tx = size * rng.uniform(0.4, 0.6)
        ty = size * rng.uniform(0.4, 0.6)
        x, y, mag = np.append(x, tx), np.append(y, ty), np.append(mag, options.target_mag)
        ra, dec = wcs.all_pix2world(x, y, 0)
        target = n
    variable = _pick_variable(x, y, mag, shape, target) if options.variable_comparison else -1
    return StarField(
        ra=np.asarray(ra, float),
        dec=np.asarray(dec, float),
        mag=np.asarray(mag, float),
        x=np.asarray(x, float),
        y=np.asarray(y, float),
        target=target,
        variable=variable,
        wcs=wcs,
    )
