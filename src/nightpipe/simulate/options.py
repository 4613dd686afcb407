"""Every switch of the synthetic-night generator, with realistic, seeded defaults.

The options are frozen dataclasses grouped by what they describe (camera, calibration
frames, sky and atmosphere, the star field, the transit); :class:`SimOptions` holds them
all. Change one value with :func:`dataclasses.replace`, e.g.
``replace(opts, camera=replace(opts.camera, gain=2.0))``.

The camera and calibration-frame options are in :mod:`nightpipe.simulate.camera_options`
(re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from nightpipe.errors import ConfigError
from nightpipe.simulate.camera_options import CalibrationOptions, CameraOptions
from nightpipe.simulate.dialects import DIALECTS, Dialect
from nightpipe.simulate.movers import MoverSpec


@dataclass(frozen=True)
class SiteOptions:
    """Where and when: observatory, pointing, and the timing of the light series.

    Attributes
    ----------
    name, latitude, longitude, elevation
        The observatory (longitude east-positive, degrees; elevation in metres).
    utc_offset_hours
        Offset of local time written by dialects with local DATE-OBS (MicroObservatory: -7).
    start_utc
        Start of the first light frame (ISO, UTC).
    ra, dec
        Pointing (field centre), degrees ICRS.
    object_name
        Name written in OBJECT and used in the light file names.
    filter
        Filter of the light frames.
    n_lights
        Number of light frames.
    exptime
        Exposure time of the lights, seconds.
    cadence
        Time from one light start to the next, seconds.
    telescope
        Telescope name written in the headers.
    aperture_cm
        Telescope aperture, cm (scintillation).
    """

    name: str = "Fred Lawrence Whipple Observatory"
    latitude: float = 31.6811
    longitude: float = -110.8783
    elevation: float = 2345.0
    utc_offset_hours: float = -7.0
    start_utc: str = "2017-12-20T02:00:00"
    ra: float = 31.3121
    dec: float = 46.7691
    object_name: str = "SIM-1"
    filter: str = "V"
    n_lights: int = 60
    exptime: float = 60.0
    cadence: float = 300.0
    telescope: str = "Sim 0.35m"
    aperture_cm: float = 35.0


@dataclass(frozen=True)
class SkyOptions:
    """Optics, atmosphere and background.

    Attributes
    ----------
    pixel_scale
        Unbinned pixel scale, arcsec per pixel.
    rotation
        Position angle of the detector y axis east of north, degrees.
    zeropoint
        Magnitude giving 1 electron per second above the atmosphere.
    extinction
        Extinction coefficient, magnitudes per airmass.
    sky_brightness
        Zenith sky brightness, mag per square arcsec.
    sky_trend
        Fractional change of the sky from the first to the last light (moon rise, twilight...).
    fwhm
        Median seeing at zenith, arcsec.
    fwhm_variation
        Fractional RMS of the slow seeing variation through the night.
    fwhm_peak
        Fractional rise of the seeing to a maximum at mid-transit (0.5: the FWHM is 1.5 times
        wider there), a Gaussian bump in time of RMS ``fwhm_peak_hours``; 0: none.
    fwhm_peak_hours
        RMS width of that bump, hours.
    psf
        ``"moffat"`` or ``"gaussian"``.
    moffat_beta
        Moffat beta.
    drift
        Pointing drift over the whole series (x, y), binned pixels.
    jitter
        RMS of the frame-to-frame pointing jitter, binned pixels.
    field_rotation
        Turn of the field on the detector, degrees per hour, about the frame centre (an
        alt-azimuth mount or a smart telescope without a field derotator; 0: none).
    flip_at
        Index of the first light after a meridian flip (``None``: no flip): from it on the field
        is turned by 180 degrees about the frame centre and shifted by ``flip_shift``, and every
        light's header says ``PIERSIDE`` ('EAST' before, 'WEST' from it).
    flip_shift
        Pointing error of the mount after the flip (x, y), binned pixels.
    cosmic_rate
        Cosmic rays per cm^2 per minute (0: none).
    """

    pixel_scale: float = 1.5
    rotation: float = 0.0
    zeropoint: float = 21.0
    extinction: float = 0.2
    sky_brightness: float = 20.0
    sky_trend: float = 0.3
    fwhm: float = 3.5
    fwhm_variation: float = 0.12
    fwhm_peak: float = 0.0
    fwhm_peak_hours: float = 0.6
    psf: Literal["moffat", "gaussian"] = "moffat"
    moffat_beta: float = 3.0
    drift: tuple[float, float] = (18.0, -7.0)
    jitter: float = 1.5
    field_rotation: float = 0.0
    flip_at: int | None = None
    flip_shift: tuple[float, float] = (14.0, -9.0)
    cosmic_rate: float = 2.0


@dataclass(frozen=True)
class TransitOptions:
    """The planet transiting the target star (batman model).

    Attributes
    ----------
    enabled
        Inject the transit (False: the target is constant).
    rp
        Planet to star radius ratio.
    a
        Semi-major axis in stellar radii.
    inc
        Inclination, degrees.
    period
        Orbital period, days.
    t0_offset
        Mid-transit time relative to the middle of the light series, hours.
    u
        Quadratic limb-darkening coefficients.
    """

    enabled: bool = True
    rp: float = 0.15
    a: float = 6.0
    inc: float = 88.9
    period: float = 2.15
    t0_offset: float = 0.0
    u: tuple[float, float] = (0.45, 0.2)


@dataclass(frozen=True)
class StarList:
    """A caller's stars to place instead of a random field (e.g. Tycho-2 from index files)."""

    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray

    def __post_init__(self) -> None:
        """Check that the three arrays are 1-D and of equal length."""
        ra, dec, mag = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (self.ra, self.dec, self.mag))
        if not (ra.ndim == dec.ndim == mag.ndim == 1 and ra.size == dec.size == mag.size):
            raise ConfigError("StarList needs three 1-D arrays (ra, dec, mag) of equal length")
        object.__setattr__(self, "ra", ra)
        object.__setattr__(self, "dec", dec)
        object.__setattr__(self, "mag", mag)


@dataclass(frozen=True)
class SimOptions:
    """Everything the synthetic night depends on; all defaults give a realistic 1024x1024 night.

    Attributes
    ----------
    seed
        Seed of every random draw: the same seed gives the same night, byte for byte.
    dialect
        Header dialect: ``maxim``, ``nina``, ``sbig`` or ``microobservatory``.
    write_wcs
        Write the true TAN WCS of each light frame (default: only the RA/DEC pointing hint).
    camera, calibration, site, sky, transit
        The groups of options above.
    stars
        Stars to place; ``None`` draws a random field with a realistic luminosity function.
    mag_limit
        Faintest magnitude of the random field.
    density_scale
        Multiplies the star density of the random field, which already follows the Galactic
        latitude of the pointing (see :func:`nightpipe.simulate.stars.latitude_factor`).
    target_mag
        Magnitude of the transit target (placed near the centre of a random field; with
        ``stars`` the star closest to this magnitude near the centre is the target).
    variable_comparison
        Make the comparison star closest in brightness to the target a sinusoidal variable.
    variable_amplitude, variable_period
        Its semi-amplitude (fraction of flux) and period (hours).
    moving_object
        Add a moving object (asteroid) crossing the field.
    moving_mag, moving_rate
        Its magnitude and rate (arcsec per minute).
    movers
        More moving objects, each with its own start, rate, direction and magnitude
        (:class:`nightpipe.simulate.movers.MoverSpec`), trailed over the exposure.
    junk_files
        Also write the junk a real night folder holds: a truncated light frame, an empty
        ``.fits`` file, a text file named ``.fits`` and a log file (listed in the truth's
        ``junk``), to test that a pipeline records them and goes on.
    """

    seed: int = 1
    dialect: Dialect = "maxim"
    write_wcs: bool = False
    camera: CameraOptions = field(default_factory=CameraOptions)
    calibration: CalibrationOptions = field(default_factory=CalibrationOptions)
    site: SiteOptions = field(default_factory=SiteOptions)
    sky: SkyOptions = field(default_factory=SkyOptions)
    transit: TransitOptions = field(default_factory=TransitOptions)
    stars: StarList | None = field(default=None, compare=False)
    mag_limit: float = 18.0
    density_scale: float = 1.0
    target_mag: float = 11.0
    variable_comparison: bool = False
    variable_amplitude: float = 0.02
    variable_period: float = 3.0
    moving_object: bool = False
    moving_mag: float = 14.0
    moving_rate: float = 0.5
    movers: tuple[MoverSpec, ...] = ()
    junk_files: bool = False

    def __post_init__(self) -> None:
        """Reject values that cannot make a night."""
        problems = []
        if self.dialect not in DIALECTS:
            problems.append(f"dialect {self.dialect!r} is not one of {', '.join(DIALECTS)}")
        if not 16 <= self.camera.size <= 8192:
            problems.append(f"camera.size {self.camera.size} is outside 16..8192")
        if self.camera.binning < 1:
            problems.append("camera.binning must be >= 1")
        if self.camera.gain <= 0:
            problems.append("camera.gain must be > 0")
        if not 0 < self.camera.nonlinear_knee <= 1:
            problems.append("camera.nonlinear_knee must be in (0, 1] (1: no roll-off)")
        if self.camera.adc_bits not in (12, 14, 16):
            problems.append("camera.adc_bits must be 12, 14 or 16")
        if self.site.n_lights < 0 or self.calibration.n_bias < 0 or self.calibration.n_flat < 0:
            problems.append("frame counts must be >= 0")
        if self.site.exptime <= 0 or self.site.cadence < self.site.exptime:
            problems.append("site.exptime must be > 0 and site.cadence >= site.exptime")
        if self.sky.fwhm <= 0 or self.sky.pixel_scale <= 0:
            problems.append("sky.fwhm and sky.pixel_scale must be > 0")
        if self.sky.flip_at is not None and not 0 <= self.sky.flip_at < max(self.site.n_lights, 1):
            problems.append(f"sky.flip_at {self.sky.flip_at} is not the index of a light (0..n_lights-1)")
        if problems:
            raise ConfigError("bad simulation options: " + "; ".join(problems))

    @property
    def scale(self) -> float:
        """Binned pixel scale, arcsec per pixel."""
        return self.sky.pixel_scale * self.camera.binning

    @property
    def adc_max(self) -> int:
        """Largest value the ADC can write."""
        return int(2**self.camera.adc_bits - 1)
