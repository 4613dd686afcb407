"""Synthetic tracking in the movers step on a whole simulated night: a mover too faint for the
per-frame source detection is found by ``movers.synthetic`` next to the linked bright one, which is
not reported twice (slow, end to end)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from night_helpers import DemoNight, night_settings
from nightpipe.pipeline.night import run_night
from test_movers_night import SIZE, _inject

pytestmark = pytest.mark.slow
LIGHTS = 40


def test_synthetic_tracking_finds_the_faint_mover(
    demo_night: DemoNight, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import test_movers_night

    # one bright mover (linked) and one faint one (peak 30 ADU above a sky of a few hundred)
    monkeypatch.setattr(
        test_movers_night, "MOVERS", [((60.0, 80.0), (8.0, 5.0), 4000.0), ((150.0, 300.0), (0.6, -0.4), 30.0)]
    )
    root, raw = demo_night(SIZE, LIGHTS)
    _inject(raw, tmp_path / "raw")
    settings = night_settings(root, tmp_path, "movers.enabled=true", "movers.synthetic=true")
    result = run_night(settings, [tmp_path / "raw"])
    assert result.exit_code == 0, [s.error for s in result.steps if s.error]
    night = next(iter(result.nights))
    step = next(s for s in result.steps if s.name == "movers")
    tracks = Table.read(settings.paths.output / "movers" / night / "tracks.ecsv")
    frames = [f for f in json.loads((raw / "truth.json").read_text())["frames"] if f["kind"] == "light"]
    import shutil

    shutil.copytree(settings.paths.output / "movers" / night, "/tmp/wt6_e2e_movers", dirs_exist_ok=True)
    print(step, tracks)
    assert np.all(tracks["n"] >= 0.8 * len(frames))
    cadence_min = float(np.median(np.diff([f["mid_jd_utc"] for f in frames]))) * 1440.0
    scale = float(step.summary.get("synthetic_scale", 0)) if step.summary else 0.0
    rates = sorted(float(r) for r in tracks["rate_arcsec_min"])
    print("rates", rates, "cadence", cadence_min, scale)
    assert len(tracks) == 2, tracks
