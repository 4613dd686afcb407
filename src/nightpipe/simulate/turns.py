"""A field that turns on the detector: an alt-azimuth mount's field rotation, a meridian flip.

Every light sees the reference field offset by its pointing ``(dx, dy)`` and then turned by its
angle about the frame centre (:func:`frame_positions`); the angle grows at ``sky.field_rotation``
degrees per hour and jumps by 180 degrees at ``sky.flip_at``, where the mount also re-points by
``sky.flip_shift`` and its pier side changes from 'EAST' to 'WEST' (:func:`field_turns`). The
detector (bias, dark, flat, hot pixels) stays put, so after a turn the stars fall on other pixels.
:func:`turned_wcs` is the true WCS of such a light.
"""

from __future__ import annotations

import numpy as np
from astropy.time import Time
from astropy.wcs import WCS

from nightpipe.simulate.options import SimOptions


def frame_positions(
    x: np.ndarray, y: np.ndarray, dx: float, dy: float, angle_deg: float, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions in a light of stars at ``(x, y)`` in the reference frame: offset by the
    pointing ``(dx, dy)``, then turned by ``angle_deg`` (counter-clockwise) about the centre of the
    ``size`` x ``size`` frame; without a turn, just the offset.

    Examples
    --------
    >>> frame_positions(np.array([0.0]), np.array([0.0]), 1.0, 0.0, 180.0, 11)
    (array([9.]), array([10.]))
    """
    x, y = x + dx, y + dy
    if angle_deg == 0.0:
        return x, y
    c = (size - 1) / 2.0
    cos, sin = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    return c + cos * (x - c) - sin * (y - c), c + sin * (x - c) + cos * (y - c)


def field_turns(options: SimOptions, mids: Time) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Per light: the field's turn (degrees), the pier side (empty without a flip) and the mount's
    re-pointing offset after the flip (n x 2 pixels)."""
    sky, n = options.sky, len(mids)
    hours = (np.asarray(mids.jd) - float(mids.jd[0])) * 24.0 if n else np.zeros(0)
    angle = np.asarray(sky.field_rotation * hours, dtype=np.float64)
    shift = np.zeros((n, 2))
    if sky.flip_at is None:
        return angle, (), shift
    after = np.arange(n) >= sky.flip_at
    shift[after] = sky.flip_shift
    return angle + 180.0 * after, tuple("WEST" if a else "EAST" for a in after), shift


def turned_wcs(reference: WCS, dx: float, dy: float, angle_deg: float, size: int) -> WCS:
    """The WCS of a light whose stars sit at :func:`frame_positions` of the reference WCS's.

    A star at reference pixel ``p`` lands at ``c + R (p + d - c)``, so the light's CD matrix is
    the reference's times ``R^T`` and its reference pixel moves to ``c + R (crpix + d - c)``.
    """
    wcs = reference.deepcopy()
    if angle_deg == 0.0:
        wcs.wcs.crpix = wcs.wcs.crpix + np.array([dx, dy])
        return wcs
    crpix0 = np.asarray(wcs.wcs.crpix, dtype=np.float64) - 1.0  # 0-based
    x, y = frame_positions(crpix0[:1], crpix0[1:], dx, dy, angle_deg, size)
    cos, sin = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    wcs.wcs.cd = np.asarray(wcs.wcs.cd) @ np.array([[cos, sin], [-sin, cos]])  # CD R^T
    wcs.wcs.crpix = [float(x[0]) + 1.0, float(y[0]) + 1.0]
    return wcs
