"""The kind of a frame (bias, dark, flat, light): from a frame-type keyword and its many
spellings, from OBJECT or the file name, and, when nothing says, from a small pixel sample.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from nightpipe.frames.headers.keywords import OBJECT_KEYS, TYPE_KEYS, clean_str, first_value

_LIGHT_WORDS = {"light", "object", "science", "sci", "target", "obj", "lightframe"}
_PICTTYPE = {1: "light", 2: "bias", 3: "dark", 4: "flat"}


def normalize_kind(value: Any) -> str | None:
    """Map a frame-type value (``'Bias Frame'``, ``'ZERO'``, ``'SKY_FLAT'``...) to a kind.

    Returns ``None`` when the text names none of bias, dark, flat or light (an arc, a
    focus frame...).

    Examples
    --------
    >>> [normalize_kind(v) for v in ("Bias Frame", "ZERO", "Dark Frame", "SKY_FLAT", "OBJECT")]
    ['bias', 'bias', 'dark', 'flat', 'light']
    >>> normalize_kind("Flat Dark"), normalize_kind("arc") is None
    ('dark', True)
    """
    if value is None or isinstance(value, bool):
        return None
    tokens = [t for t in re.split(r"[^a-z]+", str(value).lower()) if t]
    if not tokens:
        return None
    if any("dark" in t for t in tokens):
        return "dark"
    if any("bias" in t for t in tokens) or "zero" in tokens:
        return "bias"
    if any("flat" in t for t in tokens) or "twilight" in tokens:
        return "flat"
    if any(t in _LIGHT_WORDS for t in tokens) or " ".join(tokens) in {"light frame", "light frames"}:
        return "light"
    return None


_NAME_SUFFIXES = ("", "s", "frame", "frames", "field", "fields", "test", "flat", "flats", "dark", "darks")
_NAME_WORDS = {
    "light": "light", "lights": "light", "science": "light", "sci": "light",
    "zero": "bias", "zeros": "bias", "skyflat": "flat", "skyflats": "flat", "domeflat": "flat",
    "domeflats": "flat", "twflat": "flat", "twilightflat": "flat",
}  # fmt: skip


def kind_from_name(name: str) -> str | None:
    """The kind a file name announces, if any.

    Words of the name (split at anything but letters) are compared with a vocabulary:
    ``dark``, ``bias``, ``flat`` alone or followed by ``s``/``frame``/``field``/``test``
    (``darktest1.fit``, ``Bias_003.fits``, ``flatdark`` and ``darkflat`` are darks), ``zero``,
    ``skyflat``, ``light``... A word that merely contains one (``darksky``) does not count.

    Examples
    --------
    >>> kind_from_name("Dark_003.fits"), kind_from_name("M42_darksky.fits"), kind_from_name("darkflat-1.fit")
    ('dark', None, 'dark')
    """
    found = set()
    for token in re.split(r"[^a-z]+", name.lower()):
        if token in _NAME_WORDS:
            found.add(_NAME_WORDS[token])
        for stem in ("dark", "bias", "flat"):
            if token.startswith(stem) and token[len(stem) :] in _NAME_SUFFIXES:
                found.add("dark" if "dark" in token else stem)
    for kind in ("dark", "bias", "flat", "light"):
        if kind in found:
            return kind
    return None


_CALIBRATION_WORDS = {
    "dark", "darks", "bias", "biases", "zero", "zeros", "flat", "flats", "field", "fields", "frame",
    "frames", "sky", "dome", "twilight", "skyflat", "skyflats", "domeflat", "twflat", "evening", "morning",
    "dusk", "dawn", "test", "cal", "calib", "calibration", "screen", "panel", "lamp", "on", "off", "for",
}  # fmt: skip


def _is_calibration_phrase(text: str) -> bool:
    """True when every word of ``text`` is a calibration word (``'SKY_FLAT'``, ``'Flat 1'``),
    so that a target such as ``'Dark Nebula B33'`` is not taken for a dark."""
    words = [w for w in re.split(r"[^a-z]+", text.lower()) if w]
    return bool(words) and all(w in _CALIBRATION_WORDS for w in words)


def kind_from_header(cards: Mapping[str, Any], filename: str = "") -> tuple[str, bool, str | None]:
    """The kind of a frame from its header and name: ``(kind, inferred, source)``.

    In order: a frame-type keyword (then SBIG's numeric ``PICTTYPE``); a calibration word
    in OBJECT (``'SKY_FLAT'``); a calibration word in the file name; a target name in OBJECT
    (a light). ``'unknown'`` when nothing tells, and the caller may then look at the pixels
    (:func:`infer_kind_from_pixels`).
    """
    for key in TYPE_KEYS:
        value = cards.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        kind = normalize_kind(value)
        return (kind or "unknown"), False, _source(key, value)
    picttype = cards.get("PICTTYPE")  # SBIG: 1 light, 2 bias, 3 dark, 4 flat
    if isinstance(picttype, int) and not isinstance(picttype, bool) and picttype in _PICTTYPE:
        return _PICTTYPE[picttype], False, _source("PICTTYPE", picttype)
    obj = clean_str(first_value(cards, OBJECT_KEYS))
    kind = normalize_kind(obj) if obj and _is_calibration_phrase(obj) else None
    if kind is not None and kind != "light":
        return kind, True, _source("OBJECT", obj)
    kind = kind_from_name(filename)
    if kind is not None:
        return kind, True, "file name"
    if obj and kind is None:
        return "light", True, _source("OBJECT", obj)
    return "unknown", True, None


def _source(key: str, value: Any) -> str:
    return f"{key}={str(value).strip()!r}"[:64]


def _block_background(data: np.ndarray, block: int = 16) -> np.ndarray:
    """A coarse background: medians of ``block`` x ``block`` cells, repeated back to full size."""
    ny, nx = data.shape
    by, bx = max(ny // block, 1), max(nx // block, 1)
    hy, hx = ny // by, nx // bx
    cells = data[: by * hy, : bx * hx].reshape(by, hy, bx, hx)
    grid = np.median(cells, axis=(1, 3))
    background = np.repeat(np.repeat(grid, hy, axis=0), hx, axis=1)
    out = np.empty_like(data)
    out[: by * hy, : bx * hx] = background
    out[by * hy :, : bx * hx] = background[-1:, :]
    out[:, bx * hx :] = out[:, bx * hx - 1 : bx * hx]
    return out


def infer_kind_from_pixels(
    sample: np.ndarray, exptime: float | None, *, full_scale: float = 65535.0
) -> tuple[str, str]:
    """Classify a frame from a pixel sample (a central cut-out): ``(kind, reason)``.

    A coarse background (medians of 16 x 16 cells) is removed first, so gradients and
    vignetting do not count as structure. A frame whose median is above 10 % of
    ``full_scale`` and whose pixel noise is at least photon noise (variance above
    median/10, i.e. any gain below 10 e-/ADU) is a flat, unless it is crowded with stars
    (a bias or dark has a high offset but only read noise). Stars make compact groups of
    bright pixels: if more than 2e-4 of the pixels are 5 sigma above the background *and*
    touch another such pixel, the frame is a light. Otherwise a zero exposure is a
    bias, a positive one a dark.

    Parameters
    ----------
    sample
        2-D array of pixel values (NaNs ignored).
    exptime
        Exposure time, seconds, or ``None``.
    full_scale
        The largest value the detector can give (from BITPIX/BZERO).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> infer_kind_from_pixels(rng.normal(1000, 10, (64, 64)), 0.0)[0]
    'bias'
    """
    data = np.asarray(sample, dtype=np.float64)
    finite = data[np.isfinite(data)]
    if data.ndim != 2 or finite.size < 256 or min(data.shape) < 16:
        return "unknown", "stats: too few pixels"
    median = float(np.median(finite))
    residual = np.nan_to_num(data, nan=median) - _block_background(np.nan_to_num(data, nan=median))
    sigma = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    if sigma <= 0:
        sigma = float(np.std(residual)) or 1.0
    high = residual > 5.0 * sigma
    neighbour = np.zeros_like(high)
    neighbour[:, 1:] |= high[:, :-1]
    neighbour[:, :-1] |= high[:, 1:]
    neighbour[1:, :] |= high[:-1, :]
    neighbour[:-1, :] |= high[1:, :]
    fraction = float((high & neighbour).sum()) / data.size
    photon_noise = sigma**2 > median / 10.0  # Poisson noise for any gain below 10 e-/ADU
    if median > 0.1 * full_scale and photon_noise and fraction < 2e-3:
        return "flat", f"stats: level {median:.0f}, photon noise"
    if fraction > 2e-4:
        return "light", f"stats: {fraction:.1e} clustered bright px"
    if exptime is not None and exptime <= 0:
        return "bias", "stats: zero exposure, no structure"
    if exptime is not None:
        return "dark", "stats: no light, positive exposure"
    return "unknown", "stats: no light, no exposure time"
