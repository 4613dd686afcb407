"""Moving objects on a whole simulated night: two asteroids injected into the raw lights of the demo
night (known start, rate, direction, brightness) are linked, measured and reported (slow, end to end)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from sqlalchemy import func, select

from night_helpers import DemoNight, night_settings
from nightpipe.movers.mpc import parse_mpc80
from nightpipe.pipeline.night import run_night
from nightpipe.store import open_database
from nightpipe.store.models_astrometry import PlateSolution

pytestmark = pytest.mark.slow
SIZE, LIGHTS = 512, 40
# (x0, y0) px, (vx, vy) px per frame, peak ADU above the sky
MOVERS = [((60.0, 80.0), (8.0, 5.0), 4000.0), ((430.0, 120.0), (-2.0, 6.5), 2500.0)]


def _inject(raw: Path, out: Path) -> list[Path]:
    """A copy of the raw night with the movers added to its lights (Gaussian, 3.2 px FWHM), moving
    uniformly on the sky: in time (each frame's mid-exposure) and with the pointing's drift (truth)."""
    shutil.copytree(raw, out)
    frames = [f for f in json.loads((raw / "truth.json").read_text())["frames"] if f["kind"] == "light"]
    cadence = float(np.median(np.diff([f["mid_jd_utc"] for f in frames])))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    sigma = 3.2 / 2.355
    lights = []
    for frame in frames:
        path = out / frame["file"]
        lights.append(path)
        k = (frame["mid_jd_utc"] - frames[0]["mid_jd_utc"]) / cadence  # frames since the first
        with fits.open(path) as hdul:
            data = hdul[0].data.astype(np.float64)
            header = hdul[0].header
        for (x0, y0), (vx, vy), peak in MOVERS:
            x, y = x0 + vx * k + frame["dx"], y0 + vy * k + frame["dy"]
            data += peak * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
        fits.PrimaryHDU(np.clip(np.rint(data), 0, 65535).astype(np.uint16), header=header).writeto(
            path, overwrite=True
        )
    return lights


def test_injected_asteroids_are_linked_measured_and_reported(demo_night: DemoNight, tmp_path: Path) -> None:
    root, raw = demo_night(SIZE, LIGHTS)
    lights = _inject(raw, tmp_path / "raw")
    assert len(lights) == LIGHTS
    settings = night_settings(root, tmp_path, "movers.enabled=true")
    result = run_night(settings, [tmp_path / "raw"])
    assert result.exit_code == 0, [s.error for s in result.steps if s.error]
    night = next(iter(result.nights))
    folder = settings.paths.output / "movers" / night
    tracks = Table.read(folder / "tracks.ecsv")
    assert len(tracks) == len(MOVERS), tracks  # both found, no false track
    assert np.all(tracks["n"] >= 0.8 * LIGHTS)
    assert not tracks["identified"].any()  # offline: no SkyBoT answer, candidates with temporary designations
    # rates against the truth: pixels per frame x the plate scale / the cadence
    frames = [f for f in json.loads((raw / "truth.json").read_text())["frames"] if f["kind"] == "light"]
    cadence_min = float(np.median(np.diff([f["mid_jd_utc"] for f in frames]))) * 1440.0
    db = open_database(settings.database.url)
    try:
        with db.session() as session:
            scale = float(session.scalar(select(func.avg(PlateSolution.pixel_scale))) or np.nan)
    finally:
        db.dispose()
    truth = sorted(np.hypot(*v) * scale / cadence_min for _, v, _ in MOVERS)
    np.testing.assert_allclose(sorted(tracks["rate_arcsec_min"]), truth, rtol=0.02)
    assert np.all(tracks["rms_arcsec"] < 0.5 * scale)  # within half a pixel of a straight, uniform track
    mpc = [ln for ln in (folder / f"{night}.mpc.txt").read_text().splitlines() if len(ln) == 80]
    assert len(mpc) == int(tracks["n"].sum())
    assert {parse_mpc80(ln)["designation"] for ln in mpc} == set(tracks["designation"])
    assert (folder / f"{night}.ades.psv").read_text().startswith("# version=2017")
    assert (folder / f"{night}.ades.xml").read_text().count("<optical>") == len(mpc)
    # a strip per object: STAMPS stamps of STAMP_PX side by side, and the report's table shows them
    from PIL import Image

    from nightpipe.movers.strips import GAP_PX, STAMP_PX, STAMPS, safe_name
    from nightpipe.report.movers_section import movers_section

    for name in tracks["designation"]:
        with Image.open(folder / "strips" / f"{safe_name(str(name))}.png") as strip:
            assert strip.format == "PNG" and strip.size == (
                STAMPS * STAMP_PX + (STAMPS - 1) * GAP_PX,
                STAMP_PX,
            )
    section = movers_section(settings.paths.output, night)
    assert section.count("<img src='data:image/png;base64,") == len(MOVERS)
    assert "0 identified, 2 candidates" in section and all(str(n) in section for n in tracks["designation"])
    report = next(settings.paths.output.rglob(f"*{night}*.html"), None)
    assert (
        report is not None and "Moving objects" in report.read_text() and "strip of NP" in report.read_text()
    )
