"""The results of ``nightpipe tess``: one file's light curve, one target's, and a run's summary.

Made by :mod:`~nightpipe.tess.analysis` and written out by :mod:`~nightpipe.tess.products`;
both import them from here, so neither imports the other for its types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nightpipe.tess.lightcurves import MultiTransitResult
from nightpipe.tess.photometry import PixelPhotometry
from nightpipe.timeseries.lightcurve import LightCurve


@dataclass(eq=False)
class FileLightCurve:
    """One file's light curve and, for pixel files, its photometry."""

    path: Path
    target: str
    label: str
    lightcurve: LightCurve
    photometry: PixelPhotometry | None = None


@dataclass(eq=False)
class TargetResult:
    """Everything made for one target: its light curves, the joint fit, the files written."""

    target: str
    label: str
    curves: list[FileLightCurve]
    combined: LightCurve
    fit: MultiTransitResult | None = None
    fit_error: str | None = None
    products: dict[str, Path] = field(default_factory=dict)


@dataclass(eq=False)
class TessSummary:
    """What a run did: results per target and the files that failed, with reasons."""

    targets: list[TargetResult]
    failed: dict[Path, str]

    @property
    def n_ok(self) -> int:
        """Number of files read and measured."""
        return sum(len(t.curves) for t in self.targets)
