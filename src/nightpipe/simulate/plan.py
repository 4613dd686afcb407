"""The files of a synthetic night: which frames, when, under which names, and the junk a real
night folder holds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from astropy import units as u
from astropy.time import Time

from nightpipe.frames.fitsio import atomic_open
from nightpipe.simulate.options import SimOptions


@dataclass(frozen=True)
class PlannedFrame:
    """One file to write: its kind, name, start time, exposure and filter."""

    kind: str
    name: str
    start: Time
    exptime: float
    filter: str | None
    index: int


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_") or "object"


def _seconds(exptime: float) -> str:
    """``060`` for 60 s, ``2p5`` for 2.5 s (file names)."""
    return f"{exptime:03.0f}" if float(exptime).is_integer() else f"{exptime:g}".replace(".", "p")


def plan_frames(options: SimOptions, light_starts: Time) -> list[PlannedFrame]:
    """The files of the night in time order: evening flats, lights, then biases and darks.

    Dome flats are taken after the lights instead of at twilight.
    """
    cal, site = options.calibration, options.site
    start = Time(site.start_utc, scale="utc")
    plan: list[PlannedFrame] = []
    flats: list[PlannedFrame] = []
    t = start - (40 * u.min if cal.flat_kind == "twilight" else 0 * u.s)
    if cal.flat_kind == "dome":
        t = start + (site.n_lights * site.cadence + 600) * u.s
    for name in cal.flat_filters:
        for i in range(cal.n_flat):
            flats.append(
                PlannedFrame(
                    "flat", f"flat_{_safe(name)}_{i + 1:03d}.fits", t, cal.flat_exptime, name, len(flats)
                )
            )
            t = t + (cal.flat_exptime + 15) * u.s
    lights = [
        PlannedFrame(
            "light",
            f"{_safe(site.object_name)}_{_safe(site.filter)}_{i + 1:04d}.fits",
            light_starts[i],
            site.exptime,
            site.filter,
            i,
        )
        for i in range(site.n_lights)
    ]
    t = start + (site.n_lights * site.cadence + (1800 if cal.flat_kind == "dome" else 300)) * u.s
    for i in range(cal.n_bias):
        plan.append(PlannedFrame("bias", f"bias_{i + 1:03d}.fits", t, 0.0, None, i))
        t = t + 5 * u.s
    darks = 0
    for exptime in cal.dark_exptimes:
        for i in range(cal.n_dark):
            plan.append(
                PlannedFrame(
                    "dark", f"dark_{_seconds(exptime)}s_{i + 1:03d}.fits", t, float(exptime), None, darks
                )
            )
            darks += 1
            t = t + (exptime + 5) * u.s
    return sorted([*flats, *lights, *plan], key=lambda f: f.start.jd)


def write_junk(outdir: Path, plan: list[PlannedFrame]) -> list[dict[str, str]]:
    """Write files a pipeline must survive; return what each one is."""
    junk: list[dict[str, str]] = []
    lights = [f for f in plan if f.kind == "light"]
    if lights:
        source = (outdir / lights[-1].name).read_bytes()
        name = f"{Path(lights[-1].name).stem} copy (truncated).fits"
        with atomic_open(outdir / name, "wb") as handle:
            handle.write(source[: len(source) // 2])
        junk.append({"file": name, "problem": "truncated FITS (half of a light frame)"})
    with atomic_open(outdir / "empty.fits", "wb") as handle:
        handle.write(b"")
    junk.append({"file": "empty.fits", "problem": "empty file"})
    with atomic_open(outdir / "focus notes.fits", "w", encoding="utf-8") as handle:
        handle.write("focuser at 16473, seeing poor before 22h\n")
    junk.append({"file": "focus notes.fits", "problem": "text file with a FITS suffix"})
    with atomic_open(outdir / "acquisition.log", "w", encoding="utf-8") as handle:
        handle.write("sequence started\n")
    junk.append({"file": "acquisition.log", "problem": "not a FITS name"})
    return junk
