"""Plate solving the real frames: HAT-P-32 (MicroObservatory) and the WASP-12 DSS cut-outs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from nightpipe.astrometry.catalog_solve import tycho_source
from nightpipe.astrometry.index_catalog import IndexCatalog
from nightpipe.astrometry.series import NightSolver
from nightpipe.config import AstrometryConfig
from nightpipe.errors import AstrometryError
from nightpipe.frames.fitsio import read_image

INDEX_DIR = Path("/usr/share/astrometry")
HATP32 = (31.042917, 46.687778)  # 02:04:10.3 +46:41:16


def _require_solver() -> None:
    if shutil.which("solve-field") is None:
        pytest.skip("solve-field (astrometry.net) is not installed; `apt-get install astrometry.net`")
    if not any(INDEX_DIR.glob("index-*.fits")):
        pytest.skip(f"no astrometry.net index files in {INDEX_DIR}; `apt-get install astrometry-data-tycho2`")


@pytest.fixture
def solver() -> NightSolver:
    _require_solver()
    config = AstrometryConfig()
    return NightSolver(config, IndexCatalog.from_dirs(config.index_dirs))


def _independent_centroid(data: np.ndarray, x0: float, y0: float, half: int = 6) -> tuple[float, float]:
    """The star's centroid by photutils (2-D Gaussian fit), not by our own detection code."""
    from photutils.centroids import centroid_2dg

    xi, yi = round(x0), round(y0)
    box = data[yi - half : yi + half + 1, xi - half : xi + half + 1].astype(float)
    box = box - np.median(data)
    cx, cy = centroid_2dg(box)
    return xi - half + float(cx), yi - half + float(cy)


@pytest.mark.solver
def test_first_hatp32_frame_solves_and_target_lands_on_the_star(
    solver: NightSolver, shared_data: Path
) -> None:
    folder = shared_data / "hatp32-microobservatory"
    first = sorted(folder.glob("*.FITS"))[0]
    data, header = read_image(first)
    solution = solver.solve(data, header, name=first.name)
    assert solution.method == "solve-field"
    assert solution.quality.n_matched >= 15
    assert solution.quality.rms_arcsec < 1.0
    assert solution.quality.geometry.pixel_scale == pytest.approx(5.2, abs=0.1)
    x, y = solution.wcs.all_world2pix([HATP32], 0)[0]
    inits = json.loads((folder / "exotic-reference" / "inits.json").read_text())
    ex, ey = json.loads(inits["user_info"]["Target Star X & Y Pixel"])
    assert np.hypot(x - ex, y - ey) < 1.5  # EXOTIC's pixel is a hand-picked integer position
    cx, cy = _independent_centroid(data, ex, ey)
    assert np.hypot(x - cx, y - cy) < 1.0
    assert solution.wcs.sip is not None


@pytest.mark.solver
def test_later_frame_is_reference_matched(solver: NightSolver, shared_data: Path) -> None:
    files = sorted((shared_data / "hatp32-microobservatory").glob("*.FITS"))
    for path in (files[0], files[-1]):  # the last frame is about 270 px away from the first
        data, header = read_image(path)
        solution = solver.solve(data, header, name=path.name)
    assert solution.method == "reference-match"
    assert solution.quality.rms_arcsec < 1.0
    x, y = solution.wcs.all_world2pix([HATP32], 0)[0]
    cx, cy = _independent_centroid(data, x, y)
    assert np.hypot(x - cx, y - cy) < 1.0


@pytest.mark.solver
def test_noise_frame_fails_with_a_reason(solver: NightSolver, shared_data: Path) -> None:
    _, header = read_image(sorted((shared_data / "hatp32-microobservatory").glob("*.FITS"))[0])
    noise = np.random.default_rng(11).normal(400.0, 5.0, (500, 650)).astype(np.float32)
    with pytest.raises(AstrometryError, match="stars detected"):
        solver.solve(noise, header, name="noise.fits")
    # a frame of random "stars" has enough detections but does not solve
    rng = np.random.default_rng(12)
    yy, xx = np.mgrid[:500, :650]
    fake = noise.copy()
    for x, y in rng.uniform([10, 10], [640, 490], (40, 2)):
        fake += 3000 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 4.0).astype(np.float32)
    config = AstrometryConfig(timeout_s=5)
    quick = NightSolver(config, solver.catalog)
    with pytest.raises(AstrometryError, match="fake.fits"):
        quick.solve(fake, header, name="fake.fits")


@pytest.mark.solver
@pytest.mark.parametrize("name", ["wasp_12.B.060.fits", "wasp_12.Rc.060.fits"])
def test_wasp12_dss_header_wcs_is_validated(solver: NightSolver, shared_data: Path, name: str) -> None:
    data, header = read_image(shared_data / "wasp12-dss" / name)
    solution = solver.solve(data, header, name=name)
    assert solution.method == "header"
    assert solution.quality.n_matched >= 30
    assert solution.quality.rms_arcsec < 2.0
    # and a WCS that is 5 pixels off is rejected by the same check
    header["CRPIX1"] += 5.0
    bad = NightSolver(AstrometryConfig(), solver.catalog)
    quality, reason = bad.try_header(header, solution.stars)
    assert quality is None and "rejected" in reason


@pytest.mark.solver
@pytest.mark.slow
def test_whole_hatp32_night(solver: NightSolver, shared_data: Path) -> None:
    files = sorted((shared_data / "hatp32-microobservatory").glob("*.FITS"))
    assert len(files) == 142
    offsets, rms, methods = [], [], []
    for path in files:
        data, header = read_image(path)
        solution = solver.solve(data, header, name=path.name)
        x, y = solution.wcs.all_world2pix([HATP32], 0)[0]
        near = np.hypot(solution.stars.x - x, solution.stars.y - y)
        offsets.append(float(near.min()))
        rms.append(solution.quality.rms_arcsec)
        methods.append(solution.method)
    assert max(offsets) < 1.0
    assert max(rms) < 1.0
    assert methods.count("reference-match") >= 130


def _turned(data: np.ndarray, how: str) -> np.ndarray:
    """The frame as a camera turned (or mirrored) on the sky would see it."""
    from scipy.ndimage import rotate

    if how == "flip":  # a meridian flip: 180 degrees
        return np.ascontiguousarray(data[::-1, ::-1])
    if how == "rot90":
        return np.ascontiguousarray(np.rot90(data))
    if how == "mirror":
        return np.ascontiguousarray(data[:, ::-1])
    if how == "rot33":  # an alt-azimuth mount's field rotation: any angle, corners lost
        return rotate(data.astype(np.float32), 33.0, reshape=False, order=1, cval=float(np.median(data)))
    return data


@pytest.mark.solver
def test_turned_and_mirrored_frames_match_the_reference(solver: NightSolver, shared_data: Path) -> None:
    files = sorted((shared_data / "hatp32-microobservatory").glob("*.FITS"))[:5]
    hows = ["", "flip", "rot90", "rot33", "mirror"]
    solutions = []
    for path, how in zip(files, hows, strict=True):
        data, header = read_image(path)
        solution = solver.solve(_turned(data, how), header, name=path.name)
        solutions.append(solution)
        x, y = solution.wcs.all_world2pix([HATP32], 0)[0]
        near = np.hypot(solution.stars.x - x, solution.stars.y - y)
        assert near.min() < 1.0, how
        assert solution.quality.rms_arcsec < 1.0, how
    # no new blind solve: every turned frame is matched to the first one's stars
    assert [s.method for s in solutions] == ["solve-field"] + ["reference-match"] * 4
    geometry = [s.quality.geometry for s in solutions]
    for k, angle in ((1, 180.0), (2, 90.0), (3, 33.0)):
        turn = (geometry[k].rotation - geometry[0].rotation) % 360
        assert min(abs(turn - angle), abs(turn - (360 - angle))) < 0.5, hows[k]
    assert [g.flipped for g in geometry] == [geometry[0].flipped] * 4 + [not geometry[0].flipped]


@pytest.mark.solver
@pytest.mark.slow
def test_wrong_pointing_falls_back_to_a_blind_solve(solver: NightSolver, shared_data: Path) -> None:
    path = sorted((shared_data / "hatp32-microobservatory").glob("*.FITS"))[0]
    data, header = read_image(path)
    header["RA"] = 120.0  # 60 degrees away from the field
    header["DEC"] = 10.0
    solution = solver.solve(data, header, name=path.name)
    assert solution.method == "solve-field"
    x, y = solution.wcs.all_world2pix([HATP32], 0)[0]
    assert np.hypot(solution.stars.x - x, solution.stars.y - y).min() < 1.0


def test_missing_solver_program_is_a_clear_failure(shared_data: Path) -> None:
    if not any(INDEX_DIR.glob("index-*.fits")):
        pytest.skip(f"no astrometry.net index files in {INDEX_DIR}")
    config = AstrometryConfig(solve_field="no-such-solve-field")
    solver = NightSolver(config, IndexCatalog.from_dirs(config.index_dirs))
    data, header = read_image(sorted((shared_data / "hatp32-microobservatory").glob("*.FITS"))[0])
    with pytest.raises(AstrometryError, match="no-such-solve-field.*not installed"):
        solver.solve(data, header, name="frame.fits")


@pytest.mark.solver
def test_small_field_failure_says_which_index_files_are_missing(
    solver: NightSolver, shared_data: Path
) -> None:
    data, header = read_image(shared_data / "eso-midas" / "dss_test1.fits")  # a 5.5' DSS cut-out
    catalog = solver.catalog
    small = NightSolver(solver.config, catalog, sources=(tycho_source(catalog),))
    with pytest.raises(AstrometryError) as caught:
        small.solve(data, header, name="dss_test1.fits")
    message = str(caught.value)
    # solve-field is not run on it, the catalogue match is, and the reason names the index files'
    # smallest quads, the series that would cover it, and how many catalogue stars the field holds
    assert re.search(
        r"solve-field not tried: the field \(\d+' wide\) is smaller than the smallest quads "
        r"of the installed index files \(22'",
        message,
    ), message
    assert "4100 series" in message and "5200 series" in message and "astrometry.index_dirs" in message
    assert re.search(r"the index files' stars: \d+ stars? in the field", message), message
