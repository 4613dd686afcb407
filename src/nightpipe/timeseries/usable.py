"""Which frames of a night go into the target's light curve, and why the others go.

A frame goes when it has no time, when the target or a comparison star is missing, when the
target's aperture covers pixels without data, when the target is saturated or non-linear (its
clipped flux follows the seeing: with seeing that peaks during the transit, the transit comes out
shallower), or when it is an outlier by the running-median rule. A target clipped in more than
``MAX_CLIPPED_FRACTION`` of the frames is refused with a clear error rather than thinned to the
frames of poor seeing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from nightpipe.errors import TimeseriesError
from nightpipe.frames.flags import PixelFlag
from nightpipe.timeseries.differential import ApertureChoice, running_median_outliers

log = logging.getLogger("nightpipe.timeseries.assemble")  # the name its log lines have always carried
FloatArray = NDArray[np.float64]

#: Above this fraction of frames with a clipped target, the light curve is refused, not thinned.
MAX_CLIPPED_FRACTION = 0.25


def usable_frames(
    frames: list[str],
    time: FloatArray,
    rel: FloatArray,
    aperture_for: Callable[[NDArray[np.bool_]], ApertureChoice],
    outlier_sigma: float,
    target_flags: NDArray[np.int64] | None = None,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], ApertureChoice, list[tuple[str, str]]]:
    """Frames with a time and every star (``good``), the aperture, the outliers, and why frames go.

    A frame whose target aperture covers pixels without data (NaN in the raw frame, outside the
    overlap) goes too: its flux is short of part of the star, whatever its neighbours say.
    """
    dropped: list[tuple[str, str]] = []
    good = np.isfinite(time) & np.all(np.isfinite(rel), axis=1) & np.all(rel > 0, axis=1)
    flags = np.asarray(target_flags) if target_flags is not None else np.zeros(len(frames), dtype=np.int64)
    no_data = (flags & int(PixelFlag.NO_DATA)) > 0
    # a clipped (or non-linear) target loses flux where the seeing is good and gets it back where
    # the seeing is poor: with seeing that peaks during the transit, that fills the transit in
    clipped = (flags & int(PixelFlag.SATURATED | PixelFlag.NONLINEAR)) > 0
    for i in np.flatnonzero(~good | no_data | clipped):
        if not np.isfinite(time[i]):
            why = "no BJD_TDB"
        elif no_data[i]:
            why = "the target's aperture covers pixels without data (NaN in the frame)"
        elif clipped[i] and good[i]:
            why = "the target is saturated or non-linear in this frame (its flux is clipped)"
        else:
            why = "target or a comparison star missing"
        dropped.append((frames[i], why))
    if clipped.sum() > MAX_CLIPPED_FRACTION * len(frames):
        raise TimeseriesError(
            f"the target is saturated or non-linear in {int(clipped.sum())} of {len(frames)} frames: "
            "its flux is clipped where the seeing is good, which makes a transit shallower or deeper "
            "as the seeing changes",
            hint="take shorter exposures (or defocus) so that the target's peak stays linear",
        )
    if clipped.any():
        log.warning(
            "the target is saturated or non-linear in %d of %d frames: those frames are dropped "
            "(shorter exposures, or defocus, keep it linear)",
            int(clipped.sum()),
            len(frames),
        )
    good &= ~no_data & ~clipped
    ap = aperture_for(good)
    outlier = np.zeros(len(frames), dtype=bool)
    outlier[good] = running_median_outliers(
        rel[good, ap.index] / np.nanmedian(rel[good, ap.index]), sigma=outlier_sigma
    )
    for i in np.flatnonzero(outlier):
        dropped.append((frames[i], f"outlier: > {outlier_sigma:g} x MAD from the median of its 6 neighbours"))
    return good, outlier, ap, dropped
