"""Calibrated images as 8-bit PNGs for the browser, and the overlay of sources and catalogue stars.

Pixel convention (tested): the PNG is the FITS image flipped vertically, so that FITS row 1 (the
bottom of the detector, as DS9 shows it) is the last PNG row. A source at 0-based numpy pixel
(x, y) (the source table's convention; FITS pixel x + 1, y + 1) has its centre at PNG pixel
column ``px = x`` and row ``py = ny - 1 - y``; in canvas coordinates, where PNG pixel (i, j)
covers [i, i + 1) x [j, j + 1), that centre is at (px + 0.5, py + 0.5).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.visualization import AsinhStretch, ZScaleInterval

from nightpipe.errors import FitsReadError
from nightpipe.frames.fitsio import atomic_open, image_hdu_index, open_fits
from nightpipe.frames.flags import PixelFlag, describe
from nightpipe.web.results.products import FrameProducts, calibrated_mags, catalogue_stars, source_table

STRETCHES = ("zscale", "asinh")


def _read_pixels(path: Path) -> tuple[np.ndarray, fits.Header]:
    """The image as float32 with NaN where there is no data (NaN input or MASK's NO_DATA bit)."""
    with open_fits(path) as hdul:
        index = image_hdu_index(hdul)
        data = np.array(hdul[index].data, dtype=np.float32)
        header = hdul[index].header.copy()
        if "MASK" in [h.name for h in hdul]:
            mask = np.asarray(hdul["MASK"].data)
            if mask.shape == data.shape:
                data[(mask & int(PixelFlag.NO_DATA)) != 0] = np.nan
    if data.ndim != 2:
        raise FitsReadError(f"the image has {data.ndim} axes, not 2", path=path, hint="choose a 2-D frame")
    return data, header


def scale_to_bytes(data: np.ndarray, stretch: str = "zscale") -> np.ndarray:
    """``data`` as uint8 (0 where not finite), flipped so that FITS row 1 is the bottom row."""
    if stretch not in STRETCHES:
        raise ValueError(f"unknown stretch {stretch!r}: use one of {', '.join(STRETCHES)}")
    finite = np.isfinite(data)
    sample = data[finite][:: max(1, int(finite.sum()) // 200_000)]
    if sample.size == 0:
        return np.zeros(data.shape, dtype=np.uint8)[::-1]
    lo, hi = ZScaleInterval().get_limits(sample)
    if stretch == "asinh":
        hi = float(np.percentile(sample, 99.9))
    hi = hi if hi > lo else lo + 1.0
    scaled = (data - lo) * (1.0 / (hi - lo))
    np.clip(scaled, 0.0, 1.0, out=scaled)
    if stretch == "asinh":
        scaled = AsinhStretch(a=0.05)(scaled, clip=True)
    scaled = np.nan_to_num(scaled * 255.0 + 0.5, nan=0.0)
    return np.ascontiguousarray(scaled.astype(np.uint8)[::-1])


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def render_png(path: Path, stretch: str = "zscale", *, cache_dir: Path | None = None) -> bytes:
    """The full-resolution image at ``path`` as an 8-bit grey PNG (see the module doc for the
    orientation). With ``cache_dir``, the PNG is kept there keyed by the file's mtime, size and stretch."""
    path = Path(path)
    stat = path.stat()
    cached = None
    if cache_dir is not None:
        cached = cache_dir / f"{path.stem}-{stat.st_mtime_ns}-{stat.st_size}-{stretch}.png"
        if cached.is_file():
            return cached.read_bytes()
    data, _ = _read_pixels(path)
    payload = _png(scale_to_bytes(data, stretch))
    if cached is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
        with atomic_open(cached, "wb") as handle:
            handle.write(payload)
    return payload


def _clean(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def overlay_json(frame: FrameProducts, output: Path, db_url: str) -> dict[str, Any]:
    """Detected sources and matched catalogue stars of a frame, in the PNG's pixels (module doc).

    Each source has every column of the source table (aperture fluxes per radius), its calibrated
    magnitude when the zero-point step made one, ``px``/``py`` (PNG pixel), ``x_fits``/``y_fits``.
    """
    if frame.image is None:
        return {"frame": frame.id, "width": None, "height": None, "sources": [], "catalogue": []}
    with open_fits(frame.image) as hdul:
        header = hdul[image_hdu_index(hdul)].header.copy()
    nx, ny = int(header["NAXIS1"]), int(header["NAXIS2"])
    table = source_table(frame)
    mags = calibrated_mags(db_url, frame.id)
    radii = list(table.meta.get("aper_radii_px") or []) if table is not None else []
    sources = []
    for row in table if table is not None else []:
        item: dict[str, Any] = {}
        for name in table.colnames:  # type: ignore[union-attr]
            value = row[name]
            if getattr(value, "ndim", 0):
                for k, v in enumerate(np.asarray(value).tolist()):
                    item[f"{name}_{k}"] = _clean(v)
            else:
                item[name] = _clean(value)
        x, y = float(row["x"]), float(row["y"])
        item.update(px=x, py=ny - 1 - y, x_fits=x + 1.0, y_fits=y + 1.0)
        item["flux"] = item.get("aper_flux_0")
        item["flag_names"] = describe(int(row["flags"]))
        item.update(mags.get(int(row["id"]), {"mag": None, "mag_err": None}))
        sources.append(item)
    return {
        "frame": frame.id,
        "width": nx,
        "height": ny,
        "aper_radii_px": radii,
        "convention": "px = x (0-based column), py = height - 1 - y; canvas centre (px + 0.5, py + 0.5)",
        "sources": sources,
        "catalogue": _project(catalogue_stars(output, frame), header, ny),
    }


def _project(stars: list[dict[str, Any]], header: fits.Header, ny: int) -> list[dict[str, Any]]:
    if not stars or not header.get("CTYPE1"):
        return []
    import warnings

    from astropy.wcs import WCS, FITSFixedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header, naxis=2)
    x, y = wcs.all_world2pix([s["ra"] for s in stars], [s["dec"] for s in stars], 0)
    return [
        {**s, "x": float(xi), "y": float(yi), "px": float(xi), "py": float(ny - 1 - yi)}
        for s, xi, yi in zip(stars, x, y, strict=True)
    ]
