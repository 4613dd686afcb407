"""The synthetic-night generator reproduces its own truth (statistically) and is reproducible."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.stats import sigma_clipped_stats

from nightpipe.errors import ConfigError, NightpipeError
from nightpipe.simulate import (
    CalibrationOptions,
    CameraOptions,
    SimOptions,
    SiteOptions,
    StarList,
    Truth,
    simulate_night,
)

GAIN = 1.5
READ_NOISE = 9.0


def small_options(seed: int = 7, size: int = 256, n_lights: int = 12, **changes: object) -> SimOptions:
    """A quick night: 256x256, a dozen lights, a few calibration frames."""
    return SimOptions(
        seed=seed,
        camera=CameraOptions(size=size, gain=GAIN, read_noise=READ_NOISE, dark_current=0.5),
        calibration=CalibrationOptions(n_bias=5, dark_exptimes=(30.0, 120.0), n_dark=3, n_flat=4),
        site=SiteOptions(n_lights=n_lights, cadence=1200.0, start_utc="2017-12-20T02:00:00"),
        **changes,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    outdir = tmp_path_factory.mktemp("night")
    truth = simulate_night(outdir, small_options())
    return outdir, truth


def read(path: Path) -> np.ndarray:
    return np.asarray(fits.getdata(path), dtype=float)


def test_files_and_truth_file(night: tuple[Path, Truth]) -> None:
    outdir, truth = night
    names = sorted(p.name for p in outdir.glob("*.fits"))
    assert len(names) == 5 + 6 + 4 + 12
    assert "bias_001.fits" in names and "dark_030s_001.fits" in names and "dark_120s_003.fits" in names
    assert "flat_V_004.fits" in names and "SIM-1_V_0012.fits" in names
    on_disk = Truth.load(outdir / "truth.json")
    assert on_disk.to_dict() == json.loads(json.dumps(truth.to_dict()))
    assert [f["file"] for f in truth.frames] == sorted(
        (f["file"] for f in truth.frames),
        key=lambda n: next(e["mid_jd_utc"] for e in truth.frames if e["file"] == n),
    )
    with fits.open(outdir / "SIM-1_V_0001.fits") as hdul:
        assert hdul[0].header["BITPIX"] == 16 and hdul[0].header["BZERO"] == 32768
        assert hdul[0].data.dtype == np.uint16 and hdul[0].data.shape == (256, 256)
        assert "CTYPE1" not in hdul[0].header  # no WCS by default, only the pointing hint
        assert "OBJCTRA" in hdul[0].header


def test_bias_level_and_read_noise(night: tuple[Path, Truth]) -> None:
    outdir, truth = night
    biases = truth.frames_of("bias")
    frames = [read(outdir / f["file"]) for f in biases]
    rn_adu = truth.camera["read_noise_adu"]
    for data, entry in zip(frames, biases, strict=True):
        # the mean of a bias frame is the truth within its standard error
        assert abs(data.mean() - entry["bias_mean_adu"]) < 5 * rn_adu / np.sqrt(data.size)
    # read noise from the difference of two frames (the fixed pattern cancels)
    for a, b in itertools.pairwise(frames):
        measured = np.std(a - b) / np.sqrt(2)
        expected = np.hypot(rn_adu, np.sqrt(1 / 12))  # plus quantisation
        assert measured == pytest.approx(expected, rel=0.02)
    # the fixed row/column pattern is there and has the truth's RMS
    master = np.mean(frames, axis=0)
    pattern = master - master.mean()
    expected_rms = np.sqrt(truth.camera["bias_pattern_rms"] ** 2 + rn_adu**2 / len(frames))
    assert np.std(pattern) == pytest.approx(expected_rms, rel=0.05)


def test_dark_current_and_hot_pixels(night: tuple[Path, Truth]) -> None:
    outdir, truth = night
    bias = np.mean([read(outdir / f["file"]) for f in truth.frames_of("bias")], axis=0)
    bias -= np.mean([f["bias_mean_adu"] for f in truth.frames_of("bias")])
    darks = [f for f in truth.frames_of("dark") if f["exptime"] == 120.0]
    signal = []
    for f in darks:
        data = read(outdir / f["file"]) - bias - f["bias_mean_adu"]
        mean, _, _ = sigma_clipped_stats(data, sigma=4)
        signal.append(mean * GAIN / (f["exptime"] * f["dark_scale"]))
    expected = truth.camera["dark"]["mean_e_per_s_without_hot"]
    assert np.mean(signal) == pytest.approx(expected, rel=0.03)
    hot = np.asarray(truth.camera["hot_pixels"])
    assert hot.shape[0] >= 3
    data = read(outdir / darks[0]["file"]) - bias
    median = np.median(data)
    rates = np.asarray(truth.camera["hot_pixel_rates_e_per_s"])
    bright = rates * 120 / GAIN > 200
    assert np.all(data[hot[bright, 0], hot[bright, 1]] > median + 100)


def test_dark_doubles_every_six_degrees(tmp_path: Path) -> None:
    levels = []
    for temp in (-10.0, -4.0):
        opts = small_options(size=64, n_lights=0)
        opts = replace(
            opts,
            camera=replace(
                opts.camera, ccd_temp=temp, ccd_temp_jitter=0.0, hot_pixel_fraction=0.0, bias_drift=0.0
            ),
            calibration=replace(opts.calibration, n_bias=0, n_flat=0, dark_exptimes=(300.0,), n_dark=4),
            sky=replace(opts.sky, cosmic_rate=0.0),
        )
        truth = simulate_night(tmp_path / f"t{temp}", opts)
        frames = [read(tmp_path / f"t{temp}" / f["file"]) for f in truth.frames_of("dark")]
        levels.append(np.mean(frames) - truth.camera["bias_mean_adu"])
    assert levels[1] / levels[0] == pytest.approx(2.0, rel=0.03)


def test_reproducible_with_seed(tmp_path: Path) -> None:
    opts = small_options(size=64, n_lights=2)

    def digest(folder: Path) -> str:
        h = hashlib.sha256()
        for p in sorted(folder.glob("*.fits")):
            h.update(fits.getdata(p).tobytes())
        return h.hexdigest()

    a = simulate_night(tmp_path / "a", opts)
    b = simulate_night(tmp_path / "b", opts, threads=1)  # same night whatever the threads
    c = simulate_night(tmp_path / "c", replace(opts, seed=opts.seed + 1))
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert a.to_dict() == b.to_dict()
    assert digest(tmp_path / "a") != digest(tmp_path / "c")
    assert a.field["stars"]["x"] != c.field["stars"]["x"]


def test_bad_options_are_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dialect"):
        SimOptions(dialect="fitswriter")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"camera\.size"):
        SimOptions(camera=CameraOptions(size=4))
    with pytest.raises(ConfigError, match="cadence"):
        SimOptions(site=SiteOptions(exptime=60.0, cadence=30.0))
    with pytest.raises(ConfigError, match="equal length"):
        StarList(np.zeros(3), np.zeros(2), np.zeros(3))
    target = tmp_path / "a file"
    target.write_text("not a folder")
    with pytest.raises(ConfigError, match="a file"):
        simulate_night(target, small_options(size=32, n_lights=1))


def test_unwritable_folder_is_a_typed_error(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(NightpipeError, match="cannot write") as info:
        simulate_night(blocker / "night", small_options(size=32, n_lights=1))
    assert "blocker" in str(info.value)


def test_junk_files_are_unreadable_as_frames(tmp_path: Path) -> None:
    from nightpipe.errors import FitsReadError
    from nightpipe.frames.fitsio import read_image

    truth = simulate_night(tmp_path, replace(small_options(size=32, n_lights=2), junk_files=True))
    assert len(truth.junk) == 4
    for item in truth.junk:
        path = tmp_path / item["file"]
        assert path.is_file()
        if path.suffix == ".fits":
            with pytest.raises(FitsReadError):
                read_image(path)
    # the frames themselves are untouched and readable
    for entry in truth.frames:
        data, _ = read_image(tmp_path / entry["file"])
        assert data.shape == (32, 32)
