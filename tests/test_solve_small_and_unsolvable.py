"""Nights the index files cannot solve (slow, end to end: raw frames to light curves).

- A 12' field (600 px of 1.2") is narrower than the smallest quads of Debian's Tycho-2 index
  files (22'): it is solved from the header's position and scale by matching its stars straight
  to the Tycho-2 stars of the index files (here the open cluster M34, whose field holds a dozen).
- A random star field (not the real sky) cannot be solved at all: it costs a few solver calls,
  not two per frame, the night says once why it has no WCS, and its light curve is still made
  in pixels.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from night_helpers import plate_solutions, root_settings
from nightpipe.astrometry import solver as solver_module
from nightpipe.frames.fitsio import atomic_open
from nightpipe.pipeline.demo import _settings_toml, demo_options
from nightpipe.pipeline.night import run_night
from nightpipe.simulate.night import simulate_night
from nightpipe.simulate.real_sky import real_sky_stars

pytestmark = pytest.mark.slow
INDEX_DIRS = (Path("/usr/share/astrometry"),)
M34 = (40.53, 42.76)
LIGHTS = 14


def _night(
    root: Path, *, real_sky: bool, size: int, scale: float, n_lights: int, at: tuple[float, float]
) -> Path:
    """Simulate a demo-like night into ``root/raw`` and write its settings; the raw folder."""
    if shutil.which("solve-field") is None or not any(INDEX_DIRS[0].glob("index-*.fits")):
        pytest.skip("astrometry.net solve-field or its index files not installed")
    options = demo_options(INDEX_DIRS, size=size, n_lights=n_lights)
    options = replace(
        options,
        stars=None,
        target_mag=13.0,  # a small field has few stars as bright as the demo's target, as comparisons
        site=replace(options.site, ra=at[0], dec=at[1]),
        sky=replace(options.sky, pixel_scale=scale, fwhm=3.0 * scale, rotation=57.0),
    )
    if real_sky:
        stars = real_sky_stars(options, INDEX_DIRS, options.seed)
        assert stars is not None
        options = replace(options, stars=stars)
    raw = root / "raw"
    simulate_night(raw, options)
    truth = json.loads((raw / "truth.json").read_text())
    text = _settings_toml(root, truth)
    if not real_sky:  # a night without WCS finds its target by its pixel position in the first light
        light = next(f for f in truth["frames"] if f.get("kind") == "light")
        target = truth["field"]["target_index"]
        x = truth["field"]["stars"]["x"][target] + light["dx"]
        y = truth["field"]["stars"]["y"][target] + light["dy"]
        text += f"pixel = [{x:.1f}, {y:.1f}]\n"  # the last table of the file is the target's
    with atomic_open(root / "nightpipe.toml", "w", encoding="utf-8") as handle:
        handle.write(text)
    return raw


def test_a_field_smaller_than_the_index_files_is_solved_by_catalogue_matching(tmp_path: Path) -> None:
    raw = _night(tmp_path, real_sky=True, size=600, scale=1.2, n_lights=LIGHTS, at=M34)
    settings = root_settings(tmp_path)
    result = run_night(settings, [raw])
    status = {s.name: s.status for s in result.steps}
    # (a dozen Tycho-2 stars are too few for zero points on every frame: that step may be partial)
    assert status["solve"] == "ok" and status["lightcurves"] == "ok", status
    solutions = plate_solutions(settings)
    assert len(solutions) == LIGHTS and all(s.solved for s in solutions), [s.reason for s in solutions]
    methods = [s.method for s in solutions]
    assert methods.count("catalog-match") == 1 and methods.count("reference-match") == LIGHTS - 1, methods
    assert all(s.n_matched >= 8 and s.rms_arcsec < 0.5 for s in solutions)
    # the solved WCS puts the simulated stars where they were drawn (truth), to a fraction of a pixel
    truth = json.loads((raw / "truth.json").read_text())
    stars = truth["field"]["stars"]
    first = min(solutions, key=lambda s: s.path)
    wcs = WCS(fits.getheader(first.path))
    light = next(f for f in truth["frames"] if f.get("kind") == "light")
    sky = np.column_stack([stars["ra"], stars["dec"]])
    xy = wcs.all_world2pix(sky, 0)
    x0, y0 = np.asarray(stars["x"]) + light["dx"], np.asarray(stars["y"]) + light["dy"]
    inside = (x0 > 20) & (x0 < 580) & (y0 > 20) & (y0 < 580)
    assert np.median(np.hypot(xy[inside, 0] - x0[inside], xy[inside, 1] - y0[inside])) < 0.3
    assert abs(first.pixel_scale - 1.2) < 0.01
    assert list(settings.paths.output.glob("lightcurves/*/DEMO-1*.csv"))


def test_an_unsolvable_night_costs_a_few_solver_calls_and_still_gives_light_curves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = _night(tmp_path, real_sky=False, size=400, scale=3.84, n_lights=12, at=(31.3121, 46.7691))
    calls: list[list[str]] = []
    run = solver_module._run_with_timeout

    def counted(cmd: list[str], *, timeout: float) -> tuple[int, str]:
        calls.append(cmd)
        return run(cmd, timeout=timeout)

    monkeypatch.setattr(solver_module, "_run_with_timeout", counted)
    settings = root_settings(tmp_path, "astrometry.timeout_s=8")
    run_night(settings, [raw])
    # the first frame hinted and blind, then three frames spread over the night, hinted only
    assert len(calls) <= 5, calls
    assert sum("--ra" not in cmd for cmd in calls) == 1  # one blind solve
    solutions = plate_solutions(settings)
    assert len(solutions) == 12 and not any(s.solved for s in solutions)
    untried = [s for s in solutions if s.reason and s.reason.startswith("the night has no WCS")]
    assert len(untried) == 12 - 4
    assert "4 frames spread over it" in str(untried[0].reason)
    curves = list(settings.paths.output.glob("lightcurves/*/DEMO-1*.csv"))
    assert curves, "no light curve without a WCS"
    assert sum(1 for _ in curves[0].open()) >= 10
