"""Synthetic nights with a known truth, for tests, demos and benchmarks.

>>> from nightpipe.simulate import SimOptions, simulate_night  # doctest: +SKIP
>>> truth = simulate_night(Path("night"), SimOptions(seed=3))  # doctest: +SKIP
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from nightpipe.simulate.night import TRUTH_FILE, simulate_night
    from nightpipe.simulate.truth import Truth

_LAZY = {"TRUTH_FILE": "night", "simulate_night": "night", "Truth": "truth"}


def __getattr__(name: str) -> Any:
    """The generator and its truth are imported on first use (astropy, batman, numba kernels):
    ``nightpipe --help`` and the CLI's option parsing need only the options."""
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
