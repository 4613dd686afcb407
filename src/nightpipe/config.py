"""Settings of nightpipe: one TOML file, environment variables and CLI flags, validated once.

The effective configuration is built in this order, later sources overriding earlier ones:

1. the defaults below;
2. the configuration file (``nightpipe.toml``, or an INI file in the style of CCD
   calibration pipelines with ``[GENERAL]``, ``[MASTERS]`` and ``[CALIBRATION]`` sections);
3. environment variables ``NIGHTPIPE_<SECTION>__<KEY>`` (for example
   ``NIGHTPIPE_DATABASE__URL``);
4. ``--set section.key=value`` flags of the CLI.

The result is an immutable :class:`Settings` object that is passed down to the code
that needs it; nothing reads the configuration from disk deep inside a function.
"""

from __future__ import annotations

import configparser
import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nightpipe.config_web import WebConfig
from nightpipe.errors import ConfigError

ENV_PREFIX = "NIGHTPIPE_"
DEFAULT_FILE = "nightpipe.toml"


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


# --------------------------------------------------------------------------- loading


def load_settings(
    path: Path | str | None = None,
    *,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the effective settings from a file, the environment and ``key=value`` overrides.

    Parameters
    ----------
    path
        A TOML or INI configuration file. ``None`` uses ``./nightpipe.toml`` when it exists.
    overrides
        Items ``section.key=value``; the value is parsed as TOML (so ``3``, ``true``,
        ``[1, 2]`` and ``"text"`` work), or taken as a string when it is not valid TOML.
    environ
        The environment to read ``NIGHTPIPE_SECTION__KEY`` variables from (default ``os.environ``).

    Raises
    ------
    ConfigError
        For an unreadable file, an unknown key or a value of the wrong type; the message
        names the key and the source.

    Examples
    --------
    >>> s = load_settings(None, overrides=["camera.gain=1.5"], environ={})
    >>> s.camera.gain
    1.5
    """
    data: dict[str, Any] = {}
    source = "defaults"
    if path is None and Path(DEFAULT_FILE).is_file():
        path = Path(DEFAULT_FILE)
    if path is not None:
        path = Path(path)
        data = read_config_file(path)
        source = str(path)
    env = os.environ if environ is None else environ
    for key, value in sorted(env.items()):
        if key.startswith(ENV_PREFIX) and "__" in key:
            dotted = key[len(ENV_PREFIX) :].lower().replace("__", ".")
            _set_dotted(data, dotted, _parse_value(value), source=f"environment variable {key}")
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        dotted, value = item.split("=", 1)
        _set_dotted(data, dotted.strip(), _parse_value(value.strip()), source=f"--set {item}")
    return validate_settings(data, source=source)


def validate_settings(data: Mapping[str, Any], *, source: str = "settings") -> Settings:
    """Validate raw nested data into :class:`Settings`, with errors that name the key."""
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            _describe_validation_error(exc),
            path=None if source == "defaults" else source,
            hint="see `nightpipe config init` for every key and its type",
        ) from None


def _describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key '{key}'")
        elif err["type"] == "missing":
            parts.append(f"missing key '{key}'")
        else:
            parts.append(f"bad value for '{key}' ({err['input']!r}): {err['msg']}")
    return "; ".join(parts)


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML or INI configuration file into nested raw data (not yet validated)."""
    if not path.is_file():
        raise ConfigError(
            "configuration file not found", path=path, hint="create one with `nightpipe config init`"
        )
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in {".ini", ".cfg"} or text.lstrip().upper().startswith("[GENERAL]"):
        return _read_ini(path, text)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path) from None


# INI files in the style of ccdproc-based calibration pipelines: section/key -> our dotted key.
INI_KEYS: dict[str, dict[str, str]] = {
    "GENERAL": {
        "output_dir": "paths.output",
        "masters_dir": "paths.masters",
        "database": "database.url",
        "gain": "camera.gain",
        "readnoise": "camera.read_noise",
        "read_noise": "camera.read_noise",
        "saturation": "camera.saturation",
        "latitude": "observatory.latitude",
        "longitude": "observatory.longitude",
        "elevation": "observatory.elevation",
        "workers": "parallel.workers",
    },
    "MASTERS": {
        "combine_method": "calibration.combine_method",
        "method": "calibration.combine_method",
        "sigma_clip_low": "calibration.sigma_low",
        "sigma_clip_high": "calibration.sigma_high",
        "sigma_low": "calibration.sigma_low",
        "sigma_high": "calibration.sigma_high",
        "max_iters": "calibration.max_iters",
        "clip": "calibration.clip",
        "temp_tolerance": "calibration.temperature_tolerance",
        "temperature_tolerance": "calibration.temperature_tolerance",
        "max_age_days": "calibration.max_master_age_days",
    },
    "CALIBRATION": {
        "overscan": "calibration.overscan",
        "biassec": "calibration.biassec",
        "trimsec": "calibration.trimsec",
        "scale_dark": "calibration.dark_scaling",
        "dark_scaling": "calibration.dark_scaling",
        "cosmic_rays": "calibration.cosmic_rays",
        "to_electrons": "calibration.to_electrons",
        "allow_missing_masters": "calibration.allow_missing_masters",
    },
}


def _read_ini(path: Path, text: str) -> dict[str, Any]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise ConfigError(f"not a valid INI file: {exc}", path=path) from None
    data: dict[str, Any] = {}
    for section in parser.sections():
        mapping = INI_KEYS.get(section.upper())
        if mapping is None:
            raise ConfigError(
                f"unknown INI section [{section}]",
                path=path,
                hint=f"use one of {', '.join(f'[{s}]' for s in INI_KEYS)}",
            )
        for key, raw in parser.items(section):
            dotted = mapping.get(key.lower())
            if dotted is None:
                raise ConfigError(
                    f"unknown key '{key}' in [{section}]",
                    path=path,
                    hint=f"known keys: {', '.join(sorted(mapping))}",
                )
            value = raw.strip()
            lowered = value.lower()
            parsed: Any = value
            if lowered in {"yes", "true", "on"}:
                parsed = True
            elif lowered in {"no", "false", "off"}:
                parsed = False
            else:
                parsed = _parse_value(value)
            _set_dotted(data, dotted, parsed, source=str(path))
    return data


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set_dotted(data: dict[str, Any], dotted: str, value: Any, *, source: str) -> None:
    keys = dotted.split(".")
    if len(keys) < 2 or not all(keys):
        raise ConfigError(f"setting {dotted!r} from {source} is not of the form section.key")
    node = data
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"setting {dotted!r} from {source}: {key!r} is not a section")
        node = child
    node[keys[-1]] = value


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


# --------------------------------------------------------------------------- writing


def default_toml() -> str:
    """The commented default configuration, as written by ``nightpipe config init``."""
    lines = [
        "# nightpipe configuration. Every key is shown with its default value.",
        "# Environment variables NIGHTPIPE_<SECTION>__<KEY> and `--set section.key=value`",
        "# override this file. Remove what you do not change.",
        "",
    ]
    for name, field in Settings.model_fields.items():
        section_cls = field.annotation
        assert isinstance(section_cls, type) and issubclass(section_cls, BaseModel)
        lines.append(f"[{name}]")
        doc = (section_cls.__doc__ or "").strip().splitlines()[0]
        lines.append(f"# {doc}")
        for key, sub in section_cls.model_fields.items():
            default = sub.get_default(call_default_factory=True)
            lines.append(f"# {sub.description or key}")
            rendered = toml_value(default)
            if rendered is None:
                lines.append(f"# {key} =")
            else:
                lines.append(f"{key} = {rendered}")
        lines.append("")
    lines += [
        "# A target (repeat the block for more):",
        "# [[timeseries.targets]]",
        '# name = "HAT-P-32"',
        "# ra = 31.042917",
        "# dec = 46.687778",
        "# period = 2.150008",
        "# t0_bjd = 2455867.40274",
        '# t0_scale = "tdb"',
        "",
        "# A camera header fix (repeat for more):",
        "# [[camera.overrides]]",
        '# match = { INSTRUME = "MicroObservatory" }',
        '# set = { FILTER = "Clear" }',
        "",
    ]
    return "\n".join(lines)


def toml_value(value: Any) -> str | None:
    """Render one value as TOML, or ``None`` for an unset (None) value."""
    import tomli_w

    if value is None:
        return None
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, tuple):
        value = [str(v) if isinstance(v, Path) else v for v in value]
        if value and isinstance(value[0], BaseModel):
            return None
    if isinstance(value, BaseModel):
        return None
    text = tomli_w.dumps({"v": value})
    return text.split("=", 1)[1].strip()


def settings_to_toml(settings: Settings) -> str:
    """The effective settings as a TOML document (``nightpipe config show``)."""
    import tomli_w

    return tomli_w.dumps(settings.to_dict())
