"""Reading FITS files with clear errors, and writing products atomically.

Raw files are only ever opened read-only. Every product is written to a temporary
file in the destination folder and renamed into place, so that a crash never leaves a
half-written file behind.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NoReturn

import numpy as np
from astropy.io import fits

from nightpipe.errors import FitsReadError, ProductWriteError, write_problem

PRODUCT_MODE = 0o644
# what atomic_path leaves behind when a process is killed mid-write: ".<name>.<8 random chars><suffix>"
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}(\.[A-Za-z0-9]+)?$")
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fz", ".fits.gz", ".fit.gz", ".fts.gz", ".fits.bz2", ".mt")


def is_fits_name(path: Path) -> bool:
    """True when the file name has one of the FITS suffixes we scan (case-insensitive)."""
    name = path.name.lower()
    return any(name.endswith(s) for s in FITS_SUFFIXES)


@contextmanager
def open_fits(path: Path | str, **kwargs: Any) -> Iterator[fits.HDUList]:
    """Open a FITS file read-only, turning every failure into a :class:`FitsReadError`.

    Examples
    --------
    >>> with open_fits("frame.fits") as hdul:  # doctest: +SKIP
    ...     header = hdul[0].header
    """
    path = Path(path)
    if not path.is_file():
        raise FitsReadError("file not found", path=path, hint="check the path")
    try:
        hdul = fits.open(path, mode="readonly", memmap=False, **kwargs)
    except (OSError, ValueError, TypeError, IndexError, EOFError) as exc:
        raise FitsReadError(
            f"not a readable FITS file ({exc})",
            path=path,
            hint="the file is corrupt, truncated or not FITS; re-copy it or move it away",
        ) from None
    try:
        yield hdul
    finally:
        hdul.close()


def image_hdu_index(hdul: fits.HDUList) -> int:
    """Index of the first HDU holding a 2-D image (primary or extension)."""
    for index, hdu in enumerate(hdul):
        if isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU):
            naxis = hdu.header.get("NAXIS", 0)
            if naxis >= 2 and hdu.header.get("NAXIS1", 0) > 0 and hdu.header.get("NAXIS2", 0) > 0:
                return index
    raise FitsReadError(
        "no 2-D image in any HDU",
        path=hdul.filename(),
        hint="this is not an image; move it out of the night folder",
    )


def read_image(
    path: Path | str, hdu: int | None = None, dtype: Any = np.float32
) -> tuple[np.ndarray, fits.Header]:
    """Read one 2-D image and its header; the data are converted to ``dtype``.

    Truncated data or a wrong shape are a :class:`FitsReadError` naming the file.
    """
    path = Path(path)
    with open_fits(path) as hdul:
        index = image_hdu_index(hdul) if hdu is None else hdu
        try:
            header = hdul[index].header.copy()
            data = hdul[index].data
            if data is None or data.ndim != 2:
                raise FitsReadError(f"HDU {index} does not hold a 2-D image", path=path)
            array = np.asarray(data, dtype=dtype)
        except (OSError, ValueError, TypeError, IndexError) as exc:
            raise FitsReadError(
                f"cannot read image data of HDU {index} ({exc})",
                path=path,
                hint="the file is probably truncated; re-copy it",
            ) from None
    return array, header


def is_temporary(path: Path) -> bool:
    """True for a temporary file of :func:`atomic_path` (a write that never finished)."""
    return bool(_TEMPORARY.match(path.name))


def product_files(folder: Path, pattern: str) -> list[Path]:
    """Finished products in ``folder`` matching ``pattern``, sorted (temporary files left out)."""
    return sorted(p for p in folder.glob(pattern) if p.is_file() and not p.name.startswith("."))


def sweep_temporary(folder: Path) -> int:
    """Delete temporary files that interrupted writes left under ``folder``; returns how many.

    Only call this while holding the lock of the folder (no write can be in progress).
    """
    removed = 0
    if folder.is_dir():
        for path in folder.rglob(".*"):
            if path.is_file() and is_temporary(path):
                path.unlink(missing_ok=True)
                removed += 1
    return removed


@contextmanager
def atomic_path(destination: Path | str, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; rename it into place on success.

    On an exception the temporary file is removed and ``destination`` is untouched. A failed
    write (disk full, read-only folder) is a :class:`ProductWriteError` naming ``destination``.
    """
    destination = Path(destination)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{destination.name}.", suffix=suffix or ".tmp", dir=destination.parent
        )
        os.close(fd)
    except ProductWriteError:
        raise
    except OSError as exc:
        _raise_write_error(destination, exc)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, PRODUCT_MODE)  # mkstemp makes 0600; products are for every user of the archive
        os.replace(tmp, destination)
    except ProductWriteError:
        raise
    except OSError as exc:  # disk full, folder made read-only...: the previous product is kept
        _raise_write_error(destination, exc)
    finally:
        if tmp.exists():
            tmp.unlink()


def _raise_write_error(destination: Path, exc: OSError) -> NoReturn:
    """Raise a :class:`ProductWriteError` naming ``destination`` for a failed write, else ``exc``."""
    problem = write_problem(exc)
    if problem is None:
        raise exc
    raise ProductWriteError(
        f"cannot write this product: {problem[0]}", path=destination, hint=problem[1]
    ) from None


@contextmanager
def atomic_open(destination: Path | str, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing and rename it to ``destination`` when closed cleanly."""
    with atomic_path(destination) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def write_fits_atomic(hdul: fits.HDUList, destination: Path | str) -> Path:
    """Write an HDU list to ``destination`` atomically (overwriting what was there)."""
    destination = Path(destination)
    with atomic_path(destination, suffix=".fits") as tmp:
        hdul.writeto(tmp, overwrite=True, output_verify="silentfix")
    return destination


def header_span(path: Path | str, hdu: int = 0) -> tuple[fits.Header, int, int] | None:
    """The header of image HDU ``hdu`` of a plain (uncompressed) FITS file and the byte span
    it occupies, ``(header, start, end)`` (``end`` is where its data start); ``None`` for
    compressed files, tile-compressed HDUs (astropy shows them with the header of the image
    they hold, not the one in the file) and any other HDU than an image."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            if handle.read(9) != b"SIMPLE  =":
                return None
    except OSError:  # missing or unreadable: the caller's reader names the problem
        return None
    with open_fits(path, lazy_load_hdus=True) as hdul:
        if hdu >= len(hdul):
            return None
        unit = hdul[hdu]
        if isinstance(unit, fits.CompImageHDU) or not isinstance(unit, fits.PrimaryHDU | fits.ImageHDU):
            return None
        header = unit.header.copy()
        info = hdul.fileinfo(hdu)
    if not info or info.get("filemode") != "readonly" or "datLoc" not in info:
        return None
    return header, int(info["hdrLoc"]), int(info["datLoc"])


def write_with_header(
    source: Path | str, destination: Path | str, header: fits.Header, start: int, end: int
) -> Path:
    """Copy ``source`` to ``destination`` atomically with the bytes ``[start, end)`` (one HDU's
    header, from :func:`header_span`) replaced by ``header``; every data byte is copied
    verbatim, with no decoding, so it costs about one file copy."""
    block = header.tostring(endcard=True, padding=True).encode("ascii")
    destination = Path(destination)
    with open(source, "rb") as src, atomic_path(destination, suffix=".fits") as tmp, open(tmp, "wb") as dst:
        dst.write(src.read(start))
        dst.write(block)
        src.seek(end)
        while chunk := src.read(1 << 22):
            dst.write(chunk)
    return destination
