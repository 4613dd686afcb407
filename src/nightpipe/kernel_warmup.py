"""Compile the night's kernels ahead, into numba's on-disk cache (``nightpipe doctor --warm``, issue 22).

A fresh install has an empty cache, so its first night compiles every kernel it meets (about 20
kernels, 30 specialisations, ~30 s of CPU on this machine) and only the second night reads them
back. :func:`warm_kernels` instead runs a small synthetic frame through the same library calls a
night makes (master combine, calibration, cosmic-ray screen, photometry), with the dtypes and
argument kinds the steps pass, so that numba compiles and caches the same specialisations; a
night afterwards only loads them. The frame is small (a few tenths of a second of arithmetic):
nearly all the time is the compiling, which would otherwise be spent in the first night.

Call it after :func:`nightpipe.kernel_cache.use_user_cache` (the command line does) so that the
kernels land where the night will look for them.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nightpipe.config_sections import PhotometryConfig

log = logging.getLogger(__name__)

WARM_SHAPE = (192, 192)
"""Side of the synthetic frame: large enough for a 64-pixel background mesh and 40 stars."""


@dataclass(frozen=True)
class WarmStage:
    """One group of kernels compiled (or loaded from the cache) and the seconds it took."""

    name: str
    seconds: float


def _star_frame(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A float32 star field in ADU with a few one-pixel hits, and its uint16 flag plane (all clear)."""
    from nightpipe.photometry.synthetic import make_star_field

    field = make_star_field(WARM_SHAPE, 40, seed=seed, min_separation=12, gain=1.0, read_noise=15.0)
    data = np.ascontiguousarray(field.data, dtype=np.float32)
    rng = np.random.default_rng(seed)
    ys, xs = rng.integers(20, WARM_SHAPE[0] - 20, size=(2, 6))
    data[ys, xs] += np.float32(3000.0)  # cosmic-ray-like hits, so that the screen's second pass runs
    return data, np.zeros(WARM_SHAPE, np.uint16)


def _warm_combine(folder: Path) -> None:
    """The masters step: a sigma-clipped median of raw uint16 files read band by band."""
    from astropy.io import fits

    from nightpipe.calib.combine import combine_files

    rng = np.random.default_rng(1)
    paths = []
    for i in range(5):
        path = folder / f"bias{i}.fits"
        fits.writeto(path, rng.normal(1000, 10, WARM_SHAPE).astype(np.uint16), overwrite=True)
        paths.append(path)
    combine_files(paths)


def _warm_calibrate(raw: np.ndarray) -> np.ndarray:
    """The calibrate step: the per-pixel arithmetic (with and without masters), then the cosmic-ray
    screen on the calibrated frame, as ``calib.calibrate`` calls them."""
    from nightpipe.calib.apply import ApplyParams, MasterArrays, apply_calibration, flag_counts
    from nightpipe.calib.cosmics import detect_cosmics
    from nightpipe.calib.cosmics_params import CosmicParams

    params = ApplyParams(exptime=30.0, gain=1.0, read_noise=15.0, saturation=4095.0, nonlinear_level=3500.0)
    bias = np.full(WARM_SHAPE, 10.0, np.float32)
    flat = np.ones(WARM_SHAPE, np.float32)
    apply_calibration(raw + 10.0, MasterArrays(bias=bias, bias_err=bias * 0.01, flat=flat), params)
    result = apply_calibration(raw, MasterArrays(), params)
    flag_counts(result.mask)
    cosmic = CosmicParams(gain=1.0, read_noise=15.0, saturation=4095.0)
    detect_cosmics(result.data, "fast", cosmic, inmask=result.mask != 0, bad=np.zeros(WARM_SHAPE, bool))
    return result.uncertainty


def _warm_photometry(
    data: np.ndarray, mask: np.ndarray, uncertainty: np.ndarray, config: PhotometryConfig
) -> None:
    """The photometry step's ``measure_frame`` on a calibrated frame (float32 data and errors,
    uint16 flags), with the night's photometry settings and, when they differ, the defaults'."""
    from nightpipe.photometry.measure import CameraParams, measure_frame

    camera = CameraParams(gain=1.0, read_noise=15.0, saturation=4095.0)
    configs = [config] if config == PhotometryConfig() else [config, PhotometryConfig()]
    for cfg in configs:
        measure_frame(
            data, cfg, mask=mask, uncertainty=uncertainty, uncertainty_includes_source=True, camera=camera
        )


def warm_kernels(config: PhotometryConfig | None = None) -> list[WarmStage]:
    """Compile (or load) every kernel a night uses; returns the seconds of each stage.

    ``config``: the photometry settings the nights will use (default: the defaults).

    Examples
    --------
    >>> [stage.name for stage in warm_kernels()]  # doctest: +SKIP
    ['masters', 'calibrate', 'photometry']
    """
    data, mask = _star_frame(seed=7)
    stages: list[WarmStage] = []
    uncertainty: list[np.ndarray] = []

    def timed(name: str, work: Callable[[], object]) -> None:
        start = time.perf_counter()
        work()
        stages.append(WarmStage(name, time.perf_counter() - start))
        log.info("kernels of %s ready in %.1f s", name, stages[-1].seconds)

    with tempfile.TemporaryDirectory(prefix="nightpipe-warm-") as folder:
        timed("masters", lambda: _warm_combine(Path(folder)))
    timed("calibrate", lambda: uncertainty.append(_warm_calibrate(data)))
    timed("photometry", lambda: _warm_photometry(data, mask, uncertainty[0], config or PhotometryConfig()))
    return stages
