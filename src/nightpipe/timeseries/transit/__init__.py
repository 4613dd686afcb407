"""Transit fitting: batman model x linear systematics, least squares, then an emcee posterior.

The public names are importable from here, as they were from the single module this package
replaces; :mod:`.fit` holds the fit.
"""

from nightpipe.timeseries.transit.curve import TransitCurve, orbit_tables
from nightpipe.timeseries.transit.fit import fit_transit
from nightpipe.timeseries.transit.likelihood import N_PRIOR_TERMS, solve_systematics
from nightpipe.timeseries.transit.optimise import MAX_CLIP_ROUNDS
from nightpipe.timeseries.transit.priors import PARAM_NAMES, FitOptions, TransitPriors
from nightpipe.timeseries.transit.result import ParamEstimate, TransitFit, binned_scatter

__all__ = [
    "MAX_CLIP_ROUNDS",
    "N_PRIOR_TERMS",
    "PARAM_NAMES",
    "FitOptions",
    "ParamEstimate",
    "TransitCurve",
    "TransitFit",
    "TransitPriors",
    "binned_scatter",
    "fit_transit",
    "orbit_tables",
    "solve_systematics",
]
