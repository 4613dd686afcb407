"""A ZIP of every product of a job, streamed as it is made (never whole in memory or on disk).

Binary products (FITS, PNG) are stored as they are, text is deflated fast, as the engine's own
night ZIP does (:mod:`nightpipe.report.night_report`); the night ZIPs themselves are left out
(their content is in this one).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

from nightpipe.frames.fitsio import is_temporary
from nightpipe.report.night_report import BINARY_SUFFIXES

CHUNK = 1 << 20


class _Sink(io.RawIOBase):
    """A write-only, unseekable file that keeps what was written until it is taken."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self.chunks)
        self.chunks.clear()
        return out


def product_files(output: Path) -> list[Path]:
    """Every product file under the engine's output folder (not temporary files, not night ZIPs)."""
    if not output.is_dir():
        return []
    return sorted(
        p
        for p in output.rglob("*")
        if p.is_file() and not p.name.startswith(".") and not is_temporary(p) and p.suffix != ".zip"
    )


def zip_stream(output: Path, prefix: str = "") -> Iterator[bytes]:
    """The bytes of a ZIP of :func:`product_files`, named relative to ``output`` under ``prefix``."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w") as archive:
        for path in product_files(output):
            binary = path.suffix.lower() in BINARY_SUFFIXES
            info = zipfile.ZipInfo.from_file(path, prefix + str(path.relative_to(output)))
            info.compress_type = zipfile.ZIP_STORED if binary else zipfile.ZIP_DEFLATED
            with path.open("rb") as source, archive.open(info, "w", force_zip64=True) as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
                    if sink.chunks:
                        yield sink.take()
            yield sink.take()
    yield sink.take()
