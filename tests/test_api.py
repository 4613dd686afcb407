"""The Python API: its documented examples run, and one real frame analysed from Python."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord

import nightpipe.api
from nightpipe.api import analyse_frame, load_config, open_archive
from nightpipe.starlc import StarNotFoundError


def test_the_documented_examples_run() -> None:
    result = doctest.testmod(nightpipe.api, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 2 and result.failed == 0


def test_a_real_frame_from_python_finds_wasp12_and_its_comparisons(shared_data: Path) -> None:
    folder = shared_data / "wasp12-dss"
    frame = analyse_frame(folder / "wasp_12.Rc.060.fits", load_config(environ={}))
    assert frame.wcs is not None and len(frame) > 100
    assert frame.fwhm_px is not None and frame.fwhm_px > 1.0
    measured = SkyCoord(frame.sources["ra"], frame.sources["dec"], unit="deg")
    lines = [
        ln for ln in (folder / "wasp_12.Rc.060.radec.txt").read_text().splitlines() if not ln.startswith("#")
    ]
    stars = SkyCoord(
        [ln.split(",")[0] for ln in lines], [ln.split(",")[1] for ln in lines], unit=("hourangle", "deg")
    )
    _, sep, _ = stars.match_to_catalog_sky(measured)
    assert np.all(sep.arcsec < 3.0)  # WASP-12 and every AstroImageJ comparison star is found


def test_the_archive_says_when_a_star_was_never_measured(tmp_path: Path) -> None:
    with open_archive(f"sqlite:///{tmp_path / 'db.sqlite'}") as archive:
        assert archive.nights() == []
        with pytest.raises(StarNotFoundError):
            archive.light_curve("06:30:32.8 +29:40:20")


def test_the_api_is_at_the_top_of_the_package() -> None:
    import nightpipe

    assert nightpipe.run_night is nightpipe.api.run_night and nightpipe.open_archive is open_archive
    assert {"run_night", "analyse_frame", "open_archive", "load_config"} <= set(nightpipe.__all__)
    with pytest.raises(AttributeError):
        _ = nightpipe.nothing_here  # type: ignore[attr-defined]
