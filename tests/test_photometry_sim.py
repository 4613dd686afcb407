"""End to end on the simulator's night: photometry of calibrated frames against the simulator's truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from nightpipe.photometry.table import read_source_table


@pytest.mark.slow
def test_simulated_night_fwhm_and_fluxes(tmp_path: Path) -> None:
    from nightpipe.cli.app import main

    raw = tmp_path / "raw"
    assert main(["--quiet", "simulate", str(raw), "--size", "512", "--lights", "3"]) == 0
    out = tmp_path / "out"
    settings = [
        "--set",
        f'paths.output="{out}"',
        "--set",
        f'paths.masters="{out / "masters"}"',
        "--set",
        f'database.url="sqlite:///{tmp_path / "np.sqlite"}"',
    ]
    main(["--quiet", *settings, "run", str(raw)])  # later steps may complain (no target, no WCS)
    truth = json.loads((raw / "truth.json").read_text())
    gain = truth["camera"]["gain"]
    stars = truth["field"]["stars"]
    beta = truth["field"]["moffat_beta"]
    tables = sorted((out / "sources").glob("*/*.fits"))
    lights = [f for f in truth["frames"] if f["kind"] == "light"]
    assert len(tables) == len(lights)
    for frame in lights:
        table = read_source_table(next(t for t in tables if t.stem == Path(frame["file"]).stem))
        assert abs(table.meta["fwhm_px"] / frame["fwhm_px"] - 1) < 0.05
        tx = np.asarray(stars["x"]) + frame["dx"]
        ty = np.asarray(stars["y"]) + frame["dy"]
        flux_true = (
            np.asarray(
                json.loads(frame["star_flux_e"])
                if isinstance(frame["star_flux_e"], str)
                else frame["star_flux_e"]
            )
            / gain
        )
        dist, idx = cKDTree(np.column_stack([tx, ty])).query(np.column_stack([table["x"], table["y"]]))
        nearest, _ = cKDTree(np.column_stack([tx, ty])).query(np.column_stack([tx, ty]), k=2)
        ok = (dist < 1.0) & (np.asarray(table["flags"]) == 0) & (nearest[idx, 1] > 20)
        assert ok.sum() >= 5
        radius = table.meta["aper_radii_px"][-1]
        alpha = frame["fwhm_px"] / (2 * np.sqrt(2 ** (1 / beta) - 1))
        enclosed = 1 - (1 + radius**2 / alpha**2) ** (1 - beta)
        flux = np.asarray(table["aper_flux"])[ok, -1]
        err = np.asarray(table["aper_flux_err"])[ok, -1]
        expected = enclosed * flux_true[idx[ok]]
        # a common scale (flat normalisation) is allowed; the scatter must match the errors
        scale = np.median(flux / expected)
        assert abs(scale - 1) < 0.04
        pull = (flux - scale * expected) / err
        assert np.std(pull) < 1.6
