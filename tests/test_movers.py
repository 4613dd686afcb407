"""Moving objects: static sky against transients, linking with truth, MPC 80-column and ADES reports."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from nightpipe.movers.linking import LinkOptions, link, tangent_plane
from nightpipe.movers.mpc import Observation, ades_psv, mpc80_line, parse_mpc80
from nightpipe.movers.transients import Detections, static_mask, transients

# real 80-column lines: the sample observations of the MPC's digest2 (known NEOs, made-up designations)
DIGEST2_SAMPLE = [
    "     NE00030  C2004 09 16.15206 16 13 11.57 +20 52 23.7          21.1 Vd     291",
    "     NE00030  C2004 09 16.15621 16 13 11.34 +20 52 16.8          20.8 Vd     291",
    "     NE00199  C2007 02 09.24234 06 08 06.06 +43 13 26.2          20.1  c     704",
]
CENTRE = (150.0, 20.0)


def _jd(year: int, month: int, day: float) -> float:
    start = datetime(year, month, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return start.total_seconds() / 86400.0 + 2440587.5 + day - 1


@pytest.mark.parametrize("line", DIGEST2_SAMPLE)
def test_mpc_80_column_lines_round_trip_real_ones(line: str) -> None:
    f = parse_mpc80(line)
    year, month, day = f["date"]  # type: ignore[misc]
    obs = Observation(str(f["designation"]), str(f["number"]), _jd(year, month, day), float(f["ra"]),  # type: ignore[arg-type]
                      float(f["dec"]), f["mag"], str(f["band"]) or " ", str(f["station"]),  # type: ignore[arg-type]
                      catalogue_code=str(f["catalogue_code"]))  # fmt: skip
    assert mpc80_line(obs) == line


def test_mpc_line_of_a_numbered_body_and_a_southern_candidate() -> None:
    numbered = mpc80_line(Observation("", "00433", _jd(2026, 12, 7.5), 12.5, 30.25, 14.26, "V", "G96"))
    assert len(numbered) == 80 and numbered.startswith("00433") and numbered[14] == "C"
    assert numbered[15:32] == "2026 12 07.50000 " and numbered[77:] == "G96" and numbered[65:71] == "14.3 V"
    south = parse_mpc80(
        mpc80_line(Observation("NP00001", "", _jd(2026, 1, 2.25), 359.9999, -0.5, None, " ", "500"))
    )
    assert south["dec"] == pytest.approx(-0.5) and south["ra"] == pytest.approx(359.9999, abs=1e-4)
    assert south["mag"] is None and south["designation"] == "NP00001"


def test_ades_psv_has_the_blocks_and_columns_the_mpc_asks_for() -> None:
    obs = [Observation("NP00001", "", _jd(2026, 12, 7.25), 31.0, 46.5, 17.52, "V", "G96", 0.21, 0.19, 0.05)]
    text = ades_psv(obs, observer="A. Observer", site_code="G96", catalogue="Gaia3").splitlines()
    assert text[0] == "# version=2017" and "! mpcCode G96" in text and "! name A. Observer" in text
    assert text[text.index("# measurers") + 1] == "! name A. Observer"
    columns = [c.strip() for c in next(t for t in text if t.startswith("permID")).split("|")]
    row = dict(zip(columns, (v.strip() for v in text[-1].split("|")), strict=True))
    assert row["trkSub"] == "NP00001" and row["mode"] == "CCD" and row["stn"] == "G96"
    assert (
        row["obsTime"] == "2026-12-07T06:00:00.000Z"
        and row["ra"] == "31.000000"
        and row["dec"] == "+46.500000"
    )
    assert (
        row["rmsRA"] == "0.210" and row["astCat"] == "Gaia3" and row["mag"] == "17.52" and row["band"] == "V"
    )


def _night(movers: list[tuple[float, float, float, float]], *, noise: int, seed: int = 3, frames: int = 30):
    """Detections of a simulated night: noise transients, 50 static stars and movers
    (xi0, eta0 in arcsec, rate in arcsec/min, position angle in degrees)."""
    rng = np.random.default_rng(seed)
    rows = []
    stars = rng.uniform(-600, 600, (50, 2))
    for f in range(frames):
        jd = 2460000.5 + f * 2 / 1440
        points = [(*s, 0) for s in stars + rng.normal(0, 0.3, stars.shape)]
        points += [(*p, 0) for p in rng.uniform(-600, 600, (noise, 2))]
        for k, (x0, y0, rate, pa) in enumerate(movers):
            if (f + k) % 7 == 3:
                continue  # missed on some frames
            minutes = f * 2
            x = x0 + rate * minutes * np.sin(np.radians(pa)) + rng.normal(0, 0.3)
            y = y0 + rate * minutes * np.cos(np.radians(pa)) + rng.normal(0, 0.3)
            points.append((x, y, k + 1))
        for x, y, truth in points:
            rows.append((f, jd, x, y, truth))
    data = np.array(rows)
    dec = CENTRE[1] + data[:, 3] / 3600  # small field: the tangent plane is flat to well under 0.01"
    ra = CENTRE[0] + data[:, 2] / 3600 / np.cos(np.radians(CENTRE[1]))
    n = len(data)
    det = Detections(data[:, 0].astype(np.int64), data[:, 1], ra, dec, np.full(n, 0.3),
                     np.arange(n, dtype=np.int64), np.zeros(n, dtype=np.int64))  # fmt: skip
    return det, data[:, 4].astype(int)


def test_static_sky_is_told_from_movers() -> None:
    det, truth = _night([(0.0, 0.0, 3.0, 45.0)], noise=0)
    static = static_mask(det, radius_arcsec=2.0, min_frames=8)
    assert static[truth == 0].all() and not static[truth == 1].any()


def test_movers_are_linked_with_their_rates_and_directions_and_no_false_track() -> None:
    movers = [(-300.0, 100.0, 6.0, 120.0), (200.0, -250.0, 0.5, 300.0), (50.0, 400.0, 2.0, 200.0)]
    det, truth = _night(movers, noise=40)
    moving = transients(det, radius_arcsec=2.0, min_frames=8, bad_flags=0)
    tracks = link(moving, CENTRE, LinkOptions(min_detections=4, tolerance_arcsec=1.0))
    assert len(tracks) == 3
    moving_truth = truth[moving.source_index]
    for track in tracks:
        members = moving_truth[track.members]
        k = int(np.bincount(members).argmax())
        assert k > 0 and (members == k).mean() == 1.0  # every detection is the mover's
        assert (members == k).sum() >= 0.8 * (moving_truth == k).sum()
        _, _, rate, pa = movers[k - 1]
        assert track.rate_arcsec_min == pytest.approx(rate, rel=0.03)
        assert abs((track.position_angle_deg - pa + 180) % 360 - 180) < 2.0
        assert track.rms_arcsec < 0.6
    noise_only, _ = _night([], noise=40, seed=11)
    assert link(transients(noise_only, radius_arcsec=2.0, min_frames=8, bad_flags=0), CENTRE,
                LinkOptions(min_detections=4, tolerance_arcsec=1.0)) == []  # fmt: skip


def test_tangent_plane_is_arcsec_east_and_north() -> None:
    ra = np.array([CENTRE[0] + 1 / 3600 / np.cos(np.radians(20))])
    xi, eta = tangent_plane(ra, np.array([20.0 + 2 / 3600]), *CENTRE)
    assert xi[0] == pytest.approx(1.0, abs=1e-3) and eta[0] == pytest.approx(2.0, abs=1e-3)
