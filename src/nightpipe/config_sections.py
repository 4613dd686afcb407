"""The sections of nightpipe's settings: one validated, immutable pydantic model per section.

:class:`Settings` gathers them; :mod:`nightpipe.config` builds it from the defaults, the file,
the environment and ``--set`` flags (and re-exports every name here, so
``from nightpipe.config import PhotometryConfig`` keeps working).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from nightpipe.config_web import WebConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class ObservatoryConfig(_Section):
    """Where the telescope is; used for airmass, BJD_TDB and local-time conversions."""

    name: str = Field("Unnamed observatory", description="Observatory name written in reports")
    latitude: float = Field(31.6811, ge=-90, le=90, description="Geodetic latitude, degrees north")
    longitude: float = Field(
        -110.8783, ge=-180, le=360, description="Longitude, degrees east (west is negative)"
    )
    elevation: float = Field(2345.0, description="Height above sea level, metres")
    aavso_code: str = Field("", description="The observer's AAVSO code, written in AAVSO reports")
    utc_offset_hours: float | None = Field(
        None,
        description="Local time offset of DATE-OBS when a header gives local time without a zone",
    )


class CameraOverride(_Section):
    """Fix a camera's header: when every ``match`` keyword has the given value, ``set`` applies."""

    match: dict[str, str] = Field(description="Header keywords and values that select the camera")
    set: dict[str, str | float | int | bool] = Field(description="Keywords and values to impose")


#: What calibration and photometry use when neither the configuration nor the header says.
DEFAULT_GAIN, DEFAULT_READ_NOISE, DEFAULT_SATURATION = 1.0, 10.0, 65535.0


class CameraConfig(_Section):
    """The detector: what is set here wins over the header, which wins over the defaults."""

    gain: float | None = Field(
        None, gt=0, description="Gain, electrons per ADU; empty: the header's (EGAIN...), else 1.0"
    )
    read_noise: float | None = Field(
        None, ge=0, description="Read noise, electrons; empty: the header's (RDNOISE...), else 10"
    )
    saturation: float | None = Field(
        None, gt=0, description="Saturation level, ADU; empty: the header's (SATURATE...), else 65535"
    )
    nonlinear_fraction: float = Field(
        0.9, gt=0, le=1, description="Fraction of saturation above which pixels are flagged non-linear"
    )
    overrides: tuple[CameraOverride, ...] = Field((), description="Per-camera header fixes")


class PathsConfig(_Section):
    """Where products, masters and caches go."""

    output: Path = Field(
        Path("nightpipe-out"), description="Products of a night (calibrated frames, tables, report)"
    )
    masters: Path = Field(Path("nightpipe-out/masters"), description="The library of master frames")
    cache: Path = Field(Path("~/.cache/nightpipe"), description="Catalogue and network caches")


class CalibrationConfig(_Section):
    """How masters are combined and science frames calibrated."""

    combine_method: Literal["median", "mean"] = Field("median", description="Centre of the combination")
    clip: Literal["sigma", "minmax", "none"] = Field("sigma", description="Rejection before combining")
    sigma_low: float = Field(3.0, gt=0, description="Lower clip limit, in MAD standard deviations")
    sigma_high: float = Field(3.0, gt=0, description="Upper clip limit, in MAD standard deviations")
    max_iters: int = Field(5, ge=1, description="Sigma-clipping iterations")
    minmax_low: int = Field(1, ge=0, description="Lowest values rejected per pixel with minmax")
    minmax_high: int = Field(1, ge=0, description="Highest values rejected per pixel with minmax")
    band_rows: int = Field(256, ge=1, description="Rows combined at once (bounds the memory)")
    overscan: Literal["none", "mean", "median", "fit"] = Field("median", description="Overscan model")
    overscan_order: int = Field(3, ge=0, description="Polynomial order of the fitted overscan model")
    biassec: str | None = Field(None, description="Overscan region (FITS notation) when the header has none")
    trimsec: str | None = Field(None, description="Region to keep (FITS notation) when the header has none")
    dark_scaling: bool = Field(True, description="Scale darks by exposure when no exact exposure exists")
    temperature_tolerance: float = Field(2.0, ge=0, description="Maximum |T_master - T_frame|, degrees C")
    exposure_tolerance: float = Field(0.01, ge=0, description="Relative tolerance for 'same exposure'")
    max_master_age_days: float = Field(60.0, gt=0, description="Oldest master usable, days")
    flat_norm_region: float = Field(0.5, gt=0, le=1, description="Central fraction used to normalise flats")
    min_flat_level: float = Field(0.05, gt=0, description="Normalised flat below this is an error/dead pixel")
    hot_pixel_sigma: float = Field(8.0, gt=0, description="Hot pixels: dark above median + this x MAD std")
    allow_missing_masters: bool = Field(
        False, description="Calibrate with the masters found, record the rest"
    )
    to_electrons: bool = Field(False, description="Multiply calibrated frames by the gain")
    cosmic_rays: Literal["off", "full", "fast"] = Field("fast", description="Cosmic-ray rejection mode")
    cosmic_sigclip: float = Field(4.5, gt=0, description="L.A.Cosmic sigma clip")
    cosmic_objlim: float = Field(5.0, gt=0, description="L.A.Cosmic object limit")
    cosmic_clean: bool = Field(False, description="Replace cosmic-ray pixels instead of only masking")


class AstrometryConfig(_Section):
    """Plate solving with astrometry.net, offline."""

    use_header_wcs: bool = Field(True, description="Reuse a header WCS that passes the checks")
    index_dirs: tuple[Path, ...] = Field(
        (Path("/usr/share/astrometry"),), description="Folders of astrometry.net index files"
    )
    solve_field: str = Field("solve-field", description="The solve-field program")
    pixel_scale: float | None = Field(None, gt=0, description="Pixel scale hint, arcsec/px")
    scale_tolerance: float = Field(0.1, gt=0, lt=1, description="Relative tolerance on the scale hint")
    search_radius_deg: float = Field(2.0, gt=0, description="Search radius around the header pointing")
    timeout_s: float = Field(60.0, gt=0, description="Give up a solve after this many seconds")
    max_rms_arcsec: float = Field(2.0, gt=0, description="A WCS with larger residuals is rejected")
    sip_order: int = Field(2, ge=0, le=5, description="SIP distortion order (0: none)")


class PhotometryConfig(_Section):
    """Background, detection, aperture and PSF photometry."""

    background_box: int = Field(64, ge=8, description="Mesh size of the 2-D background, pixels")
    background_filter: int = Field(3, ge=1, description="Median filter of the background mesh, meshes")
    detect_sigma: float = Field(5.0, gt=0, description="Detection threshold, in background RMS")
    min_area: int = Field(5, ge=1, description="Minimum connected pixels of a source")
    deblend_contrast: float = Field(0.005, gt=0, description="Deblending contrast")
    edge_margin: int = Field(10, ge=0, description="Sources closer to the edge are flagged")
    aperture_radii_px: tuple[float, ...] = Field((), description="Fixed aperture radii, pixels")
    aperture_fwhm_factors: tuple[float, ...] = Field(
        (1.0, 1.5, 2.0, 2.5, 3.0), description="Aperture radii as multiples of the frame FWHM"
    )
    annulus_fwhm: tuple[float, float] = Field(
        (4.0, 6.0), description="Inner and outer radius of the background annulus, in FWHM"
    )
    annulus_statistic: Literal["median", "mode", "mean"] = Field(
        "median", description="Annulus sky estimator"
    )
    sky: Literal["annulus", "background"] = Field(
        "annulus", description="Local sky from the annulus, or from the 2-D background map"
    )
    psf: bool = Field(False, description="Also run PSF photometry")


class TargetConfig(_Section):
    """A star of interest: the transit target or a variable."""

    name: str
    ra: float | None = Field(None, ge=0, lt=360, description="Right ascension, degrees (ICRS)")
    dec: float | None = Field(None, ge=-90, le=90, description="Declination, degrees (ICRS)")
    period: float | None = Field(None, gt=0, description="Orbital period, days")
    t0_bjd: float | None = Field(None, description="Reference mid-transit time, BJD in t0_scale")
    t0_scale: Literal["tdb", "utc"] = Field(
        "tdb", description="Time standard of t0_bjd as published: BJD_TDB, or BJD_UTC (older papers)"
    )
    t0_err: float | None = Field(None, ge=0, description="Error of t0, days")
    rp_rs: float | None = Field(None, gt=0, description="Planet-to-star radius ratio prior")
    a_rs: float | None = Field(None, gt=0, description="Scaled semi-major axis prior")
    inclination: float | None = Field(None, gt=0, le=90, description="Inclination prior, degrees")
    period_err: float | None = Field(None, ge=0, description="Error of the period, days")
    a_rs_err: float | None = Field(None, gt=0, description="Width of the a/Rs prior (default 5 %)")
    inclination_err: float | None = Field(None, gt=0, description="Width of the inclination prior, degrees")
    ecc: float = Field(0.0, ge=0, lt=1, description="Orbital eccentricity (fixed)")
    omega: float = Field(90.0, ge=-360, le=360, description="Argument of periastron, degrees (fixed)")
    limb_darkening: tuple[float, float] | None = Field(
        None, description="Quadratic limb-darkening u1, u2; empty: fitted freely"
    )
    limb_darkening_err: float | None = Field(
        None, gt=0, description="Prior width on u1 and u2; empty with limb_darkening: held fixed"
    )
    planet: str | None = Field(None, description="Planet name for reports (default: name + ' b')")
    vsx: tuple[tuple[float, float], ...] = Field(
        (), description="Known variable stars (ra, dec) never used as comparisons"
    )
    comparisons: tuple[tuple[float, float], ...] = Field(
        (), description="Manual comparison stars as (ra, dec) pairs; empty: automatic"
    )
    pixel: tuple[float, float] | None = Field(
        None,
        description="The target's (x, y) in the night's first light frame (0-based pixels): "
        "finds it on a night without plate solutions",
    )


class TimeseriesConfig(_Section):
    """Differential photometry, detrending and transit fitting."""

    targets: tuple[TargetConfig, ...] = Field((), description="Targets of the night")
    max_comparisons: int = Field(
        50, ge=1, description="Most comparison stars; the count with the lowest target scatter is used"
    )
    outlier_sigma: float = Field(
        4.0, gt=0, description="Points further than this from the model are rejected"
    )
    detrend: tuple[str, ...] = Field(
        ("airmass", "fwhm", "sky", "xshift", "yshift", "time", "flip"),
        description="Candidate detrending vectors (time adds time^2; flip: a step at a meridian flip)",
    )
    sampler: Literal["emcee", "none"] = Field("emcee", description="Posterior sampler")
    walkers: int = Field(
        64, ge=8, description="emcee walkers (more walkers, fewer steps: same samples, half the calls)"
    )
    steps: int = Field(1500, ge=100, description="emcee steps per walker (the first half is burn-in)")
    seed: int = Field(42, description="Random seed of the sampler")
    injections: int = Field(
        6,
        ge=0,
        description="Synthetic transits injected into each fitted night and recovered (0: none)",
    )


class DatabaseConfig(_Section):
    """Where the measurements are stored."""

    url: str = Field(
        "sqlite:///nightpipe-out/nightpipe.sqlite",
        description="SQLAlchemy URL: sqlite:///file or postgresql+psycopg://user@host/db",
    )


class ParallelConfig(_Section):
    """Per-frame parallel work through Dask."""

    workers: int = Field(0, ge=0, description="0: threads in this process; N: a local cluster of N processes")
    threads: int = Field(2, ge=1, description="Threads used by in-process work")
    scheduler: str | None = Field(None, description="Address of an existing Dask scheduler")


class CatalogConfig(_Section):
    """Reference catalogues for astrometry checks and photometric calibration."""

    order: tuple[Literal["gaia", "apass", "ucac4", "refcat2", "tycho2"], ...] = Field(
        ("gaia", "apass", "tycho2"), description="Catalogues tried in order"
    )
    offline: bool = Field(False, description="Never call remote services; use the cache only")
    timeout_s: float = Field(30.0, gt=0, description="Network timeout of a query")
    retries: int = Field(3, ge=0, description="Retries of a failed query")


IdentifyService = Literal["simbad", "vsx", "gaia", "milliquas", "skybot", "colibri"]


class IdentifyConfig(_Section):
    """What is in the field: SIMBAD, VSX, Gaia DR3, Milliquas, SkyBoT and Astro-Colibri."""

    enabled: bool = Field(True, description="Identify the night's field as a step of run")
    services: tuple[IdentifyService, ...] = Field(
        ("simbad", "vsx", "gaia", "skybot"),
        description="Services asked, one query per field (SkyBoT: per epoch); colibri needs a key",
    )
    margin_arcmin: float = Field(2.0, ge=0, description="Margin added around the field of the night")
    max_age_days: float = Field(
        30.0, gt=0, description="Cached answers older than this are fetched again when online"
    )
    timeout_s: float = Field(20.0, gt=0, description="Network timeout of one query")
    retries: int = Field(1, ge=0, description="Retries of a failed query (back-off 1, 2, 4 s)")
    min_radius_arcsec: float = Field(
        2.0, gt=0, description="Smallest match radius; it grows with the astrometric error"
    )
    skybot_cadence_min: float = Field(
        30.0, ge=0, description="Minutes between SkyBoT epochs (0: every frame); rates fill the gaps"
    )
    observatory_code: str = Field("500", description="MPC observatory code for SkyBoT (500: geocentre)")
    colibri_key: str | None = Field(None, description="Astro-Colibri user id (uid) for its cone search")
    gaia_max_mag: float = Field(19.0, gt=0, description="Faintest Gaia G asked for")


class MoversConfig(_Section):
    """Moving objects: linking transient detections into tracks, MPC and ADES reports."""

    enabled: bool = Field(False, description="Look for moving objects as a step of run")
    max_rate_arcsec_min: float = Field(10.0, gt=0, description="Fastest apparent motion searched for")
    min_detections: int = Field(4, ge=3, description="Detections (on distinct frames) a track needs")
    static_fraction: float = Field(
        0.25, gt=0, le=1, description="A place detected on this fraction of the frames is static sky"
    )
    observer: str = Field("", description="Observer's name for the MPC/ADES header (default: the site's)")
    mpcorb: Path | None = Field(
        None, description="MPCORB.DAT (or a subset, plain or .gz) for offline identification by orbit"
    )
    comets: Path | None = Field(
        None, description="CometEls.txt (the MPC's comet elements, or a subset) for identifying comets"
    )
    match_radius_arcsec: float = Field(
        20.0, gt=0, description="Largest O-C over a track for it to be identified with an orbit"
    )
    aperture_m: float | None = Field(
        None, gt=0, description="Telescope aperture (m) for the ADES telescope block (required by the MPC)"
    )
    telescope_design: str = Field("Reflector", description="ADES telescope design (Reflector, Refractor...)")
    detector: str = Field("CCD", description="ADES detector (CCD, CMO...)")
    synthetic: bool = Field(
        False, description="Also search faint movers by synthetic tracking (shift-and-stack)"
    )
    synthetic_threshold: float = Field(6.5, gt=0, description="Stack SNR of a synthetic-tracking peak")
    synthetic_min_snr: float = Field(7.0, gt=0, description="SNR a peak must reach when fitted in the frames")
    synthetic_max_shift_px: float = Field(
        40.0, gt=0, description="Largest track motion over the night searched by synthetic tracking, pixels"
    )


class Settings(_Section):
    """The whole, validated, immutable configuration."""

    observatory: ObservatoryConfig = ObservatoryConfig()
    camera: CameraConfig = CameraConfig()
    paths: PathsConfig = PathsConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    astrometry: AstrometryConfig = AstrometryConfig()
    photometry: PhotometryConfig = PhotometryConfig()
    catalog: CatalogConfig = CatalogConfig()
    identify: IdentifyConfig = IdentifyConfig()
    movers: MoversConfig = MoversConfig()
    timeseries: TimeseriesConfig = TimeseriesConfig()
    database: DatabaseConfig = DatabaseConfig()
    parallel: ParallelConfig = ParallelConfig()
    web: WebConfig = WebConfig()

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as plain TOML-serialisable data (paths as strings)."""
        return _drop_none(json.loads(self.model_dump_json()))

    def digest(self, *sections: str) -> str:
        """A short hash of the given sections (all when none), for incremental work."""
        import hashlib

        data = self.to_dict()
        chosen = {k: data[k] for k in (sections or tuple(data))}
        text = json.dumps(chosen, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
