"""The web app in a real browser (Debian's Chromium under Playwright), as a user who never opens a
terminal: register, save a profile, upload the demo night as a ZIP, run it, watch the progress,
open the frame viewer, the light curve and the report, download the ZIP of the products."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from browser_helpers import chromium, live_server
from nightpipe.web.app import create_app
from nightpipe.web.demo_profile import profile_from_file
from nightpipe.web.serve import WorkerPool, worker_command
from web_helpers import PASSWORD, web_overrides, web_settings

pytestmark = pytest.mark.slow
SIZE, LIGHTS = 384, 24  # shared with tests/test_cli_signals.py: the night is simulated once


def night_zip(raw: Path, dest: Path) -> Path:
    archive = dest / "demo-night.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        for path in sorted(raw.rglob("*.fits")):
            handle.write(path, Path("night") / path.relative_to(raw))
    return archive


def profile_toml(root: Path) -> str:
    import tomli_w

    return tomli_w.dumps(profile_from_file(root / "nightpipe.toml"))


def test_a_user_runs_the_demo_night_in_the_browser(demo_night, tmp_path: Path) -> None:
    root, raw = demo_night(SIZE, LIGHTS)
    archive = night_zip(raw, tmp_path)
    overrides = web_overrides(tmp_path, "web.heartbeat_s=1")
    settings = web_settings(tmp_path, "web.heartbeat_s=1")
    pool = WorkerPool(worker_command(None, overrides), 1)
    pool.start()
    try:
        with live_server(create_app(settings)) as server, chromium(tmp_path / "downloads") as browser:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            base = server.url

            page.goto(base + "/register")
            page.fill("input[name=name]", "ada")
            page.fill("input[name=password]", PASSWORD)
            page.fill("input[name=password2]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(base + "/")
            assert "Hello ada" in page.inner_text("main")

            page.goto(base + "/account")
            page.fill("input[name=name]", "demo night")
            page.fill("textarea[name=extra]", profile_toml(root))
            page.click("text=Save the profile")
            page.wait_for_url(base + "/account")
            assert "demo night" in page.inner_text("main")

            page.goto(base + "/files")
            page.set_input_files("input[type=file]", str(archive))
            page.click("#upload-form button[type=submit]")
            page.wait_for_selector(".upload-results", timeout=120_000)
            results = page.inner_text("#upload-results")
            assert results.count("accepted") >= LIGHTS, results

            page.goto(base + "/jobs/new?kind=night")
            page.select_option("select[name=profile_id]", label="demo night")
            page.fill("input[name=title]", "demo in the browser")
            page.click("form[action='/jobs'] button[type=submit]")
            page.wait_for_url(re.compile(r".*/jobs/\d+$"))
            job_url = page.url

            # progress moves: the bar's value grows while the job runs (live, without reload)
            page.wait_for_function(
                "() => document.getElementById('job-progress')?.value > 0", timeout=180_000
            )
            assert page.locator("#events li").count() > 1
            # at the end the page reloads with the results
            page.wait_for_selector("#steps", timeout=600_000)
            status = page.inner_text("#job-status")
            assert status == "done", page.inner_text("main")

            check_results(page, job_url, tmp_path)
            assert not errors, errors
    finally:
        pool.stop()


DRAWN = """() => { const c = document.getElementById('viewer');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let lit = 0, green = 0;
  for (let i = 0; i < d.length; i += 4) { if (d[i] > 0) lit++; if (d[i + 1] > 150 && d[i] < 120) green++; }
  return [lit, green]; }"""


def check_results(page, job_url: str, tmp_path: Path) -> None:
    """The frame viewer, the light curve, the report and the ZIP of a finished job."""
    assert page.frame_locator("iframe.report").locator("body").inner_text().strip()  # the report is shown
    page.click("text=Frame viewer")
    page.wait_for_function("document.getElementById('star-panel') !== null")
    for _ in range(40):  # the image, then the green circles of the sources (polled: the CSP forbids eval)
        lit, green = page.evaluate(DRAWN)
        if green > 200:
            break
        page.wait_for_timeout(500)
    assert lit > 10_000 and green > 200, (lit, green)
    page.goto(job_url + "/lightcurve")
    page.wait_for_selector("#lc-residuals .uplot", timeout=20_000)
    assert "rp_rs" in page.locator("#lc-fit").inner_text()
    page.goto(job_url)
    with page.expect_download() as download_info:
        page.click("a[href$='download.zip']")
    download = download_info.value
    saved = tmp_path / "products.zip"
    download.save_as(saved)
    with zipfile.ZipFile(saved) as handle:
        names = handle.namelist()
    assert any(n.endswith(".html") for n in names), names
    assert any("calibrated" in n and n.endswith((".fits", ".fits.fz")) for n in names), names
