"""The gain, read noise and saturation a frame is calibrated and measured with, and where each came from.

Each value comes from, in order:

1. the configuration (``camera.gain``, ``camera.read_noise``, ``camera.saturation``) when it is set;
2. the header, read by dialect (:mod:`nightpipe.frames.headers.detector`: ``EGAIN``, or ``GAIN``
   where it means e-/ADU; ``RDNOISE``...; ``SATURATE``...) when the value is plausible;
3. the defaults of :mod:`nightpipe.config` (1.0 e-/ADU, 10 e-, 65535 ADU).

A header value outside the plausible range (:data:`GAIN_RANGE`, :data:`READ_NOISE_RANGE`, a
saturation above what the file's integers can hold), or a CMOS ``GAIN`` setting with no
``EGAIN``, is not used: the frame gets a warning that names the file and the keyword. A
N.I.N.A. night read with ``GAIN = 100`` as e-/ADU flags nearly half its pixels as cosmic rays.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nightpipe.config import DEFAULT_GAIN, DEFAULT_READ_NOISE, DEFAULT_SATURATION, CameraConfig
from nightpipe.frames.headers.detector import (
    HeaderNumber,
    gain_is_setting,
    header_gain,
    header_offset,
    header_read_noise,
    header_saturation,
    storable_maximum,
)

#: Plausible gains, electrons per ADU (CMOS cameras at high gain settings go down to about 0.05).
GAIN_RANGE = (0.05, 20.0)
#: Plausible read noise, electrons RMS.
READ_NOISE_RANGE = (0.1, 100.0)


@dataclass(frozen=True)
class Sourced:
    """A value and where it came from: ``header <KEYWORD>``, ``config camera.<key>`` or ``default``."""

    value: float
    source: str


@dataclass(frozen=True)
class DetectorWarning:
    """Why a header value was not used; :meth:`text` names the file."""

    name: str
    message: str

    def text(self) -> str:
        """The warning as logged: ``<file>: <message>``."""
        return f"{self.name}: {self.message}"


@dataclass(frozen=True)
class DetectorValues:
    """The gain (e-/ADU), read noise (e-) and saturation (ADU) of one frame, with their sources,
    and the camera offset setting the header gives (a matching key, never subtracted)."""

    gain: Sourced
    read_noise: Sourced
    saturation: Sourced
    offset: HeaderNumber | None = None
    warnings: tuple[DetectorWarning, ...] = ()

    def details(self) -> dict[str, Any]:
        """The values, their sources and the warnings, for a step run's details."""
        return {
            "gain": self.gain.value,
            "gain_source": self.gain.source,
            "read_noise": self.read_noise.value,
            "read_noise_source": self.read_noise.source,
            "saturation": self.saturation.value,
            "saturation_source": self.saturation.source,
            "offset": None if self.offset is None else {self.offset.keyword: self.offset.value},
            "warnings": [w.text() for w in self.warnings],
        }


def resolve_detector(cards: Mapping[str, Any], camera: CameraConfig, *, name: str) -> DetectorValues:
    """Gain, read noise and saturation of the frame whose header ``cards`` are given.

    Parameters
    ----------
    cards
        ``{KEYWORD: value}`` of the raw frame, after the configuration's camera overrides.
    camera
        The camera section of the settings.
    name
        The file, named in the warnings.

    Examples
    --------
    >>> from nightpipe.config import CameraConfig
    >>> nina = {"GAIN": 100, "OFFSET": 10, "SWCREATE": "N.I.N.A. 2.1.0.9001"}
    >>> v = resolve_detector(nina, CameraConfig(), name="a.fits")
    >>> v.gain, v.warnings[0].text()[:39]
    (Sourced(value=1.0, source='default'), "a.fits: GAIN = 100 is the camera's gain")
    >>> resolve_detector(nina, CameraConfig(gain=1.6), name="a.fits").gain
    Sourced(value=1.6, source='config camera.gain')
    >>> resolve_detector({**nina, "EGAIN": 1.55}, CameraConfig(), name="a.fits").gain
    Sourced(value=1.55, source='header EGAIN')
    """
    warnings: list[str] = []
    gain = _gain(cards, camera, warnings)
    read_noise = _pick(
        camera.read_noise,
        "read_noise",
        header_read_noise(cards),
        READ_NOISE_RANGE,
        "e-",
        DEFAULT_READ_NOISE,
        warnings,
    )
    saturation = _saturation(cards, camera, warnings)
    notes = tuple(DetectorWarning(name, w) for w in warnings)
    return DetectorValues(gain, read_noise, saturation, header_offset(cards), notes)


def _gain(cards: Mapping[str, Any], camera: CameraConfig, warnings: list[str]) -> Sourced:
    found = header_gain(cards)
    if camera.gain is None and found is None:
        why = gain_is_setting(cards)
        setting = cards.get("GAIN")
        if why is not None and setting is not None:
            warnings.append(
                f"GAIN = {setting} is the camera's gain setting ({why}), not electrons per ADU, and "
                f"the header has no EGAIN; using {DEFAULT_GAIN:g} e-/ADU: set camera.gain to the "
                "camera's e-/ADU at this setting"
            )
    return _pick(camera.gain, "gain", found, GAIN_RANGE, "e-/ADU", DEFAULT_GAIN, warnings)


def _saturation(cards: Mapping[str, Any], camera: CameraConfig, warnings: list[str]) -> Sourced:
    if camera.saturation is not None:
        return Sourced(camera.saturation, "config camera.saturation")
    found = header_saturation(cards)
    if found is None:
        return Sourced(DEFAULT_SATURATION, "default")
    top = storable_maximum(cards)
    if top is not None and found.value > top:
        warnings.append(
            f"{found.keyword} = {found.value:g} is above the largest value the file's pixels can hold "
            f"({top:g}); using {DEFAULT_SATURATION:g} ADU (set camera.saturation)"
        )
        return Sourced(DEFAULT_SATURATION, "default")
    return Sourced(found.value, f"header {found.keyword}")


def _pick(
    configured: float | None,
    key: str,
    found: HeaderNumber | None,
    plausible: tuple[float, float],
    unit: str,
    default: float,
    warnings: list[str],
) -> Sourced:
    low, high = plausible
    if configured is not None:
        if not low <= configured <= high:
            warnings.append(
                f"camera.{key} = {configured:g} is outside the plausible {low:g}-{high:g} {unit}; "
                "used as configured"
            )
        return Sourced(configured, f"config camera.{key}")
    if found is None:
        return Sourced(default, "default")
    if not low <= found.value <= high:
        warnings.append(
            f"{found.keyword} = {found.value:g} is not a plausible {key.replace('_', ' ')} "
            f"({low:g}-{high:g} {unit}); using {default:g} {unit} (set camera.{key})"
        )
        return Sourced(default, "default")
    return Sourced(found.value, f"header {found.keyword}")


def log_warnings(log: logging.Logger, warnings: Iterable[DetectorWarning]) -> None:
    """Log each distinct warning once, naming its first file and how many other frames share it."""
    counts: Counter[str] = Counter()
    first: dict[str, DetectorWarning] = {}
    for warning in warnings:
        counts[warning.message] += 1
        first.setdefault(warning.message, warning)
    for message, count in counts.items():
        more = f" (and {count - 1} other frames)" if count > 1 else ""
        log.warning("%s%s", first[message].text(), more)
