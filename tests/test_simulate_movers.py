"""Several moving objects in a simulated night: given and random starts, rates in arcsec/min or
px/frame, trailed; the truth says where each is in each light; nights without them are unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from nightpipe.errors import ConfigError
from nightpipe.movers.registered import affine_to
from nightpipe.simulate import CalibrationOptions, CameraOptions, SimOptions, SiteOptions, simulate_night
from nightpipe.simulate.movers import MoverSpec


def _options(movers: tuple[MoverSpec, ...] = ()) -> SimOptions:
    return SimOptions(
        seed=3,
        camera=CameraOptions(size=128),
        calibration=CalibrationOptions(n_bias=1, dark_exptimes=(60.0,), n_dark=1, n_flat=1),
        site=SiteOptions(n_lights=4, cadence=120.0, exptime=60.0, start_utc="2017-12-20T02:00:00"),
        movers=movers,
    )


def test_movers_are_where_the_truth_says(tmp_path: Path) -> None:
    movers = (MoverSpec.parse("mag=9,px=6,angle=30,x=20,y=30"), MoverSpec.parse("mag=9.5,rate=3"))
    truth = simulate_night(tmp_path / "with", _options(movers))
    assert [m["mag"] for m in truth.movers] == [9.0, 9.5]
    assert truth.movers[0]["rate_px_per_frame"] == pytest.approx(6.0)
    assert truth.movers[1]["rate_arcsec_per_min"] == pytest.approx(3.0)
    assert truth.movers[0]["trail_px"] == pytest.approx(3.0)  # half the cadence exposed
    plain = simulate_night(tmp_path / "without", _options())
    for k, (a, b) in enumerate(zip(truth.lights(), plain.lights(), strict=True)):
        with_m = fits.getdata(tmp_path / "with" / a["file"]).astype(float)
        without = fits.getdata(tmp_path / "without" / b["file"]).astype(float)
        diff = with_m - without
        for m in a["movers"]:
            x, y = round(m["x"]), round(m["y"])
            assert diff[y - 1 : y + 2, x - 1 : x + 2].sum() > 20 * np.sqrt(without[y, x])
        x0 = 20.0 + 6.0 * k * np.cos(np.radians(30)) + a["dx"]
        assert a["movers"][0]["x"] == pytest.approx(x0)
    data = json.loads((tmp_path / "without" / "truth.json").read_text())
    assert "movers" not in data and "movers" not in data["options"]  # as before movers existed


def test_bad_mover_specs_say_what_to_write() -> None:
    with pytest.raises(ConfigError, match="no mag="):
        MoverSpec.parse("rate=2")
    with pytest.raises(ConfigError, match="speed"):
        MoverSpec.parse("mag=17,speed=2")


def test_affine_registration_of_a_shifted_and_turned_wcs() -> None:
    ref = WCS(naxis=2)
    ref.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    ref.wcs.crval = [31.0, 46.7]
    ref.wcs.crpix = [64.0, 64.0]
    ref.wcs.cdelt = [-1.5 / 3600, 1.5 / 3600]
    other = ref.deepcopy()
    other.wcs.crpix = [66.5, 61.0]  # the field 2.5 px right, 3 px down
    matrix, offset, resid = affine_to(ref, other, (128, 128))
    np.testing.assert_allclose(matrix, np.eye(2), atol=1e-6)
    np.testing.assert_allclose(offset, [-3.0, 2.5], atol=1e-6)
    assert resid < 1e-6
