"""Seeded synthetic transit nights with a truth record, for tests, benchmarks and demos.

:func:`simulate_lightcurve` makes a relative-flux light curve (transit x systematics + white
noise); :func:`simulate_source_tables` makes per-frame source tables in the format of
``docs/formats.md`` (target, comparison stars, a variable star, a drifting pointing), from which
the differential photometry must recover the injected transit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.table import Table
from numpy.typing import NDArray

from nightpipe.timeseries.lightcurve import LightCurve
from nightpipe.timeseries.transit import TransitCurve, TransitPriors

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class TransitTruth:
    """The injected planet and noise."""

    tc: float = 2458107.7113
    period: float = 2.1500082
    rp_rs: float = 0.15
    a_rs: float = 5.344
    inc: float = 88.98
    u: tuple[float, float] = (0.40, 0.26)
    ecc: float = 0.0
    omega: float = 90.0
    noise: float = 0.004
    airmass_coef: float = -0.02
    extra: dict[str, Any] = field(default_factory=dict)

    def priors(self, **changes: Any) -> TransitPriors:
        """Priors centred on the truth (ephemeris = truth), overridable."""
        values: dict[str, Any] = {
            "period": self.period,
            "t0": self.tc,
            "t0_err": 1e-4,
            "rp_rs": 0.12,
            "a_rs": self.a_rs,
            "a_rs_err": 0.05,
            "inc": self.inc,
            "inc_err": 0.8,
            "ecc": self.ecc,
            "omega": self.omega,
            "u": self.u,
            "u_err": 0.05,
        }
        values.update(changes)
        return TransitPriors(**values)

    def transit(self, time: FloatArray, exptime_s: float | None = None) -> FloatArray:
        """The noiseless transit at ``time``."""
        curve = TransitCurve(time, self.priors(), exptime_s)
        return curve(self.tc, self.rp_rs, self.a_rs, self.inc, self.u[0], self.u[1])


def night_times(n: int = 140, start: float = 2458107.5699, cadence_s: float = 180.0) -> FloatArray:
    """Regular mid-exposure times (BJD_TDB)."""
    return np.asarray(start + np.arange(n) * cadence_s / 86400.0, dtype=np.float64)


def airmass_curve(
    time: FloatArray, *, culmination: float | None = None, min_airmass: float = 1.03
) -> FloatArray:
    """A smooth airmass curve: ``min / cos(hour angle)``, culminating at ``culmination``."""
    mid = float(np.median(time)) if culmination is None else culmination
    ha = (time - mid) * 2 * math.pi
    return np.asarray(min_airmass / np.cos(np.clip(ha, -1.2, 1.2)), dtype=np.float64)


def simulate_lightcurve(truth: TransitTruth | None = None, *, n: int = 140, seed: int = 1) -> LightCurve:
    """A normalised light curve: transit x (1 + c (airmass - 1)) + Gaussian noise of ``truth.noise``."""
    truth = truth or TransitTruth()
    rng = np.random.default_rng(seed)
    time = night_times(n)
    airmass = airmass_curve(time)
    model = truth.transit(time, 60.0) * (1.0 + truth.airmass_coef * (airmass - 1.0))
    flux = model + rng.normal(0.0, truth.noise, n)
    return LightCurve(
        time=time,
        flux=flux,
        flux_err=np.full(n, truth.noise),
        aux={"airmass": airmass},
        meta={"target": "SIM-1", "time_source": "simulated", "truth": truth.rp_rs},
    )


@dataclass(frozen=True)
class StarField:
    """Stars of a synthetic field: positions, brightness and which one is what."""

    ra: FloatArray
    dec: FloatArray
    x0: FloatArray
    y0: FloatArray
    flux: FloatArray
    target: int
    variable: int | None
    saturated: int | None


def make_field(n_stars: int = 25, *, seed: int = 2, shape: tuple[int, int] = (500, 650)) -> StarField:
    """A field of ``n_stars`` at random positions; star 0 is the target near the centre."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    x0 = rng.uniform(40, nx - 40, n_stars)
    y0 = rng.uniform(40, ny - 40, n_stars)
    x0[0], y0[0] = nx / 2, ny / 2
    flux = 10 ** rng.uniform(4.0, 5.3, n_stars)
    flux[0] = 1.0e5
    scale = 5.2 / 3600.0
    dec0 = 46.69
    ra = 31.04 + (x0 - nx / 2) * scale / math.cos(math.radians(dec0))
    dec = dec0 + (y0 - ny / 2) * scale
    return StarField(ra, dec, x0, y0, flux, target=0, variable=1, saturated=2)


def simulate_source_tables(
    truth: TransitTruth | None = None,
    *,
    n_frames: int = 60,
    n_stars: int = 25,
    radii: tuple[float, ...] = (3.0, 5.0, 7.0),
    drift_px: float = 270.0,
    with_wcs: bool = True,
    flip_at: int | None = None,
    flip_offset: float = 0.01,
    rotation_deg: float = 0.0,
    seed: int = 3,
) -> tuple[list[Table], StarField]:
    """Per-frame source tables of a synthetic night (columns and meta of ``docs/formats.md``).

    Every star gets the common extinction ``10**(-0.4 k (X - 1))`` and, per frame, a common
    transparency factor; the target gets the transit; star ``variable`` a 3 % sinusoid; star
    ``saturated`` the saturation flag. Fluxes in the aperture of radius r are the total times
    ``1 - exp(-r^2 / (2 s^2))`` with a seeing that changes over the night; the noise is
    photon + sky noise in each aperture (so the middle aperture is best for faint stars).
    Rows are shuffled in every frame and the pointing drifts by ``drift_px`` in x. With
    ``flip_at``, frames from that index on are rotated by 180 degrees (a meridian flip) and the
    target's flux changes by ``flip_offset`` (other pixels, other flat-field errors). With
    ``rotation_deg``, the field turns steadily by that much over the night about the chip's centre
    (an alt-azimuth mount's field rotation), the angle growing from 0 in the first frame.
    """
    from nightpipe.frames.flags import PixelFlag

    truth = truth or TransitTruth()
    rng = np.random.default_rng(seed)
    field_ = make_field(n_stars, seed=seed + 1)
    time = night_times(n_frames, cadence_s=(0.29 * 86400) / n_frames)
    airmass = airmass_curve(time)
    transit = truth.transit(time, 60.0)
    sigma_psf = 1.3 + 0.3 * np.sin(np.linspace(0, 3, n_frames))
    transparency = 1.0 - 0.03 * rng.random(n_frames)
    drift = np.linspace(0, drift_px, n_frames)
    sky = 200.0 + 50 * np.cos(np.linspace(0, 2, n_frames))
    # JD_UTC consistent with the BJD_TDB of the target at the default observatory
    from nightpipe.config import ObservatoryConfig
    from nightpipe.timeseries.csvmode import bjd_tdb_from_jd_utc

    site = ObservatoryConfig()
    ra0, dec0 = float(field_.ra[field_.target]), float(field_.dec[field_.target])
    jd_utc = time - (bjd_tdb_from_jd_utc(time, ra0, dec0, site) - time)
    jd_utc = jd_utc - (bjd_tdb_from_jd_utc(jd_utc, ra0, dec0, site) - time)
    tables = []
    for i in range(n_frames):
        total = field_.flux * 10 ** (-0.4 * 0.2 * (airmass[i] - 1.0)) * transparency[i]
        total[field_.target] *= transit[i]
        if field_.variable is not None:
            total[field_.variable] *= 1.0 + 0.03 * math.sin(2 * math.pi * i / (n_frames / 2.0))
        x = field_.x0 + drift[i] - drift_px / 2 + rng.normal(0, 0.05, n_stars)
        y = field_.y0 + rng.normal(0, 0.05, n_stars)
        if rotation_deg:
            angle = math.radians(rotation_deg * i / max(n_frames - 1, 1))
            dx, dy = x - 324.5, y - 249.5
            x = 324.5 + math.cos(angle) * dx - math.sin(angle) * dy
            y = 249.5 + math.sin(angle) * dx + math.cos(angle) * dy
        if flip_at is not None and i >= flip_at:
            x, y = 649.0 - x, 499.0 - y
            total[field_.target] *= 1.0 + flip_offset
        frac = np.array([1 - np.exp(-(r**2) / (2 * sigma_psf[i] ** 2)) for r in radii]).T
        ap = total[:, None] * frac
        area = np.pi * np.asarray(radii) ** 2
        ap_err = np.sqrt(ap + area[None, :] * sky[i] + area[None, :] * 100.0)
        ap = ap + rng.normal(0, 1, ap.shape) * ap_err
        flags = np.zeros(n_stars, dtype=np.uint16)
        if field_.saturated is not None:
            flags[field_.saturated] = int(PixelFlag.SATURATED)
        inside = (x >= 0) & (x <= 649) & (y >= 0) & (y <= 499)  # stars off the chip are not detected
        order = rng.permutation(np.flatnonzero(inside))
        table = Table(
            {
                "id": order + 1,
                "x": x[order],
                "y": y[order],
                "ra": (field_.ra if with_wcs else np.full(n_stars, np.nan))[order],
                "dec": (field_.dec if with_wcs else np.full(n_stars, np.nan))[order],
                "fwhm": np.full(order.size, 2.3548 * sigma_psf[i]),
                "ellipticity": np.zeros(order.size),
                "theta": np.zeros(order.size),
                "peak": (total / (2 * np.pi * sigma_psf[i] ** 2))[order],
                "bkg": np.full(order.size, sky[i]),
                "aper_flux": ap[order],
                "aper_flux_err": ap_err[order],
                "aper_bkg_err": np.broadcast_to(np.sqrt(area * (sky[i] + 100.0)), ap.shape)[order],
                "flags": flags[order],
            }
        )
        table.meta.update(
            {
                "frame": f"sim_{i:04d}.fits",
                "jd_utc": float(jd_utc[i]),
                "bjd_tdb": float(time[i]),
                "exptime": 60.0,
                "airmass": float(airmass[i]),
                "fwhm_px": float(2.3548 * sigma_psf[i]),
                "sky": float(sky[i]),
                "aper_radii_px": list(radii),
                "naxis1": 650,
                "naxis2": 500,
            }
        )
        tables.append(table)
    return tables, field_
