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

The sections themselves (one pydantic model each, and :class:`Settings`) are in
:mod:`nightpipe.config_sections`; this module loads, validates and writes them, and
re-exports every section's name.
"""

from __future__ import annotations

import configparser
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from nightpipe.config_sections import (
    DEFAULT_GAIN,
    DEFAULT_READ_NOISE,
    DEFAULT_SATURATION,
    AstrometryConfig,
    CalibrationConfig,
    CameraConfig,
    CameraOverride,
    CatalogConfig,
    DatabaseConfig,
    IdentifyConfig,
    MoversConfig,
    ObservatoryConfig,
    ParallelConfig,
    PathsConfig,
    PhotometryConfig,
    Settings,
    TargetConfig,
    TimeseriesConfig,
)
from nightpipe.config_web import WebConfig
from nightpipe.errors import ConfigError

__all__ = [
    "DEFAULT_FILE",
    "DEFAULT_GAIN",
    "DEFAULT_READ_NOISE",
    "DEFAULT_SATURATION",
    "ENV_PREFIX",
    "AstrometryConfig",
    "CalibrationConfig",
    "CameraConfig",
    "CameraOverride",
    "CatalogConfig",
    "DatabaseConfig",
    "IdentifyConfig",
    "MoversConfig",
    "ObservatoryConfig",
    "ParallelConfig",
    "PathsConfig",
    "PhotometryConfig",
    "Settings",
    "TargetConfig",
    "TimeseriesConfig",
    "WebConfig",
    "default_toml",
    "load_settings",
    "read_config_file",
    "settings_to_toml",
    "toml_value",
    "validate_settings",
]

ENV_PREFIX = "NIGHTPIPE_"
DEFAULT_FILE = "nightpipe.toml"


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
