"""The report's parameter table of one transit fit: each parameter with its errors and its prior,
the limb darkening, the derived figures and the O-C against the ephemeris."""

from __future__ import annotations

from typing import Any

from nightpipe.config import TargetConfig

LABELS = {
    "tc": "mid-transit Tc",
    "rp_rs": "Rp/Rs",
    "a_rs": "a/Rs",
    "inc": "inclination (deg)",
    "u1": "limb darkening u1 (quadratic)",
    "u2": "limb darkening u2 (quadratic)",
}
DIGITS = {"tc": 5, "rp_rs": 4, "a_rs": 2, "inc": 2, "u1": 3, "u2": 3}


def _value(entry: Any, digits: int) -> str:
    if not isinstance(entry, dict) or entry.get("median") is None:
        return ""
    med = float(entry["median"])
    plus, minus = entry.get("plus"), entry.get("minus")
    if plus is None or minus is None:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} +{float(plus):.{digits}f} / -{float(minus):.{digits}f}"


def _prior(value: float | None, err: float | None, digits: int, *, free: str = "free") -> str:
    if value is None:
        return free
    if err:
        return f"{value:.{digits}f} ± {err:.{digits}f} (Gaussian)"
    return f"{value:.{digits}f} (starting value)"


def _priors(target: TargetConfig | None, fit: dict[str, Any]) -> dict[str, str]:
    if target is None:
        return {}
    ephemeris = fit.get("ephemeris") or {}
    predicted = ephemeris.get("predicted_tc")
    u = target.limb_darkening
    u_err = target.limb_darkening_err
    out = {
        "tc": f"{predicted:.5f} ± {1440 * float(ephemeris.get('predicted_tc_err') or 0):.1f} min (ephemeris)"
        if predicted is not None
        else "free",
        "rp_rs": "free (uniform)",
    }
    if target.a_rs is not None:  # the widths the likelihood uses when none is given
        out["a_rs"] = _prior(target.a_rs, target.a_rs_err or 0.05 * target.a_rs, 2)
    if target.inclination is not None:
        out["inc"] = _prior(target.inclination, target.inclination_err or 1.0, 2)
    if u is None:
        out["u1"] = out["u2"] = "free"
    else:
        for k, value in enumerate(u):
            out[f"u{k + 1}"] = _prior(float(value), u_err, 3) if u_err else f"{value:.3f} (fixed)"
    return out


def parameter_rows(fit: dict[str, Any], target: TargetConfig | None) -> list[dict[str, str]]:
    """Rows of (parameter, fitted value with errors, prior)."""
    params = fit.get("params") or {}
    priors = _priors(target, fit)
    rows = [
        {"parameter": LABELS.get(name, name), "fitted": _value(entry, DIGITS.get(name, 4)),
         "prior": priors.get(name, "")}
        for name, entry in params.items()
    ]  # fmt: skip
    for name, value in (fit.get("fixed") or {}).items():
        rows.append(
            {"parameter": LABELS.get(name, name), "fitted": f"{float(value):.4g} (fixed)", "prior": ""}
        )
    orbit = fit.get("orbit") or {}
    if orbit.get("period") is not None:
        rows.append(
            {"parameter": "period (d)", "fitted": f"{orbit['period']:.7f} (fixed)", "prior": "ephemeris"}
        )
    derived = fit.get("derived") or {}
    if derived.get("depth") is not None:
        err = derived.get("depth_err")
        depth = f"{100 * derived['depth']:.3f}" + (f" ± {100 * err:.3f}" if err else "")
        rows.append({"parameter": "depth (%)", "fitted": depth, "prior": "derived"})
    if derived.get("impact_parameter") is not None:
        rows.append({"parameter": "impact parameter b", "fitted": f"{derived['impact_parameter']:.2f}",
                     "prior": "derived"})  # fmt: skip
    if derived.get("duration_days") is not None:
        rows.append({"parameter": "duration T14 (h)", "fitted": f"{24 * derived['duration_days']:.2f}",
                     "prior": "derived"})  # fmt: skip
    ephemeris = fit.get("ephemeris") or {}
    if ephemeris.get("o_minus_c_min") is not None:
        oc = f"{ephemeris['o_minus_c_min']:+.1f} ± {float(ephemeris.get('o_minus_c_err_min') or 0):.1f} min"
        sigma = ephemeris.get("o_minus_c_sigma")
        rows.append({"parameter": "O-C", "fitted": oc + (f" ({sigma:+.1f} σ)" if sigma is not None else ""),
                     "prior": f"t0 {ephemeris.get('t0_bjd_tdb', 0):.6f} BJD_TDB"})  # fmt: skip
    binned = fit.get("binned") or {}
    if fit.get("rms") is not None:
        beta = binned.get("beta")
        text = f"{100 * fit['rms']:.3f}" + (
            f"; {binned.get('minutes', 10):g}-min bins {100 * binned['rms']:.3f} (β {beta:.2f})"
            if binned.get("rms") is not None and beta is not None
            else ""
        )
        rows.append({"parameter": "rms (%)", "fitted": text, "prior": ""})
    detrend = (fit.get("detrend") or {}).get("vectors")
    rows.append({"parameter": "detrending", "fitted": ", ".join(detrend) if detrend else "none",
                 "prior": "chosen by BIC"})  # fmt: skip
    return rows
