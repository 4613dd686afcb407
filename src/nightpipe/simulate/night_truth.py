"""The truth record of a simulated night: every injected quantity (camera, detector defects, flat,
field, transit, moving object, variable star) gathered from the drawn night into a :class:`Truth`,
as written to ``truth.json``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from nightpipe.simulate.night_render import _Night
from nightpipe.simulate.truth import TRUTH_VERSION, Truth, to_jsonable


def _truth(night: _Night, entries: list[dict[str, Any]]) -> Truth:
    """The whole truth of ``night``, with ``entries`` (one per frame, in plan order) as its frames."""
    opts, fld = night.options, night.field
    options_data = to_jsonable(replace(opts, stars=None))
    options_data["stars"] = "given" if opts.stars is not None else "random"
    if not opts.movers:
        del options_data["movers"]  # a night without them writes the truth it wrote before
    return Truth(
        version=TRUTH_VERSION,
        seed=opts.seed,
        dialect=opts.dialect,
        options=options_data,
        camera=_camera_truth(night),
        flat=_flat_truth(night),
        field=_field_truth(night),
        transit=_transit_truth(night),
        frames=entries,
        moving_object={"mag": opts.moving_mag, "rate_arcsec_per_min": opts.moving_rate}
        if opts.moving_object
        else None,
        variable={
            "index": fld.variable,
            "amplitude": opts.variable_amplitude,
            "period_hours": opts.variable_period,
        }
        if fld.variable >= 0
        else None,
        movers=_movers_truth(night),
    )


def _movers_truth(night: _Night) -> list[dict[str, Any]]:
    """The injected movers: magnitude, rate (px per frame and arcsec per minute), direction on the
    reference grid, and the reference-grid path at each light's mid-exposure (per-light positions
    with the pointing offsets are in the light entries' ``movers``)."""
    paths = night.series.movers
    if paths is None:
        return []
    return [
        {
            "mag": spec.mag,
            "rate_px_per_frame": float(paths.rate_px_frame[m]),
            "rate_arcsec_per_min": float(paths.rate_arcsec_min[m]),
            "angle_deg": float(paths.angle_deg[m]),
            "trail_px": float(2.0 * np.hypot(paths.trail_x[m], paths.trail_y[m])),
            "x_ref": paths.x[m],
            "y_ref": paths.y[m],
        }
        for m, spec in enumerate(night.options.movers)
    ]


def _camera_truth(night: _Night) -> dict[str, Any]:
    """The camera: geometry, gain and noise, bias, linearity, dark current and the bad pixels."""
    opts, det, cam = night.options, night.detector, night.options.camera
    hot_flat = det.hot[:, 0] * cam.size + det.hot[:, 1] if det.hot.size else np.zeros(0, dtype=np.int64)
    return {
        "shape": [cam.size, cam.size + cam.overscan],
        "data_width": cam.size,
        "overscan": cam.overscan,
        "binning": cam.binning,
        "gain": cam.gain,
        "read_noise_e": cam.read_noise,
        "read_noise_adu": cam.read_noise / cam.gain,
        "bias_level": cam.bias_level,
        "bias_mean_adu": night.bias_mean,
        "bias_pattern_rms": float(np.std(det.bias - det.bias.mean())),
        "bias_drift_rms": cam.bias_drift,
        "adc_max": opts.adc_max,
        "nonlinear_knee_adu": cam.nonlinear_knee * opts.adc_max,
        "full_well_e": cam.full_well,
        "dark": {
            "median_e_per_s": float(np.median(det.dark_rate)),
            "mean_e_per_s": float(np.mean(det.dark_rate)),
            "mean_e_per_s_without_hot": float(np.mean(np.delete(det.dark_rate.ravel(), hot_flat))),
            "ref_temp": cam.dark_ref_temp,
            "doubling_temp": cam.dark_doubling,
            "law": "rate(T) = rate(ref_temp) * 2 ** ((T - ref_temp) / doubling_temp)",
        },
        "hot_pixels": det.hot,
        "hot_pixel_rates_e_per_s": det.dark_rate[det.hot[:, 0], det.hot[:, 1]] if det.hot.size else [],
        "dead_pixels": det.dead,
        "dead_column": det.dead_column,
        "dead_column_rows": [0, int(cam.size * 0.4)] if det.dead_column is not None else None,
    }


def _flat_truth(night: _Night) -> dict[str, Any]:
    """The flat field: vignetting, dust and pixel response."""
    det, cam, cal = night.detector, night.options.camera, night.options.calibration
    return {
        "vignetting_centre": det.vignetting_centre,
        "vignetting_corner_loss": cal.vignetting,
        "vignetting_law": "1 / (1 + k r^2)^2",
        "dust": [d.to_dict() for d in det.dust],
        "prnu_rms": cam.prnu,
        "kind": cal.flat_kind,
    }


def _field_truth(night: _Night) -> dict[str, Any]:
    """The field: pointing, scale, sky, PSF, WCS, the stars and the site."""
    opts, fld, sky = night.options, night.field, night.options.sky
    return {
        "ra": opts.site.ra,
        "dec": opts.site.dec,
        "pixel_scale": opts.scale,
        "rotation": sky.rotation,
        "zeropoint": sky.zeropoint,
        "extinction": sky.extinction,
        "psf": sky.psf,
        "moffat_beta": sky.moffat_beta,
        "wcs": dict(night.field.wcs.to_header()),
        "target_index": fld.target,
        "variable_index": fld.variable,
        "stars": {"ra": fld.ra, "dec": fld.dec, "mag": fld.mag, "x": fld.x, "y": fld.y},
        "site": {
            "name": opts.site.name,
            "latitude": opts.site.latitude,
            "longitude": opts.site.longitude,
            "elevation": opts.site.elevation,
        },
    }


def _transit_truth(night: _Night) -> dict[str, Any]:
    """The injected transit of the target."""
    tr, s = night.options.transit, night.series
    return {
        "enabled": tr.enabled,
        "t0_bjd_tdb": s.t0_bjd,
        "period": tr.period,
        "rp": tr.rp,
        "a": tr.a,
        "inc": tr.inc,
        "ecc": 0.0,
        "u": tr.u,
        "limb_dark": "quadratic",
    }
