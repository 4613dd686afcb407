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

Where things are (every public name is re-exported here):

* ``walk``: which files are scanned, and their content hash;
* ``raw_headers``: the header blocks of a FITS file, read without its data;
* ``classify``: the image frames of a file, normalised and classified (:func:`read_file_frames`);
* ``scan``: the incremental scan (:func:`scan_paths`, :class:`ScanSummary`, the settings digest);
* ``times``: mid-exposure, BJD_TDB and night of a chunk's frames;
* ``rows``: what the database knows of each file, writing its rows, marking the missing;
* ``queries``: light, calibration and problem frames, frame listings;
* ``groups``: frames grouped by kind, binning, filter, exposure and temperature.
"""

from __future__ import annotations

from nightpipe.inventory.classify import AUXILIARY_EXTNAMES, SAMPLE_SIZE, FrameInfo, read_file_frames
from nightpipe.inventory.groups import FrameGroup, GroupKey, group_frames, group_key, group_rows
from nightpipe.inventory.queries import (
    CALIBRATION_KINDS,
    calibration_frames,
    frame_summary,
    light_frames,
    problem_frames,
    query_frames,
)
from nightpipe.inventory.raw_headers import BLOCK, RawHdu, read_raw_headers
from nightpipe.inventory.rows import SCAN_STEP, FileResult
from nightpipe.inventory.scan import (
    CHUNK_FILES,
    NORMALISATION_VERSION,
    ScanSummary,
    normalisation_digest,
    scan_paths,
)
from nightpipe.inventory.walk import SCAN_SUFFIXES, file_sha1, is_scannable, iter_fits_files

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
