"""Gain, read noise, saturation and offset by header dialect (issue 23): a CMOS GAIN setting is not
e-/ADU, the configuration wins over the header, implausible values are refused with a warning,
and the calibrated frames say where each value came from."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import select

from nightpipe.calib.calibrated_io import read_calibrated
from nightpipe.calib.masters import run_masters
from nightpipe.calib.step import run_calibrate
from nightpipe.config import CameraConfig, Settings, load_settings
from nightpipe.frames.detector import GAIN_RANGE, Sourced, resolve_detector
from nightpipe.frames.flags import PixelFlag
from nightpipe.frames.headers import header_cards, normalize_header
from nightpipe.frames.headers.detector import gain_is_setting, header_gain
from nightpipe.inventory import scan_paths
from nightpipe.photometry.step import camera_params
from nightpipe.simulate import SimOptions, Truth, simulate_night
from nightpipe.store import open_database
from nightpipe.store.models import Frame, StepRun

TRUE_GAIN = 1.5  # e-/ADU of the simulated camera
SETTING = 100  # its GAIN setting in the N.I.N.A. headers


def _cards(path: Path, hdu: int = 0) -> dict[str, object]:
    with fits.open(path) as hdul:
        return header_cards(hdul[hdu].header)


# --------------------------------------------------------------------------- headers by dialect


NINA = {"IMAGETYP": "LIGHT", "GAIN": SETTING, "OFFSET": 21, "SWCREATE": "N.I.N.A. 2.1.0.9001 "}


def test_a_cmos_gain_setting_is_not_electrons_per_adu() -> None:
    assert header_gain(NINA) is None
    head = normalize_header(NINA)
    assert (head.gain, head.gain_setting, head.offset) == (None, 100.0, 21.0)
    with_egain = normalize_header({**NINA, "EGAIN": 1.6})
    assert (with_egain.gain, with_egain.gain_setting) == (1.6, 100.0)
    # the program alone says so (SharpCap writes no OFFSET), and so does an OFFSET card alone
    assert normalize_header({"GAIN": 300, "SWCREATE": "SharpCap v4.1"}).gain is None
    assert normalize_header({"GAIN": 139, "OFFSET": 21}).gain_setting == 139.0
    # an observatory CCD header means e-/ADU by GAIN
    ccd = {"GAIN": 1.9, "RDNOISE": 5.0}
    assert (normalize_header(ccd).gain, gain_is_setting(ccd)) == (1.9, None)


def test_existing_dialects_still_read_their_gain(shared_data: Path) -> None:
    # MaxIm DL / TheSkyX with SBIG cameras: EGAIN (and PEDESTAL, an offset, never a gain)
    dark = _cards(shared_data / "guilford-sbig-darks/Screen Center_Dark_20180619_00000161.fits")
    assert (normalize_header(dark).gain, normalize_header(dark).gain_setting) == (0.4, None)
    assert normalize_header(dark).offset == -100.0
    st7 = _cards(shared_data / "feder-apogee/neon-on-dome-10-sec-high-res-though-scope.fit")
    assert normalize_header(st7).gain == 1.74
    # MaxIm DL 4-6 with Apogee cameras write no gain at all: nothing is made up
    for name in ("maximdl_6_18_header.fit", "maximdl_5_21_header.fit", "biastest1.fit", "aspen_trimmed.fit"):
        assert normalize_header(_cards(shared_data / "feder-apogee" / name)).gain is None, name
    # observatory headers: GAIN in e-/ADU (SAAO 1.0 m, NOT/ALFOSC extension)
    saao = _cards(shared_data / "ccdproc-samples/a8280271.fits")
    assert (normalize_header(saao).gain, normalize_header(saao).gain_setting) == (1.9, None)
    not_ext = {**_cards(shared_data / "eso-midas/NOT.fits"), **_cards(shared_data / "eso-midas/NOT.fits", 1)}
    assert normalize_header(not_ext).gain == 0.33
    values = resolve_detector(saao, CameraConfig(), name="a8280271.fits")
    assert (values.gain.value, values.gain.source) == (1.9, "header GAIN")
    assert (values.read_noise.value, values.read_noise.source) == (5.0, "header RDNOISE")
    assert values.warnings == ()
    sbig = resolve_detector(dark, CameraConfig(), name="dark.fits")
    assert (sbig.gain.value, sbig.gain.source, sbig.warnings) == (0.4, "header EGAIN", ())


# --------------------------------------------------------------------------- which value wins


def test_configuration_then_plausible_header_then_default() -> None:
    name = "night/light_001.fits"
    no_egain = resolve_detector(NINA, CameraConfig(), name=name)
    assert (no_egain.gain.value, no_egain.gain.source) == (1.0, "default")
    (warning,) = no_egain.warnings
    assert warning.text().startswith(f"{name}: GAIN = 100 is the camera's gain setting")
    assert all(word in warning.message for word in ("N.I.N.A.", "no EGAIN", "set camera.gain"))

    configured = resolve_detector(NINA, CameraConfig(gain=1.6), name=name)
    assert configured.gain == Sourced(1.6, "config camera.gain") and configured.warnings == ()
    from_egain = resolve_detector({**NINA, "EGAIN": 1.55}, CameraConfig(), name=name)
    assert from_egain.gain == Sourced(1.55, "header EGAIN") and from_egain.warnings == ()
    over_egain = resolve_detector({**NINA, "EGAIN": 1.55}, CameraConfig(gain=1.6), name=name)
    assert over_egain.gain == configured.gain

    # N.I.N.A. 1.8 wrote the setting in EGAIN: refused, the configuration or 1.0 used instead
    old = {**NINA, "EGAIN": 75}
    refused = resolve_detector(old, CameraConfig(), name=name)
    assert (refused.gain.value, refused.gain.source) == (1.0, "default")
    assert [w.text() for w in refused.warnings] == [
        f"{name}: EGAIN = 75 is not a plausible gain ({GAIN_RANGE[0]:g}-{GAIN_RANGE[1]:g} e-/ADU); "
        "using 1 e-/ADU (set camera.gain)"
    ]
    assert resolve_detector(old, CameraConfig(gain=1.6), name=name).gain.value == 1.6
    odd = resolve_detector(NINA, CameraConfig(gain=100.0), name=name)
    assert odd.gain.value == 100.0 and "outside the plausible" in odd.warnings[0].message

    # read noise: RDNOISE (e-) unless configured or implausible
    assert resolve_detector({"RDNOISE": 3.2}, CameraConfig(), name=name).read_noise.source == "header RDNOISE"
    assert resolve_detector({"RDNOISE": 3.2}, CameraConfig(read_noise=9.0), name=name).read_noise.value == 9.0
    noisy = resolve_detector({"RDNOISE": 800.0}, CameraConfig(), name=name)
    assert (noisy.read_noise.value, noisy.read_noise.source) == (10.0, "default")
    assert noisy.warnings[0].message.startswith("RDNOISE = 800 is not a plausible read noise")

    # saturation: SATURATE / SATLEVEL unless configured, or above what the pixels can hold
    ints16 = {"BITPIX": 16, "BZERO": 32768}
    level = resolve_detector({**ints16, "SATLEVEL": 65000}, CameraConfig(), name=name).saturation
    assert level == Sourced(65000.0, "header SATLEVEL")
    level = resolve_detector(
        {**ints16, "SATURATE": 4095}, CameraConfig(saturation=60000.0), name=name
    ).saturation
    assert level == Sourced(60000.0, "config camera.saturation")
    too_high = resolve_detector({**ints16, "SATURATE": 250000}, CameraConfig(), name=name)
    assert (too_high.saturation.value, too_high.saturation.source) == (65535.0, "default")
    assert "above the largest value the file's pixels can hold (65535)" in too_high.warnings[0].message


def test_photometry_never_takes_the_gain_setting_for_electrons() -> None:
    settings = Settings()
    raw = fits.Header(list(NINA.items()))
    assert camera_params(settings, raw, calibrated=False, unit="adu").gain == 1.0
    calibrated = raw.copy()
    calibrated["NPGAIN"], calibrated["NPRDNOIS"] = 1.6, 2.5  # what calibration used
    used = camera_params(settings, calibrated, calibrated=True, unit="adu")
    assert (used.gain, used.read_noise) == (1.6, 2.5)
    assert camera_params(settings, calibrated, calibrated=True, unit="electron").gain == 1.0


# --------------------------------------------------------------------------- a N.I.N.A. night


@pytest.fixture(scope="module")
def nina_nights(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, tuple[Path, Truth]]:
    """Two small N.I.N.A. nights (GAIN = 100, OFFSET = 21), with EGAIN = 1.5 and without it."""
    nights = {}
    for egain in (True, False):
        root = tmp_path_factory.mktemp(f"nina-egain-{egain}")
        opts = SimOptions(seed=23, dialect="nina")
        opts = replace(
            opts,
            camera=replace(opts.camera, size=256, gain=TRUE_GAIN, gain_setting=SETTING, header_egain=egain),
            site=replace(opts.site, n_lights=2),
            calibration=replace(opts.calibration, n_bias=5, n_dark=3, n_flat=4, dark_exptimes=(120.0,)),
        )
        nights[egain] = (root, simulate_night(root / "raw", opts))
    return nights


def test_the_simulated_nina_headers(nina_nights: dict[bool, tuple[Path, Truth]]) -> None:
    for egain, (root, truth) in nina_nights.items():
        for entry in truth.lights():
            cards = _cards(root / "raw" / entry["file"])
            assert (cards["GAIN"], cards["OFFSET"], str(cards["SWCREATE"]).startswith("N.I.N.A.")) == (
                100,
                21,
                True,
            )
            assert cards.get("EGAIN") == (TRUE_GAIN if egain else None)


def _calibrate(root: Path, out: Path, *extra: str) -> tuple[Settings, list[StepRun]]:
    settings = load_settings(
        None,
        overrides=[
            f'paths.output="{out / "out"}"',
            f'paths.masters="{out / "masters"}"',
            f'database.url="sqlite:///{out / "db.sqlite"}"',
            "camera.read_noise=9.0",
            *extra,
        ],
        environ={},
    )
    db = open_database(settings.database.url)
    scan_paths([root / "raw"], settings, db)
    run_masters(settings, db)
    summary = run_calibrate(settings, db, plots=False)
    with db.session() as session:
        runs = list(
            session.scalars(select(StepRun).where(StepRun.step == "calibrate", StepRun.frame_id.is_not(None)))
        )
        assert {f.gain_setting for f in session.scalars(select(Frame))} == {float(SETTING)}
        night_run = session.scalars(
            select(StepRun).where(StepRun.step == "calibrate", StepRun.frame_id.is_(None))
        ).one()
    db.dispose()
    assert (summary.ok, summary.failed, summary.without_masters) == (2, 0, 0)
    assert night_run.details is not None and sum(night_run.details["gain_sources"].values()) == 2
    return settings, runs


@pytest.mark.parametrize(
    ("egain", "config", "gain", "source"),
    [
        (False, "camera.gain=1.5", 1.5, "config camera.gain"),
        (True, None, 1.5, "header EGAIN"),
        (True, "camera.gain=1.4", 1.4, "config camera.gain"),
        (False, None, 1.0, "default"),
    ],
)
def test_a_nina_night_calibrates_with_the_right_gain(
    nina_nights: dict[bool, tuple[Path, Truth]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    egain: bool,
    config: str | None,
    gain: float,
    source: str,
) -> None:
    root, truth = nina_nights[egain]
    with caplog.at_level(logging.WARNING, logger="nightpipe.calib.step"):
        settings, runs = _calibrate(root, tmp_path, *([config] if config else []))
    warned = [r.getMessage() for r in caplog.records if "gain setting" in r.getMessage()]
    for run in runs:
        details = run.details or {}
        assert (details["gain"], details["gain_source"]) == (gain, source)
        out = read_calibrated(run.output_path or "")
        assert (out.header["NPGAIN"], out.header["NPGAINSR"]) == (gain, source)
        assert out.header["GAIN"] == SETTING  # the raw card stays, for what it is
        # a sane cosmic-ray fraction: GAIN = 100 taken as e-/ADU flagged 43 % of the pixels
        cosmic = np.count_nonzero(out.mask & np.uint16(PixelFlag.COSMIC_RAY)) / out.mask.size
        assert cosmic < 0.01
        # the offset setting is a matching key only
        history = "".join(str(line) for line in out.header["HISTORY"])  # long lines are wrapped
        assert "camera offset OFFSET = 21: a setting the masters were matched on, not subtracted" in history
        # the uncertainty plane follows the gain used: sky variance ~ sky / gain + (rn / gain)^2
        entry = next(e for e in truth.lights() if e["file"] == Path(run.output_path or "").name)
        sky = float(entry["sky_adu"])
        expected = np.sqrt(sky / gain + (9.0 / gain) ** 2)
        assert float(np.median(out.uncertainty[out.mask == 0])) == pytest.approx(expected, rel=0.1)
    if source == "default":
        assert len(warned) == 1  # one line for the night, naming a file and the keyword
        assert warned[0].startswith(str(root / "raw" / "SIM-1_V_000"))
        assert "GAIN = 100" in warned[0] and "(and 1 other frames)" in warned[0]
        assert all("GAIN = 100" in (run.details or {})["warnings"][0] for run in runs)
    else:
        assert not warned and all(not (run.details or {})["warnings"] for run in runs)
    assert settings.camera.gain == (None if config is None else gain)


def test_the_gain_setting_taken_as_electrons_floods_the_cosmic_ray_mask(
    nina_nights: dict[bool, tuple[Path, Truth]], tmp_path: Path
) -> None:
    """What the new user saw, forced through the configuration: the < 1 % above means something."""
    root, _truth = nina_nights[False]
    _settings, runs = _calibrate(root, tmp_path, f"camera.gain={SETTING}")
    for run in runs:
        out = read_calibrated(run.output_path or "")
        assert np.count_nonzero(out.mask & np.uint16(PixelFlag.COSMIC_RAY)) / out.mask.size > 0.2
        (warning,) = (run.details or {})["warnings"]
        assert "camera.gain = 100 is outside the plausible 0.05-20 e-/ADU; used as configured" in warning


def test_nina_masters_write_their_gain_as_egain_beside_the_offset(
    nina_nights: dict[bool, tuple[Path, Truth]], tmp_path: Path
) -> None:
    root, _ = nina_nights[True]
    settings, _ = _calibrate(root, tmp_path)
    headers = {path: fits.getheader(path) for path in sorted(settings.paths.masters.rglob("*.fits"))}
    masters = {path: h for path, h in headers.items() if h.get("NPKIND") in ("bias", "dark", "flat")}
    assert {h["NPKIND"] for h in masters.values()} == {"bias", "dark", "flat"}
    for path, header in masters.items():
        # GAIN beside OFFSET reads as a CMOS gain setting: the e-/ADU are in EGAIN, as N.I.N.A. writes them
        assert "GAIN" not in header and header["EGAIN"] == TRUE_GAIN, path.name
        assert (header["OFFSET"], header["GAINSET"]) == (21, SETTING)
        read = resolve_detector(header, CameraConfig(), name=path.name)
        assert read.gain == Sourced(TRUE_GAIN, "header EGAIN")
