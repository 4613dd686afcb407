"""A master on disk: its file name, its provenance header and its FITS layout.

A master is written atomically as FITS (primary float32, ``UNCERT`` standard error, ``MASK``
flags: :func:`write_master`) with its provenance in the header (:func:`master_header`), under
the file name of its keys in the masters folder (:func:`unique_master_path`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from nightpipe import __version__
from nightpipe.calib.combine import CombineResult
from nightpipe.calib.library import MasterKeys
from nightpipe.calib.master_groups import FrameGroup
from nightpipe.calib.master_inputs import MasterImage
from nightpipe.calib.overscan import OverscanPlan
from nightpipe.frames.fitsio import write_fits_atomic
from nightpipe.frames.headers import ascii_text
from nightpipe.store.models import Frame

SOFTWARE = f"nightpipe {__version__}"


def _gain_key(offset: object, gain_setting: object) -> str:
    """The card of a master's e-/ADU: ``EGAIN`` beside an OFFSET or a gain setting, else ``GAIN``."""
    return "EGAIN" if offset is not None or gain_setting is not None else "GAIN"


def master_header(
    group: FrameGroup,
    used: Sequence[Frame],
    result: CombineResult,
    plan: OverscanPlan,
    *,
    inputs_hash: str,
    settings_hash: str,
    bias: MasterImage | None,
    dark: MasterImage | None,
    bias_included: bool,
    quality: dict[str, Any],
) -> fits.Header:
    """The header of a combined master: its keys, the combination and its rejection, the hashes of
    its inputs and settings, its quality figures, and the corrections and inputs as HISTORY."""
    k = group.keys
    h = fits.Header()
    h["NPKIND"] = (k.kind, "nightpipe master kind")
    h["IMAGETYP"] = {"bias": "Bias Frame", "dark": "Dark Frame", "flat": "Flat Field"}.get(k.kind, k.kind)
    for key, value, comment in (
        ("XBINNING", k.xbin, "binning in x"),
        ("YBINNING", k.ybin, "binning in y"),
        ("NRAWX", k.naxis1, "NAXIS1 of the raw inputs"),
        ("NRAWY", k.naxis2, "NAXIS2 of the raw inputs"),
        # beside a CMOS camera's OFFSET or gain setting, GAIN means the setting (N.I.N.A.,
        # SharpCap...): the e-/ADU go to EGAIN there, so the master reads back as it was meant
        (_gain_key(k.offset, k.gain_setting), k.gain, "e-/ADU of the inputs"),
        ("OFFSET", k.offset, "camera offset of the inputs"),
        ("GAINSET", k.gain_setting, "CMOS gain setting of the inputs"),
        ("READOUTM", k.readout_mode, "readout mode of the inputs"),
        ("FILTER", k.filter, "filter"),
        ("EXPTIME", k.exptime, "[s] median exposure of the inputs"),
        ("CCD-TEMP", k.ccd_temp, "[C] median CCD temperature of the inputs"),
        ("DATE-OBS", k.obs_time.isoformat(timespec="seconds") if k.obs_time else None, "median time, UTC"),
        ("NIGHT", group.night, "night of the inputs"),
    ):
        if value is not None:
            h[key] = (value, comment)
    h["NCOMBINE"] = (len(used), "frames combined")
    opts = result.options
    h["COMBMETH"] = (opts.method, "combination centre")
    h["CLIPMETH"] = (opts.clip, "rejection")
    h["SIGLOW"] = (opts.sigma_low, "lower clip, MAD sigmas")
    h["SIGHIGH"] = (opts.sigma_high, "upper clip, MAD sigmas")
    h["MAXITERS"] = (opts.max_iters, "sigma-clipping iterations")
    h["REJFRAC"] = (round(result.rejected_fraction, 6), "fraction of values rejected")
    h["BIASINCL"] = (bias_included, "the bias level is still in this master")
    # "1" (dimensionless) rather than "": astropy CCDData.read needs a unit it can parse
    h["BUNIT"] = ("adu" if k.kind != "flat" else "1", "unit of the data (flat: dimensionless)")
    h["NPINHASH"] = (inputs_hash, "hash of the inputs")
    h["NPSETHSH"] = (settings_hash, "hash of the calibration settings")
    h["NPSOFT"] = (SOFTWARE, "software")
    for key, name in (("QLEVEL", "level"), ("QNOISE", "noise"), ("QFRNOISE", "frame_noise")):
        if isinstance(quality.get(name), float):
            h[key] = (quality[name], f"quality: {name}")
    if bias is not None:
        h["HISTORY"] = ascii_text(f"bias subtracted: {bias.path}")
    if dark is not None:
        h["HISTORY"] = ascii_text(f"dark subtracted: {dark.path} (scaled by exposure)")
    for line in plan.describe():
        h["HISTORY"] = ascii_text(line)
    if k.kind == "flat":
        h["HISTORY"] = "each flat divided by the median of its central region; master renormalised to 1"
    for f in used:
        h["HISTORY"] = ascii_text(f"input: {f.path}[{f.hdu}]")
    return h


def write_master(
    path: Path, data: np.ndarray, uncert: np.ndarray, mask: np.ndarray, header: fits.Header
) -> None:
    """Write a master atomically: the data (float32) with ``header``, ``UNCERT`` and ``MASK`` (uint16)."""
    primary = fits.PrimaryHDU(data.astype(np.float32), header=header)
    unc = fits.ImageHDU(uncert.astype(np.float32), name="UNCERT")
    unc.header["UTYPE"] = "StdDevUncertainty"
    msk = fits.ImageHDU(mask.astype(np.uint16), name="MASK")
    write_fits_atomic(fits.HDUList([primary, unc, msk]), path)


def unique_master_path(directory: Path, keys: MasterKeys, taken: set[Path], inputs_hash: str) -> Path:
    """The file of a master of ``keys`` in ``directory``; the path is added to ``taken``.

    When a master of this run already has that name (masters whose keys differ only by what the
    name leaves out, the raw image size), the image size is added (``bias_..._128x128px_...``), and
    the start of ``inputs_hash`` if that is taken too. :func:`~nightpipe.calib.masters.run_masters`
    builds the groups of most frames first, so the odd master is the one with the longer name.
    """
    path = directory / keys.filename()
    if path in taken and keys.naxis1 is not None and keys.naxis2 is not None:
        stem, _, date = path.stem.rpartition("_")
        path = path.with_name(f"{stem}_{keys.naxis1}x{keys.naxis2}px_{date}.fits")
    if path in taken:
        path = path.with_name(f"{path.stem}_{inputs_hash[:6]}.fits")
    taken.add(path)
    return path
