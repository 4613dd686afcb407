"""Fast, memory-bounded combination of a stack of frames (sigma clip, min/max, median, mean).

This module holds what a caller uses: :class:`CombineOptions` (how to reject and combine),
:class:`CombineResult` (the planes and their statistics), and the drivers that feed the compiled
kernel one band of rows at a time (:func:`combine_band`, :func:`combine_arrays`,
:func:`combine_sources`, :func:`combine_files`). The maths of rejection and of the uncertainty
plane is described in :mod:`nightpipe.calib.combine_kernel`.

Files are opened once and read a band of rows at a time (:class:`FitsRowReader`, in
:mod:`nightpipe.calib.row_reader`), so the memory is ``n_frames x band_rows x width`` floats plus
the output planes, whatever the number of frames.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numba
import numpy as np

from nightpipe.calib.combine_kernel import (
    CLIP_CODES,
    MAD_TO_STD,
    MEDIAN_EFFICIENCY,
    METHOD_CODES,
    _combine_band_kernel,
    sorting_network,
)
from nightpipe.calib.row_reader import FitsRowReader, RowSource
from nightpipe.config import CalibrationConfig
from nightpipe.errors import CalibrationError
from nightpipe.progress import NullProgress, Progress

__all__ = [
    "MAD_TO_STD",
    "MEDIAN_EFFICIENCY",
    "CombineOptions",
    "CombineResult",
    "FitsRowReader",
    "RowSource",
    "combine_arrays",
    "combine_band",
    "combine_files",
    "combine_sources",
    "sorting_network",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CombineOptions:
    """How a stack is combined.

    Parameters
    ----------
    method
        Centre of the kept values: ``"median"`` or ``"mean"``.
    clip
        Rejection before combining: ``"sigma"``, ``"minmax"`` or ``"none"``.
    sigma_low, sigma_high
        Clip limits in MAD standard deviations below and above the median.
    max_iters
        Sigma-clipping iterations (stops earlier when nothing more is clipped).
    minmax_low, minmax_high
        Number of lowest and highest values rejected per pixel with ``clip="minmax"``.
    band_rows
        Rows combined at once; bounds the memory to about ``4 x n x band_rows x width`` bytes.
    threads
        Threads of the compiled kernel (``None``: numba's default).
    max_band_bytes
        Upper bound of the band buffer: with many frames fewer rows are combined at once, so the
        memory does not grow with the number of frames.
    """

    method: Literal["median", "mean"] = "median"
    clip: Literal["sigma", "minmax", "none"] = "sigma"
    sigma_low: float = 3.0
    sigma_high: float = 3.0
    max_iters: int = 5
    minmax_low: int = 1
    minmax_high: int = 1
    band_rows: int = 256
    threads: int | None = None
    max_band_bytes: int = 256 * 1024**2

    def __post_init__(self) -> None:
        if self.method not in METHOD_CODES:
            raise CalibrationError(f"unknown combine method {self.method!r}", hint="use median or mean")
        if self.clip not in CLIP_CODES:
            raise CalibrationError(f"unknown clip {self.clip!r}", hint="use sigma, minmax or none")
        if self.sigma_low <= 0 or self.sigma_high <= 0 or self.max_iters < 1:
            raise CalibrationError("sigma limits must be positive and max_iters at least 1")
        if self.minmax_low < 0 or self.minmax_high < 0 or self.band_rows < 1:
            raise CalibrationError("minmax counts must be >= 0 and band_rows >= 1")

    @classmethod
    def from_settings(cls, cal: CalibrationConfig, threads: int | None = None) -> CombineOptions:
        """The options given by the ``calibration`` section of the settings."""
        return cls(
            method=cal.combine_method,
            clip=cal.clip,
            sigma_low=cal.sigma_low,
            sigma_high=cal.sigma_high,
            max_iters=cal.max_iters,
            minmax_low=cal.minmax_low,
            minmax_high=cal.minmax_high,
            band_rows=cal.band_rows,
            threads=threads,
        )

    def describe(self) -> dict[str, Any]:
        """The options as plain data (for provenance headers and database rows)."""
        return {
            "method": self.method,
            "clip": self.clip,
            "sigma_low": self.sigma_low,
            "sigma_high": self.sigma_high,
            "max_iters": self.max_iters,
            "minmax_low": self.minmax_low,
            "minmax_high": self.minmax_high,
        }


@dataclass
class CombineResult:
    """A combined image, its standard-error plane and the per-pixel number of frames kept.

    Attributes
    ----------
    data
        The combined image (float32); NaN where no value was kept.
    uncert
        Standard error of ``data`` (float32); NaN where no value was kept.
    nused
        Number of values kept per pixel (uint16).
    nvalid
        Number of finite, unmasked input values per pixel before rejection (uint16).
    nframes
        Number of frames in the stack.
    """

    data: np.ndarray
    uncert: np.ndarray
    nused: np.ndarray
    nvalid: np.ndarray
    nframes: int
    options: CombineOptions = field(default_factory=CombineOptions)

    @property
    def rejected_fraction(self) -> float:
        """Fraction of the valid input values rejected by the clipping."""
        valid = int(self.nvalid.sum(dtype=np.int64))
        if valid == 0:
            return 0.0
        return 1.0 - int(self.nused.sum(dtype=np.int64)) / valid

    @property
    def invalid_fraction(self) -> float:
        """Fraction of input values that were NaN or masked."""
        total = self.nframes * self.data.size
        return 1.0 - int(self.nvalid.sum(dtype=np.int64)) / total if total else 0.0

    def statistics(self) -> dict[str, float | int]:
        """Summary figures: frames, rejected and invalid fractions, pixels without data."""
        return {
            "nframes": self.nframes,
            "rejected_fraction": round(self.rejected_fraction, 6),
            "invalid_fraction": round(self.invalid_fraction, 6),
            "empty_pixels": int(np.count_nonzero(self.nused == 0)),
        }


def combine_band(
    band: np.ndarray, options: CombineOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Combine one band of a stack (pure function; ``band`` is used as scratch and overwritten).

    Parameters
    ----------
    band
        Array ``(n_frames, rows, cols)`` of float32; NaN or inf marks a missing value.
    options
        How to reject and combine.

    Returns
    -------
    data, uncert, nused, nvalid
        Combined rows (float32), their standard error (float32), values kept and valid values
        per pixel (uint16).
    """
    if band.ndim != 3 or band.dtype != np.float32:
        raise CalibrationError(f"a band must be a 3-D float32 array, not {band.ndim}-D {band.dtype}")
    n, rows, cols = band.shape
    if n > np.iinfo(np.uint16).max:
        raise CalibrationError(f"cannot combine {n} frames at once (at most 65535)")
    out = np.empty((rows, cols), np.float32)
    err = np.empty((rows, cols), np.float32)
    nused = np.empty((rows, cols), np.uint16)
    nvalid = np.empty((rows, cols), np.uint16)
    if n == 0:
        out.fill(np.nan)
        err.fill(np.nan)
        nused.fill(0)
        nvalid.fill(0)
        return out, err, nused, nvalid
    previous = numba.get_num_threads()
    if options.threads is not None:
        numba.set_num_threads(
            max(1, min(options.threads, int(getattr(numba.config, "NUMBA_NUM_THREADS", 1))))
        )
    try:
        _combine_band_kernel(
            band,
            sorting_network(n),
            METHOD_CODES[options.method],
            CLIP_CODES[options.clip],
            float(options.sigma_low),
            float(options.sigma_high),
            int(options.max_iters),
            int(options.minmax_low),
            int(options.minmax_high),
            out,
            err,
            nused,
            nvalid,
        )
    finally:
        numba.set_num_threads(previous)
    return out, err, nused, nvalid


def combine_arrays(
    stack: np.ndarray | Sequence[np.ndarray],
    options: CombineOptions | None = None,
    mask: np.ndarray | Sequence[np.ndarray] | None = None,
) -> CombineResult:
    """Combine a stack of equally shaped 2-D arrays held in memory.

    Parameters
    ----------
    stack
        ``(n, ny, nx)`` array or a sequence of ``(ny, nx)`` arrays; NaNs are ignored.
    options
        How to reject and combine (default: sigma-clipped median, 3 sigma, 5 iterations).
    mask
        Optional boolean array(s) of the same shape; ``True`` values are ignored.

    Returns
    -------
    CombineResult

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.array([[[1.0]], [[2.0]], [[3.0]], [[100.0]]])
    >>> float(combine_arrays(stack).data[0, 0])
    2.0
    """
    options = options or CombineOptions()
    cube = np.array(stack, dtype=np.float32, copy=True)
    if cube.ndim != 3:
        raise CalibrationError(f"a stack must be 3-D (n, ny, nx), got shape {cube.shape}")
    if mask is not None:
        masks = np.asarray(mask, dtype=bool)
        if masks.shape != cube.shape:
            raise CalibrationError(f"mask shape {masks.shape} differs from the stack shape {cube.shape}")
        cube[masks] = np.nan
    n, ny, nx = cube.shape
    data = np.empty((ny, nx), np.float32)
    uncert = np.empty((ny, nx), np.float32)
    nused = np.empty((ny, nx), np.uint16)
    nvalid = np.empty((ny, nx), np.uint16)
    for y0 in range(0, ny, options.band_rows):
        y1 = min(ny, y0 + options.band_rows)
        band = np.ascontiguousarray(cube[:, y0:y1, :])
        data[y0:y1], uncert[y0:y1], nused[y0:y1], nvalid[y0:y1] = combine_band(band, options)
    return CombineResult(data, uncert, nused, nvalid, n, options)


def combine_sources(
    sources: Sequence[RowSource],
    options: CombineOptions | None = None,
    *,
    progress: Progress | None = None,
    description: str = "combining",
) -> CombineResult:
    """Combine frames read band by band from ``sources`` (all of the same shape).

    Memory is bounded by ``len(sources) x band_rows x width`` float32 values plus the outputs.

    Raises
    ------
    CalibrationError
        When there are no sources or their shapes differ (the message names the odd file).
    """
    options = options or CombineOptions()
    if not sources:
        raise CalibrationError("nothing to combine: no frames given")
    shape = sources[0].shape
    for src in sources[1:]:
        if src.shape != shape:
            raise CalibrationError(
                f"shape {src.shape} differs from {shape} of {sources[0].name}",
                path=src.name,
                hint="frames of different sizes or binnings cannot be combined",
            )
    ny, nx = shape
    n = len(sources)
    rows = max(1, min(options.band_rows, ny, options.max_band_bytes // max(1, n * nx * 4)))
    band = np.empty((n, rows, nx), np.float32)
    data = np.empty(shape, np.float32)
    uncert = np.empty(shape, np.float32)
    nused = np.empty(shape, np.uint16)
    nvalid = np.empty(shape, np.uint16)
    progress = progress or NullProgress()
    progress.start((ny + rows - 1) // rows, f"{description} ({n} frames)")
    try:
        for y0 in range(0, ny, rows):
            y1 = min(ny, y0 + rows)
            # a contiguous band lets the compiled kernel vectorise over columns
            part = band if y1 - y0 == rows else np.empty((n, y1 - y0, nx), np.float32)
            for k, src in enumerate(sources):
                part[k] = src.read_rows(y0, y1)
            data[y0:y1], uncert[y0:y1], nused[y0:y1], nvalid[y0:y1] = combine_band(part, options)
            progress.advance(f"rows {y0}-{y1}")
    finally:
        progress.stop()
    return CombineResult(data, uncert, nused, nvalid, n, options)


def combine_files(
    paths: Sequence[Path | str],
    options: CombineOptions | None = None,
    *,
    hdus: Sequence[int | None] | None = None,
    progress: Progress | None = None,
) -> CombineResult:
    """Combine FITS files band by band, each opened once (raw files are only read).

    Examples
    --------
    >>> result = combine_files(["b1.fits", "b2.fits", "b3.fits"])  # doctest: +SKIP
    >>> result.data.shape  # doctest: +SKIP
    (2048, 2048)
    """
    hdu_list = list(hdus) if hdus is not None else [None] * len(paths)
    readers: list[FitsRowReader] = []
    try:
        for path, hdu in zip(paths, hdu_list, strict=True):
            readers.append(FitsRowReader(path, hdu))
        return combine_sources(readers, options, progress=progress)
    finally:
        for reader in readers:
            reader.close()
