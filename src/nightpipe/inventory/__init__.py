"""The frame inventory: scan folders of FITS files into the ``frames`` table, and query it.

:func:`scan_paths` walks folders recursively, reads only the headers of new or changed
files, normalises them (:mod:`nightpipe.frames.headers`), times them
(:mod:`nightpipe.frames.timing`) and stores one row per image HDU. A rescan skips every
file whose size and modification time are unchanged without opening it; a file whose
size or time changed but whose content hash did not is not re-read either. Files that
vanished are marked ``missing``; unreadable, truncated or non-FITS files are stored with
status ``bad`` and the reason (also recorded as a failed ``scan`` step in ``step_runs``).
Raw files are only ever opened read-only.

Other steps use :func:`light_frames`, :func:`calibration_frames` and
:func:`group_frames`.
"""

from __future__ import annotations

from nightpipe.inventory.scan import (
    AUXILIARY_EXTNAMES,
    BLOCK,
    CALIBRATION_KINDS,
    CHUNK_FILES,
    NORMALISATION_VERSION,
    SAMPLE_SIZE,
    SCAN_STEP,
    SCAN_SUFFIXES,
    FileResult,
    FrameGroup,
    FrameInfo,
    GroupKey,
    RawHdu,
    ScanSummary,
    calibration_frames,
    file_sha1,
    frame_summary,
    group_frames,
    group_key,
    group_rows,
    is_scannable,
    iter_fits_files,
    light_frames,
    normalisation_digest,
    problem_frames,
    query_frames,
    read_file_frames,
    read_raw_headers,
    scan_paths,
)

__all__ = [
    "AUXILIARY_EXTNAMES",
    "BLOCK",
    "CALIBRATION_KINDS",
    "CHUNK_FILES",
    "NORMALISATION_VERSION",
    "SAMPLE_SIZE",
    "SCAN_STEP",
    "SCAN_SUFFIXES",
    "FileResult",
    "FrameGroup",
    "FrameInfo",
    "GroupKey",
    "RawHdu",
    "ScanSummary",
    "calibration_frames",
    "file_sha1",
    "frame_summary",
    "group_frames",
    "group_key",
    "group_rows",
    "is_scannable",
    "iter_fits_files",
    "light_frames",
    "normalisation_digest",
    "problem_frames",
    "query_frames",
    "read_file_frames",
    "read_raw_headers",
    "scan_paths",
]
