"""The night's report in Debian's Chromium (Playwright), offline: no console error, the fit on the
first screen, hovering the light curve names its frame, and a rerun's report keeps every science
figure of the first (slow, end to end)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from browser_helpers import CHROMIUM_ARGS, chromium_path
from night_helpers import DemoNight, night_settings
from nightpipe.pipeline.night import run_night

pytestmark = pytest.mark.slow
SIZE, LIGHTS = 512, 40  # the night of tests/test_e2e_night.py, simulated once


def _science(page: str) -> str:
    """The fitted-parameter tables of a report (every science figure of every target)."""
    tables = re.findall(r"<h3>Fitted parameters</h3>(.*?)<h3>", page, flags=re.S)
    assert tables, "the report has no fitted-parameter table"
    return "".join(tables)


def test_the_report_in_chromium_offline_and_after_a_rerun(demo_night: DemoNight, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    root, raw = demo_night(SIZE, LIGHTS)
    settings = night_settings(root, tmp_path)
    assert run_night(settings, [raw]).exit_code == 0
    report = next((settings.paths.output / "reports").glob("*.html"))
    first = report.read_text()
    assert "np-chart" in first and "uPlot" in first  # the charting library is inlined

    errors: list[str] = []
    asked: list[str] = []
    with sync_playwright() as play:
        browser = play.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            def offline(route) -> None:  # everything but the file itself: the report must not need it
                if not route.request.url.startswith("file:"):
                    asked.append(route.request.url)
                    route.abort()
                else:
                    route.continue_()

            page.route("**/*", offline)
            page.goto(report.as_uri())
            page.wait_for_selector(".np-chart canvas", timeout=20_000)
            fit_title = page.locator("h3", has_text="Light curve").first
            box = fit_title.bounding_box()
            assert box is not None and box["y"] < 900, "the light curve is not on the first screen"
            chart = page.locator(".np-chart").first
            chart.scroll_into_view_if_needed()
            plot = chart.locator(".u-over")
            area = plot.bounding_box()
            assert area is not None
            readout = chart.locator(".np-readout")
            frame = ""
            for fraction in (0.5, 0.3, 0.7, 0.1, 0.9):  # the cursor snaps to the nearest point
                page.mouse.move(area["x"] + area["width"] * fraction, area["y"] + area["height"] / 2)
                page.wait_for_timeout(100)
                frame = readout.get_attribute("data-frame") or ""
                if frame:
                    break
            assert frame.endswith((".fits", ".fit", ".fts")) or "light" in frame, frame
            assert frame in (readout.text_content() or "")
        finally:
            browser.close()
    assert errors == [], errors
    assert asked == [], asked

    rerun = run_night(settings, [raw])  # a no-op rerun rewrites the report from the night's state
    assert rerun.exit_code == 0
    second = report.read_text()
    assert _science(second) == _science(first)
