"""Uploads of the web app: streamed to disk, checked as FITS, archives unpacked safely, stored atomically.

Pure of FastAPI except :func:`~nightpipe.web.uploads.stream.receive_multipart`, which reads a
Starlette request's body as a stream. The flow of a POST is::

    form = await receive_multipart(request, paths.tmp, limits)      # temp files, sizes capped
    outcomes = accept_received(form, paths.uploads, limits)        # FITS check, unpack, rename
"""

from nightpipe.web.uploads.archives import extract_archive
from nightpipe.web.uploads.fitscheck import check_fits
from nightpipe.web.uploads.limits import (
    Accepted,
    FitsSummary,
    Outcome,
    Rejected,
    Skipped,
    UploadLimits,
    UploadRejected,
)
from nightpipe.web.uploads.names import place_file, safe_name, unique_name

__all__ = [
    "Accepted",
    "FitsSummary",
    "Outcome",
    "Rejected",
    "Skipped",
    "UploadLimits",
    "UploadRejected",
    "check_fits",
    "extract_archive",
    "place_file",
    "safe_name",
    "unique_name",
]
