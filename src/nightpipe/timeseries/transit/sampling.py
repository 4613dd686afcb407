"""The posterior: emcee walkers started around the least-squares fit, seeded so that a fit is
reproducible draw for draw, run until the chain is long against its autocorrelation time.

The model is vectorised over the walkers (emcee's ``vectorize=True``: one call per half-ensemble
move). Sampling stops at the first check (every :data:`CHECK_EVERY` steps) where the second half
of the chain, the part kept, is at least :data:`KEEP_TAUS` autocorrelation times long (so the
discarded first half, the burn-in, is as long), the autocorrelation time differs by less than
:data:`TAU_RTOL` from its estimate on a chain :data:`TAU_BASELINE` times as long (a short chain
underestimates it, and the estimate grows with the chain until the chain is long enough: a
comparison with the previous check, a few percent shorter, would miss that), and the kept
samples hold at least :data:`MIN_EFFECTIVE` independent ones; ``FitOptions.steps`` caps the chain.
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

#: Steps between two convergence checks.
CHECK_EVERY = 50
#: The kept half of the chain must be this many autocorrelation times long.
KEEP_TAUS = 10.0
#: Largest relative change of the autocorrelation time against the estimate on the shorter chain.
TAU_RTOL = 0.05
#: Length of that shorter chain, as a fraction of the current one.
TAU_BASELINE = 0.7
#: Least number of independent samples kept (walkers x kept steps / autocorrelation time).
MIN_EFFECTIVE = 600.0


def start_walkers(problem: FitProblem, theta: FloatArray, nwalkers: int, seed: int) -> FloatArray:
    """Walkers in the priors' limits, scattered by 0.3 x the Jacobian widths around ``theta``."""
    ndim = theta.size
    rng = np.random.default_rng(seed)
    width = covariance_scale(problem, theta)
    start: list[FloatArray] = []
    while len(start) < nwalkers:
        trial = theta + 0.3 * width * rng.standard_normal(ndim)
        if math.isfinite(problem.log_prior(trial)):
            start.append(trial)
        elif len(start) == 0 and rng.random() < 0.01:
            start.append(theta.copy())
    return np.array(start)


def autocorr_time(chain: FloatArray) -> float:
    """The largest integrated autocorrelation time (steps) of a ``steps x walkers x dim`` chain
    (emcee's estimator, ``tol=0``: an estimate even for a short chain); NaN when undefined, which
    is also when a walker has not moved in some parameter over the chain (its autocorrelation is
    0/0, and that parameter's time is unknown, so the chain is not called converged).

    >>> chain = np.random.default_rng(1).standard_normal((200, 8, 2))
    >>> 0.5 < autocorr_time(chain) < 2.0
    True
    >>> chain[:, 3, 1] = 0.7  # one walker stuck in the second parameter
    >>> autocorr_time(chain)
    nan
    """
    import emcee

    try:
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(np.max(emcee.autocorr.integrated_time(chain, tol=0)))
    except (emcee.autocorr.AutocorrError, ValueError):  # pragma: no cover
        return math.nan


def converged(steps: int, tau: float, tau_before: float, nwalkers: int) -> bool:
    """The stopping rule of the module docstring for a chain of ``steps`` (half kept).

    Examples
    --------
    >>> converged(1000, 40.0, 40.5, 64)  # 500 kept >= 10 x 40, 64 x 500 / 40 = 800 independent
    True
    >>> converged(600, 40.0, 40.5, 64)  # 300 kept < 400
    False
    >>> converged(1000, 40.0, 30.0, 64)  # tau still growing with the chain
    False
    """
    kept = steps - steps // 2
    if not (math.isfinite(tau) and tau > 0 and math.isfinite(tau_before)):
        return False
    return (
        kept >= KEEP_TAUS * tau
        and abs(tau - tau_before) < TAU_RTOL * tau
        and nwalkers * kept / tau >= MIN_EFFECTIVE
    )


def sample_posterior(
    problem: FitProblem, theta: FloatArray, opts: FitOptions
) -> tuple[FloatArray, float, dict[str, Any]]:
    """Sample the posterior around ``theta``: ``(flat chain after burn-in, mean acceptance, info)``.

    The walkers start in the priors' limits, scattered by 0.3 x the Jacobian widths with a
    generator seeded by ``opts.seed``; emcee's proposals are seeded by the same number. The chain
    stops on the autocorrelation rule of the module (at most ``opts.steps`` steps); the first half
    is discarded as burn-in.
    """
    import emcee

    ndim = theta.size
    nwalkers = max(opts.walkers, 2 * ndim + 2)
    start = start_walkers(problem, theta, nwalkers, opts.seed)
    sampler = emcee.EnsembleSampler(nwalkers, ndim, problem.log_prob_batch, vectorize=True)
    sampler.random_state = np.random.RandomState(opts.seed).get_state()  # reproducible proposals
    state: Any = start
    steps, tau, stopped = 0, math.nan, False
    history: dict[int, float] = {}
    while steps < opts.steps:
        chunk = min(CHECK_EVERY, opts.steps - steps)
        state = sampler.run_mcmc(state, chunk, progress=False)
        steps += chunk
        tau = history[steps] = autocorr_time(sampler.get_chain(discard=steps // 2))
        shorter = [n for n in history if n <= TAU_BASELINE * steps]
        tau_before = history[max(shorter)] if shorter else math.nan
        if converged(steps, tau, tau_before, nwalkers):
            stopped = True
            break
    burn = steps // 2
    chain = sampler.get_chain(discard=burn, flat=True)
    info = {
        "walkers": nwalkers,
        "steps": steps,
        "max_steps": opts.steps,
        "burn": burn,
        "autocorr_steps": tau,
        "chain_over_autocorr": (steps - burn) / tau if tau > 0 else None,
        "effective_samples": nwalkers * (steps - burn) / tau if tau > 0 else None,
        "stopped_on_autocorr": stopped,
        "model_evaluations": nwalkers * (steps + 1),
        "samples": int(chain.shape[0]),
    }
    return np.asarray(chain), float(np.mean(sampler.acceptance_fraction)), info
