"""Fetching TESS/Kepler/K2 files by target name, when a network is at hand (optional).

Everything else in :mod:`nightpipe.tess` works on files already on disk; this module only
asks MAST for the files of a target, through lightkurve's search functions (lightkurve is
imported only here and only when asked). Offline, or without lightkurve, it raises a
:class:`~nightpipe.errors.CatalogError` that says to download the files elsewhere and give
their paths instead.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from nightpipe.errors import CatalogError

log = logging.getLogger(__name__)

Product = Literal["tpf", "lc", "tesscut"]


def _lightkurve_search(product: Product) -> Callable[..., Any]:
    try:
        with warnings.catch_warnings():  # lightkurve warns at import about optional extras
            warnings.simplefilter("ignore")
            import lightkurve
    except ImportError:
        raise CatalogError(
            "downloading needs the lightkurve package",
            hint="pip install lightkurve, or download the files elsewhere and give their paths",
        ) from None
    return {
        "tpf": lightkurve.search_targetpixelfile,
        "lc": lightkurve.search_lightcurve,
        "tesscut": lightkurve.search_tesscut,
    }[product]


def download_products(
    target: str,
    folder: Path,
    *,
    product: Product = "lc",
    sector: int | None = None,
    author: str | None = "SPOC",
    cutout_size: int = 11,
    search: Callable[..., Any] | None = None,
) -> list[Path]:
    """Download the files of ``target`` from MAST into ``folder``; returns their paths.

    Parameters
    ----------
    target
        A name MAST resolves (``WASP-126``, ``TIC 25155310``, ``EPIC 201907706``).
    folder
        Where the files go (lightkurve's cache layout below it).
    product
        ``lc`` (light-curve files), ``tpf`` (target pixel files) or ``tesscut`` (FFI cut-outs).
    sector
        Only this sector (TESS) or campaign/quarter; ``None`` for all.
    author
        Pipeline of the files (``SPOC``, ``QLP``, ``TESS-SPOC``...); ``None`` for any.
    cutout_size
        Side of a TESScut cut-out, pixels.
    search
        The search function (lightkurve's by default; tests pass a stand-in).

    Raises
    ------
    CatalogError
        When lightkurve is missing, MAST cannot be reached, or nothing is found.
    """
    search = search or _lightkurve_search(product)
    kwargs: dict[str, Any] = {}
    if sector is not None:
        kwargs["sector"] = sector
    if author is not None and product != "tesscut":
        kwargs["author"] = author
    try:
        result = search(target, **kwargs)
        if len(result) == 0:
            raise CatalogError(
                f"MAST has no {product} files for {target!r}"
                + (f" in sector {sector}" if sector is not None else ""),
                hint="check the name, the sector and --author",
            )
        folder.mkdir(parents=True, exist_ok=True)
        extra = {"cutout_size": cutout_size} if product == "tesscut" else {}
        collection = result.download_all(download_dir=str(folder), quality_bitmask="none", **extra)
    except CatalogError:
        raise
    except Exception as exc:  # network and service failures come in many types
        raise CatalogError(
            f"cannot download {product} files of {target!r} ({exc.__class__.__name__}: {exc})",
            hint="this needs the network; download the files elsewhere and give their paths",
        ) from None
    paths = []
    for item in collection or []:
        name = getattr(item, "path", None) or getattr(item, "meta", {}).get("FILENAME")
        if name:
            paths.append(Path(name))
    log.info("downloaded %d %s file(s) of %s into %s", len(paths), product, target, folder)
    return paths
