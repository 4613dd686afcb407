"""What a calibrated frame says about itself: its HISTORY lines and its header cards (the masters,
the corrections not applied, the detector values used and where each came from, cosmic rays).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nightpipe import __version__
from nightpipe.calib.apply import ApplyParams, Calibrated
from nightpipe.frames.headers import ascii_name

if TYPE_CHECKING:
    from nightpipe.calib.calibrate import FrameJob

_MISSING_KEYS = {"bias": "NOBIAS", "dark": "NODARK", "flat": "NOFLAT"}


def history_lines(job: FrameJob, result: Calibrated, plan_lines: list[str], params: ApplyParams) -> list[str]:
    """The HISTORY of a calibrated frame: the raw file, each correction and master, the detector
    values and where they came from, the uncertainty model."""
    lines = [f"nightpipe {__version__} calibrate {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"]
    lines.append(f"raw: {job.path}[{job.hdu}]")
    lines += plan_lines
    bias, dark, flat, badpix = (job.masters.get(k) for k in ("bias", "dark", "flat", "badpix"))
    if bias is not None and result.bias_coeff:
        lines.append(f"bias subtracted (x{result.bias_coeff:.6g}): {bias.path}")
    elif bias is not None:
        lines.append(f"bias not subtracted separately: the dark includes it ({bias.path})")
    if dark is not None:
        what = "bias-included dark" if dark.bias_included else "dark"
        lines.append(
            f"{what} subtracted (x{result.dark_coeff:.6g}, dark {dark.exptime} s, "
            f"frame {params.exptime:g} s): {dark.path}"
        )
    if flat is not None:
        lines.append(f"flat divided: {flat.path}")
    if badpix is not None:
        lines.append(f"bad-pixel mask applied: {badpix.path}")
    for kind, reason in job.missing.items():
        lines.append(f"NOT APPLIED: {kind} ({reason})")
    if not job.masters:
        lines.append("NO MASTERS APPLIED: this frame is not bias-, dark- or flat-corrected")
    det = job.detector
    lines.append(
        f"gain {det.gain.value:g} e-/ADU ({det.gain.source}), read noise {det.read_noise.value:g} e- "
        f"({det.read_noise.source}), saturation {det.saturation.value:g} ADU ({det.saturation.source})"
    )
    if det.offset is not None:
        lines.append(
            f"camera offset {det.offset.keyword} = {det.offset.value:g}: a setting the masters were "
            "matched on, not subtracted"
        )
    lines += [f"WARNING: {w.message}" for w in det.warnings]
    lines.append(
        f"uncertainty: shot noise (gain {params.gain:g} e-/ADU), read noise {params.read_noise:g} e-, "
        "master errors, in quadrature"
    )
    if result.unit == "electron":
        lines.append(f"converted to electrons with gain {params.gain:g}")
    return lines


def product_keywords(
    job: FrameJob, result: Calibrated, params: ApplyParams, cosmic: dict[str, Any]
) -> dict[str, tuple[object, str]]:
    """The header cards of a calibrated frame (``None`` values remove a raw card): unit, masters,
    corrections not applied, the gain, read noise and saturation used and their sources, cosmics."""
    keys: dict[str, tuple[object, str]] = {
        "BUNIT": (result.unit, "unit of the science data"),
        "NPCALIB": (f"nightpipe {__version__}", "calibrated by"),
        "NPRAW": (ascii_name(Path(job.path).name), "raw file"),
    }
    for kind, key in (
        ("bias", "BIASFILE"),
        ("dark", "DARKFILE"),
        ("flat", "FLATFILE"),
        ("badpix", "BPMFILE"),
    ):
        ref = job.masters.get(kind)
        if ref is not None:
            name = ascii_name(Path(ref.path).name)
            keys[key] = (name, f"master {kind}" if len(name) < 50 else "")
    for kind, key in _MISSING_KEYS.items():
        keys[key] = (True, f"{kind} correction NOT applied") if kind not in job.masters else (None, "")
    keys["NOMASTER"] = (True, "no master at all was applied") if not job.masters else (None, "")
    if "dark" in job.masters:
        keys["DARKSCAL"] = (round(result.dark_coeff, 8), "factor applied to the master dark")
    det = job.detector
    keys["NPGAIN"] = (params.gain, "[e-/ADU] gain used")
    keys["NPGAINSR"] = _source_card(det.gain.source, "where the gain came from")
    keys["NPRDNOIS"] = (params.read_noise, "[e-] read noise used")
    keys["NPRNSRC"] = _source_card(det.read_noise.source, "where the read noise came from")
    keys["NPSATUR"] = (det.saturation.value, "[ADU] raw saturation level used")
    keys["NPSATSRC"] = _source_card(det.saturation.source, "where the saturation came from")
    if result.unit == "electron":
        keys["GAIN"] = (1.0, "e-/unit: data are in electrons")
        keys["NPGAIN"] = (params.gain, "[e-/ADU] gain used for the conversion")
    if cosmic:
        keys["CRMODE"] = (cosmic["mode"], "cosmic-ray detection mode")
        keys["NCOSMIC"] = (cosmic["pixels"], "pixels flagged as cosmic rays")
        keys["CRPSFW"] = (cosmic.get("psf_fwhm", 0.0), "[px] PSF FWHM of the cosmic-ray veto (0: none)")
    return keys


def _source_card(source: str, comment: str) -> tuple[str, str]:
    """A provenance card that fits in 80 characters: the comment goes when the value needs the room."""
    value = source[:68]
    return (value, comment if len(value) + len(comment) <= 62 else "")
