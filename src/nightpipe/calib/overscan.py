"""Overscan subtraction and trimming: section parsing and pure functions on arrays.

Sections use the FITS/IRAF notation ``[x1:x2,y1:y2]``: 1-based, inclusive, x (columns)
first. They become numpy slices ``(rows, cols)``. The overscan strip is collapsed along its
short axis (like ``ccdproc.subtract_overscan`` with ``overscan_axis=None``) with a mean or
median, giving one value per row (or per column); the ``fit`` model replaces those values by
a least-squares polynomial of the configured order along the strip. The model is subtracted
from every pixel of the same row (column), then the frame is trimmed to TRIMSEC (or DATASEC).

Examples
--------
>>> parse_section("[4:13,1:520]")
(slice(0, 520, None), slice(3, 13, None))
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nightpipe.config import CalibrationConfig
from nightpipe.errors import CalibrationError, HeaderError

Section = tuple[slice, slice]
OverscanMethod = Literal["none", "mean", "median", "fit"]

_SECTION = re.compile(r"^\[\s*(\*|\d+\s*:\s*\d+)\s*,\s*(\*|\d+\s*:\s*\d+)\s*\]$")


def parse_section(text: str, shape: tuple[int, int] | None = None) -> Section:
    """Turn a FITS section ``[x1:x2,y1:y2]`` into numpy slices ``(rows, cols)``.

    Parameters
    ----------
    text
        The section; ``*`` means the whole axis, reversed ranges are accepted.
    shape
        ``(ny, nx)`` of the image: when given, the section must lie inside it.

    Raises
    ------
    HeaderError
        When the text is not a section or falls outside the image.

    Examples
    --------
    >>> parse_section("[17:528, 1:520]")
    (slice(0, 520, None), slice(16, 528, None))
    """
    match = _SECTION.match(str(text).strip())
    if match is None:
        raise HeaderError(
            f"section {text!r} is not of the form [x1:x2,y1:y2]",
            hint="fix the keyword or set calibration.biassec / calibration.trimsec",
        )
    bounds: list[slice] = []
    for axis, part in enumerate(match.groups()):
        if part == "*":
            size = None if shape is None else shape[1 - axis]
            bounds.append(slice(0, size))
            continue
        a, b = (int(v) for v in part.split(":"))
        lo, hi = min(a, b), max(a, b)
        if lo < 1:
            raise HeaderError(f"section {text!r} starts before pixel 1")
        if shape is not None and hi > shape[1 - axis]:
            raise HeaderError(
                f"section {text!r} goes beyond the image of {shape[1]}x{shape[0]} pixels",
                hint="the keyword does not match this frame; set the section in the configuration",
            )
        bounds.append(slice(lo - 1, hi))
    xs, ys = bounds
    return ys, xs


def format_section(section: Section) -> str:
    """The FITS notation of numpy slices ``(rows, cols)`` with explicit bounds."""
    rows, cols = section
    if rows.stop is None or cols.stop is None:
        raise ValueError("format_section needs explicit bounds")
    return f"[{(cols.start or 0) + 1}:{cols.stop},{(rows.start or 0) + 1}:{rows.stop}]"


@dataclass(frozen=True)
class OverscanModel:
    """The overscan level to subtract: one value per row (``axis=1``) or per column (``axis=0``).

    ``axis`` is the axis of the strip that was collapsed: a strip of columns at the side of
    the chip (short along x) is collapsed along axis 1 and gives one value per row.
    """

    values: np.ndarray
    axis: int
    method: str

    def for_rows(self, y0: int, y1: int, x0: int = 0, x1: int | None = None) -> np.ndarray:
        """The model broadcastable onto rows ``y0:y1`` (columns ``x0:x1``) of the raw frame."""
        if self.axis == 1:
            return self.values[y0:y1, np.newaxis]
        return self.values[np.newaxis, x0:x1]


def overscan_model(
    strip: np.ndarray, method: OverscanMethod = "median", order: int = 3, axis: int | None = None
) -> OverscanModel:
    """Collapse an overscan strip into a per-row (or per-column) model (pure function).

    Parameters
    ----------
    strip
        The overscan pixels, 2-D; NaNs are ignored.
    method
        ``"mean"``, ``"median"``, or ``"fit"`` (a polynomial of ``order`` fitted to the
        median-collapsed values).
    order
        Polynomial order of ``"fit"``.
    axis
        Axis to collapse; ``None`` takes the shorter axis of the strip (axis 1 when square).

    Returns
    -------
    OverscanModel

    Examples
    --------
    >>> import numpy as np
    >>> m = overscan_model(np.full((4, 2), 7.0), "mean")
    >>> m.values.tolist(), m.axis
    ([7.0, 7.0, 7.0, 7.0], 1)
    """
    strip = np.asarray(strip, dtype=np.float64)
    if strip.ndim != 2 or strip.size == 0:
        raise CalibrationError(f"the overscan strip must be a non-empty 2-D array, got {strip.shape}")
    if axis is None:
        axis = 0 if strip.shape[0] < strip.shape[1] else 1
    if method not in ("mean", "median", "fit"):
        raise CalibrationError(f"unknown overscan method {method!r}", hint="use mean, median or fit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN lines: reported below
        values = np.nanmean(strip, axis=axis) if method == "mean" else np.nanmedian(strip, axis=axis)
    if not np.all(np.isfinite(values)):
        raise CalibrationError("the overscan strip has rows or columns without any valid pixel")
    if method == "fit":
        x = np.arange(values.size, dtype=np.float64)
        deg = min(order, max(values.size - 1, 0))
        poly = np.polynomial.Polynomial.fit(x, values, deg)
        values = poly(x)
    return OverscanModel(values=values.astype(np.float32), axis=axis, method=method)


def overscan_level(
    data: np.ndarray, biassec: Section, method: OverscanMethod = "median", order: int = 3
) -> np.ndarray:
    """The overscan level of a whole frame, shaped ``(ny, 1)`` or ``(1, nx)`` (pure function).

    The model measured in ``biassec`` is extended to the full frame with its edge values when
    the strip is shorter than the frame. Subtracting it broadcasts over the frame, and a band of
    rows ``y0:y1`` takes ``level[y0:y1]`` when the level is per row.
    """
    model = overscan_model(np.asarray(data)[biassec], method, order)
    rows, cols = biassec
    along = rows if model.axis == 1 else cols
    size = data.shape[0] if model.axis == 1 else data.shape[1]
    start = along.start or 0
    full = np.empty(size, np.float32)
    full[:start] = model.values[0]
    full[start : start + model.values.size] = model.values
    full[start + model.values.size :] = model.values[-1]
    return full[:, np.newaxis] if model.axis == 1 else full[np.newaxis, :]


def subtract_overscan(
    data: np.ndarray, biassec: Section, method: OverscanMethod = "median", order: int = 3
) -> np.ndarray:
    """``data`` minus its overscan model measured in ``biassec`` (a new float32 array).

    Examples
    --------
    >>> import numpy as np
    >>> frame = np.full((3, 5), 110.0); frame[:, 4] = 10.0
    >>> subtract_overscan(frame, (slice(0, 3), slice(4, 5)), "mean")[0].tolist()
    [100.0, 100.0, 100.0, 100.0, 0.0]
    """
    return np.asarray(data, dtype=np.float32) - overscan_level(data, biassec, method, order)


def trim(data: np.ndarray, trimsec: Section) -> np.ndarray:
    """The part of ``data`` inside ``trimsec`` (a view)."""
    return data[trimsec]


@dataclass(frozen=True)
class OverscanPlan:
    """What to do with a raw frame: its overscan section and model, and what to keep.

    ``biassec`` is ``None`` when no overscan is subtracted; ``trimsec`` is ``None`` when the
    frame is kept whole.
    """

    shape: tuple[int, int]
    biassec: Section | None
    trimsec: Section | None
    method: OverscanMethod
    order: int

    @property
    def output_shape(self) -> tuple[int, int]:
        """``(ny, nx)`` after trimming."""
        if self.trimsec is None:
            return self.shape
        rows, cols = self.trimsec
        return (rows.stop - rows.start, cols.stop - cols.start)

    @property
    def active(self) -> bool:
        """True when the plan changes the frame."""
        return self.biassec is not None or self.trimsec is not None

    def describe(self) -> list[str]:
        """HISTORY-style lines saying what the plan does."""
        lines = []
        if self.biassec is not None:
            lines.append(f"overscan {self.method} subtracted from {format_section(self.biassec)}")
        if self.trimsec is not None:
            lines.append(f"trimmed to {format_section(self.trimsec)}")
        return lines


def plan_overscan(
    header: Mapping[str, Any],
    shape: tuple[int, int],
    cal: CalibrationConfig,
    path: Path | str | None = None,
) -> OverscanPlan:
    """Decide the overscan and trim sections of a frame from its header or the settings.

    BIASSEC comes from the header, else ``calibration.biassec``; the kept region from TRIMSEC,
    else DATASEC, else ``calibration.trimsec``. ``calibration.overscan = "none"`` switches the
    subtraction off (trimming still applies).

    Raises
    ------
    HeaderError
        When a section cannot be parsed or does not fit the frame (the file is named).
    """
    try:
        biassec_text = header.get("BIASSEC") or cal.biassec
        trimsec_text = header.get("TRIMSEC") or header.get("DATASEC") or cal.trimsec
        biassec = parse_section(str(biassec_text), shape) if biassec_text and cal.overscan != "none" else None
        trimsec = parse_section(str(trimsec_text), shape) if trimsec_text else None
    except HeaderError as exc:
        raise HeaderError(exc.message, path=path, hint=exc.hint) from None
    if trimsec is not None and trimsec == (slice(0, shape[0]), slice(0, shape[1])):
        trimsec = None
    return OverscanPlan(
        shape=shape, biassec=biassec, trimsec=trimsec, method=cal.overscan, order=cal.overscan_order
    )


def apply_overscan(data: np.ndarray, plan: OverscanPlan) -> np.ndarray:
    """Subtract the overscan and trim, as the plan says (pure; returns float32)."""
    out = np.asarray(data, dtype=np.float32)
    if plan.biassec is not None:
        out = subtract_overscan(out, plan.biassec, plan.method, plan.order)
    if plan.trimsec is not None:
        out = trim(out, plan.trimsec)
    return out
