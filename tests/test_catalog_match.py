"""Triangle matching of detected stars to catalogue stars, and the simulator's real-sky fields."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nightpipe.astrometry.catalog_match import nominal_pixels, triangle_match
from nightpipe.astrometry.index_catalog import RefStars
from nightpipe.astrometry.series_solve import MAX_REFERENCE_TRIES, reference_order
from nightpipe.cli.app import main

INDEX_DIR = Path("/usr/share/astrometry")


def _turn(angle_deg: float, scale: float, mirror: bool) -> np.ndarray:
    t = np.radians(angle_deg)
    m = scale * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return m @ np.diag([1.0, -1.0]) if mirror else m


@pytest.mark.parametrize(
    ("angle", "scale", "mirror"), [(0.0, 1.0, False), (-71.0, 0.93, True), (179.0, 1.07, False)]
)
def test_triangles_find_rotation_mirror_and_scale_among_extra_and_missing_stars(
    angle: float, scale: float, mirror: bool
) -> None:
    rng = np.random.default_rng(11)
    sky = rng.uniform(0, 600, (14, 2))  # the catalogue stars of the field
    matrix = _turn(angle, scale, mirror)
    frame = (sky[2:] - 300) @ np.linalg.inv(matrix).T + 300 + rng.normal(0, 0.3, (12, 2))
    extra = rng.uniform(0, 600, (8, 2))  # stars the catalogue does not list (fainter, noise)
    detected = np.vstack([frame[:6], extra[:4], frame[6:], extra[4:]])  # mixed in brightness order
    match = triangle_match(detected, sky, scale_lo=0.9, scale_hi=1.1)
    assert match is not None
    assert len(match) >= 10
    assert np.allclose(match.matrix[:, :2], matrix, atol=0.01)
    truth = {i: i + 2 for i in range(6)} | {i + 4: i + 2 for i in range(6, 12)}
    assert all(truth.get(int(s)) == int(d) for s, d in zip(match.src_index, match.dst_index, strict=True))


def test_a_scale_outside_the_hint_is_not_matched() -> None:
    rng = np.random.default_rng(2)
    sky = rng.uniform(0, 600, (15, 2))
    frame = sky / 1.3  # a pixel scale 30 % off the hint
    assert triangle_match(frame, sky, scale_lo=0.9, scale_hi=1.1) is None
    assert triangle_match(frame, sky, scale_lo=1.2, scale_hi=1.4) is not None


def test_nominal_pixels_put_north_up_and_east_left() -> None:
    refs = RefStars(np.array([10.0, 10.01]), np.array([20.0, 20.0]), np.array([9.0, 9.0]))
    xy = nominal_pixels(refs, 10.0, 20.0, 1.0)
    assert xy[0].tolist() == [0.0, 0.0]
    assert xy[1, 0] < -30 and abs(xy[1, 1]) < 0.1  # 0.01 deg of RA east at dec 20: 33.8" to the left


def test_reference_search_tries_few_spread_frames() -> None:
    assert reference_order(60) == [0, 20, 40, 59]
    assert reference_order(2) == [0, 1]
    assert len(reference_order(500)) == MAX_REFERENCE_TRIES


def test_simulate_draws_the_real_sky_by_default(tmp_path: Path) -> None:
    if not any(INDEX_DIR.glob("index-*.fits")):
        pytest.skip(f"no index files in {INDEX_DIR}")
    common = ["--size", "512", "--lights", "1", "--bias", "0", "--darks", "0", "--flats", "0"]
    assert main(["-q", "simulate", str(tmp_path / "real"), *common]) == 0
    assert main(["-q", "simulate", str(tmp_path / "random"), *common, "--sky", "random"]) == 0
    real = json.loads((tmp_path / "real" / "truth.json").read_text())
    random = json.loads((tmp_path / "random" / "truth.json").read_text())
    assert real["options"]["stars"] == "given" and random["options"]["stars"] == "random"
    # the bright stars of the real field are Tycho-2's: the index files list them at those positions
    from nightpipe.astrometry.index_catalog import IndexCatalog

    field = real["field"]
    tycho = IndexCatalog.from_dirs([INDEX_DIR]).cone(field["ra"], field["dec"], 0.2)
    mags, ras = np.asarray(field["stars"]["mag"]), np.asarray(field["stars"]["ra"])
    bright = np.argsort(mags)[:3]
    assert all(np.min(np.abs(tycho.ra - ras[i])) < 1e-6 for i in bright)
    assert main(["-q", "simulate", str(tmp_path / "bad"), *common, "--sky", "nowhere"]) == 2
