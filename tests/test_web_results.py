"""The results a user looks at, on a real finished demo night (slow: the whole night runs once)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from night_helpers import DemoNight, night_settings
from nightpipe.pipeline.night import run_night
from nightpipe.web.results.imaging import overlay_json, render_png, scale_to_bytes
from nightpipe.web.results.lightcurve import lightcurve_json
from nightpipe.web.results.products import JobProducts, job_products

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished(demo_night: DemoNight, tmp_path_factory: pytest.TempPathFactory) -> tuple[JobProducts, str]:
    root, raw = demo_night(512, 40)
    out = tmp_path_factory.mktemp("results")
    settings = night_settings(root, out)
    assert run_night(settings, [raw]).exit_code == 0
    return job_products(settings.paths.output, settings.database.url), settings.database.url


def test_png_orientation_is_fits_flipped() -> None:
    data = np.zeros((4, 3), dtype=np.float32)
    data[0, 2] = 100.0  # numpy row 0 = FITS y = 1: the bottom row of the PNG
    data[3, 0] = np.nan
    pixels = scale_to_bytes(data + np.arange(12).reshape(4, 3) * 1e-3)
    assert pixels.shape == (4, 3)
    assert pixels[3, 2] == 255 and pixels[0, 0] == 0  # NaN is black


def test_products_png_overlay_and_lightcurve(finished: tuple[JobProducts, str], tmp_path: Path) -> None:
    products, url = finished
    frame = next(f for f in products.frames if f.calibrated is not None and f.sources is not None)
    assert frame.steps["photometry"].status == "ok"
    png = render_png(frame.calibrated, "zscale", cache_dir=tmp_path)  # type: ignore[arg-type]
    image = np.asarray(Image.open(io.BytesIO(png)))
    overlay = overlay_json(frame, products.output, url)
    assert image.shape == (overlay["height"], overlay["width"]) and image.dtype == np.uint8
    assert render_png(frame.calibrated, "zscale", cache_dir=tmp_path) == png  # type: ignore[arg-type]
    assert len(list(tmp_path.glob("*.png"))) == 1
    asinh = np.asarray(Image.open(io.BytesIO(render_png(frame.calibrated, "asinh"))))  # type: ignore[arg-type]
    assert (asinh != image).mean() > 0.1
    brightest = max(overlay["sources"], key=lambda s: s["flux"] or 0)
    row, col = round(brightest["py"]), round(brightest["px"])
    assert image[row, col] >= 250 > np.median(image)
    assert brightest["x_fits"] == pytest.approx(brightest["x"] + 1)
    assert overlay["catalogue"], "no catalogue stars projected"
    for star in overlay["catalogue"]:  # each matched catalogue star lands on a detected source
        nearest = min(np.hypot(s["px"] - star["px"], s["py"] - star["py"]) for s in overlay["sources"])
        assert nearest < 2.0
    lc = products.lightcurves[0]
    data = lightcurve_json(lc)
    with lc.csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(data["time"]) == len(rows) == len(data["flux"])
    assert lc.fit_json is not None and data["model"] is not None and data["residuals"] is not None
    assert len(data["model"]) == len(rows) and [c["name"] for c in data["comparisons"]]
    assert products.reports and products.zips
