"""The posterior: emcee walkers started around the least-squares fit, seeded so that a fit is
reproducible draw for draw.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nightpipe.timeseries.transit.likelihood import FitProblem
from nightpipe.timeseries.transit.optimise import covariance_scale
from nightpipe.timeseries.transit.priors import FitOptions

FloatArray = NDArray[np.float64]


def sample_posterior(
    problem: FitProblem, theta: FloatArray, opts: FitOptions
) -> tuple[FloatArray, float, dict[str, Any]]:
    """Sample the posterior around ``theta``: ``(flat chain after burn-in, mean acceptance, info)``.

    The walkers start in the priors' limits, scattered by 0.3 x the Jacobian widths with a
    generator seeded by ``opts.seed``; emcee's proposals are seeded by the same number.
    """
    import emcee

    ndim = theta.size
    nwalkers = max(opts.walkers, 2 * ndim + 2)
    rng = np.random.default_rng(opts.seed)
    width = covariance_scale(problem, theta)
    start: list[FloatArray] = []
    while len(start) < nwalkers:
        trial = theta + 0.3 * width * rng.standard_normal(ndim)
        if math.isfinite(problem.log_prior(trial)):
            start.append(trial)
        elif len(start) == 0 and rng.random() < 0.01:
            start.append(theta.copy())
    sampler = emcee.EnsembleSampler(nwalkers, ndim, problem.log_prob_batch, vectorize=True)
    sampler.random_state = np.random.RandomState(opts.seed).get_state()  # reproducible proposals
    sampler.run_mcmc(np.array(start), opts.steps, progress=False)
    burn = opts.steps // 2
    chain = sampler.get_chain(discard=burn, flat=True)
    try:  # tol=0: an estimate even for a short chain (reported, not enforced)
        tau_max = float(np.nanmax(sampler.get_autocorr_time(discard=burn, tol=0)))
    except (emcee.autocorr.AutocorrError, ValueError):  # pragma: no cover
        tau_max = math.nan
    info = {
        "walkers": nwalkers,
        "steps": opts.steps,
        "burn": burn,
        "autocorr_steps": tau_max,
        "chain_over_autocorr": (opts.steps - burn) / tau_max if tau_max > 0 else None,
        "samples": int(chain.shape[0]),
    }
    return np.asarray(chain), float(np.mean(sampler.acceptance_fraction)), info
