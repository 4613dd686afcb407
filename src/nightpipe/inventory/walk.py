"""Which files a scan reads: walking files and folders for FITS files, and hashing their bytes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
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
    """SHA-1 of a file's bytes, read in chunks."""
    digest = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()
