"""FITS headers in the dialects of real acquisition programs.

Modelled on real files in ``../shared/data``:

- ``maxim``: MaxIm DL 6 (feder-apogee): ``IMAGETYP = 'Light Frame'``, sexagesimal ``OBJCTRA``,
  ``SITELAT``/``SITELONG`` strings (east-positive), ``EGAIN`` in e-/ADU, UTC ``DATE-OBS``
  to the second, ``JD``.
- ``nina``: N.I.N.A.: ``IMAGETYP = 'LIGHT'``, ``RA``/``DEC`` in degrees, ``GAIN`` is the camera's
  gain *setting* (not e-/ADU; that is ``EGAIN``, written only when the driver reports it:
  ``CameraOptions.header_egain``), ``OFFSET`` the offset setting, ``DATE-LOC``, decimal site.
- ``sbig``: TheSkyX with an SBIG camera (guilford-sbig-darks): ``PICTTYPE``, ``EGAIN``,
  ``SITELONG`` *west-positive* sexagesimal, ``LOCALTIM``, ``PEDESTAL``, ``CENTALT``.
- ``microobservatory``: MicroObservatory (hatp32-microobservatory): local ``DATE-OBS`` with a
  ``-0700`` style suffix, ``UT-OBS``, ``MJD-OBS`` with 3 decimals, ``CAMTEMP`` in kelvin,
  ``LONGITUD`` west-positive, ``IM_SCALE``, no ``IMAGETYP`` on light frames (calibration
  frames carry ``IMAGETYP`` and an ``OBJECT`` of Bias/Dark/Flat).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy import units as u
from astropy.coordinates import Angle
from astropy.io import fits
from astropy.time import Time

from nightpipe.errors import ConfigError
from nightpipe.simulate.fitswrite import Card, card_image

KIND_NAMES: dict[str, dict[str, str]] = {
    "maxim": {"light": "Light Frame", "bias": "Bias Frame", "dark": "Dark Frame", "flat": "Flat Field"},
    "sbig": {"light": "Light Frame", "bias": "Bias Frame", "dark": "Dark Frame", "flat": "Flat Field"},
    "nina": {"light": "LIGHT", "bias": "BIAS", "dark": "DARK", "flat": "FLAT"},
    "microobservatory": {"light": "", "bias": "Bias", "dark": "Dark", "flat": "Flat"},
}
_PICTTYPE = {"light": 1, "bias": 2, "dark": 3, "flat": 4}


class CardList:
    """Ordered header cards built with ``cards[key] = (value, comment)``, as on a fits.Header."""

    def __init__(self) -> None:
        self._cards: dict[str, tuple[object, str]] = {}

    def __setitem__(self, key: str, value_comment: tuple[object, str]) -> None:
        """Set (or replace) a card."""
        self._cards[key] = value_comment

    def __contains__(self, key: object) -> bool:
        """True when the keyword is set."""
        return key in self._cards

    def cards(self) -> list[Card]:
        """``(keyword, value, comment)`` in order."""
        return [(k, v, c) for k, (v, c) in self._cards.items()]


@dataclass(frozen=True)
class FrameMeta:
    """What a header describes about one exposure (independent of the dialect)."""

    kind: str
    start: Time
    exptime: float
    filter: str | None
    ccd_temp: float
    set_temp: float
    binning: int
    gain: float
    read_noise: float
    object_name: str
    ra: float | None
    dec: float | None
    airmass: float | None
    altitude: float | None
    site_name: str
    latitude: float
    longitude: float
    elevation: float
    utc_offset_hours: float
    telescope: str
    aperture_mm: float
    focal_length_mm: float
    pixel_size_um: float
    pixel_scale: float
    data_width: int
    height: int
    overscan: int
    gain_setting: int = 139
    offset_setting: int = 21
    header_egain: bool = True
    pier_side: str | None = None  # a German equatorial mount's side ('EAST'/'WEST'), when simulated


def _sexa(value: float, unit: u.UnitBase, sign: bool, precision: int) -> str:
    return str(
        Angle(value, unit=unit).to_string(unit=unit, sep=" ", precision=precision, pad=True, alwayssign=sign)
    )


def _ra_hms(ra: float, precision: int = 2) -> str:
    return _sexa(ra / 15.0, u.hourangle, False, precision)


def _dec_dms(dec: float, precision: int = 1) -> str:
    return _sexa(dec, u.deg, True, precision)


def _iso(t: Time, precision: int) -> str:
    return str(Time(t, precision=precision).isot)


def _local(t: Time, offset_hours: float) -> Time:
    return t + offset_hours * u.hour


def _offset_suffix(offset_hours: float) -> str:
    sign = "-" if offset_hours < 0 else "+"
    minutes = round(abs(offset_hours) * 60)
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


def _common_geometry(h: CardList, m: FrameMeta) -> None:
    if m.pier_side is not None:  # as ASCOM mount drivers give it to every acquisition program
        h["PIERSIDE"] = (m.pier_side, "Side of pier (German equatorial mount)")
    if m.overscan > 0:
        h["BIASSEC"] = (
            f"[{m.data_width + 1}:{m.data_width + m.overscan},1:{m.height}]",
            "Overscan region",
        )
        h["TRIMSEC"] = (f"[1:{m.data_width},1:{m.height}]", "Region of useful data")
        h["DATASEC"] = (f"[1:{m.data_width},1:{m.height}]", "Region of useful data")


def _maxim(m: FrameMeta) -> CardList:
    h = CardList()
    h["DATE-OBS"] = (_iso(m.start, 0), "ISO-8601 observation date matching MJD-OBS")
    h["EXPTIME"] = (float(m.exptime), "[sec] Duration of exposure")
    h["EXPOSURE"] = (float(m.exptime), "[sec] Duration of exposure")
    h["SET-TEMP"] = (float(m.set_temp), "CCD temperature setpoint in C")
    h["CCD-TEMP"] = (round(float(m.ccd_temp), 6), "CCD temperature at start of exposure in C")
    h["XPIXSZ"] = (m.pixel_size_um * m.binning, "Pixel Width in microns (after binning)")
    h["YPIXSZ"] = (m.pixel_size_um * m.binning, "Pixel Height in microns (after binning)")
    h["XBINNING"] = (m.binning, "Binning level along the X-axis")
    h["YBINNING"] = (m.binning, "Binning level along the Y-axis")
    h["XORGSUBF"] = (0, "Subframe X position in binned pixels")
    h["YORGSUBF"] = (0, "Subframe Y position in binned pixels")
    h["READOUTM"] = ("Monochrome", "Readout mode of image")
    if m.filter is not None:
        h["FILTER"] = (m.filter, "Filter name")
    h["IMAGETYP"] = (KIND_NAMES["maxim"][m.kind], "Type of image")
    h["FOCALLEN"] = (m.focal_length_mm, "Focal length of telescope in mm")
    h["APTDIA"] = (m.aperture_mm, "Aperture diameter of telescope in mm")
    h["APTAREA"] = (float(np.pi * (m.aperture_mm / 2) ** 2), "Aperture area of telescope in mm^2")
    if m.header_egain:
        h["EGAIN"] = (m.gain, "Electronic gain in e-/ADU")
    h["SWCREATE"] = ("MaxIm DL Version 6.18 190601 00KPP", "Name of software")
    h["SITELAT"] = (_dec_dms(m.latitude, 0).lstrip("+"), "Latitude of the imaging location")
    h["SITELONG"] = (_dec_dms(m.longitude, 0).lstrip("+"), "Longitude of the imaging location")
    h["JD"] = (float(m.start.jd), "Julian Date at start of exposure")
    h["OBJECT"] = (m.object_name, "Target object name")
    h["TELESCOP"] = (m.telescope, "Telescope name")
    h["INSTRUME"] = ("Sim KAF-1001E", "Detector instrument name")
    h["OBSERVER"] = ("nightpipe simulate", "Observer name")
    h["PEDESTAL"] = (0, "Correction to add for zero-based ADU")
    if m.ra is not None and m.dec is not None:
        h["OBJCTRA"] = (_ra_hms(m.ra), "[hms J2000] Target right ascension")
        h["OBJCTDEC"] = (_dec_dms(m.dec), "[dms +N J2000] Target declination")
    if m.airmass is not None:
        h["AIRMASS"] = (round(float(m.airmass), 6), "Airmass (multiple of zenithal airmass)")
    h["OBSERVAT"] = (m.site_name, "Observatory name")
    return h


def _nina(m: FrameMeta) -> CardList:
    h = CardList()
    h["IMAGETYP"] = (KIND_NAMES["nina"][m.kind], "Type of exposure")
    h["EXPOSURE"] = (float(m.exptime), "[s] Exposure duration")
    h["EXPTIME"] = (float(m.exptime), "[s] Exposure duration")
    h["DATE-LOC"] = (_iso(_local(m.start, m.utc_offset_hours), 3), "Time of observation (local)")
    h["DATE-OBS"] = (_iso(m.start, 3), "Time of observation (UTC)")
    h["XBINNING"] = (m.binning, "X axis binning factor")
    h["YBINNING"] = (m.binning, "Y axis binning factor")
    h["GAIN"] = (m.gain_setting, "Sensor gain")
    h["OFFSET"] = (m.offset_setting, "Sensor gain offset")
    if m.header_egain:
        h["EGAIN"] = (m.gain, "[e-/ADU] Electrons per A/D unit")
    h["XPIXSZ"] = (m.pixel_size_um * m.binning, "[um] Pixel X axis size")
    h["YPIXSZ"] = (m.pixel_size_um * m.binning, "[um] Pixel Y axis size")
    h["INSTRUME"] = ("Sim CMOS Pro", "Imaging instrument name")
    h["SET-TEMP"] = (float(m.set_temp), "[degC] CCD temperature setpoint")
    h["CCD-TEMP"] = (round(float(m.ccd_temp), 2), "[degC] CCD temperature")
    h["TELESCOP"] = (m.telescope, "Name of telescope")
    h["FOCALLEN"] = (m.focal_length_mm, "[mm] Focal length")
    if m.ra is not None and m.dec is not None:
        h["RA"] = (round(m.ra, 6), "[deg] RA of telescope")
        h["DEC"] = (round(m.dec, 6), "[deg] Declination of telescope")
    h["SITEELEV"] = (m.elevation, "[m] Observation site elevation")
    h["SITELAT"] = (m.latitude, "[deg] Observation site latitude")
    h["SITELONG"] = (m.longitude, "[deg] Observation site longitude")
    h["OBJECT"] = (m.object_name, "Name of the object of interest")
    if m.ra is not None and m.dec is not None:
        h["OBJCTRA"] = (_ra_hms(m.ra, 0), "[H M S] RA of imaged object")
        h["OBJCTDEC"] = (_dec_dms(m.dec, 0), "[D M S] Declination of imaged object")
    if m.filter is not None:
        h["FILTER"] = (m.filter, "Active filter name")
    if m.airmass is not None:
        h["AIRMASS"] = (round(float(m.airmass), 6), "Airmass at frame center (Gueymard 1993)")
    h["EQUINOX"] = (2000.0, "Equinox of celestial coordinate system")
    h["SWCREATE"] = ("N.I.N.A. 2.1.0.9001 ", "Software that created this file")
    return h


def _sbig(m: FrameMeta) -> CardList:
    h = CardList()
    h["EXPTIME"] = (float(m.exptime), "SBIGFITSEXT Total exposure time in seconds")
    h["SWCREATE"] = ("TheSkyX Version 10.5.0 Build 11086", "SBIGFITSEXT Name & version of software")
    h["COLORCCD"] = (0, "Non zero if image is from a Bayer color ccd")
    h["PICTTYPE"] = (_PICTTYPE[m.kind], "Image type as index 0= Unknown 1=Light, 2=Bias, 3=Dark, 4=Flat")
    h["IMAGETYP"] = (KIND_NAMES["sbig"][m.kind], "SBIGFITSEXT Light, Dark, Bias or Flat")
    h["XORGSUBF"] = (0, "SBIGFITSEXT Subframe x upper-left pixel in binned pixels")
    h["YORGSUBF"] = (0, "SBIGFITSEXT Subframe y upper-left pixel in binned pixels")
    h["XBINNING"] = (m.binning, "SBIGFITSEXT Binning factor in width")
    h["YBINNING"] = (m.binning, "SBIGFITSEXT Binning factor in height")
    if m.header_egain:
        h["EGAIN"] = (m.gain, "SBIGFITSEXT Electronic gain in e- per ADU")
    h["CCD-TEMP"] = (float(m.ccd_temp), "SBIGFITSEXT Temperature of the CCD")
    h["SET-TEMP"] = (float(m.set_temp), "SBIGFITSEXT The cooler setpoint in degrees C")
    h["SITELAT"] = (_dec_dms(m.latitude, 2), "SBIGFITSEXT Latitude of the imaging location")
    h["SITELONG"] = (_dec_dms(-m.longitude, 2), "SBIGFITSEXT Longitude of the imaging location")
    if m.altitude is not None:
        h["CENTALT"] = (float(m.altitude), "SBIGFITSEXT Altitude of the center of the image")
    if m.airmass is not None:
        h["AIRMASS"] = (float(m.airmass), "Airmass of the telescope")
    if m.ra is not None and m.dec is not None:
        h["OBJCTRA"] = (_ra_hms(m.ra, 3), "SBIGFITSEXT The right ascension of the center of the image")
        h["OBJCTDEC"] = (_dec_dms(m.dec, 2), "SBIGFITSEXT The declination of the center of the image")
    h["OBJECT"] = (m.object_name, "SBIGFITSEXT The name of the object imaged")
    h["TELESCOP"] = (m.telescope, "SBIGFITSEXT The model telescope used")
    h["INSTRUME"] = ("SBIG STF-8300 CCD Camera", "SBIGFITSEXT The model camera used.")
    h["XPIXSZ"] = (m.pixel_size_um * m.binning, "SBIGFITSEXT Pixel width in microns after binning")
    h["YPIXSZ"] = (m.pixel_size_um * m.binning, "SBIGFITSEXT Pixel height in microns after binning")
    h["PEDESTAL"] = (-100, "SBIGFITSEXT Add this count to each pixel value")
    if m.filter is not None:
        h["FILTER"] = (m.filter, "SBIGFITSEXT The optical filter used to take image")
    h["DATE-OBS"] = (_iso(m.start, 3), "SBIGFITSEXT UTC of start exp. in ISO 8601")
    local = _local(m.start, m.utc_offset_hours).to_datetime()
    stamp = (
        f"{local.month}/{local.day}/{local.year} {local.strftime('%I:%M:%S')}.{local.microsecond // 1000:03d}"
    )
    h["LOCALTIM"] = (f"{stamp} {local.strftime('%p')}", "Local time at exposure start")
    return h


def _microobservatory(m: FrameMeta) -> CardList:
    h = CardList()
    h["EQUINOX"] = (2000.0, "Epoch of celestial coordinate system used")
    suffix = _offset_suffix(m.utc_offset_hours)
    local_start = _local(m.start, m.utc_offset_hours)
    local_end = local_start + (m.exptime + 1.96) * u.s
    h["DATE-OBS"] = (_iso(local_start, 3) + suffix, "Start date & time of observation, LT")
    h["DATE-END"] = (_iso(local_end, 3) + suffix, "End date & time of observation, LT")
    h["UT-OBS"] = (_iso(m.start, 3) + "-0000", "Universal Time at start of obs.")
    h["MJD-OBS"] = (round(float(m.start.mjd), 3), "Modified Julian Date (MJD) at start of observation")
    name = m.object_name if m.kind == "light" else KIND_NAMES["microobservatory"][m.kind]
    h["OBJECT"] = (name, "Name of object observed")
    if m.kind != "light":
        h["IMAGETYP"] = (KIND_NAMES["microobservatory"][m.kind], "Calibration frame")
    h["EXPTIME"] = (float(m.exptime), "Exposure time in Seconds")
    if m.ra is not None and m.dec is not None:
        h["RA"] = (round(m.ra, 6), f"{_ra_hms(m.ra, 0)[:5]} Right Ascension")
        h["DEC"] = (round(m.dec, 6), "Declination")
    if m.altitude is not None:
        h["TELALT"] = (round(float(m.altitude), 3), "Altitude")
    h["INSTRUME"] = ("Main", "Camera selected")
    h["FILTER"] = (m.filter or "Clear", "Filter chosen")
    h["IM_SCALE"] = (round(m.pixel_scale, 3), "Image scale in arc-secs/pixel")
    h["CAMTEMP"] = (round(m.ccd_temp + 273.15, 1), "CCD Camera Temperature in Kelvin, =-1 if no data")
    h["TELESCOP"] = (m.telescope, "Telescope name")
    h["LATITUDE"] = (round(m.latitude, 2), "Local latitude")
    h["LONGITUD"] = (round(-m.longitude, 2), "Local longitude")
    h["OBSERVAT"] = (m.site_name, "Observatory name")
    h["CREATOR"] = ("MicroObservatory2014-05-23", "Version of current FITS document")
    return h


_BUILDERS = {"maxim": _maxim, "nina": _nina, "sbig": _sbig, "microobservatory": _microobservatory}


def header_cards(dialect: str, meta: FrameMeta) -> list[Card]:
    """The cards an acquisition program of ``dialect`` would write for ``meta``.

    Parameters
    ----------
    dialect
        ``maxim``, ``nina``, ``sbig`` or ``microobservatory``.
    meta
        The exposure.

    Raises
    ------
    ConfigError
        For an unknown dialect.
    """
    builder = _BUILDERS.get(dialect)
    if builder is None:
        raise ConfigError(f"unknown header dialect {dialect!r}", hint=f"use one of {', '.join(_BUILDERS)}")
    cards = builder(meta)
    _common_geometry(cards, meta)
    return cards.cards()


def build_header(dialect: str, meta: FrameMeta) -> fits.Header:
    """:func:`header_cards` as an astropy header (comments cut to fit 80 columns)."""
    header = fits.Header()
    for key, value, comment in header_cards(dialect, meta):
        room = 80 - max(len(card_image(key, value).rstrip()), 30) - 3
        header[key] = (value, comment[: max(room, 0)])
    return header
