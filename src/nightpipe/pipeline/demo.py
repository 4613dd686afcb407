"""The demo night: a simulated night of a transiting planet on a real star field, and its settings.

The field is centred on HAT-P-32's sky position. When astrometry.net index files are
installed, the bright stars are the real Tycho-2 stars of that field (so that the demo
frames plate-solve offline like real ones), completed by random fainter stars; without
index files the simulator's random field is used and the solve step says why it failed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

from nightpipe.config import Settings, load_settings
from nightpipe.frames.fitsio import atomic_open
from nightpipe.progress import Progress
from nightpipe.simulate.options import SimOptions
from nightpipe.simulate.real_sky import real_sky_stars
from nightpipe.simulate.settings_file import night_settings_lines

log = logging.getLogger(__name__)

DEMO_RA, DEMO_DEC = 31.0429, 46.6878


def demo_options(
    index_dirs: tuple[Path, ...],
    *,
    seed: int = 2017,
    size: int = 1024,
    n_lights: int = 60,
    field_rotation: float = 0.0,
    flip_at: int | None = None,
) -> SimOptions:
    """Simulation options of the demo night (1024x1024, 60 lights, transit, MaxIm DL headers).

    A smaller ``size`` keeps the field at about 25' (the pixel scale grows) so that the
    Tycho-2 index files still solve it. ``field_rotation`` (degrees per hour) and ``flip_at``
    (a meridian flip before that light) give the same night seen by an alt-azimuth mount or a
    German equatorial one that flips (:class:`nightpipe.simulate.SkyOptions`).
    """
    options = SimOptions(seed=seed, dialect="maxim", target_mag=11.0)
    scale = options.sky.pixel_scale * 1024 / size
    options = replace(
        options,
        site=replace(options.site, ra=DEMO_RA, dec=DEMO_DEC, object_name="DEMO-1", n_lights=n_lights),
        camera=replace(options.camera, size=size),
        sky=replace(
            options.sky,
            pixel_scale=scale,
            fwhm=3.2 * scale,  # 3.2 px seeing
            field_rotation=field_rotation,
            flip_at=flip_at,
        ),
    )
    stars = real_sky_stars(options, index_dirs, seed)
    return replace(options, stars=stars) if stars is not None else options


def _settings_toml(outdir: Path, truth: dict[str, object]) -> str:
    field = truth["field"]
    transit = truth["transit"]
    assert isinstance(field, dict) and isinstance(transit, dict)
    site = field["site"]
    stars = field["stars"]
    target = int(field["target_index"])
    camera = truth.get("camera", {})
    assert isinstance(camera, dict)
    lines = [
        "# Settings of the nightpipe demo night (written by `nightpipe demo`).",
        *night_settings_lines(outdir, site, camera),
        "[timeseries]",
        "steps = 1500",
        "[[timeseries.targets]]",
        'name = "DEMO-1"',
        f"ra = {float(stars['ra'][target])}",
        f"dec = {float(stars['dec'][target])}",
        f"period = {transit['period']}",
        f"t0_bjd = {transit['t0_bjd_tdb']}",
        "",
    ]
    return "\n".join(lines)


def prepare_demo(
    outdir: Path,
    *,
    progress: Progress | None = None,
    size: int = 1024,
    n_lights: int = 60,
    field_rotation: float = 0.0,
    flip_at: int | None = None,
) -> tuple[Settings, Path]:
    """Simulate the demo night into ``outdir/raw`` (once) and write ``outdir/nightpipe.toml``
    (``field_rotation``, ``flip_at``: see :func:`demo_options`)."""
    from nightpipe.simulate.night import simulate_night

    outdir = outdir.resolve()
    raw = outdir / "raw"
    truth_path = raw / "truth.json"
    config = outdir / "nightpipe.toml"
    base = load_settings(config if config.is_file() else None, environ={})
    if not truth_path.is_file():
        options = demo_options(
            base.astrometry.index_dirs,
            size=size,
            n_lights=n_lights,
            field_rotation=field_rotation,
            flip_at=flip_at,
        )
        simulate_night(raw, options, progress=progress)
    truth = json.loads(truth_path.read_text())
    if not config.is_file():
        with atomic_open(config, "w", encoding="utf-8") as handle:
            handle.write(_settings_toml(outdir, truth))
    return load_settings(config), raw
