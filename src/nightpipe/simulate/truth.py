"""The truth of a synthetic night: every injected quantity, JSON-serialisable."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, is_dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

import numpy as np

from nightpipe.errors import NightpipeError
from nightpipe.frames.fitsio import atomic_open

TRUTH_VERSION = 1


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and dataclasses into plain JSON data."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            return to_jsonable(value.tolist())
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write plain data as compact JSON, atomically."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data, separators=(",", ":")))


@dataclass
class Truth:
    """Everything injected into a synthetic night.

    Attributes
    ----------
    version
        Format version of ``truth.json``.
    seed
        The random seed of the night.
    dialect
        Header dialect of the files.
    options
        The options the night was made with (plain data).
    camera
        Gain, read noise (e- and ADU), bias level and pattern RMS, ADC maximum, roll-off knee,
        full well, overscan width, dark current (median rate at the reference temperature,
        temperature law), hot and dead pixels.
    flat
        Vignetting (optical centre, corner loss), dust donuts, pixel non-uniformity RMS.
    field
        Pointing, pixel scale, rotation, zero point, extinction, reference TAN WCS (as header
        cards) and the stars: ``ra``, ``dec``, ``mag``, ``x``, ``y`` (0-based, reference
        frame; add each frame's ``dx``, ``dy``), the target and comparison indices.
    transit
        Transit parameters (t0 in BJD_TDB, period, rp, a, inc, u) or ``enabled = False``.
    frames
        One entry per file, in time order; light frames carry ``airmass``, ``fwhm_px``,
        ``sky_e`` (per pixel per exposure), ``dx``/``dy``, ``target_rel_flux`` (noiseless,
        transit and variability only), ``star_flux_e`` (electrons per star above the flat,
        after extinction), ``noise`` (expected relative photometric noise of the target) and
        cosmic rays.
    moving_object, variable
        The moving object and the variable comparison star, when asked for.
    movers
        The other moving objects (``SimOptions.movers``): magnitude, rates, direction, path;
        left out of ``truth.json`` when there are none. Light entries then carry ``movers``
        (``x``, ``y``, ``flux_e`` of each, 0-based pixels of that light).
    junk
        Files that are not frames (``junk_files`` option): name and what is wrong with each.
    """

    version: int
    seed: int
    dialect: str
    options: dict[str, Any]
    camera: dict[str, Any]
    flat: dict[str, Any]
    field: dict[str, Any]
    transit: dict[str, Any]
    frames: list[dict[str, Any]] = dc_field(default_factory=list)
    moving_object: dict[str, Any] | None = None
    variable: dict[str, Any] | None = None
    junk: list[dict[str, str]] = dc_field(default_factory=list)
    movers: list[dict[str, Any]] = dc_field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (without ``movers`` when there are none, as before they existed)."""
        data = {f.name: to_jsonable(getattr(self, f.name)) for f in fields(self)}
        if not self.movers:
            del data["movers"]
        return data

    def lights(self) -> list[dict[str, Any]]:
        """The light-frame entries, in time order."""
        return [f for f in self.frames if f["kind"] == "light"]

    def frames_of(self, kind: str) -> list[dict[str, Any]]:
        """The entries of one kind (``bias``, ``dark``, ``flat``, ``light``)."""
        return [f for f in self.frames if f["kind"] == kind]

    def star_positions(self, frame: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """0-based pixel positions of every star in a light frame (reference position + offset,
        turned by the frame's field rotation about the frame centre)."""
        from nightpipe.simulate.turns import frame_positions

        x = np.asarray(self.field["stars"]["x"], dtype=float)
        y = np.asarray(self.field["stars"]["y"], dtype=float)
        angle = float(frame.get("rotation_deg", 0.0))
        size = int(self.camera["data_width"])
        return frame_positions(x, y, float(frame["dx"]), float(frame["dy"]), angle, size)

    def save(self, path: Path) -> Path:
        """Write ``truth.json`` atomically."""
        write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, path: Path | str) -> Truth:
        """Read a ``truth.json`` written by :meth:`save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            known = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in known})
        except (OSError, ValueError, TypeError) as exc:
            raise NightpipeError(
                f"cannot read the truth file ({exc})", path=path, hint="re-run `nightpipe simulate`"
            ) from None
