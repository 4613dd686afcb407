"""Reading a FITS image a band of rows at a time: the :class:`RowSource` protocol that
:func:`nightpipe.calib.combine.combine_sources` reads from, and :class:`FitsRowReader`, its
implementation for a 2-D image in a file (opened once, raw files only read)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from astropy.io import fits

from nightpipe.errors import CalibrationError, FitsReadError
from nightpipe.frames.fitsio import image_hdu_index


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
