"""A flipped and a turning version of the simulated demo night give the light curve of the still
one (slow, end to end: raw frames to fitted transit).

The three nights share the seed, the real Tycho-2 field and every noise draw; only where the
stars fall on the detector differs: a German equatorial mount's meridian flip before light 20
(the field turned by 180 degrees, the mount re-pointed, ``PIERSIDE`` EAST then WEST), or an
alt-azimuth mount's field rotation of 15 degrees per hour (49 degrees over the 40 lights, the
stars crossing the flat field and the frame's corners). Each must be solved without a second
blind solve, followed on the sky, and give a light curve whose scatter is within 10 % of the
still night's while recovering the injected transit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from night_helpers import DemoNight, night_settings, plate_solutions
from nightpipe.config import Settings
from nightpipe.pipeline.demo import prepare_demo
from nightpipe.pipeline.night import run_night

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("turned_nights")]
SIZE, LIGHTS = 512, 40
FLIP_AT = 20
ROTATION_DEG_PER_HOUR = 15.0


def _run(root: Path, raw: Path, out: Path) -> tuple[Settings, dict[str, Any], dict[str, Any]]:
    """The whole pipeline on a night: its settings, fit JSON and truth."""
    settings = night_settings(root, out)
    result = run_night(settings, [raw])
    assert result.exit_code == 0, [s.error for s in result.steps if s.error]
    fit = json.loads(next(settings.paths.output.glob("lightcurves/*/*_fit.json")).read_text())
    return settings, fit, json.loads((raw / "truth.json").read_text())


@pytest.fixture(scope="module")
def still(demo_night: DemoNight, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root, raw = demo_night(SIZE, LIGHTS)
    return _run(root, raw, tmp_path_factory.mktemp("still"))[1]


def _assert_as_good_as_still(fit: dict[str, Any], still: dict[str, Any], truth: dict[str, Any]) -> None:
    assert fit["rms"] <= 1.10 * still["rms"], (fit["rms"], still["rms"])
    assert fit["n_used"] >= still["n_used"] - 1  # no frame lost to the turn
    params = fit["params"]
    rp, tc = params["rp_rs"], params["tc"]
    assert abs(rp["median"] - truth["transit"]["rp"]) < 3 * max(rp["plus"], rp["minus"])
    assert abs(tc["median"] - truth["transit"]["t0_bjd_tdb"]) < 3 * max(tc["plus"], tc["minus"])


def test_a_meridian_flip_gives_the_light_curve_of_the_still_night(
    still: dict[str, Any], tmp_path: Path
) -> None:
    root = tmp_path / "flipped"
    _, raw = prepare_demo(root, size=SIZE, n_lights=LIGHTS, flip_at=FLIP_AT)
    settings, fit, truth = _run(root, raw, root)
    solutions = plate_solutions(settings)
    assert len(solutions) == LIGHTS and all(s.solved for s in solutions)
    assert [s.method for s in solutions].count("solve-field") == 1  # the flipped frames match the first
    turn = np.array([s.rotation for s in solutions])
    turn = np.mod(turn - turn[0] + 180.0, 360.0) - 180.0  # relative to the first light, -180..180
    assert np.all(np.abs(turn[:FLIP_AT]) < 0.5) and np.all(np.abs(np.abs(turn[FLIP_AT:]) - 180.0) < 0.5)
    meta = fit["meta"]
    assert meta["flip_source"] == "PIERSIDE" and abs(abs(meta["flip_turn_deg"]) - 180.0) < 0.5
    west = [Path(f["file"]).stem for f in truth["frames"] if f.get("pier_side") == "WEST"]
    assert Path(meta["frames"][meta["flip_index"]]).stem == west[0]  # the step sits at the flip
    _assert_as_good_as_still(fit, still, truth)


def test_a_turning_field_gives_the_light_curve_of_the_still_night(
    still: dict[str, Any], tmp_path: Path
) -> None:
    root = tmp_path / "turning"
    _, raw = prepare_demo(root, size=SIZE, n_lights=LIGHTS, field_rotation=ROTATION_DEG_PER_HOUR)
    settings, fit, truth = _run(root, raw, root)
    solutions = plate_solutions(settings)
    assert len(solutions) == LIGHTS and all(s.solved for s in solutions)
    assert [s.method for s in solutions].count("solve-field") == 1  # every turned frame matches the first
    injected = max(f.get("rotation_deg", 0.0) for f in truth["frames"])
    turn = np.array([s.rotation for s in solutions])
    assert injected > 45.0
    assert abs(np.ptp(np.unwrap(np.radians(turn))) - np.radians(injected)) < np.radians(0.5)
    assert fit["meta"]["flip_index"] is None  # a slow turn is not a flip
    _assert_as_good_as_still(fit, still, truth)
