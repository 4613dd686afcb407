"""Synthetic TESS/Kepler pixel and light-curve files with injected transits, for tests.

Seeded and self-describing: the injected parameters are returned as a
:class:`SyntheticTruth` and written into the primary header (``INJ_*`` keywords). The
files follow the SPOC layout (``PIXELS`` table + ``APERTURE`` image, or a ``LIGHTCURVE``
table), so they are read by :mod:`nightpipe.tess.readers` and by lightkurve alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from math import erf, sqrt
from pathlib import Path

import batman
import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from nightpipe.frames.fitsio import write_fits_atomic
from nightpipe.tess.times import MISSION_BJDREF

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class InjectedTransit:
    """A planet's transit: ephemeris, shape, quadratic limb darkening, optional TTVs.

    ``ttv_days`` shifts the mid-time of epoch ``n`` (counted from ``t0_bjd``) by
    ``ttv_days[n]`` days; epochs beyond the list are not shifted.
    """

    t0_bjd: float
    period: float
    rp_rs: float = 0.1
    a_rs: float = 10.0
    inclination: float = 88.0
    u1: float = 0.4
    u2: float = 0.25
    ttv_days: tuple[float, ...] = ()

    def mid_time(self, epoch: int) -> float:
        """Mid-transit time of ``epoch``, BJD_TDB, TTV included."""
        shift = self.ttv_days[epoch] if 0 <= epoch < len(self.ttv_days) else 0.0
        return self.t0_bjd + epoch * self.period + shift

    @property
    def duration_days(self) -> float:
        """Total duration (first to fourth contact), days, for a circular orbit."""
        b = self.a_rs * np.cos(np.radians(self.inclination))
        arg = np.sqrt(max((1 + self.rp_rs) ** 2 - b**2, 0.0)) / (
            self.a_rs * np.sin(np.radians(self.inclination))
        )
        return float(self.period / np.pi * np.arcsin(min(arg, 1.0)))


@dataclass(frozen=True)
class SyntheticTruth:
    """What was injected into a synthetic file."""

    path: Path
    transit: InjectedTransit | None
    time_bjd: FloatArray
    model: FloatArray
    star_flux: float
    background: float
    bad_cadences: tuple[int, ...] = ()
    aperture: NDArray[np.bool_] | None = None
    extra: dict[str, float] = field(default_factory=dict)


def transit_model(time_bjd: FloatArray, transit: InjectedTransit, exptime_days: float = 0.0) -> FloatArray:
    """Relative flux of ``transit`` at ``time_bjd`` (batman, quadratic limb darkening).

    Each point is modelled relative to the mid-time of its nearest epoch, so TTVs are honoured.
    ``exptime_days`` > 0 integrates over the exposure (supersampling by 7).
    """
    time_bjd = np.asarray(time_bjd, dtype=np.float64)
    epochs = np.round((time_bjd - transit.t0_bjd) / transit.period).astype(int)
    mids = np.array([transit.mid_time(int(e)) for e in epochs]) if epochs.size else np.zeros(0)
    local = time_bjd - mids
    params = batman.TransitParams()
    params.t0 = 0.0
    params.per = transit.period
    params.rp = transit.rp_rs
    params.a = transit.a_rs
    params.inc = transit.inclination
    params.ecc = 0.0
    params.w = 90.0
    params.u = [transit.u1, transit.u2]
    params.limb_dark = "quadratic"
    if exptime_days > 0:
        model = batman.TransitModel(params, local, supersample_factor=7, exp_time=exptime_days)
    else:
        model = batman.TransitModel(params, local)
    return np.asarray(model.light_curve(params), dtype=np.float64)


def gaussian_psf(shape: tuple[int, int], col: float, row: float, sigma: float) -> FloatArray:
    """A pixel-integrated circular Gaussian of unit total flux centred at (col, row), 0-based."""
    scale = sqrt(2.0) * sigma

    def edges(n: int, centre: float) -> FloatArray:
        cdf = np.array([0.5 * (1 + erf((i - 0.5 - centre) / scale)) for i in range(n + 1)])
        return np.diff(cdf)

    return np.outer(edges(shape[0], row), edges(shape[1], col))


def _aperture_bits(psf: FloatArray) -> NDArray[np.int32]:
    bits = np.ones(psf.shape, dtype=np.int32)  # collected
    bits[psf > 0.01] |= 2  # optimal aperture
    bits[psf < 1e-4] |= 4  # background
    return bits


def synthetic_cube(
    time_bjd: FloatArray,
    *,
    shape: tuple[int, int],
    star_flux: float,
    background: float,
    model: FloatArray,
    exptime_s: float,
    psf_sigma: float = 1.0,
    centre: tuple[float, float] | None = None,
    jitter_px: float = 0.0,
    read_noise_e: float = 10.0,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Noisy pixels (e-/s) of one star times ``model`` on a flat background.

    Returns the flux including background, its 1-sigma error, the column and the row of
    the star (jitter: a smooth random walk of rms ``jitter_px``).
    """
    n = time_bjd.size
    col0, row0 = centre if centre is not None else ((shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0)
    if jitter_px > 0:
        walk = np.cumsum(rng.normal(size=(2, n)), axis=1)
        walk -= walk.mean(axis=1, keepdims=True)
        walk *= jitter_px / np.maximum(walk.std(axis=1, keepdims=True), 1e-12)
    else:
        walk = np.zeros((2, n))
    cube = np.empty((n, *shape))
    for i in range(n):
        cube[i] = star_flux * model[i] * gaussian_psf(shape, col0 + walk[0, i], row0 + walk[1, i], psf_sigma)
    cube += background
    variance = (cube * exptime_s + read_noise_e**2) / exptime_s**2
    error = np.sqrt(variance)
    noisy = cube + rng.normal(size=cube.shape) * error
    return noisy, error, col0 + walk[0], row0 + walk[1]


def _time_grid(start_bjd: float, n: int, cadence_min: float) -> FloatArray:
    return np.asarray(start_bjd + np.arange(n, dtype=np.float64) * cadence_min / 1440.0, dtype=np.float64)


def _primary(
    mission: str, target: str, transit: InjectedTransit | None, creator: str, origin: str = "nightpipe"
) -> fits.PrimaryHDU:
    hdu = fits.PrimaryHDU()
    h = hdu.header
    h["TELESCOP"] = "TESS" if mission == "TESS" else "Kepler"
    if mission == "K2":
        h["MISSION"] = "K2"
        h["CAMPAIGN"] = 1
    h["CREATOR"] = creator
    h["ORIGIN"] = origin
    h["SIMDATA"] = (True, "synthetic data with an injected transit")
    h["OBJECT"] = target
    h["RA_OBJ"] = (63.37389, "[deg] right ascension")
    h["DEC_OBJ"] = (-69.226789, "[deg] declination")
    if transit is not None:
        h["INJ_T0"] = (transit.t0_bjd, "[BJD_TDB] injected mid-transit time")
        h["INJ_PER"] = (transit.period, "[d] injected period")
        h["INJ_RP"] = (transit.rp_rs, "injected Rp/Rs")
        h["INJ_A"] = (transit.a_rs, "injected a/Rs")
        h["INJ_INC"] = (transit.inclination, "[deg] injected inclination")
    return hdu


def _time_keywords(h: fits.Header, mission: str, cadence_min: float, deadc: float) -> None:
    ref = MISSION_BJDREF[mission]
    h["TIMEREF"] = ("SOLARSYSTEM", "barycentric correction applied to times")
    h["TASSIGN"] = "SPACECRAFT"
    h["TIMESYS"] = ("TDB", "time system is Barycentric Dynamical Time (TDB)")
    h["BJDREFI"] = (int(ref), "integer part of BJD reference date")
    h["BJDREFF"] = (ref - int(ref), "fraction of the day in BJD reference date")
    h["TIMEUNIT"] = "d"
    h["TIMEDEL"] = (cadence_min / 1440.0, "[d] time resolution of data")
    h["DEADC"] = (deadc, "deadtime correction")
    h["TIMEPIXR"] = 0.5


def write_synthetic_tpf(
    path: Path | str,
    *,
    mission: str = "TESS",
    transit: InjectedTransit | None = None,
    n_cadences: int = 720,
    cadence_min: float = 2.0,
    start_bjd: float | None = None,
    shape: tuple[int, int] = (11, 11),
    star_flux: float = 20000.0,
    background: float = 80.0,
    psf_sigma: float = 1.0,
    jitter_px: float = 0.0,
    bad_cadences: Sequence[int] = (),
    tesscut: bool = False,
    seed: int = 0,
) -> SyntheticTruth:
    """Write a SPOC-style target pixel file (or a TESScut-style cut-out) with an injected transit.

    Parameters
    ----------
    path
        Where to write (atomically).
    mission
        ``TESS`` (times in BTJD), ``Kepler`` or ``K2`` (BKJD).
    transit
        The transit to inject; ``None`` for a constant star.
    n_cadences, cadence_min, start_bjd
        The time grid (mid-cadence BJD_TDB); ``start_bjd`` defaults to 0.3 days before the
        transit's ``t0_bjd``.
    shape, star_flux, background, psf_sigma, jitter_px
        The cut-out, the star's flux (e-/s), background per pixel (e-/s), PSF width and the
        rms pointing jitter (pixels).
    bad_cadences
        Cadences flagged with a desaturation event (bit 32) and spoiled (+5 % flux).
    tesscut
        Write a TESScut-like cut-out: no pipeline aperture, fluxes not background-subtracted.
    seed
        Seed of the noise.

    Examples
    --------
    >>> truth = write_synthetic_tpf("synth.fits", transit=InjectedTransit(2458325.5, 3.0))  # doctest: +SKIP
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    if start_bjd is None:
        start_bjd = (transit.t0_bjd if transit is not None else 2458325.0) - 0.3
    time_bjd = _time_grid(start_bjd, n_cadences, cadence_min)
    deadc = 0.8 if mission == "TESS" else 0.92
    exptime_s = cadence_min * 60.0 * deadc
    model = (
        transit_model(time_bjd, transit, cadence_min / 1440.0) if transit is not None else np.ones(n_cadences)
    )
    cube, error, cols, rows = synthetic_cube(
        time_bjd,
        shape=shape,
        star_flux=star_flux,
        background=background,
        model=model,
        exptime_s=exptime_s,
        psf_sigma=psf_sigma,
        jitter_px=jitter_px,
        rng=rng,
    )
    quality = np.zeros(n_cadences, dtype=np.int32)
    for i in bad_cadences:
        quality[i] |= 32
        cube[i] *= 1.05
    bkg = np.full_like(cube, background)
    flux = cube if tesscut else cube - bkg
    psf = gaussian_psf(shape, (shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0, psf_sigma)
    ref = MISSION_BJDREF[mission]
    dim = f"({shape[1]},{shape[0]})"
    npx = shape[0] * shape[1]
    columns = [
        fits.Column("TIME", "D", unit=f"BJD - {ref:.0f}, days", array=time_bjd - ref),
        fits.Column("TIMECORR", "E", unit="d", array=np.zeros(n_cadences)),
        fits.Column("CADENCENO", "J", array=np.arange(n_cadences) + 1000),
        fits.Column("FLUX", f"{npx}E", unit="e-/s", dim=dim, array=flux.astype(np.float32)),
        fits.Column("FLUX_ERR", f"{npx}E", unit="e-/s", dim=dim, array=error.astype(np.float32)),
        fits.Column(
            "FLUX_BKG",
            f"{npx}E",
            unit="e-/s",
            dim=dim,
            array=(0 * bkg if tesscut else bkg).astype(np.float32),
        ),
        fits.Column("FLUX_BKG_ERR", f"{npx}E", unit="e-/s", dim=dim, array=np.zeros_like(bkg, np.float32)),
        fits.Column("QUALITY", "J", array=quality),
        fits.Column("POS_CORR1", "E", unit="pixel", array=(cols - cols.mean()).astype(np.float32)),
        fits.Column("POS_CORR2", "E", unit="pixel", array=(rows - rows.mean()).astype(np.float32)),
    ]
    table = fits.BinTableHDU.from_columns(columns, name="PIXELS")
    h = table.header
    h["TELESCOP"] = "TESS" if mission == "TESS" else "Kepler"
    _time_keywords(h, mission, cadence_min, deadc)
    h["TSTART"] = float(time_bjd[0] - ref)
    h["TSTOP"] = float(time_bjd[-1] - ref)
    if not tesscut:
        h["BACKAPP"] = (True, "background is subtracted")
    h["1CRV5P"] = (1000, "CCD column of the first pixel")
    h["2CRV5P"] = (500, "CCD row of the first pixel")
    if tesscut:  # the keywords by which readers (ours, lightkurve) recognise a TESScut file
        creator, origin = "astrocut (nightpipe synthetic)", "STScI/NASA layout (nightpipe synthetic)"
    else:
        creator, origin = "nightpipe synthetic TargetPixelExporter", "nightpipe"
    hdus = [_primary(mission, "SYNTH 1", transit, creator, origin), table]
    bits = np.ones(shape, dtype=np.int32) if tesscut else _aperture_bits(psf)
    hdus.append(fits.ImageHDU(bits, name="APERTURE"))
    write_fits_atomic(fits.HDUList(hdus), path)
    return SyntheticTruth(
        path=path,
        transit=transit,
        time_bjd=time_bjd,
        model=model,
        star_flux=star_flux,
        background=background,
        bad_cadences=tuple(bad_cadences),
        aperture=None if tesscut else (bits & 2) > 0,
        extra={"exptime_s": exptime_s},
    )


def write_synthetic_lightcurve(
    path: Path | str,
    *,
    mission: str = "TESS",
    transit: InjectedTransit | None = None,
    days: float = 10.0,
    cadence_min: float = 10.0,
    start_bjd: float | None = None,
    flux_level: float = 10000.0,
    noise_ppm: float = 1000.0,
    trend_amplitude: float = 0.01,
    bad_cadences: Sequence[int] = (),
    hlsp: bool = False,
    seed: int = 0,
) -> SyntheticTruth:
    """Write a SPOC-style light-curve file (``SAP_FLUX`` with a slow trend, ``PDCSAP_FLUX``
    without), or with ``hlsp`` a QLP-style one (``SAP_FLUX``, ``KSPSAP_FLUX``).

    ``bad_cadences`` are flagged (bit 32) and spoiled (-3 %). The truth's ``model`` is the
    transit alone.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    if start_bjd is None:
        start_bjd = (transit.t0_bjd if transit is not None else 2458325.0) - 0.5
    n = int(days * 1440.0 / cadence_min)
    time_bjd = _time_grid(start_bjd, n, cadence_min)
    model = transit_model(time_bjd, transit, cadence_min / 1440.0) if transit is not None else np.ones(n)
    noise = rng.normal(size=n) * noise_ppm * 1e-6
    corrected = flux_level * (model + noise)
    trend = 1.0 + trend_amplitude * np.sin(2 * np.pi * (time_bjd - start_bjd) / max(days, 1e-9))
    raw = corrected * trend
    err = np.full(n, flux_level * noise_ppm * 1e-6)
    quality = np.zeros(n, dtype=np.int32)
    for i in bad_cadences:
        quality[i] |= 32
        corrected[i] *= 0.97
        raw[i] *= 0.97
    ref = MISSION_BJDREF[mission]
    best = "KSPSAP_FLUX" if hlsp else "PDCSAP_FLUX"
    columns = [
        fits.Column("TIME", "D", unit=f"BJD - {ref:.0f}, days", array=time_bjd - ref),
        fits.Column("CADENCENO", "J", array=np.arange(n) + 1000),
        fits.Column("SAP_FLUX", "E", unit="e-/s", array=raw.astype(np.float32)),
        fits.Column("SAP_FLUX_ERR", "E", unit="e-/s", array=err.astype(np.float32)),
        fits.Column("SAP_BKG", "E", unit="e-/s", array=np.full(n, 50.0, np.float32)),
        fits.Column(best, "E", unit="e-/s", array=corrected.astype(np.float32)),
        fits.Column(f"{best}_ERR", "E", unit="e-/s", array=err.astype(np.float32)),
        fits.Column("QUALITY", "J", array=quality),
        fits.Column("MOM_CENTR1", "D", unit="pixel", array=1000.0 + rng.normal(size=n) * 0.01),
        fits.Column("MOM_CENTR2", "D", unit="pixel", array=500.0 + rng.normal(size=n) * 0.01),
    ]
    table = fits.BinTableHDU.from_columns(columns, name="LIGHTCURVE")
    _time_keywords(table.header, mission, cadence_min, 0.8)
    creator = "nightpipe synthetic QLP-like HLSP" if hlsp else "nightpipe synthetic LightCurveExporter"
    hdus = fits.HDUList([_primary(mission, "SYNTH 1", transit, creator), table])
    write_fits_atomic(hdus, path)
    return SyntheticTruth(
        path=path,
        transit=transit,
        time_bjd=time_bjd,
        model=model,
        star_flux=flux_level,
        background=50.0,
        bad_cadences=tuple(bad_cadences),
        extra={"noise_ppm": noise_ppm},
    )
