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


def test_the_gaia_cache_is_searched_and_its_star_count_reported(tmp_path: Path) -> None:
    """The identify step's recorded Gaia answer (two real stars, far apart) as the cache: the cone
    around one of them finds it, and a frame that cannot be matched says how many it had."""
    from nightpipe.astrometry.catalog_solve import gaia_cache_source, solve_by_catalogue
    from nightpipe.astrometry.solver import Hints
    from nightpipe.astrometry.sources import StarList
    from nightpipe.catalogs.answers import AnswerCache
    from nightpipe.config import load_settings
    from nightpipe.identify.service import FieldQuery
    from nightpipe.identify.vizier_services import GaiaService

    settings = load_settings(None, environ={}, overrides=[f"paths.cache={str(tmp_path / 'cache')!r}"])
    service = GaiaService(max_mag=settings.identify.gaia_max_mag)
    raw = (Path(__file__).parent / "data" / "identify" / "gaia_dr3_archive_two_sources.vot").read_bytes()
    ra, dec = 268.0676646661466, 26.50748605871529
    payload = service.payload(FieldQuery(ra, dec, 0.5))
    AnswerCache(settings.paths.cache).put(service.name, payload, raw, service_version=service.version)
    source = gaia_cache_source(settings)
    found = source.cone(ra + 0.01, dec, 0.1)
    assert len(found) == 1 and abs(found.ra[0] - ra) < 1e-9 and found.mag[0] == pytest.approx(7.012, abs=1e-3)
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 400, (30, 2))
    stars = StarList(
        xy[:, 0], xy[:, 1], np.arange(30.0, 0, -1), np.ones(30), np.zeros(30, bool), 3.0, (400, 400)
    )
    hints = Hints(ra=ra, dec=dec, radius_deg=0.05, scale_low=0.9, scale_high=1.1)
    attempt, why = solve_by_catalogue(stars, hints, (source,), sip_order=2, min_matches=8, max_rms_arcsec=2.0)
    assert attempt is None
    assert why == "no catalogue match (Gaia DR3 (identify cache): 1 star in the field)"
    elsewhere = Hints(ra=10.0, dec=10.0, radius_deg=0.05, scale_low=0.9, scale_high=1.1)
    _, why = solve_by_catalogue(stars, elsewhere, (source,), sip_order=2, min_matches=8, max_rms_arcsec=2.0)
    assert "no cached Gaia answer of the identify step covers this field" in why
