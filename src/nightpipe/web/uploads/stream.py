"""Receiving a ``multipart/form-data`` POST as a stream, straight to temporary files.

:func:`receive_multipart` feeds ``request.stream()`` to python-multipart's callback parser: each
file part goes to a hidden temporary file in ``dest_dir`` while its bytes are counted (the body is
never held in memory, Starlette's ``request.form()`` is not used), and a part is stopped as soon as
it passes the per-file limit or the quota left; later parts are still received. Plain fields
(``csrf_token``...) are collected, small. :func:`accept_received` then checks each file (FITS or
archive) and moves the good ones into the user's uploads folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from nightpipe.web.uploads.archives import extract_archive
from nightpipe.web.uploads.fitscheck import check_fits
from nightpipe.web.uploads.limits import (
    Accepted,
    Outcome,
    Rejected,
    UploadLimits,
    UploadRejected,
    size_text,
)
from nightpipe.web.uploads.names import archive_kind, place_file, remove_quietly, safe_name, temp_file

log = logging.getLogger(__name__)

MAX_FIELDS = 100
MAX_FIELD_BYTES = 64 * 1024
#: Bytes of refused parts read (and thrown away) before the rest of a request is not read at all.
DISCARD_SLACK = 1024 * 1024
REQUEST = "the upload"
FEED_BYTES = 1 << 20


@dataclass
class Received:
    """One file part: its safe ``name``, the ``original`` name sent, the temporary ``path`` (``None``
    when the part was refused, then ``rejected`` says why) and the bytes received."""

    field: str
    original: str
    name: str
    path: Path | None
    size: int
    rejected: str | None = None


@dataclass
class ReceivedForm:
    """The file parts and the plain fields of one multipart request."""

    files: list[Received] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        """Remove every temporary file still there."""
        for item in self.files:
            remove_quietly(item.path)


class _Collector:
    """python-multipart callbacks: one part at a time, to a temp file or a small field buffer."""

    def __init__(self, dest_dir: Path, limits: UploadLimits):
        self.dest_dir = dest_dir
        self.limits = limits
        self.form = ReceivedForm()
        self.stored = 0  # bytes of the file parts kept so far
        self.discarded = 0
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.disposition = b""
        self.part: Received | None = None
        self.out: IO[bytes] | None = None
        self.value: bytearray | None = None
        self.field_name = ""
        self.ended = False

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": lambda data, start, end: self.header_field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self.header_value.extend(data[start:end]),
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.disposition = b""
        self.header_field.clear()
        self.header_value.clear()

    def on_header_end(self) -> None:
        if bytes(self.header_field).strip().lower() == b"content-disposition":
            self.disposition = bytes(self.header_value)
        self.header_field.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        self.field_name = options.get(b"name", b"").decode("utf-8", errors="replace")
        if b"filename" not in options:
            if len(self.form.fields) >= MAX_FIELDS:
                raise UploadRejected(REQUEST, f"the form has more than {MAX_FIELDS} fields; it was refused")
            self.value = bytearray()
            return
        original = options[b"filename"].decode("utf-8", errors="replace")
        self.part = Received(self.field_name, original[:255], safe_name(original), None, 0)
        fd, path = temp_file(self.dest_dir)
        self.part.path = path
        self.out = os.fdopen(fd, "wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        n = end - start
        if self.value is not None:
            if len(self.value) + n > MAX_FIELD_BYTES:
                reason = f"the form field {self.field_name!r} is too long; it was refused"
                raise UploadRejected(REQUEST, reason)
            self.value.extend(data[start:end])
            return
        part = self.part
        if part is None:
            return
        if part.rejected is not None:
            self._discard(n)
            return
        part.size += n
        if part.size > self.limits.max_file_bytes:
            self._refuse(
                f"it is larger than the limit of {size_text(self.limits.max_file_bytes)} per file; "
                "it was not stored"
            )
        elif self.stored + part.size > self.limits.quota_remaining_bytes:
            left = size_text(max(0, self.limits.quota_remaining_bytes - self.stored))
            self._refuse(
                f"it does not fit in the {left} left in your quota; it was not stored "
                "(delete old uploads first)"
            )
        elif self.out is not None:
            self.out.write(memoryview(data)[start:end])  # no copy of the chunk

    def _discard(self, n: int) -> None:
        self.discarded += n
        if self.discarded > self.limits.max_file_bytes + DISCARD_SLACK:
            raise _StopReading()

    def _refuse(self, reason: str) -> None:
        assert self.part is not None
        self._close()
        remove_quietly(self.part.path)
        self.part.path = None
        self.part.rejected = reason
        log.info("upload part %r refused: %s", self.part.original, reason)

    def _close(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None

    def on_part_end(self) -> None:
        if self.value is not None:
            self.form.fields.setdefault(self.field_name, self.value.decode("utf-8", errors="replace"))
            self.value = None
            return
        part, self.part = self.part, None
        self._close()
        if part is None:
            return
        if part.rejected is None:
            if not part.original and part.size == 0:  # an empty file input: nothing chosen
                remove_quietly(part.path)
                return
            self.stored += part.size
        self.form.files.append(part)

    def on_end(self) -> None:
        self.ended = True

    def abort(self, reason: str) -> None:
        """The body stopped early or was refused: the open part is refused, nothing kept."""
        if self.part is not None:
            self._refuse(self.part.rejected or reason)
            self.form.files.append(self.part)
            self.part = None
        self._close()


class _StopReading(Exception):  # noqa: N818 - control flow, not an error
    pass


def declared_length(request: Request) -> int | None:
    """The request's ``Content-Length`` when it sent a valid one."""
    value = request.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


async def receive_multipart(request: Request, dest_dir: Path, limits: UploadLimits) -> ReceivedForm:
    """Read a ``multipart/form-data`` body into temporary files in ``dest_dir``.

    Returns the file parts (:class:`Received`, in order) and the plain fields. A file part over
    ``max_file_bytes``, or past the quota left, is stopped and its temporary file removed (its
    ``rejected`` says why); the other parts are still read, unless refused parts pile up to more
    than a file's limit, when the rest of the body is not read. Raises :class:`UploadRejected` when
    the request is not a multipart form or the form itself is refused (too many or too long plain
    fields, a malformed body); then no temporary file is left. The caller owns the temporary files
    returned: :func:`accept_received` (or :meth:`ReceivedForm.discard`) removes them.
    """
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        reason = "the request is not a multipart/form-data upload; send the files as a form"
        raise UploadRejected(REQUEST, reason)
    dest_dir.mkdir(parents=True, exist_ok=True)
    collector = _Collector(dest_dir, limits)
    parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
    try:
        try:
            async for chunk in request.stream():
                for at in range(0, len(chunk), FEED_BYTES):  # a server may pass the body in one piece
                    parser.write(chunk[at : at + FEED_BYTES])
            parser.finalize()
        except _StopReading:
            collector.abort("it is larger than the limit per file; the rest of the upload was not read")
            log.info("upload: stopped reading after %s of refused data", size_text(collector.discarded))
        if not collector.ended:
            collector.abort("the upload ended before this file was complete; send it again")
    except FormParserError as exc:
        collector.abort("the upload is malformed")
        collector.form.discard()
        reason = f"the upload is not a valid multipart form ({exc}); send it again"
        raise UploadRejected(REQUEST, reason) from None
    except BaseException:  # ClientDisconnect, UploadRejected of a field, cancellation...
        collector.abort("the upload was interrupted")
        collector.form.discard()
        raise
    return collector.form


def accept_received(
    received: ReceivedForm | Sequence[Received], uploads_dir: Path, limits: UploadLimits
) -> list[Outcome]:
    """Check each received file, unpack archives, move the good files into ``uploads_dir``.

    Returns the outcomes in order: :class:`Accepted` (stored under a safe, unique name),
    :class:`Rejected` with the reason, :class:`~nightpipe.web.uploads.limits.Skipped` archive members.
    The quota is shared by all files of the request (an archive counts with its unpacked size).
    Every temporary file is removed, whatever happens.
    """
    items = received.files if isinstance(received, ReceivedForm) else list(received)
    outcomes: list[Outcome] = []
    stored = 0
    uploads_dir.mkdir(parents=True, exist_ok=True)
    try:
        for item in items:
            shown = item.original or item.name
            if item.path is None or item.rejected is not None:
                outcomes.append(Rejected(shown, item.rejected or "it was not received"))
                continue
            left = limits.with_quota(limits.quota_remaining_bytes - stored)
            try:
                if archive_kind(item.name) is not None:
                    results = extract_archive(item.path, uploads_dir, left, name=shown)
                    stored += sum(o.size for o in results if isinstance(o, Accepted))
                    outcomes.extend(results)
                    continue
                if item.size > left.quota_remaining_bytes:
                    left_text = size_text(left.quota_remaining_bytes)
                    raise UploadRejected(shown, f"it does not fit in the {left_text} left in your quota")
                summary = check_fits(item.path, item.name, left)
            except UploadRejected as exc:
                outcomes.append(Rejected(shown if exc.name == item.name else exc.name, exc.reason))
                continue
            final = place_file(item.path, uploads_dir, item.name)
            item.path = None
            stored += item.size
            outcomes.append(Accepted(final.name, final, item.size, summary, source=shown))
    finally:
        for item in items:
            remove_quietly(item.path)
    return outcomes


__all__ = [
    "ClientDisconnect",
    "Received",
    "ReceivedForm",
    "accept_received",
    "declared_length",
    "receive_multipart",
]
