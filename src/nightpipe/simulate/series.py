"""Everything that changes from one light frame to the next, computed up front for the series."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy import units as u
from astropy.coordinates import EarthLocation
from astropy.time import Time

from nightpipe.errors import ConfigError
from nightpipe.frames.timing import altitudes_deg
from nightpipe.simulate.field import StarField
from nightpipe.simulate.movers import MoverPaths, mover_paths
from nightpipe.simulate.observing import (
    airmass_kasten_young,
    bjd_tdb,
    exposure_starts,
    seeing_series,
    sky_series,
    young_scintillation,
)
from nightpipe.simulate.options import SimOptions
from nightpipe.simulate.stars import electrons_per_second
from nightpipe.simulate.transit import sinusoid, transit_flux
from nightpipe.simulate.turns import field_turns

MIN_ALTITUDE = 10.0
"""Lowest altitude (degrees) of the pointing accepted during the light series."""


@dataclass(frozen=True)
class LightSeries:
    """Per-frame conditions of the light series (arrays of length ``n``, or ``(n, stars)``).

    Attributes
    ----------
    starts, mids
        UTC start and mid-exposure times.
    bjd
        Mid-exposure BJD_TDB.
    altitude, airmass
        Of the pointing at mid-exposure.
    fwhm_arcsec, fwhm_px
        Seeing.
    sky_e
        Sky per pixel per exposure, electrons (before the flat).
    dx, dy
        Pointing offset (drift, jitter and the re-pointing after a meridian flip), pixels.
    rotation_deg
        Turn of the field on the detector about the frame centre, degrees (the field rotation
        of an alt-azimuth mount, plus 180 after a meridian flip); see
        :func:`nightpipe.simulate.turns.frame_positions`.
    pier_side
        Per light, 'EAST' or 'WEST' when a meridian flip is simulated, else empty.
    target_rel
        Noiseless relative flux of the target (transit only, no extinction).
    variable_rel
        Relative flux of the variable comparison (ones when there is none).
    star_e
        Electrons of every star in every frame (above the flat, after extinction).
    moving_x, moving_y, moving_e
        The moving object (empty arrays when there is none).
    movers
        The paths of the other moving objects (``options.movers``), or ``None``.
    t0_bjd
        Mid-transit time, BJD_TDB.
    scintillation
        Young's relative scintillation noise per frame.
    """

    starts: Time
    mids: Time
    bjd: np.ndarray
    altitude: np.ndarray
    airmass: np.ndarray
    fwhm_arcsec: np.ndarray
    fwhm_px: np.ndarray
    sky_e: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    rotation_deg: np.ndarray
    pier_side: tuple[str, ...]
    target_rel: np.ndarray
    variable_rel: np.ndarray
    star_e: np.ndarray
    moving_x: np.ndarray
    moving_y: np.ndarray
    moving_e: np.ndarray
    t0_bjd: float
    scintillation: np.ndarray
    movers: MoverPaths | None = None


def site_location(options: SimOptions) -> EarthLocation:
    """The observatory as an astropy location."""
    s = options.site
    return EarthLocation.from_geodetic(s.longitude * u.deg, s.latitude * u.deg, s.elevation * u.m)


def build_series(options: SimOptions, field: StarField, rng: np.random.Generator) -> LightSeries:
    """Compute times, airmass, seeing, sky, pointing offsets and every star's flux per light frame."""
    site, sky, tr = options.site, options.sky, options.transit
    n = site.n_lights
    starts = exposure_starts(site.start_utc, n, site.cadence)
    mids = starts + 0.5 * site.exptime * u.s
    location = site_location(options)
    alt = altitudes_deg(mids.utc.jd, site.ra, site.dec, site.latitude, site.longitude, site.elevation)
    if n and alt.min() < MIN_ALTITUDE:
        worst = int(np.argmin(alt))
        raise ConfigError(
            f"the pointing RA {site.ra:.4f}, Dec {site.dec:.4f} is at altitude {alt[worst]:.1f} deg "
            f"at {mids[worst].isot} UTC from latitude {site.latitude:.2f}, longitude {site.longitude:.2f}",
            hint=f"choose a start time or pointing that keeps the field above {MIN_ALTITUDE:.0f} deg",
        )
    airmass = airmass_kasten_young(alt)
    bjd = bjd_tdb(mids, location, site.ra, site.dec) if n else np.zeros(0)
    t0 = float(np.mean(bjd[[0, -1]]) if n else 0.0) + tr.t0_offset / 24.0
    fwhm_arcsec = seeing_series(rng, airmass, sky.fwhm, sky.fwhm_variation)
    if sky.fwhm_peak:
        hours = (bjd - t0) * 24.0 / max(sky.fwhm_peak_hours, 1e-3)
        fwhm_arcsec = fwhm_arcsec * (1.0 + sky.fwhm_peak * np.exp(-0.5 * hours**2))
    sky_e = sky_series(airmass, sky.sky_brightness, sky.sky_trend, sky.zeropoint, options.scale**2)
    sky_e = sky_e * site.exptime
    ramp = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(n)
    dx = sky.drift[0] * ramp + sky.jitter * rng.standard_normal(n)
    dy = sky.drift[1] * ramp + sky.jitter * rng.standard_normal(n)
    rotation, pier_side, repoint = field_turns(options, mids)
    dx, dy = dx + repoint[:, 0], dy + repoint[:, 1]
    if tr.enabled and n:
        target_rel = transit_flux(
            bjd,
            t0=t0,
            period=tr.period,
            rp=tr.rp,
            a=tr.a,
            inc=tr.inc,
            u=tr.u,
            exptime_days=site.exptime / 86400.0,
        )
    else:
        target_rel = np.ones(n)
    if field.variable >= 0:
        variable_rel = sinusoid(bjd, options.variable_amplitude, options.variable_period / 24.0, 0.7)
    else:
        variable_rel = np.ones(n)
    extinction = 10 ** (-0.4 * sky.extinction * airmass)
    base = electrons_per_second(field.mag, sky.zeropoint) * site.exptime
    star_e = extinction[:, None] * base[None, :]
    star_e[:, field.target] *= target_rel
    if field.variable >= 0:
        star_e[:, field.variable] *= variable_rel
    if options.moving_object and n:
        size = options.camera.size
        angle = rng.uniform(0, 2 * np.pi)
        rate_px = options.moving_rate / options.scale * (site.cadence / 60.0)
        path = rate_px * (n - 1)
        x0 = size / 2 - 0.5 * path * np.cos(angle) + rng.uniform(-0.2, 0.2) * size
        y0 = size / 2 - 0.5 * path * np.sin(angle) + rng.uniform(-0.2, 0.2) * size
        moving_x = x0 + rate_px * np.arange(n) * np.cos(angle) + dx
        moving_y = y0 + rate_px * np.arange(n) * np.sin(angle) + dy
        moving_e = extinction * float(electrons_per_second(options.moving_mag, sky.zeropoint)) * site.exptime
    else:
        moving_x = moving_y = moving_e = np.zeros(0)
    paths = mover_paths(
        options.movers,
        seed=options.seed,
        n=n,
        size=options.camera.size,
        scale=options.scale,
        cadence=site.cadence,
        exptime=site.exptime,
        electrons=[
            extinction * float(electrons_per_second(m.mag, sky.zeropoint)) * site.exptime
            for m in options.movers
        ],
    )
    scint = young_scintillation(site.aperture_cm, airmass, site.elevation, site.exptime)
    return LightSeries(
        starts=starts,
        mids=mids,
        bjd=bjd,
        altitude=alt,
        airmass=airmass,
        fwhm_arcsec=fwhm_arcsec,
        fwhm_px=fwhm_arcsec / options.scale,
        sky_e=sky_e,
        dx=dx,
        dy=dy,
        rotation_deg=rotation,
        pier_side=pier_side,
        target_rel=target_rel,
        variable_rel=variable_rel,
        star_e=star_e,
        moving_x=moving_x,
        moving_y=moving_y,
        moving_e=moving_e,
        t0_bjd=t0,
        scintillation=scint,
        movers=paths,
    )
