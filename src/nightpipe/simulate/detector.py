"""The fixed properties of the simulated camera and optics, drawn once per night."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nightpipe.simulate.camera import bias_pattern, dark_current_map, dead_pixels, response_mask
from nightpipe.simulate.flats import Dust, draw_dust, dust_map, prnu_map, vignetting_map
from nightpipe.simulate.options import SimOptions


@dataclass(frozen=True)
class Detector:
    """Noiseless maps of one camera + telescope.

    Attributes
    ----------
    bias
        Bias pattern of the whole read-out (overscan included), ADU.
    dark_rate
        Dark current per (binned) pixel at the reference temperature, e-/s.
    hot, dead
        ``(n, 2)`` ``(y, x)`` of hot and dead pixels.
    dead_column
        Column index of the (partly) dead column, or ``None``.
    response
        Pixel response per filter: vignetting x dust x PRNU x dead-pixel mask (mean about 1 at
        the optical centre).
    vignetting_centre
        ``(x, y)`` of the optical axis.
    dust
        The dust donuts.
    """

    bias: np.ndarray
    dark_rate: np.ndarray
    hot: np.ndarray
    dead: np.ndarray
    dead_column: int | None
    response: dict[str, np.ndarray]
    vignetting_centre: tuple[float, float]
    dust: list[Dust]


def build_detector(options: SimOptions, rng: np.random.Generator) -> Detector:
    """Draw the camera's bias pattern, dark current, cosmetics and the flat-field response."""
    cam = options.camera
    cal = options.calibration
    size = cam.size
    shape = (size, size)
    bias = bias_pattern(
        rng, (size, size + cam.overscan), cam.bias_level, cam.bias_row_amplitude, cam.bias_col_amplitude
    )
    rate, hot = dark_current_map(rng, shape, cam.dark_current * cam.binning**2, cam.hot_pixel_fraction)
    dead, column = dead_pixels(rng, shape, cam.dead_pixel_fraction, cam.dead_column)
    mask = response_mask(shape, dead, column)
    centre = (
        float(size / 2 + rng.normal(0, 0.03 * size)),
        float(size / 2 + rng.normal(0, 0.03 * size)),
    )
    vig = vignetting_map(shape, cal.vignetting, centre)
    prnu = prnu_map(rng, shape, cam.prnu)
    filters = tuple(dict.fromkeys((*cal.flat_filters, options.site.filter)))
    dust = draw_dust(rng, shape, filters, cal.n_dust, cal.dust_depth)
    base = vig * prnu * mask
    response = {name: base * dust_map(shape, dust, name) for name in filters}
    return Detector(
        bias=bias,
        dark_rate=rate,
        hot=hot,
        dead=dead,
        dead_column=column,
        response=response,
        vignetting_centre=centre,
        dust=dust,
    )
