"""Offline identification by orbit: MPCORB lines parsed, propagated (two-body) and compared with
JPL Horizons, packed designations, and tracks matched among many orbits.

Truth: the MPCORB line of (1) Ceres (epoch 2020 May 31, MPC batch MPO492748) as quoted in
skyfield's ``skyfield/tests/test_keplerlib.py``, and JPL Horizons' barycentric ICRF vector of
Ceres at 2020-Feb-07 00:00 TDB (solution JPL#46, DE431), ``authorities/ceres-position`` of the
skyfield repository (a Horizons output file as Horizons wrote it).
"""

from __future__ import annotations

import erfa
import numpy as np
import pytest

from nightpipe.movers.designations import pack_number, pack_provisional, unpack_number, unpack_provisional
from nightpipe.movers.kepler import Site, astrometric, heliocentric, observer
from nightpipe.movers.mpcorb import Orbits, parse_mpcorb, unpack_epoch
from nightpipe.movers.orbit_match import identify_with_orbits, separation_arcsec

CERES = (
    b"00001    3.4   0.15 K205V 162.68631   73.73161   80.28698   10.58862  0.0775571  0.21406009"
    b"   2.7676569  0 MPO492748  6751 115 1801-2019 0.60 M-v 30h Williams   0000      "
    b"(1) Ceres              20190915"
)
HORIZONS_JD_TDB = 2458886.5
HORIZONS_CERES_SSB = np.array([1.334875927366032, -2.239607658161781, -1.328895183461897])
HEADER = [b"MINOR PLANET CENTER ORBIT DATABASE (MPCORB)", b"", b"Des'n     H     G   Epoch ...", b"-" * 160]


def test_packed_epochs_and_designations_follow_the_mpc_rules() -> None:
    assert unpack_epoch("K205V") == (2020, 5, 31) and unpack_epoch("J9611") == (1996, 1, 1)
    # the MPC's examples of packed numbers and provisional designations
    assert [pack_number(n) for n in ("1", "3202", "100345", "360017", "620000", "3140113")] == [
        "00001", "03202", "A0345", "a0017", "~0000", "~AZaz"
    ]  # fmt: skip
    assert pack_provisional("1995 XA") == "J95X00A" and pack_provisional("2007 TA418") == "K07Tf8A"
    assert pack_provisional("2019 RB21") == "K19R21B" and pack_provisional("NP00001") == "NP00001"
    assert unpack_provisional("K07Tf8A") == "2007 TA418" and unpack_number("~AZaz") == "3140113"
    assert unpack_number("M9762") == "229762" and unpack_number("K19R21B") == ""
    assert pack_number("-") == "" and pack_number("") == ""  # SkyBoT's unnumbered bodies


def test_mpcorb_lines_are_read_after_the_header_and_bad_lines_are_skipped() -> None:
    bad = CERES[:30] + b"xx.xxxxx" + CERES[38:]
    orbits, skipped = parse_mpcorb([*HEADER, CERES, b"", bad])
    assert len(orbits) == 1 and skipped == 1
    assert orbits.packed[0] == "00001" and orbits.name[0] == "(1) Ceres"
    assert orbits.epoch_tt[0] == 2459000.5 and orbits.a[0] == pytest.approx(2.7676569)
    assert orbits.H[0] == 3.4 and orbits.incl[0] == pytest.approx(10.58862)


def test_ceres_two_body_agrees_with_horizons_114_days_before_its_epoch() -> None:
    orbits, _ = parse_mpcorb([CERES])
    ours = heliocentric(orbits, np.array([HORIZONS_JD_TDB]))[:, 0, 0]
    pvh, pvb = erfa.epv00(HORIZONS_JD_TDB, 0.0)
    sun = np.asarray(pvb["p"]) - np.asarray(pvh["p"])  # the Sun from the barycentre (ERFA)
    truth = HORIZONS_CERES_SSB - sun
    earth = np.asarray(pvh["p"])
    seen, want = ours - earth, truth - earth
    angle = np.degrees(np.arccos(seen @ want / np.linalg.norm(seen) / np.linalg.norm(want))) * 3600
    # two-body over 114 days: 6.7" as seen from the Earth (0.00016 AU in space)
    assert angle < 8.0 and np.linalg.norm(ours - truth) < 2.0e-4


def test_a_site_is_within_an_earth_radius_of_the_geocentre() -> None:
    jd = np.array([2459017.5, 2459017.75])
    offset = observer(jd, Site(31.68, -110.88, 2345.0)) - observer(jd, None)
    km = offset * 149597870.7
    # WGS84 at 31.68 deg, 2345 m: 6374.7 km from the centre, 3341 km above the equator's plane
    assert np.allclose(np.linalg.norm(km, axis=0), 6374.7, atol=1.0) and np.allclose(km[2], 3341.0, atol=5.0)
    turn = np.degrees(np.arctan2(km[1], km[0]))
    # 6 h of the Earth's rotation (90.25 deg; the pole precessed by 0.1 deg from the GCRS one by 2020)
    assert (turn[1] - turn[0]) % 360 == pytest.approx(90.25, abs=0.2)
    _, _, dist = astrometric(parse_mpcorb([CERES])[0], jd, None)
    assert dist.shape == (1, 2) and 1.0 < dist[0, 0] < 4.0


def _decoys(n: int, seed: int) -> Orbits:
    """Main-belt orbits drawn at random around Ceres' (the same epoch)."""
    rng = np.random.default_rng(seed)
    ceres = parse_mpcorb([CERES])[0]
    a = rng.uniform(2.2, 3.3, n)
    return Orbits(
        np.array([f"X{k:05d}" for k in range(n)]),
        np.array([f"decoy {k}" for k in range(n)]),
        np.full(n, ceres.epoch_tt[0]),
        np.full(n, 15.0),
        ceres.M[0] + rng.normal(0, 2.0, n),
        ceres.peri[0] + rng.normal(0, 2.0, n),
        ceres.node[0] + rng.normal(0, 2.0, n),
        ceres.incl[0] + rng.normal(0, 2.0, n),
        rng.uniform(0.0, 0.2, n),
        np.degrees(0.01720209895 / a**1.5),
        a,
    )


def _concat(a: Orbits, b: Orbits) -> Orbits:
    return Orbits(**{k: np.concatenate([getattr(a, k), getattr(b, k)]) for k in a.__dataclass_fields__})


def test_a_track_is_identified_among_many_orbits_with_its_offset() -> None:
    ceres = parse_mpcorb([CERES])[0]
    orbits = _concat(_decoys(20000, 1), ceres)
    site = Site(31.68, -110.88, 2345.0)
    jd = 2459017.5 + np.arange(12) * 5.0 / 1440.0
    ra, dec, _ = astrometric(ceres, jd, site)
    rng = np.random.default_rng(2)
    offset = np.array([1.5, -0.8])  # arcsec: what the O-C must give back
    obs_dec = dec[0] + (offset[1] + rng.normal(0, 0.2, jd.size)) / 3600.0
    obs_ra = ra[0] + (offset[0] + rng.normal(0, 0.2, jd.size)) / 3600.0 / np.cos(np.radians(dec[0]))
    # a second track moving the wrong way through the same place: no orbit follows it
    wrong_ra = ra[0][::-1].copy()
    found = identify_with_orbits(
        orbits, [(jd, obs_ra, obs_dec), (jd, wrong_ra, dec[0])], site, radius_arcsec=10.0
    )
    assert found[0] is not None and found[0].name == "(1) Ceres" and found[1] is None
    assert found[0].oc_ra_arcsec == pytest.approx(offset[0], abs=0.2)
    assert found[0].oc_dec_arcsec == pytest.approx(offset[1], abs=0.2)
    assert separation_arcsec(obs_ra, obs_dec, ra[0], dec[0]).max() <= found[0].max_arcsec + 1e-9


def test_the_step_names_a_track_after_its_mpcorb_orbit_and_reports_it_numbered(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from nightpipe.config import validate_settings
    from nightpipe.movers.linking import Track
    from nightpipe.movers.mpc import parse_mpc80
    from nightpipe.movers.step import NightDetections, identify_tracks, write_products
    from nightpipe.movers.transients import Detections

    orbit_file = tmp_path / "MPCORB.DAT"
    orbit_file.write_bytes(b"\n".join([*HEADER, CERES]) + b"\n")
    settings = validate_settings(
        {"movers": {"mpcorb": str(orbit_file)}, "identify": {"observatory_code": "G96"},
         "observatory": {"latitude": 31.68, "longitude": -110.88, "elevation": 2345.0}}
    )  # fmt: skip
    site = Site(31.68, -110.88, 2345.0)
    jd = 2459017.5 + np.arange(6) * 5.0 / 1440.0
    ra, dec, _ = astrometric(parse_mpcorb([CERES])[0], jd, site)
    n = jd.size
    ints = np.arange(n, dtype=np.int64)
    # the Ceres track and a candidate 1 degree away
    det = Detections(np.r_[ints, ints], np.r_[jd, jd], np.r_[ra[0], ra[0] + 1.0], np.r_[dec[0], dec[0]],
                     np.full(2 * n, 0.3), np.r_[ints, ints + n], np.zeros(2 * n, np.int64))  # fmt: skip
    tracks = [
        Track(ints, jd[0], np.zeros(2), np.zeros(2), 0.1),
        Track(ints + n, jd[0], np.zeros(2), np.zeros(2), 0.1),
    ]
    names = identify_tracks(tracks, det, None, settings)
    assert names[0].designation == "(1) Ceres" and names[0].number == "1" and names[0].source == "mpcorb"
    assert abs(names[0].oc_ra_arcsec) < 0.01 and names[1].designation == "NP00002" and names[1].source == ""
    night = NightDetections(
        det, np.full(2 * n, 8.5), np.full(2 * n, 0.05), "V", n, (ra[0, 0], dec[0, 0]), 3.0
    )
    write_products(tmp_path, "2020-06-16", settings, tracks, night, names)
    lines = [ln for ln in (tmp_path / "2020-06-16.mpc.txt").read_text().splitlines() if len(ln) == 80]
    assert [parse_mpc80(ln)["number"] for ln in lines[:n]] == ["00001"] * n
    assert {parse_mpc80(ln)["designation"] for ln in lines[n:]} == {"NP00002"}
    assert "<permID>1</permID>" in (tmp_path / "2020-06-16.ades.xml").read_text()


def test_a_parsed_mpcorb_file_is_cached_until_it_changes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from nightpipe.movers.mpcorb import read_mpcorb

    orbit_file = tmp_path / "MPCORB.DAT"
    orbit_file.write_bytes(b"\n".join([*HEADER, CERES]) + b"\n")
    first = read_mpcorb(orbit_file, tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("mpcorb-*.npz"))) == 1
    again = read_mpcorb(orbit_file, tmp_path / "cache")
    assert again.name[0] == "(1) Ceres" and again.a[0] == first.a[0]
    orbit_file.write_bytes(b"\n".join([*HEADER, CERES, CERES.replace(b"00001", b"00002", 1)]) + b"\n")
    assert len(read_mpcorb(orbit_file, tmp_path / "cache")) == 2
    with pytest.raises(FileNotFoundError, match="movers.mpcorb"):
        read_mpcorb(tmp_path / "missing.dat")
