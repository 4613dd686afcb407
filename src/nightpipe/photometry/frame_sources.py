"""One source detection per frame, shared by the ``solve`` and ``photometry`` steps (issues 18, 22).

:func:`detect_frame` is the photometry's detection of a calibrated frame (mesh background, then
:func:`~nightpipe.photometry.detect.detect_sources`). The solve step runs it first, builds its star
list from it and keeps the list in ``<output>/detections/<night>/<stem>.fits`` with the header
card ``NPDETKEY`` = :func:`detection_key` (a hash of the frame's pixels, mask and the detection
settings). The photometry step reuses that list when the key it computes from the frame it reads
is the same (so the list is the one it would have found itself), else detects again.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from nightpipe.config import PhotometryConfig
from nightpipe.frames.fitsio import atomic_open
from nightpipe.frames.fitstable import FitsTable, read_table, table_bytes
from nightpipe.photometry.background import Background, mesh_background
from nightpipe.photometry.detect import Detections, detect_sources

log = logging.getLogger(__name__)

__all__ = [
    "KEY_CARD",
    "FrameDetection",
    "detect_frame",
    "detection_key",
    "detection_settings",
    "detections_path",
    "read_detections",
    "source_stem",
    "write_detections",
]

KEY_CARD = "NPDETKEY"
DETECTION_VERSION = "1"  # bump when the detection's algorithm changes: older lists are then not reused
_COLUMNS = ("x", "y", "peak", "npix", "flux_iso", "flags")


@dataclass(frozen=True)
class FrameDetection:
    """A frame's background maps and its sources."""

    background: Background
    detections: Detections


def detect_frame(
    data: np.ndarray,
    config: PhotometryConfig,
    *,
    mask: np.ndarray | None = None,
    saturation: float = np.inf,
    background: Background | None = None,
) -> FrameDetection:
    """The photometry's detection of one frame: its mesh background, then the sources above it.

    Parameters
    ----------
    data
        The image, not background-subtracted.
    config
        ``settings.photometry`` (background mesh and detection settings).
    mask
        uint16 PixelFlag plane of a calibrated frame.
    saturation
        Raw level at or above which a pixel is saturated (``inf`` for calibrated frames, whose
        MASK carries SATURATED bits).
    background
        The frame's mesh background when already computed.

    Returns
    -------
    FrameDetection
        Possibly with no source (callers decide whether that is an error).
    """
    if background is None:
        background = mesh_background(
            data, mask, box=config.background_box, filter_size=config.background_filter
        )
    det = detect_sources(
        data,
        background.level,
        background.rms,
        mask=mask,
        detect_sigma=config.detect_sigma,
        min_area=config.min_area,
        deblend_contrast=config.deblend_contrast,
        edge_margin=config.edge_margin,
        saturation=saturation,
    )
    return FrameDetection(background, det)


def detection_settings(config: PhotometryConfig) -> str:
    """The detection's version and the settings it depends on, as text (for keys and step hashes)."""
    return repr(
        (
            DETECTION_VERSION,
            config.background_box,
            config.background_filter,
            float(config.detect_sigma),
            config.min_area,
            float(config.deblend_contrast),
            config.edge_margin,
        )
    )


def detection_key(
    data: np.ndarray, mask: np.ndarray | None, config: PhotometryConfig, saturation: float = np.inf
) -> str:
    """A hash of what :func:`detect_frame` depends on: the pixels (values and dtype), the mask and
    the detection settings. Equal keys give the same sources."""
    digest = hashlib.sha256()
    digest.update(f"{detection_settings(config)}:{float(saturation)!r}".encode())
    for plane in (data, mask):
        if plane is None:
            digest.update(b"none")
            continue
        array = np.ascontiguousarray(plane)
        native = array.dtype.newbyteorder("=")
        digest.update(f"{native.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array, dtype=native).data)
    return digest.hexdigest()[:40]


def source_stem(source: Path) -> str:
    """A frame file's name without its compression and FITS suffixes (``a.fits.gz`` -> ``a``)."""
    name = source.name
    for suffix in (".gz", ".bz2", ".fz"):
        name = name.removesuffix(suffix)
    return Path(name).stem


def detections_path(output: Path | str, night: str | None, source: Path) -> Path:
    """Where the shared source list of frame file ``source`` is kept:
    ``<output>/detections/<night>/<stem>.fits``."""
    return Path(output) / "detections" / (night or "unknown-night") / f"{source_stem(Path(source))}.fits"


def write_detections(det: Detections, key: str, destination: Path | str) -> Path:
    """Write a source list with its key (``NPDETKEY``), atomically."""
    destination = Path(destination)
    header = fits.Header()
    # The quoted 64-character hash fills the 80-column card: no room for a comment.
    header[KEY_CARD] = key
    content = FitsTable(columns={name: np.asarray(getattr(det, name)) for name in _COLUMNS}, header=header)
    payload = table_bytes(content, extname="DETECT")
    destination.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(destination, "wb") as handle:
        handle.write(payload)
    return destination


def read_detections(path: Path | str, key: str) -> Detections | None:
    """The source list kept at ``path`` when its key is ``key``; ``None`` when there is none, it is
    unreadable, or it was detected on other pixels or with other settings."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        content = read_table(path)
    except (OSError, ValueError, KeyError) as exc:
        log.debug("unreadable source list %s (%s): detecting again", path, exc)
        return None
    if content is None or str(content.header.get(KEY_CARD, "")) != key:
        return None
    columns = content.columns
    if any(name not in columns for name in _COLUMNS):
        return None
    return Detections(
        x=np.ascontiguousarray(columns["x"], dtype=np.float64),
        y=np.ascontiguousarray(columns["y"], dtype=np.float64),
        peak=np.ascontiguousarray(columns["peak"], dtype=np.float32),
        npix=np.ascontiguousarray(columns["npix"], dtype=np.int32),
        flux_iso=np.ascontiguousarray(columns["flux_iso"], dtype=np.float64),
        flags=np.ascontiguousarray(columns["flags"], dtype=np.uint16),
    )
