"""Synthetic tracking with truth: movers fainter than single-frame detection are found in a cube of
registered frames, confirmed in the individual frames, measured within the promised accuracy;
pure noise gives no track."""

from __future__ import annotations

import numpy as np
import pytest

from nightpipe.movers.faint import FaintOptions, find_faint
from nightpipe.simulate.mover_cubes import add_movers, static_field_cube

N, SIZE, FWHM = 30, 128, 3.0
TIMES = np.arange(N) * 2.0 / 1440.0  # days, a frame every 2 minutes


def _cube(movers: list[tuple[float, float, float, float, float]], seed: int) -> np.ndarray:
    """Unit-noise frames with static stars and Gaussian movers (x0, y0, vx, vy px/frame, peak SNR/frame)."""
    cube, _static = static_field_cube(np.random.default_rng(seed), N, SIZE, FWHM)
    add_movers(cube, movers, FWHM)
    return cube.astype(np.float32)


def _truth_at_ref(x0: float, y0: float, vx: float, vy: float) -> tuple[float, float]:
    k_ref = 0.5 * (N - 1)
    return x0 + vx * k_ref, y0 + vy * k_ref


def test_faint_movers_are_found_confirmed_and_measured() -> None:
    # per-frame SNR 2.5 (not detectable in one frame at 5 sigma), 20 and 4; stack SNR ~ SNR sqrt(N)
    movers = [(20.0, 30.0, 0.5, 0.3, 2.5), (100.0, 20.0, -0.4, 0.6, 20.0), (30.0, 100.0, 0.6, -0.2, 4.0)]
    result = find_faint(_cube(movers, 1), TIMES, FWHM, FaintOptions(max_shift_px=24))
    assert len(result.tracks) == len(movers), [(t.x, t.y, t.snr) for t in result.tracks]
    for x0, y0, vx, vy, snr in movers:
        xr, yr = _truth_at_ref(x0, y0, vx, vy)
        best = min(result.tracks, key=lambda t: np.hypot(t.x - xr, t.y - yr))
        assert np.hypot(best.x - xr, best.y - yr) < 0.5
        per_day = 1440.0 / 2.0
        assert np.hypot(best.vx / per_day - vx, best.vy / per_day - vy) < 0.05
        assert best.snr == pytest.approx(snr * np.sqrt(N), rel=0.3)
        if (
            snr == 20.0
        ):  # astrometry at SNR 20: the fitted track within 0.3 px rms of the truth in every frame
            x, y = best.position(TIMES)
            k = np.arange(N)
            rms = np.sqrt(np.mean((x - x0 - vx * k) ** 2 + (y - y0 - vy * k) ** 2))
            assert rms < 0.3


def test_no_false_track_on_a_night_without_movers() -> None:
    result = find_faint(_cube([], 2), TIMES, FWHM, FaintOptions(max_shift_px=24))
    assert result.tracks == []
