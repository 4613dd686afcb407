"""Synthetic nights with a known truth, for tests, demos and benchmarks.

>>> from nightpipe.simulate import SimOptions, simulate_night  # doctest: +SKIP
>>> truth = simulate_night(Path("night"), SimOptions(seed=3))  # doctest: +SKIP
"""

from nightpipe.simulate.night import TRUTH_FILE, simulate_night
from nightpipe.simulate.options import (
    DIALECTS,
    CalibrationOptions,
    CameraOptions,
    SimOptions,
    SiteOptions,
    SkyOptions,
    StarList,
    TransitOptions,
)
from nightpipe.simulate.truth import Truth

__all__ = [
    "DIALECTS",
    "TRUTH_FILE",
    "CalibrationOptions",
    "CameraOptions",
    "SimOptions",
    "SiteOptions",
    "SkyOptions",
    "StarList",
    "TransitOptions",
    "Truth",
    "simulate_night",
]
