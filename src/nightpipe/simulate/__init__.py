"""Synthetic nights with a known truth, for tests, demos and benchmarks.

>>> from nightpipe.simulate import SimOptions, simulate_night  # doctest: +SKIP
>>> truth = simulate_night(Path("night"), SimOptions(seed=3))  # doctest: +SKIP
"""

from typing import TYPE_CHECKING, Any

from nightpipe.simulate.dialects import DIALECTS

if TYPE_CHECKING:
    from nightpipe.simulate.night import TRUTH_FILE, simulate_night
    from nightpipe.simulate.options import (
        CalibrationOptions,
        CameraOptions,
        SimOptions,
        SiteOptions,
        SkyOptions,
        StarList,
        TransitOptions,
    )
    from nightpipe.simulate.truth import Truth

_LAZY = {
    "TRUTH_FILE": "night",
    "simulate_night": "night",
    "Truth": "truth",
    **dict.fromkeys(
        (
            "CalibrationOptions",
            "CameraOptions",
            "SimOptions",
            "SiteOptions",
            "SkyOptions",
            "StarList",
            "TransitOptions",
        ),
        "options",
    ),
}


def __getattr__(name: str) -> Any:
    """The generator, its truth and its options are imported on first use (numpy, astropy,
    batman, numba kernels): ``nightpipe --help`` needs only the dialects' names."""
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"nightpipe.simulate.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'nightpipe.simulate' has no attribute {name!r}")


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
