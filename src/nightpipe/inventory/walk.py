"""Which files a scan reads: walking files and folders for FITS files, and hashing their bytes."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from nightpipe.frames.fitsio import FITS_SUFFIXES

#: Suffixes scanned (case-insensitive): the FITS ones of nightpipe.frames.fitsio, plus bzip2 variants.
SCAN_SUFFIXES = (*FITS_SUFFIXES, ".fit.bz2", ".fts.bz2")


def is_scannable(name: str) -> bool:
    """True for file names the scan reads (``.fits .fit .fts .fz .fits.gz .mt``..., any case).

    Examples
    --------
    >>> is_scannable("HATP-32171220013343.FITS"), is_scannable("notes.txt")
    (True, False)
    """
    lower = name.lower()
    return not lower.startswith(".") and any(lower.endswith(s) for s in SCAN_SUFFIXES)


def iter_fits_files(paths: Iterable[Path | str]) -> Iterator[str]:
    """Absolute paths of the FITS files under ``paths`` (files or folders, recursively, sorted).

    Hidden files and folders are skipped; symbolic links to files are followed, links to
    folders are not (no loops). A file given explicitly is yielded whatever its name.
    """
    for root in paths:
        top = os.path.abspath(os.fspath(root))
        if os.path.isfile(top):
            yield top
            continue
        for folder, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if is_scannable(name):
                    yield os.path.join(folder, name)


def file_sha1(path: str, chunk_size: int = 1 << 20) -> str:
    """SHA-1 of a file's content, read in chunks: its bytes, or for a gzip or bzip2 file the bytes
    it decompresses to, so that ``x.fits`` and ``x.fits.gz`` of the same frame are duplicates (a
    compressed file that cannot be decompressed to its end is hashed as it is: its read says why).

    Examples
    --------
    >>> import gzip, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.fits").write_bytes(b"SIMPLE" * 1000)
    >>> _ = (folder / "a.fits.gz").write_bytes(gzip.compress(b"SIMPLE" * 1000))
    >>> file_sha1(str(folder / "a.fits")) == file_sha1(str(folder / "a.fits.gz"))
    True
    """
    lower = path.lower()
    opener = gzip.open if lower.endswith(".gz") else bz2.open if lower.endswith(".bz2") else None
    if opener is not None:
        try:
            with opener(path, "rb") as stream:
                return _digest(stream.read, chunk_size)
        except (EOFError, zlib.error, gzip.BadGzipFile, ValueError):
            pass
        except OSError as exc:  # bz2's "Invalid data stream", not a missing file
            if exc.errno is not None:
                raise
    with open(path, "rb") as handle:
        return _digest(handle.read, chunk_size)


def _digest(read: Callable[[int], bytes], chunk_size: int) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    while block := read(chunk_size):
        digest.update(block)
    return digest.hexdigest()
