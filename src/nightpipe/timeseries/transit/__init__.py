"""Transit fitting: batman model x linear systematics, least squares, then an emcee posterior.

The model of the relative flux is ``F(t) = T(t; tc, Rp/Rs, a/Rs, i, u1, u2) * S(t)`` where ``T`` is
a batman transit with quadratic limb darkening (computed once per call on the light curve's fixed
time grid, supersampled over the exposure) and ``S = A c`` is the linear systematics model of
:mod:`nightpipe.timeseries.detrend`. For each transit shape the coefficients ``c`` are solved by
weighted linear least squares (profiled out), so the systematics are fitted jointly with the
transit at the cost of one small linear solve per likelihood call.

Priors: ``tc`` uniform over the observed span; ``Rp/Rs`` uniform on (0, 0.5); ``a/Rs`` and ``i``
Gaussian around known values when the target gives them (widths from the target or 5 % and 1
degree), else uniform with ``b = a cos i < 1 + Rp/Rs``; ``u1, u2`` fixed when given without an
error, Gaussian when given with one, else uniform inside the physical region
(``u1 > 0``, ``u1 + u2 < 1``, ``u1 + 2 u2 > 0``).

Outliers: a point whose residual from the best fit exceeds ``outlier_sigma`` times the robust
standard deviation (1.4826 x MAD) of the residuals is rejected, and the fit is repeated until no
point changes (at most 5 rounds). Errors (the point-to-point scatter when the input has none) are rescaled
so that the baseline fit (transit + linear time) has a reduced chi-square of 1 for the BIC
selection, which needs realistic errors, and finally so that the chosen model has a reduced
chi-square of 1 (``error_scale`` reports the factor, ``chi2_red`` the value with the input errors).

Modules: :mod:`.priors` (what is known, fit options, starting point), :mod:`.curve` (the transit
shape), :mod:`.likelihood` (systematics solve, priors, log posterior), :mod:`.optimise` (least
squares, outlier clipping), :mod:`.sampling` (emcee), :mod:`.result` (:class:`TransitFit`) and
:mod:`.fit` (:func:`fit_transit`, step by step). The public names are importable from here, as
they were from the single module this package replaces.
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
