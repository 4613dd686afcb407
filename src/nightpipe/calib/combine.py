"""Fast, memory-bounded combination of a stack of frames (sigma clip, min/max, median, mean).

The maths is a compiled (numba) kernel over one band of rows of the stack: each pixel's values
are sorted with a Batcher odd-even merge network applied across a whole row at once (so the
compare-exchanges vectorise), NaNs and masked values are pushed to the end of the sorted list,
and then rejection works on the sorted values only:

- sigma clipping with a median centre and the MAD standard deviation (astropy ``mad_std``:
  1.4826 x the median absolute deviation), clipping values strictly below
  ``median - sigma_low x std`` or strictly above ``median + sigma_high x std``, iterated up to
  ``max_iters`` times or until nothing changes; as in ``astropy.stats.sigma_clip``, the values
  finally kept are all valid values inside the last bounds (ccdproc's
  ``combine(sigma_clip=True)`` is one iteration). On sorted values the kept set is always a
  contiguous range, so each iteration is O(n) per pixel;
- min/max rejection of the ``minmax_low`` lowest and ``minmax_high`` highest values;
- no rejection.

The centre of the kept values is their median or mean. The uncertainty plane is a standard
error: for the mean ``std(kept, ddof=1) / sqrt(k)``; for the median
``sqrt(pi/2) x mad_std(kept) / sqrt(k)`` (the efficiency of the median for Gaussian noise;
ccdproc uses the same expression without the ``sqrt(pi/2)`` factor).

Files are opened once and read a band of rows at a time (:class:`FitsRowReader`), so the
memory is ``n_frames x band_rows x width`` floats plus the output planes, whatever the number
of frames.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

import numba
import numpy as np
from astropy.io import fits

from nightpipe.config import CalibrationConfig
from nightpipe.errors import CalibrationError, FitsReadError
from nightpipe.frames.fitsio import image_hdu_index
from nightpipe.progress import NullProgress, Progress

log = logging.getLogger(__name__)

MAD_TO_STD = 1.482602218505602
MEDIAN_EFFICIENCY = math.sqrt(math.pi / 2.0)
_SENTINEL = np.float32(np.finfo(np.float32).max)

_METHODS = {"median": 0, "mean": 1}
_CLIPS = {"none": 0, "sigma": 1, "minmax": 2}


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
        if self.method not in _METHODS:
            raise CalibrationError(f"unknown combine method {self.method!r}", hint="use median or mean")
        if self.clip not in _CLIPS:
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


# --------------------------------------------------------------------------- the kernel


@lru_cache(maxsize=64)
def sorting_network(n: int) -> np.ndarray:
    """Compare-exchange pairs ``(i, j)``, ``i < j``, of a Batcher network sorting ``n`` values.

    Built for the next power of two; pairs touching an index ``>= n`` are dropped, which is
    exact because the missing values behave as ``+inf`` (they never move).

    Examples
    --------
    >>> sorting_network(2).tolist()
    [[0, 1]]
    """
    pairs: list[tuple[int, int]] = []
    size = 1
    while size < n:
        size *= 2
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    a, b = i + j, i + j + k
                    if a // (2 * p) == b // (2 * p) and b < n:
                        pairs.append((a, b))
            k //= 2
        p *= 2
    out = np.array(pairs, dtype=np.int32).reshape(-1, 2)
    out.flags.writeable = False
    return out


@numba.njit(cache=True, nogil=True)
def _median_sorted(v: np.ndarray, lo: int, hi: int) -> float:
    k = hi - lo
    mid = lo + (k - 1) // 2
    if k % 2 == 1:
        return float(v[mid])
    return (float(v[mid]) + float(v[mid + 1])) / 2.0


@numba.njit(cache=True, nogil=True)
def _kth_deviation(v: np.ndarray, lo: int, hi: int, med: float, kth: int) -> tuple[float, float]:
    """The ``kth`` and ``kth + 1`` smallest (0-based) of ``|v[lo:hi] - med|`` for sorted ``v``.

    The deviations below and above the median form two sorted sequences, ``A[i] = med -
    v[left - i]`` and ``B[j] = v[right + j] - med``; the k-th smallest of their union is found
    by a binary search on how many come from ``A`` (O(log k) loads instead of a merge).
    """
    k = hi - lo
    left = lo + (k - 1) // 2
    right = left + 1
    na = left - lo + 1
    nb = hi - right
    want = kth + 1
    i_lo = max(0, want - nb)
    i_hi = min(want, na)
    while True:
        i = (i_lo + i_hi) // 2
        j = want - i
        a_prev = med - float(v[left - i + 1]) if i > 0 else -np.inf
        a_next = med - float(v[left - i]) if i < na else np.inf
        b_prev = float(v[right + j - 1]) - med if j > 0 else -np.inf
        b_next = float(v[right + j]) - med if j < nb else np.inf
        if a_prev > b_next:
            i_hi = i - 1
        elif b_prev > a_next:
            i_lo = i + 1
        else:
            return max(a_prev, b_prev), min(a_next, b_next)


@numba.njit(cache=True, nogil=True)
def _mad_sorted(v: np.ndarray, lo: int, hi: int, med: float) -> float:
    """Median absolute deviation from ``med`` of the sorted values ``v[lo:hi]``."""
    k = hi - lo
    first, following = _kth_deviation(v, lo, hi, med, (k - 1) // 2)
    if k % 2 == 1:
        return first
    return (first + following) / 2.0


@numba.njit(cache=True, nogil=True)
def _reduce_pixel(
    v: np.ndarray,
    m: int,
    method: int,
    clip: int,
    sigma_low: float,
    sigma_high: float,
    max_iters: int,
    nlow: int,
    nhigh: int,
) -> tuple[float, float, int]:
    """Centre, standard error and kept count of the ``m`` sorted valid values ``v[:m]``."""
    lo = 0
    hi = m
    # the last median/MAD computed and their range, reused when the final range is the same
    seen_lo = -1
    seen_hi = -1
    seen_med = 0.0
    seen_mad = 0.0
    if clip == 2:
        lo = min(nlow, m)
        hi = max(m - nhigh, lo)
    elif clip == 1 and m > 0:
        lower = -np.inf
        upper = np.inf
        for _ in range(max_iters):
            if hi - lo < 1:
                break
            med = _median_sorted(v, lo, hi)
            mad = _mad_sorted(v, lo, hi, med)
            seen_lo, seen_hi, seen_med, seen_mad = lo, hi, med, mad
            std = MAD_TO_STD * mad
            lower = med - sigma_low * std
            upper = med + sigma_high * std
            nlo = lo
            while nlo < hi and v[nlo] < lower:
                nlo += 1
            nhi = hi
            while nhi > nlo and v[nhi - 1] > upper:
                nhi -= 1
            if nlo == lo and nhi == hi:
                break
            lo = nlo
            hi = nhi
        # astropy's rule: the values kept are all valid values inside the last bounds
        lo = 0
        while lo < m and v[lo] < lower:
            lo += 1
        hi = m
        while hi > lo and v[hi - 1] > upper:
            hi -= 1
    k = hi - lo
    if k <= 0:
        return np.nan, np.nan, 0
    if method == 0:
        if lo == seen_lo and hi == seen_hi:
            centre = seen_med
            mad = seen_mad
        else:
            centre = _median_sorted(v, lo, hi)
            mad = _mad_sorted(v, lo, hi, centre)
        return centre, MEDIAN_EFFICIENCY * MAD_TO_STD * mad / math.sqrt(k), k
    total = 0.0
    for i in range(lo, hi):
        total += v[i]
    centre = total / k
    if k == 1:
        return centre, 0.0, 1
    ss = 0.0
    for i in range(lo, hi):
        d = v[i] - centre
        ss += d * d
    return centre, math.sqrt(ss / (k - 1)) / math.sqrt(k), k


@numba.njit(parallel=True, cache=True, nogil=True)
def _combine_band_kernel(
    band: np.ndarray,
    pairs: np.ndarray,
    method: int,
    clip: int,
    sigma_low: float,
    sigma_high: float,
    max_iters: int,
    nlow: int,
    nhigh: int,
    out: np.ndarray,
    err: np.ndarray,
    nused: np.ndarray,
    nvalid: np.ndarray,
) -> None:
    """Combine ``band`` (n, rows, cols) in place (it is used as scratch) into the output rows."""
    n, nrows, ncols = band.shape
    sentinel = np.float32(3.4028234663852886e38)
    for r in numba.prange(nrows):
        count = np.zeros(ncols, np.int32)
        for k in range(n):
            for c in range(ncols):
                x = band[k, r, c]
                if np.isfinite(x) and x < sentinel:
                    count[c] += 1
                else:
                    band[k, r, c] = sentinel
        for p in range(pairs.shape[0]):
            i = pairs[p, 0]
            j = pairs[p, 1]
            for c in range(ncols):
                a = band[i, r, c]
                b = band[j, r, c]
                lo_v = a if a < b else b
                hi_v = b if a < b else a
                band[i, r, c] = lo_v
                band[j, r, c] = hi_v
        for c in range(ncols):
            m = count[c]
            # the sorted values of this pixel, read in place: only O(log n) of them are touched
            centre, e, kept = _reduce_pixel(
                band[:, r, c], m, method, clip, sigma_low, sigma_high, max_iters, nlow, nhigh
            )
            out[r, c] = centre
            err[r, c] = e
            nused[r, c] = kept
            nvalid[r, c] = m


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
            _METHODS[options.method],
            _CLIPS[options.clip],
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


# --------------------------------------------------------------------------- reading rows


class RowSource(Protocol):
    """Something that yields rows of one frame as float32 (NaN for missing values)."""

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the rows produced."""
        ...

    @property
    def name(self) -> str:
        """A name for progress bars and errors (the file name)."""
        ...

    def read_rows(self, y0: int, y1: int) -> np.ndarray:
        """Rows ``y0:y1`` as a float32 array of shape ``(y1 - y0, nx)``."""
        ...

    def close(self) -> None:
        """Release the file."""
        ...


_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_COMPRESSED = (".gz", ".bz2", ".fz", ".zip", ".xz")


class FitsRowReader:
    """Reads bands of rows of one 2-D FITS image; the file is opened once and kept open.

    Uncompressed images are read with ``os.pread`` at the data offset, converted to float32 and
    scaled with BSCALE/BZERO (BLANK becomes NaN): nothing but the requested rows is held in
    memory. Compressed files fall back on astropy's ``section`` access.

    Parameters
    ----------
    path
        The FITS file (never modified).
    hdu
        The HDU index; ``None`` takes the first HDU with a 2-D image.

    Raises
    ------
    FitsReadError
        When the file is missing, not FITS, truncated or holds no 2-D image.
    """

    def __init__(self, path: Path | str, hdu: int | None = None) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._hdul: fits.HDUList | None = None
        if not self.path.is_file():
            raise FitsReadError("file not found", path=self.path, hint="check the path or rescan the night")
        try:
            self._hdul = fits.open(self.path, mode="readonly", memmap=False, do_not_scale_image_data=True)
            self.index = image_hdu_index(self._hdul) if hdu is None else hdu
            image = self._hdul[self.index]
            self.header = image.header.copy()
            info = self._hdul.fileinfo(self.index)
        except FitsReadError:
            self.close()
            raise
        except (OSError, ValueError, TypeError, IndexError, EOFError, KeyError) as exc:
            self.close()
            raise FitsReadError(
                f"not a readable FITS image ({exc})",
                path=self.path,
                hint="the file is corrupt, truncated or not FITS; re-copy it or move it away",
            ) from None
        self._shape = (int(self.header.get("NAXIS2", 0)), int(self.header.get("NAXIS1", 0)))
        if int(self.header.get("NAXIS", 0)) != 2 and not isinstance(image, fits.CompImageHDU):
            self.close()
            raise FitsReadError(f"HDU {self.index} is not a 2-D image", path=self.path)
        compressed = isinstance(image, fits.CompImageHDU) or self.path.name.lower().endswith(_COMPRESSED)
        if compressed:
            self._init_section()
        else:
            self._init_raw(info)

    def _init_raw(self, info: dict[str, Any]) -> None:
        bitpix = int(self.header["BITPIX"])
        if bitpix not in _BITPIX:
            self.close()
            raise FitsReadError(f"unsupported BITPIX {bitpix}", path=self.path)
        self._dtype = np.dtype(_BITPIX[bitpix])
        self._scale = float(self.header.get("BSCALE", 1.0))
        self._zero = float(self.header.get("BZERO", 0.0))
        blank = self.header.get("BLANK") if bitpix > 0 else None
        self._blank = int(blank) if blank is not None else None
        self._offset = int(info["datLoc"])
        ny, nx = self._shape
        self._rowbytes = nx * self._dtype.itemsize
        needed = self._offset + ny * self._rowbytes
        size = self.path.stat().st_size
        if size < needed:
            self.close()
            raise FitsReadError(
                f"truncated: {size} bytes where the image needs {needed}",
                path=self.path,
                hint="re-copy the file from the camera computer",
            )
        if self._hdul is not None:
            self._hdul.close()
            self._hdul = None
        self._fd = os.open(self.path, os.O_RDONLY)

    def _init_section(self) -> None:
        if self._hdul is not None:
            self._hdul.close()
        self._hdul = fits.open(self.path, mode="readonly", memmap=False)
        self._fd = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the image."""
        return self._shape

    @property
    def name(self) -> str:
        """The file name."""
        return self.path.name

    def read_rows(self, y0: int, y1: int) -> np.ndarray:
        """Rows ``y0:y1`` as float32, BSCALE/BZERO applied, BLANK as NaN."""
        ny, nx = self._shape
        if not 0 <= y0 <= y1 <= ny:
            raise CalibrationError(f"rows {y0}:{y1} outside the image of {ny} rows", path=self.path)
        if self._fd is None:
            if self._hdul is None:
                raise CalibrationError("reader is closed", path=self.path)
            try:
                rows = np.asarray(self._hdul[self.index].section[y0:y1, :], dtype=np.float32)
            except (OSError, ValueError, TypeError) as exc:
                raise FitsReadError(f"cannot read rows {y0}:{y1} ({exc})", path=self.path) from None
            return rows
        nbytes = (y1 - y0) * self._rowbytes
        raw = os.pread(self._fd, nbytes, self._offset + y0 * self._rowbytes)
        if len(raw) != nbytes:
            raise FitsReadError(f"short read of rows {y0}:{y1}", path=self.path, hint="re-copy the file")
        ints = np.frombuffer(raw, dtype=self._dtype).reshape(y1 - y0, nx)
        if self._dtype.itemsize <= 2 or (self._scale == 1.0 and self._zero == 0.0):
            # 8/16-bit values and their scaled forms are exact in float32
            rows = ints.astype(np.float32)
            if self._scale != 1.0:
                rows *= np.float32(self._scale)
            if self._zero != 0.0:
                rows += np.float32(self._zero)
        else:  # 32/64-bit with BZERO (e.g. uint32): scale in float64 first, then round once
            rows = (ints.astype(np.float64) * self._scale + self._zero).astype(np.float32)
        if self._blank is not None:
            rows[ints == self._blank] = np.nan
        return rows

    def read_all(self) -> np.ndarray:
        """The whole image as float32."""
        return self.read_rows(0, self._shape[0])

    def close(self) -> None:
        """Close the file (safe to call twice)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._hdul is not None:
            self._hdul.close()
            self._hdul = None

    def __enter__(self) -> FitsRowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
