"""Comets: the MPC's CometEls.txt lines read, propagated on any conic (universal variables) and
compared with the MPC's own ephemerides; comet designations in 80-column lines and ADES; a
comet track identified from a comet file by the movers step's identification.

Truth: the recorded files of ``tests/data/movers/`` (see its SOURCES.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from nightpipe.movers.comets import Comets, parse_comets, read_comets
from nightpipe.movers.designations import ades_ids, pack_comet, report_fields
from nightpipe.movers.kepler import GAUSS_K, Site, astrometric, heliocentric
from nightpipe.movers.mpc import Observation, mpc80_line, parse_mpc80
from nightpipe.movers.mpcorb import Orbits
from nightpipe.movers.orbit_match import identify_with_orbits

DATA = Path(__file__).parent / "data" / "movers"
PROV_ID = (  # ADES submit_v2017.xsd, BaseProvIDType and PermIDType
    r"\d{4} [A-HJ-Y][A-HJ-Z]\d*|\d{4} (P-L|T-[123])|[ADCPX]/\d{4} [A-Z]{1,2}\d*(-[A-Z])?"
)
PERM_ID = r"\d+([IPD](-[A-Z]{1,2})?)?"


def _ephemeris() -> list[tuple[float, float, float]]:
    """(JD UTC, RA, Dec) of the recorded MPC ephemeris lines."""
    out = []
    for line in (DATA / "mpc_ephemeris_hale_bopp_2020-05-31.txt").read_text().splitlines():
        if not re.match(r"^\d{4} \d\d \d\d \d{6} ", line):
            continue
        parts = line.split()
        day = int(parts[2]) - 31 if parts[1] == "05" else int(parts[2])  # days after 2020-05-31
        h, m, s, dd, dm, ds = (float(v) for v in parts[4:10])
        sign = -1.0 if parts[7].startswith("-") else 1.0
        out.append((2459000.5 + day, 15 * (h + m / 60 + s / 3600), sign * (abs(dd) + dm / 60 + ds / 3600)))
    return out


def test_comet_lines_are_read_column_by_column() -> None:
    comets = read_comets(DATA / "cometels_hale_bopp_panstarrs.txt")
    assert len(comets) == 2
    assert list(comets.name) == ["C/1995 O1 (Hale-Bopp)", "C/2015 A2 (PANSTARRS)"]
    assert comets.packed[0] == "    CJ95O010" and comets.e[1] == 1.0
    assert comets.perihelion_tt[0] == pytest.approx(2450537.1333, abs=1e-6)  # 1997 Mar 29.6333 TT
    assert comets.q[0] == pytest.approx(0.916241) and comets.incl[0] == pytest.approx(88.9908)
    bad = b"    CJ95O010  1997 03 29.6333  0.91x241  0.994928"
    parsed, skipped = parse_comets([bad, b""])
    assert len(parsed) == 0 and skipped == 1


def test_hale_bopp_agrees_with_the_mpc_ephemeris_within_its_rounding() -> None:
    comets = read_comets(DATA / "cometels_hale_bopp_panstarrs.txt").take(np.array([0]))
    rows = _ephemeris()
    assert len(rows) == 5
    jd, ra_mpc, dec_mpc = (np.array(v) for v in zip(*rows, strict=True))
    ra, dec, distance = astrometric(comets, jd, None)
    dra = ((ra[0] - ra_mpc + 180) % 360 - 180) * np.cos(np.deg2rad(dec_mpc)) * 3600
    ddec = (dec[0] - dec_mpc) * 3600
    # the MPC rounds RA to 0.1 s (0.14" here) and Dec to 1"; its ephemeris is perturbed
    assert np.abs(dra).max() < 0.6 and np.abs(ddec).max() < 0.8
    assert distance[0, 0] == pytest.approx(43.266, abs=0.001)


def test_a_parabolic_comet_agrees_with_the_mpc_five_years_after_perihelion() -> None:
    comets = read_comets(DATA / "cometels_hale_bopp_panstarrs.txt").take(np.array([1]))
    jd = 2459074.5  # 2020-08-13 0h UTC
    ra, dec, _ = astrometric(comets, np.array([jd]), None)
    want_ra, want_dec = 15 * (18 + 46 / 60 + 46.4 / 3600), -(72 + 5 / 60 + 33 / 3600)
    assert abs((ra[0, 0] - want_ra) * np.cos(np.deg2rad(want_dec)) * 3600) < 0.5
    assert abs((dec[0, 0] - want_dec) * 3600) < 1.0


def test_universal_variables_agree_with_keplers_equation_on_ellipses() -> None:
    rng = np.random.default_rng(3)
    n = 200
    e, a = rng.uniform(0, 0.97, n), rng.uniform(0.8, 40, n)
    motion = np.rad2deg(GAUSS_K / a**1.5)
    mean = rng.uniform(0, 360, n)
    peri, node, incl = rng.uniform(0, 360, n), rng.uniform(0, 360, n), rng.uniform(0, 180, n)
    epoch = np.full(n, 2459000.5)
    names = np.array(["x"] * n)
    orbits = Orbits(names, names, epoch, np.zeros(n), mean, peri, node, incl, e, motion, a)
    since = (mean + 180) % 360 - 180
    comets = Comets(names, names, epoch - since / motion, a * (1 - e), e, peri, node, incl, np.zeros(n))
    times = 2459000.5 + np.linspace(-3000, 3000, 7)
    kepler, universal = heliocentric(orbits, times), heliocentric(comets, times)
    assert np.abs(kepler - universal).max() < 1e-9


def test_hyperbolic_orbits_keep_their_energy_and_angular_momentum() -> None:
    q, e = np.array([0.25, 1.2, 3.0]), np.array([1.2, 1.0, 3.5])
    names = np.array(["x"] * 3)
    zero = np.zeros(3)
    comets = Comets(names, names, np.full(3, 2459000.5), q, e, zero + 30, zero + 60, zero + 40, zero)
    t = 2459000.5 + np.array([-400.0, -3.0, 0.0, 50.0, 2000.0])
    h = 1e-2  # days: the JD's rounding (5e-10 d) limits a smaller step
    r = heliocentric(comets, t)
    v = (heliocentric(comets, t + h) - heliocentric(comets, t - h)) / (2 * h)
    radius, speed2 = np.linalg.norm(r, axis=0), (v**2).sum(axis=0)
    mu = GAUSS_K**2
    energy = speed2 / 2 - mu / radius
    assert np.allclose(energy, (mu * (e - 1) / (2 * q))[:, None], rtol=2e-5, atol=1e-9)
    momentum = np.linalg.norm(np.cross(r, v, axis=0), axis=0)
    assert np.allclose(momentum, np.sqrt(mu * q * (1 + e))[:, None], rtol=2e-5)


def test_comet_designations_follow_the_mpc_and_ades_forms() -> None:
    assert pack_comet("C/1995 O1 (Hale-Bopp)") == "    CJ95O010"
    assert pack_comet("C/2015 A2") == "    CK15A020" and pack_comet("1P/Halley") == "0001P"
    assert pack_comet("2019 RB21") == "" and pack_comet("(1) Ceres") == ""
    for name, perm, prov in [
        ("C/1995 O1 (Hale-Bopp)", "", "C/1995 O1"),
        ("P/1996 R2 (Lagerkvist)", "", "P/1996 R2"),
        ("1P/Halley", "1P", ""),
        ("73P-C", "73P-C", ""),
        ("C/2019 Y4-B", "", "C/2019 Y4-B"),
    ]:
        number, designation = report_fields(name, "")
        assert ades_ids(number, designation) == (perm, prov, "")
        assert re.fullmatch(PERM_ID, perm) if perm else re.fullmatch(PROV_ID, prov)
        line = mpc80_line(Observation(designation, number, 2459000.5, 359.8, -84.8, 18.0, "G", "G96"))
        assert len(line) == 80 and line[:12] == pack_comet(name).ljust(12)
        assert parse_mpc80(line)["station"] == "G96"
    assert report_fields("2019 RB21", "") == ("", "K19R21B") and report_fields("", "229762") == ("M9762", "")


def test_a_comet_track_is_identified_from_the_comet_file() -> None:
    comets = read_comets(DATA / "cometels_hale_bopp_panstarrs.txt")
    site = Site(-30.1689, -70.8063, 2207.0)
    jd = 2459000.2 + np.arange(5) * 0.01
    ra, dec, _ = astrometric(comets.take(np.array([0])), jd, site)
    tracks = [(jd, ra[0] + 0.5 / 3600, dec[0]), (jd, ra[0] + 0.3, dec[0])]
    found = identify_with_orbits(comets, tracks, site, radius_arcsec=10.0)
    assert found[0] is not None and found[0].name == "C/1995 O1 (Hale-Bopp)"
    assert found[0].source == "comets" and found[1] is None
