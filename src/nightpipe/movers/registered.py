"""The night's solved frames on one pixel grid (the first frame's), for synthetic tracking.

Each frame is resampled (bilinear, :func:`scipy.ndimage.affine_transform`) onto the reference
grid through the affine map that its plate solution and the reference's agree on (fitted on a
grid of points: reference pixel -> sky -> frame pixel); pixels off the frame are NaN.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from numpy.typing import NDArray
from scipy.ndimage import affine_transform

log = logging.getLogger(__name__)
F32 = NDArray[np.float32]
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class RegisteredNight:
    """Registered frames (frames, H, W), their DB ids and mid-exposure JD (UTC), the reference WCS."""

    cube: F32
    frame_ids: NDArray[np.int64]
    jd: F64
    wcs: WCS


def _read(path: Path) -> tuple[F32, WCS]:
    with fits.open(path, memmap=False) as hdul:
        data = np.asarray(hdul[0].data, dtype=np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(hdul[0].header, naxis=2)
    return data, wcs


def affine_to(reference: WCS, frame: WCS, shape: tuple[int, int]) -> tuple[F64, F64, float]:
    """Matrix and offset (row, col order, as ``affine_transform`` wants) mapping reference pixels to
    frame pixels, and the largest residual of that affine map on the test grid (px)."""
    ny, nx = shape
    gy, gx = np.meshgrid(np.linspace(0, ny - 1, 7), np.linspace(0, nx - 1, 7), indexing="ij")
    sky = reference.pixel_to_world_values(gx.ravel(), gy.ravel())
    fx, fy = frame.world_to_pixel_values(*sky)
    design = np.column_stack([gy.ravel(), gx.ravel(), np.ones(gx.size)])
    coef_y, *_ = np.linalg.lstsq(design, fy, rcond=None)
    coef_x, *_ = np.linalg.lstsq(design, fx, rcond=None)
    resid = np.hypot(design @ coef_y - fy, design @ coef_x - fx).max()
    matrix = np.array([coef_y[:2], coef_x[:2]])
    offset = np.array([coef_y[2], coef_x[2]])
    return matrix, offset, float(resid)


def register(paths: list[Path], frame_ids: list[int], jd: list[float]) -> RegisteredNight:
    """The frames at ``paths`` (solved, WCS in the primary header) on the first one's grid."""
    ref_data, ref_wcs = _read(paths[0])
    cube = np.empty((len(paths), *ref_data.shape), dtype=np.float32)
    cube[0] = ref_data
    for k, path in enumerate(paths[1:], start=1):
        data, wcs = _read(path)
        matrix, offset, resid = affine_to(ref_wcs, wcs, ref_data.shape)
        if resid > 0.3:
            log.warning("%s: the affine registration is off by up to %.2f px (distortion)", path.name, resid)
        cube[k] = affine_transform(
            data, matrix, offset, output_shape=ref_data.shape, order=1, cval=np.nan, prefilter=False
        )
    return RegisteredNight(cube, np.asarray(frame_ids, np.int64), np.asarray(jd, float), ref_wcs)
