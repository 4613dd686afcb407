"""One source detection per frame, shared by the solve and photometry steps (issues 18, 22).

The solve step detects every calibrated frame with the photometry's detection and keeps the list
in ``<output>/detections/<night>/<stem>.fits``; the photometry step reuses it when its key (the
pixels, mask and settings) matches, and detects again when it does not or reuse is turned off.
Detections are counted by wrapping :func:`nightpipe.photometry.frame_sources.detect_sources`,
through which every detection goes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

from night_helpers import DemoNight, night_settings
from nightpipe.config import PhotometryConfig, Settings
from nightpipe.photometry import frame_sources
from nightpipe.photometry.detect import Detections
from nightpipe.photometry.frame_sources import (
    KEY_CARD,
    detect_frame,
    detection_key,
    read_detections,
    write_detections,
)
from nightpipe.photometry.step import run_photometry
from nightpipe.photometry.synthetic import make_star_field
from nightpipe.photometry.table import read_source_table
from nightpipe.pipeline.night import run_night
from nightpipe.store import open_database

SIZE, LIGHTS = 512, 8
NIGHT_STEPS = ["scan", "masters", "calibrate", "solve", "photometry"]


@pytest.fixture
def count_detections(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A one-element list counting calls of the detection (in this process)."""
    calls = [0]
    original: Callable[..., Any] = frame_sources.detect_sources

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(frame_sources, "detect_sources", counted)
    return calls


def _field() -> tuple[np.ndarray, np.ndarray]:
    field = make_star_field((256, 256), 30, seed=4, min_separation=15)
    mask = np.zeros(field.data.shape, np.uint16)
    mask[10, 20:40] = 2  # a hot row segment
    return np.asarray(field.data, np.float32), mask


def test_a_kept_list_reads_back_only_with_its_key(tmp_path: Path) -> None:
    data, mask = _field()
    config = PhotometryConfig()
    found = detect_frame(data, config, mask=mask).detections
    assert len(found) > 10
    key = detection_key(data, mask, config)
    path = write_detections(found, key, tmp_path / "d" / "f.fits")
    assert fits.getheader(path, 1)[KEY_CARD] == key
    back = read_detections(path, key)
    assert back is not None
    for name in ("x", "y", "peak", "npix", "flux_iso", "flags"):
        np.testing.assert_array_equal(getattr(back, name), getattr(found, name), err_msg=name)
        assert getattr(back, name).dtype == getattr(found, name).dtype, name
    # any change of pixels, mask or settings changes the key: the list is not handed out
    changed = data.copy()
    changed[100, 100] += 1.0
    other_mask = mask.copy()
    other_mask[0, 0] = 1
    for other in (
        detection_key(changed, mask, config),
        detection_key(data, other_mask, config),
        detection_key(data, None, config),
        detection_key(data, mask, PhotometryConfig(detect_sigma=4.0)),
        detection_key(data, mask, config, saturation=60000.0),
    ):
        assert other != key
        assert read_detections(path, other) is None
    assert read_detections(tmp_path / "missing.fits", key) is None


@pytest.fixture(scope="module")
def night(demo_night: DemoNight, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return demo_night(SIZE, LIGHTS)


def _tables(settings: Settings) -> dict[str, Any]:
    out = settings.paths.output
    return {str(p.relative_to(out)): read_source_table(p) for p in sorted(out.glob("sources/*/*.fits"))}


def _assert_same_tables(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for name, ta in a.items():
        tb = b[name]
        assert ta.colnames == tb.colnames, name
        for column in ta.colnames:
            np.testing.assert_array_equal(np.asarray(ta[column]), np.asarray(tb[column]), err_msg=column)


@pytest.mark.slow
def test_a_night_detects_each_frame_once(
    night: tuple[Path, Path], tmp_path: Path, count_detections: list[int]
) -> None:
    root, raw = night
    settings = night_settings(root, tmp_path, "parallel.workers=0", "parallel.threads=1")
    result = run_night(settings, [raw], steps=NIGHT_STEPS)
    assert result.exit_code == 0, [s.error for s in result.steps if s.error]
    kept = sorted(settings.paths.output.glob("detections/*/*.fits"))
    shared = _tables(settings)
    assert len(kept) == LIGHTS and len(shared) == LIGHTS
    assert count_detections[0] == LIGHTS  # the solve's; the photometry reused every list
    db = open_database(settings.database.url)
    try:
        # reuse turned off: the photometry detects every frame again, and finds the same sources
        count_detections[0] = 0
        run_photometry(settings, db, force=True, reuse_detections=False)
        assert count_detections[0] == LIGHTS
        _assert_same_tables(_tables(settings), shared)
        # stale lists (another key: found on other pixels or with other settings) are not reused
        for path in kept:
            key = str(fits.getheader(path, 1)[KEY_CARD])
            found = read_detections(path, key)
            assert found is not None
            stale = replace(found, x=found.x + 0.5, y=found.y - 0.5)
            write_detections(stale, "0" * 40, path)
        count_detections[0] = 0
        run_photometry(settings, db, force=True)
        assert count_detections[0] == LIGHTS
        _assert_same_tables(_tables(settings), shared)
    finally:
        db.dispose()


def test_a_kept_source_list_round_trips_its_key_without_a_fits_warning(tmp_path: Path) -> None:
    """The 64-character key fills its card: written without a comment, it is never truncated."""
    import hashlib
    import warnings

    det = Detections(
        x=np.array([10.5, 20.25]),
        y=np.array([3.0, 40.0]),
        peak=np.array([100.0, 200.0], np.float32),
        npix=np.array([9, 12], np.int32),
        flux_iso=np.array([1000.0, 2500.0]),
        flags=np.array([0, 4], np.uint16),
    )
    key = hashlib.sha256(b"pixels").hexdigest()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = write_detections(det, key, tmp_path / "frame.fits")
        back = read_detections(path, key)
    assert back is not None
    np.testing.assert_array_equal(back.x, det.x)
    np.testing.assert_array_equal(back.flags, det.flags)
    assert read_detections(path, hashlib.sha256(b"other pixels").hexdigest()) is None
