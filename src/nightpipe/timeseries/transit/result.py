"""The result of a fit: parameter estimates, :class:`TransitFit` and its JSON summary, the binned
scatter of the residuals and the derived depth, impact parameter and duration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nightpipe.timeseries.detrend import BicStep
from nightpipe.timeseries.lightcurve import LightCurve, bin_arrays
from nightpipe.timeseries.transit.likelihood import FitProblem
from nightpipe.timeseries.transit.optimise import jacobian_widths
from nightpipe.timeseries.transit.priors import TransitPriors

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ParamEstimate:
    """A parameter's posterior median, 68 % interval half-widths and best-fit value."""

    median: float
    minus: float
    plus: float
    best: float

    @property
    def err(self) -> float:
        """Symmetrised 1-sigma error."""
        return 0.5 * (self.minus + self.plus)

    def as_dict(self) -> dict[str, float]:
        """Plain numbers for JSON."""
        return {"median": self.median, "minus": self.minus, "plus": self.plus, "best": self.best}


@dataclass(frozen=True, eq=False)
class TransitFit:
    """The result of :func:`~nightpipe.timeseries.transit.fit.fit_transit` (all arrays on the points
    kept, in time order)."""

    lc: LightCurve
    used: NDArray[np.bool_]
    params: dict[str, ParamEstimate]
    fixed: dict[str, float]
    detrend_vectors: tuple[str, ...]
    detrend_coef: FloatArray
    bic_history: list[BicStep]
    transit_model: FloatArray
    systematics: FloatArray
    residuals: FloatArray
    error_scale: float
    chi2_red: float
    rms: float
    binned_rms: float
    binned_expected: float
    bin_minutes: float
    predicted_tc: float | None
    predicted_tc_err: float | None
    samples: FloatArray | None
    sample_names: tuple[str, ...]
    acceptance: float | None
    outlier_rule: str
    extra: dict[str, Any] = field(default_factory=dict)
    red_noise_beta: float = 1.0  # the errors' red-noise factor (:mod:`.rednoise`), already in them

    @property
    def detrended_flux(self) -> FloatArray:
        """Flux of the kept points divided by the systematics model."""
        return self.lc.flux[self.used] / self.systematics

    @property
    def o_minus_c_min(self) -> tuple[float, float] | None:
        """Observed minus calculated mid-time and its error, minutes (None without ephemeris)."""
        if self.predicted_tc is None:
            return None
        tc = self.params["tc"]
        err = math.hypot(tc.err, self.predicted_tc_err or 0.0)
        return (tc.median - self.predicted_tc) * 1440.0, err * 1440.0

    def value(self, name: str) -> float:
        """Median of a free parameter or the value of a fixed one."""
        return self.params[name].median if name in self.params else self.fixed[name]

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description of the fit."""
        oc = self.o_minus_c_min
        return {
            "target": self.lc.meta.get("target"),
            "time_scale": self.lc.time_scale,
            "time_source": self.lc.meta.get("time_source"),
            "n_points": int(self.used.size),
            "n_used": int(self.used.sum()),
            "outlier_rule": self.outlier_rule,
            "params": {k: v.as_dict() for k, v in self.params.items()},
            "fixed": self.fixed,
            "derived": self.extra.get("derived", {}),
            "orbit": {k: self.extra.get(k) for k in ("period", "ecc", "omega")},
            "detrend": {
                "vectors": list(self.detrend_vectors),
                "coefficients": [float(c) for c in self.detrend_coef],
                "bic_history": [
                    {"vectors": list(s.vectors), "chi2": s.chi2, "n_params": s.n_params, "bic": s.bic}
                    for s in self.bic_history
                ],
            },
            "error_scale": self.error_scale,
            "chi2_red": self.chi2_red,
            "chi2_red_meaning": (
                "reduced chi-square of the best fit against the light curve's own photon-noise "
                "errors, before they were scaled by error_scale = sqrt(chi2_red) and then by "
                "red_noise_beta; well below 1 means those errors were overestimated"
            ),
            "red_noise_beta": self.red_noise_beta,
            "rms": self.rms,
            "binned": {
                "minutes": self.bin_minutes,
                "rms": self.binned_rms,
                "white_noise_expected": self.binned_expected,
                "beta": self.binned_rms / self.binned_expected if self.binned_expected > 0 else None,
            },
            "ephemeris": {
                **self.extra.get("reference", {}),
                "predicted_tc": self.predicted_tc,
                "predicted_tc_err": self.predicted_tc_err,
                "o_minus_c_min": None if oc is None else oc[0],
                "o_minus_c_err_min": None if oc is None else oc[1],
                "o_minus_c_sigma": None if oc is None or oc[1] == 0 else oc[0] / oc[1],
            },
            "sampler": {"acceptance": self.acceptance, **self.extra.get("sampler", {})},
            "posterior_quantiles": posterior_quantiles(self.samples, self.sample_names),
            "meta": {k: v for k, v in self.lc.meta.items() if _jsonable(v)},
        }


#: The normal scores whose posterior quantiles a fit summary lists: -3.5 to 3.5 sigma by 0.25.
QUANTILE_Z = tuple(round(-3.5 + 0.25 * k, 2) for k in range(29))


def posterior_quantiles(samples: FloatArray | None, names: Sequence[str]) -> dict[str, Any] | None:
    """Each sampled parameter's quantiles at the normal scores :data:`QUANTILE_Z` (the levels
    ``Phi(z)``): enough of the posterior's shape to place a value in it (its CDF, as
    simulation-based calibration compares a known truth with a posterior), also where the
    posterior is one-sided (an inclination against 90 degrees). None without samples.
    """
    if samples is None or samples.size == 0:
        return None
    from scipy.stats import norm

    levels = 100.0 * norm.cdf(np.array(QUANTILE_Z))
    q = np.percentile(samples, levels, axis=0)
    return {"z": list(QUANTILE_Z), **{n: [float(v) for v in q[:, i]] for i, n in enumerate(names)}}


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | type(None)) or (
        isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value)
    )


def binned_scatter(time: FloatArray, residuals: FloatArray, minutes: float) -> tuple[float, float]:
    """RMS of residuals binned in ``minutes`` and the white-noise expectation for those bins.

    The expectation is ``sigma_1 / sqrt(n) * sqrt(M / (M - 1))`` with ``sigma_1`` the unbinned
    RMS, ``n`` the mean number of points per bin and ``M`` the number of bins (Winn et al. 2008).
    """
    err = np.ones_like(residuals)
    _, binned, _, counts, _ = bin_arrays(time, residuals, err, minutes)
    full = counts >= max(1, int(0.5 * np.median(counts))) if counts.size else counts.astype(bool)
    m = int(full.sum())
    if m < 2:
        return math.nan, math.nan
    rms_b = float(np.sqrt(np.mean(binned[full] ** 2)))
    sigma1 = float(np.std(residuals))
    n = float(np.mean(counts[full]))
    return rms_b, sigma1 / math.sqrt(n) * math.sqrt(m / (m - 1))


def param_estimates(
    problem: FitProblem, best: FloatArray, samples: FloatArray | None
) -> dict[str, ParamEstimate]:
    """Medians and 68 % intervals of the samples, or without samples the least-squares values
    with the Jacobian widths (uncapped: :func:`~.optimise.jacobian_widths`); ``best`` is the
    least-squares fit."""
    out: dict[str, ParamEstimate] = {}
    if samples is None:
        width = jacobian_widths(problem, best)
        for name, value, w in zip(problem.free, best, width, strict=True):
            out[name] = ParamEstimate(float(value), float(w), float(w), float(value))
        return out
    lo, med, hi = np.percentile(samples, [15.865, 50.0, 84.135], axis=0)
    for i, name in enumerate(problem.free):
        out[name] = ParamEstimate(float(med[i]), float(med[i] - lo[i]), float(hi[i] - med[i]), float(best[i]))
    return out


def derived_params(
    values: dict[str, float], priors: TransitPriors, samples: FloatArray | None, free: Sequence[str]
) -> dict[str, float]:
    """Depth, impact parameter and total duration (days) from the parameter values; the depth's
    spread over the samples when there are any."""
    rp, a, inc = values["rp_rs"], values["a_rs"], values["inc"]
    b = a * math.cos(math.radians(inc))
    arg = math.sqrt(max((1 + rp) ** 2 - b**2, 0.0)) / (a * math.sin(math.radians(inc)))
    t14 = priors.period / math.pi * math.asin(min(arg, 1.0))
    out = {"depth": rp**2, "impact_parameter": b, "duration_days": t14}
    if samples is not None and "rp_rs" in free:
        depth = samples[:, list(free).index("rp_rs")] ** 2
        out["depth_err"] = float(np.std(depth))
    return out
