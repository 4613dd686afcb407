"""Pointing and pixel-scale hints for the solver, read from a FITS header and the settings."""

from __future__ import annotations

import logging
import math

import numpy as np
from astropy import units as u
from astropy.coordinates import Angle
from astropy.io import fits

from nightpipe.astrometry.solver import Hints
from nightpipe.config import AstrometryConfig

log = logging.getLogger(__name__)

ARCSEC_PER_RADIAN = 206264.806

RA_KEYS = ("RA", "OBJCTRA", "RA_OBJ", "TELRA", "CRVAL1")
DEC_KEYS = ("DEC", "OBJCTDEC", "DEC_OBJ", "TELDEC", "CRVAL2")
SCALE_KEYS = ("IM_SCALE", "PIXSCALE", "SECPIX", "SCALE", "PIXSCAL1")


def _angle(value: object, *, hours_if_text: bool) -> float | None:
    """Degrees from a header value: a number (degrees) or a sexagesimal string."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(float(value)) else None
    text = str(value).strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        unit = u.hourangle if hours_if_text else u.deg
        return float(Angle(text.replace(" ", ":"), unit=unit).to_value(u.deg))
    except (ValueError, u.UnitsError):
        return None


def pointing_from_header(header: fits.Header) -> tuple[float | None, float | None]:
    """RA and Dec (degrees) of the pointing from common keywords, or ``None`` each."""
    ra = dec = None
    for key in RA_KEYS:
        if key in header:
            ra = _angle(header[key], hours_if_text=key != "CRVAL1")
            if ra is not None and 0 <= ra < 360:
                break
            ra = None
    for key in DEC_KEYS:
        if key in header:
            dec = _angle(header[key], hours_if_text=False)
            if dec is not None and -90 <= dec <= 90:
                break
            dec = None
    return ra, dec


def scale_from_header(header: fits.Header) -> float | None:
    """Pixel scale (arcsec/px): a scale keyword, focal length and pixel size x binning, or a header WCS."""
    for key in SCALE_KEYS:
        value = header.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 < float(value) < 3600:
            return float(value)
    focal = header.get("FOCALLEN")
    if isinstance(focal, int | float) and focal > 0:
        binned = header.get("XPIXSZ")  # MaxIm convention: already includes binning
        if isinstance(binned, int | float) and binned > 0:
            return ARCSEC_PER_RADIAN * float(binned) * 1e-3 / float(focal)
        unbinned = header.get("PIXSIZE1")
        if isinstance(unbinned, int | float) and unbinned > 0:
            xbin = header.get("XBINNING", 1)
            xbin = float(xbin) if isinstance(xbin, int | float) and xbin > 0 else 1.0
            return ARCSEC_PER_RADIAN * float(unbinned) * xbin * 1e-3 / float(focal)
    from nightpipe.astrometry.checks import header_has_celestial_wcs

    wcs = header_has_celestial_wcs(header)
    if wcs is not None:
        scale = float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix)))) * 3600.0
        if 0 < scale < 3600:
            return scale
    return None


def hints_from_header(header: fits.Header, config: AstrometryConfig) -> Hints:
    """Solver hints: the settings' pixel scale wins over the header's; pointing from the header.

    Examples
    --------
    >>> h = fits.Header({"RA": 31.3, "DEC": 46.77, "IM_SCALE": 5.21})
    >>> hints = hints_from_header(h, AstrometryConfig())
    >>> round(hints.scale_low, 3), round(hints.scale_high, 3), hints.ra
    (4.689, 5.731, 31.3)
    """
    ra, dec = pointing_from_header(header)
    scale = config.pixel_scale if config.pixel_scale is not None else scale_from_header(header)
    low = high = None
    if scale is not None:
        low, high = scale * (1 - config.scale_tolerance), scale * (1 + config.scale_tolerance)
    return Hints(ra=ra, dec=dec, radius_deg=config.search_radius_deg, scale_low=low, scale_high=high)
