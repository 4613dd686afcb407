"""Reading the inputs of a master: the masters it is corrected with, and its raw calibration frames.

:func:`load_master` reads a library master; :func:`prepare_frame` opens one raw bias, dark or
flat as a :class:`PreparedRows` row source (overscan-corrected, trimmed, bias- and
dark-subtracted, a flat normalised), which :func:`nightpipe.calib.combine.combine_sources`
reads band by band.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nightpipe.calib.combine import FitsRowReader
from nightpipe.calib.master_quality import central_region, flat_problem
from nightpipe.calib.overscan import OverscanPlan, overscan_level, plan_overscan
from nightpipe.config import Settings
from nightpipe.errors import CalibrationError
from nightpipe.frames.detector import resolve_detector
from nightpipe.frames.fitsio import read_image
from nightpipe.store.models import Frame, Master


@dataclass(frozen=True)
class MasterImage:
    """A master loaded to correct other calibration frames."""

    path: Path
    data: np.ndarray
    exptime: float | None
    bias_included: bool
    inputs_hash: str
    settings_hash: str


def load_master(row: Master) -> MasterImage:
    """Read the data of a library master (typed errors when the file is gone or unreadable)."""
    data, _ = read_image(row.path, hdu=0)
    return MasterImage(
        path=Path(row.path),
        data=data,
        exptime=row.exptime,
        bias_included=row.bias_included,
        inputs_hash=row.inputs_hash,
        settings_hash=row.settings_hash,
    )


class PreparedRows:
    """Rows of one raw calibration frame, overscan-corrected, trimmed, bias/dark-subtracted, scaled.

    Implements :class:`nightpipe.calib.combine.RowSource`; the raw file is only read.
    """

    def __init__(
        self,
        reader: FitsRowReader,
        plan: OverscanPlan,
        level: np.ndarray | None = None,
        bias: np.ndarray | None = None,
        dark: np.ndarray | None = None,
        dark_scale: float = 1.0,
        saturation: float | None = None,
    ) -> None:
        self.reader = reader
        self.saturation = saturation
        self.plan = plan
        self.level = level
        self.bias = bias
        self.dark = dark
        self.dark_scale = dark_scale
        self.norm = 1.0
        rows, cols = plan.trimsec or (slice(0, plan.shape[0]), slice(0, plan.shape[1]))
        self._y0 = rows.start or 0
        self._cols = cols
        for name, plane in (("bias", bias), ("dark", dark)):
            if plane is not None and plane.shape != plan.output_shape:
                reader.close()
                raise CalibrationError(
                    f"master {name} of shape {plane.shape} does not fit the trimmed frame "
                    f"{plan.output_shape}",
                    path=reader.path,
                    hint="check the overscan/trim sections of the frames and the masters",
                )

    @property
    def shape(self) -> tuple[int, int]:
        """The trimmed shape."""
        return self.plan.output_shape

    @property
    def name(self) -> str:
        """The raw file name."""
        return self.reader.name

    def read_rows(self, y0: int, y1: int) -> np.ndarray:
        """Corrected rows ``y0:y1`` of the trimmed frame (float32)."""
        raw = self.reader.read_rows(self._y0 + y0, self._y0 + y1)
        if self.saturation is not None:
            raw[raw >= self.saturation] = np.nan  # saturated: ignored by the combination
        if self.level is not None:
            level = self.level[self._y0 + y0 : self._y0 + y1] if self.level.shape[0] > 1 else self.level
            raw -= level
        out = np.ascontiguousarray(raw[:, self._cols])
        if self.bias is not None:
            out -= self.bias[y0:y1]
        if self.dark is not None:
            out -= np.float32(self.dark_scale) * self.dark[y0:y1]
        if self.norm != 1.0:
            out /= np.float32(self.norm)
        return out

    def close(self) -> None:
        """Close the raw file."""
        self.reader.close()


def prepare_frame(
    frame: Frame,
    settings: Settings,
    *,
    bias: MasterImage | None = None,
    dark: MasterImage | None = None,
    normalise: bool = False,
) -> PreparedRows:
    """Open one calibration frame and set up its corrections (the file stays open).

    For flats (``normalise=True``) saturated raw pixels (``camera.saturation``, else the header's
    SATURATE, else 65535) become NaN, and
    the corrected frame is read once to check it (a zero or negative region is an error) and to
    measure the median of its central region.

    Raises
    ------
    FitsReadError, HeaderError, CalibrationError
        The message names the file.
    """
    cal = settings.calibration
    reader = FitsRowReader(frame.path, frame.hdu)
    try:
        plan = plan_overscan(reader.header, reader.shape, cal, path=frame.path)
        level = None
        if plan.biassec is not None:
            level = overscan_level(reader.read_all(), plan.biassec, plan.method, plan.order)
        dark_plane = None
        scale = 1.0
        if dark is not None:
            dark_plane = dark.data
            if not dark.bias_included and dark.exptime and frame.exptime is not None:
                scale = frame.exptime / dark.exptime
        bias_plane = None if (dark is not None and dark.bias_included) else (bias.data if bias else None)
        saturation = None
        if normalise:  # as for the lights: configuration, header (SATURATE...), default
            detector = resolve_detector(frame.header or {}, settings.camera, name=frame.path)
            saturation = detector.saturation.value
        source = PreparedRows(reader, plan, level, bias_plane, dark_plane, scale, saturation)
        if normalise:
            image = source.read_rows(0, source.shape[0])
            problem = flat_problem(image)
            if problem is not None:
                raise CalibrationError(
                    f"flat {problem}", path=frame.path, hint="remove this flat or check its bias and dark"
                )
            centre = image[central_region(image.shape, cal.flat_norm_region)]
            finite = centre[np.isfinite(centre)]
            norm = float(np.median(finite)) if finite.size else float("nan")
            if not np.isfinite(norm) or norm <= 0:
                raise CalibrationError(
                    f"flat has a central level of {norm:.3g} after bias and dark correction",
                    path=frame.path,
                    hint="remove this flat (shutter closed or saturated?)",
                )
            source.norm = norm
        return source
    except BaseException:
        reader.close()
        raise
