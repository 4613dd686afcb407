"""The results a user looks at, on a real finished demo night (slow: the whole night runs once)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from night_helpers import DemoNight
from nightpipe.config import load_settings
from nightpipe.pipeline.night import run_night
from nightpipe.web.accounts import create_user
from nightpipe.web.jobqueue import enqueue
from nightpipe.web.paths import UserPaths
from nightpipe.web.results.imaging import overlay_json, render_png, scale_to_bytes
from nightpipe.web.results.lightcurve import lightcurve_json
from nightpipe.web.results.products import JobProducts, job_products
from web_helpers import PASSWORD, client, log_in, make_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def web(demo_night: DemoNight, tmp_path_factory: pytest.TempPathFactory):
    """A web app with users ada and bob; ada's job 1 holds the finished demo night (run once)."""
    root, raw = demo_night(512, 40)
    tmp = tmp_path_factory.mktemp("results")
    app = make_app(tmp)
    ctx = app.state.ctx
    with ctx.db.session() as session:
        ada = create_user(session, "ada", PASSWORD)
        create_user(session, "bob", PASSWORD)
        job = enqueue(session, ada.id, "night", "demo", {"upload_ids": [], "profile_id": None})
        job.status = "done"
        ada_id, job_id = ada.id, job.id
    paths = UserPaths(ctx.data_dir, ada_id).make()
    output = paths.job_output(job_id)
    settings = load_settings(
        root / "nightpipe.toml",
        environ={},
        overrides=[
            f"paths.output={str(output)!r}",
            f"paths.masters={str(output / 'masters')!r}",
            f"database.url={paths.job_db_url(job_id)!r}",
        ],
    )
    assert run_night(settings, [raw]).exit_code == 0
    return app, job_id, job_products(output, paths.job_db_url(job_id)), paths.job_db_url(job_id)


@pytest.fixture(scope="module")
def finished(web) -> tuple[JobProducts, str]:
    return web[2], web[3]


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


def test_result_routes_for_the_owner_and_404_for_another_user(web) -> None:
    app, job_id, products, _ = web
    frame = next(f for f in products.frames if f.calibrated is not None and f.sources is not None)
    ada = client(app)
    assert log_in(ada, "ada") == 303
    page = ada.get(f"/jobs/{job_id}")
    assert page.status_code == 200 and f"/jobs/{job_id}/viewer" in page.text and "download.zip" in page.text
    frames = ada.get(f"/jobs/{job_id}/frames")
    assert frames.status_code == 200 and frame.name in frames.text and "outlier" in frames.text
    viewer = ada.get(f"/jobs/{job_id}/viewer")
    assert viewer.status_code == 200 and "/static/viewer.js" in viewer.text
    assert ada.get(f"/jobs/{job_id}/viewer/{frame.id}").status_code == 200
    png = ada.get(f"/jobs/{job_id}/frames/{frame.id}/image.png?stretch=asinh")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert np.asarray(Image.open(io.BytesIO(png.content))).shape == (512, 512)
    assert ada.get(f"/jobs/{job_id}/frames/{frame.id}/image.png?stretch=log").status_code == 422
    overlay = ada.get(f"/jobs/{job_id}/frames/{frame.id}/overlay.json").json()
    assert len(overlay["sources"]) == frame.n_sources
    assert ada.get(f"/jobs/{job_id}/frames/999999/overlay.json").status_code == 404
    sources = ada.get(f"/jobs/{job_id}/sources/{frame.id}")
    assert sources.status_code == 200 and "source-table" in sources.text
    assert ada.get(f"/jobs/{job_id}/sources").status_code == 200
    table = ada.get(f"/jobs/{job_id}/sources/{frame.id}.csv")
    assert table.status_code == 200 and "attachment" in table.headers["content-disposition"]
    assert len(table.text.strip().splitlines()) == frame.n_sources + 1
    assert "aper_flux_r" in table.text.splitlines()[0]
    assert "uPlot.iife.min.js" in ada.get(f"/jobs/{job_id}/lightcurve").text
    lc = ada.get(f"/api/jobs/{job_id}/lightcurve").json()
    assert lc["target"] == "DEMO-1" and lc["model"]
    assert ada.get(f"/api/jobs/{job_id}/lightcurve?target=nobody").status_code == 404
    assert len(ada.get(f"/api/jobs/{job_id}/frames").json()) == len(products.frames)
    report = ada.get(f"/jobs/{job_id}/report")
    assert report.status_code == 200 and "default-src 'none'" in report.headers["content-security-policy"]
    assert "sandbox" in report.headers["content-security-policy"]
    with ada.stream("GET", f"/jobs/{job_id}/download.zip") as answer:
        assert answer.status_code == 200
        payload = b"".join(answer.iter_bytes())
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(payload)).namelist()
    assert any(n.endswith("_fit.json") for n in names) and any(n.endswith(".html") for n in names)
    assert sum("calibrated/" in n and n.endswith(".fits") for n in names) == len(products.frames)
    bob = client(app)
    assert log_in(bob, "bob") == 303
    for url in (
        f"/jobs/{job_id}/viewer",
        f"/jobs/{job_id}/frames/{frame.id}/image.png",
        f"/jobs/{job_id}/frames/{frame.id}/overlay.json",
        f"/jobs/{job_id}/sources/{frame.id}.csv",
        f"/api/jobs/{job_id}/lightcurve",
        f"/jobs/{job_id}/report",
        f"/jobs/{job_id}/download.zip",
    ):
        answer = bob.get(url)
        assert answer.status_code == 404, url
        assert "DEMO-1" not in answer.text


def test_viewer_light_curve_and_table_in_chromium(web, tmp_path: Path) -> None:
    """In a real browser: the canvas shows the image with the sources drawn, a click on the brightest
    source shows its row, the light curve draws two uPlot panels, Aladin says it is offline."""
    from browser_helpers import chromium, live_server
    from nightpipe.web.context import STATIC

    if not (STATIC / "vendor" / "uPlot.iife.min.js").is_file():
        pytest.skip("the web app's JavaScript is not built: run `make web-assets` (make test does)")
    app, job_id, products, _ = web
    frame = next(f for f in products.frames if f.calibrated is not None and f.sources is not None)
    with live_server(app) as server, chromium(tmp_path) as context:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/login")
        page.fill("input[name=name]", "ada")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        page.goto(f"{server.url}/jobs/{job_id}/viewer/{frame.id}")
        page.wait_for_function("document.getElementById('star-panel') !== null")
        page.wait_for_timeout(1000)
        green = page.evaluate(
            """() => { const c = document.getElementById('viewer');
                       const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                       let lit = 0, green = 0;
                       for (let i = 0; i < d.length; i += 4) { if (d[i] > 0) lit++;
                         if (d[i + 1] > 150 && d[i] < 120) green++; }
                       return [lit, green]; }"""
        )
        assert green[0] > 100_000 and green[1] > 500  # the image, and the green source circles
        overlay = page.evaluate(
            "fetch(document.getElementById('viewer').dataset.overlay).then(r => r.json())"
        )
        brightest = max(overlay["sources"], key=lambda s: s["flux"] or 0)
        box = page.locator("#viewer").bounding_box()
        assert box is not None
        scale = min(900 / overlay["width"], 700 / overlay["height"])  # the viewer's "fit"
        ox, oy = (900 - overlay["width"] * scale) / 2, (700 - overlay["height"] * scale) / 2
        css = box["width"] / 900
        page.mouse.click(
            box["x"] + (ox + (brightest["px"] + 0.5) * scale) * css,
            box["y"] + (oy + (brightest["py"] + 0.5) * scale) * css,
        )
        assert page.locator("#star-panel h3").inner_text() == f"Source {brightest['id']}"
        page.wait_for_selector("#aladin-status", timeout=5000)
        page.wait_for_function(
            "!document.getElementById('aladin').innerText.startsWith('Checking')", timeout=10000
        )
        text = page.locator("#aladin").inner_text()
        assert "offline" in text or page.locator("#aladin canvas").count() > 0, text
        page.goto(f"{server.url}/jobs/{job_id}/lightcurve")
        page.wait_for_selector("#lc-residuals .uplot", timeout=5000)
        assert "rp_rs" in page.locator("#lc-fit").inner_text()
        page.goto(f"{server.url}/jobs/{job_id}/sources/{frame.id}")
        page.fill("#table-filter", "flags=0")
        assert "of" in page.locator("#table-count").inner_text()
        assert not errors, errors
