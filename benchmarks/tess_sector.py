"""``bench_tess.py --sector``: ``nightpipe tess`` on a TESS sector light-curve file (issue 22).

Not a benchmark of its own (``run_all.py`` runs ``bench_*.py`` only): ``bench_tess.py`` imports it.

* the whole command, ``nightpipe tess --period 3.3 --t0 ...`` on a synthetic sector (27 days at
  2 minutes, 8 transits, 1,000 ppm), as a process: wall time, CPU (user + system of the child),
  the load average before and after;
* in a worker process: the joint fit's windows fitted with the default options, its posterior
  sampling timed (ours), then the same posterior sampled the usual way (the peer: one
  ``batman.TransitModel.light_curve`` per walker, emcee not vectorised, 64 walkers x 1,500 steps,
  the EXOTIC/juliet pattern), the ratio, and the floor: one model evaluation (a vectorised batch
  of 32 walkers, per walker) x the fewest evaluations the stopping rule accepts (64 walkers x 20
  autocorrelation times: 10 of burn-in, 10 kept).
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

T0, PERIOD = 2458326.0, 3.3


def write_sector(path: Path) -> Path:
    """The synthetic sector: 27 days at 2 minutes, a 1 % transit every 3.3 days."""
    from nightpipe.tess.synthetic import InjectedTransit, write_synthetic_lightcurve

    transit = InjectedTransit(T0, PERIOD, rp_rs=0.1, a_rs=10.0, inclination=88.0)
    write_synthetic_lightcurve(
        path, transit=transit, days=27.0, cadence_min=2.0, noise_ppm=1000, seed=3, start_bjd=T0 - 0.7
    )
    return path


def _peer_sampling(problem: Any, theta: np.ndarray, steps: int, walkers: int, seed: int) -> float:
    """The posterior of ``problem`` sampled the usual way (the model computed on every point, no
    supersampling: 2-minute cadence); returns the wall time."""
    import batman
    import emcee

    from nightpipe.timeseries.transit import solve_systematics

    t, f, w, A = problem.time, problem.flux, 1.0 / problem.err, problem.A
    lo, hi = problem.tc_bounds
    params = batman.TransitParams()
    params.t0, params.per, params.rp, params.a, params.inc = T0, PERIOD, 0.1, 10.0, 88.0
    params.ecc, params.w, params.limb_dark, params.u = 0.0, 90.0, "quadratic", [0.4, 0.25]
    model = batman.TransitModel(params, t)

    def log_prob(x: np.ndarray) -> float:
        tc, rp, a, inc, u1, u2 = x
        if not (lo < tc < hi and 0 < rp < 0.5 and 1 < a < 200 and 0 < inc <= 90):
            return -math.inf
        if a * math.cos(math.radians(inc)) > 1 + rp or not (u1 > 0 and u1 + u2 < 1 and u1 + 2 * u2 > 0):
            return -math.inf
        params.t0, params.rp, params.a, params.inc, params.u = tc, rp, a, inc, [u1, u2]
        _, total = solve_systematics(model.light_curve(params), f, w, A)
        return float(-0.5 * np.sum(((f - total) * w) ** 2))

    from nightpipe.timeseries.transit.sampling import start_walkers

    start = start_walkers(problem, theta, walkers, seed)  # the same start as ours
    sampler = emcee.EnsembleSampler(walkers, theta.size, log_prob)
    began = time.perf_counter()
    sampler.run_mcmc(start, steps, progress=False)
    return time.perf_counter() - began


def sector_worker(path: str, peer_steps: str, scale: str) -> None:
    """Ours and the peer on the joint fit of ``path``; prints one JSON line."""
    import nightpipe.timeseries.transit.fit as fit_module
    from nightpipe.tess.lightcurves import fit_multi_transit, lightcurve_from_file
    from nightpipe.tess.readers import read_lightcurve_file
    from nightpipe.timeseries.transit import FitOptions, TransitPriors
    from nightpipe.timeseries.transit import sampling as sampling_module

    captured: dict[str, Any] = {}
    original = sampling_module.sample_posterior

    def timed(problem: Any, theta: np.ndarray, opts: FitOptions) -> Any:
        began, cpu = time.perf_counter(), time.process_time()
        out = original(problem, theta, opts)
        captured.update(problem=problem, theta=theta, info=out[2], chain=out[0])
        captured.update(seconds=time.perf_counter() - began, cpu=time.process_time() - cpu)
        return out

    fit_module.sample_posterior = timed  # type: ignore[attr-defined]
    lc = lightcurve_from_file(read_lightcurve_file(Path(path)))
    began = time.perf_counter()
    result = fit_multi_transit(lc, TransitPriors(period=PERIOD, t0=T0), FitOptions(exptime_s=120.0),
                               per_transit=False)  # fmt: skip
    joint_s = time.perf_counter() - began
    problem, info = captured["problem"], captured["info"]
    batch = captured["chain"][np.random.default_rng(0).choice(len(captured["chain"]), 32, replace=False)]
    repeats = []
    for _ in range(20):
        t1 = time.perf_counter()
        problem.log_prob_batch(batch)
        repeats.append((time.perf_counter() - t1) / 32)
    per_eval = statistics.median(repeats)
    floor_evals = info["walkers"] * 20 * info["autocorr_steps"]
    theta = np.array([result.fit.params[n].median for n in result.fit.sample_names])
    peer = _peer_sampling(replace(problem), theta, int(peer_steps), info["walkers"], 1) * float(scale)
    print(json.dumps({
        "points": int(problem.time.size),
        "joint_fit_s": joint_s,
        "ours_sampling_s": captured["seconds"],
        "ours_sampling_cpu_s": captured["cpu"],
        "ours_evaluations": info["model_evaluations"],
        "ours_steps": info["steps"],
        "autocorr_steps": info["autocorr_steps"],
        "effective_samples": info["effective_samples"],
        "per_evaluation_us": per_eval * 1e6,
        "floor_s": per_eval * floor_evals,
        "floor_evaluations": floor_evals,
        "peer_sampling_s": peer,
        "peer_evaluations": info["walkers"] * 1500,
        "peer_scaled_from_steps": int(peer_steps),
        "rp_rs": result.fit.params["rp_rs"].median,
        "rp_rs_err": result.fit.params["rp_rs"].err,
    }))  # fmt: skip


def run_command(path: Path, out: Path) -> dict[str, float]:
    """``nightpipe tess`` on ``path`` as a process: wall and CPU seconds, load before and after."""
    load_before = os.getloadavg()[0]
    cmd = [sys.executable, "-c", "from nightpipe.cli.app import main; main()", "-q", "tess",
           "--period", str(PERIOD), "--t0", str(T0), "--out", str(out), str(path)]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "load_before": load_before, "load_after": os.getloadavg()[0]}


def bench_sector(quick: bool, script: str, root: Path) -> int:
    """Run the sector measurements, print them and write ``bench-results/tess-sector.json``."""
    from harness import run_json_child

    peer_steps, scale = (150, 10.0) if quick else (1500, 1.0)
    with tempfile.TemporaryDirectory(prefix="nightpipe-bench-sector-") as tmpdir:
        tmp = Path(tmpdir)
        path = write_sector(tmp / "sector.fits")
        command = run_command(path, tmp / "out")
        fits = json.loads((next((tmp / "out").rglob("*_fit.json"))).read_text())
        joint = run_json_child(script, "--sector-worker", str(path), str(peer_steps), str(scale))
    ratio = joint["peer_sampling_s"] / joint["ours_sampling_s"]
    print(
        f"nightpipe tess, TESS sector (19,440 cadences, 8 transits): {command['wall_s']:.1f} s wall, "
        f"{command['cpu_s']:.1f} s CPU (load {command['load_before']:.1f} -> {command['load_after']:.1f}); "
        f"before issue 22: 155 s wall, 155 s CPU at load 1.1 (commit 8c0ce6c, same file)"
    )
    peer_note = "" if scale == 1 else f" (scaled from {peer_steps} steps)"
    j = joint
    print(
        f"joint fit posterior ({j['points']} points in the windows): ours {j['ours_sampling_s']:.2f} s "
        f"({j['ours_evaluations']} evaluations, {j['ours_steps']} steps, tau {j['autocorr_steps']:.0f}, "
        f"{j['effective_samples']:.0f} independent samples), peer batman+emcee per walker "
        f"{j['peer_sampling_s']:.1f} s ({j['peer_evaluations']} evaluations{peer_note}): "
        f"{ratio:.1f}x faster; floor {j['floor_s']:.2f} s ({j['per_evaluation_us']:.1f} us per "
        f"evaluation x {j['floor_evaluations']:.0f}), ours / floor {j['ours_sampling_s'] / j['floor_s']:.1f}"
    )
    targets = [
        ("sector under 20 s wall", command["wall_s"] < 20.0),
        ("sector under 20 s CPU", command["cpu_s"] < 20.0),
    ]
    for name, ok in targets:
        print(f"{'PASS' if ok else 'FAIL'}: {name}")
    out = root / "bench-results"
    out.mkdir(exist_ok=True)
    record = {"command": command, "joint": joint, "ratio": ratio, "fit_sampler": fits.get("sampler"),
              "targets": {n: ok for n, ok in targets}}  # fmt: skip
    (out / "tess-sector.json").write_text(json.dumps(record, indent=2))
    return 0 if all(ok for _, ok in targets) else 1
