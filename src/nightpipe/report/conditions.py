"""The report's conditions over the night: seeing, sky, airmass and zero point per frame, as a
static figure and, when uPlot is at hand, as synchronised interactive charts (hover: the frame)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import select

from nightpipe.report.embed import figure_data_uri
from nightpipe.report.interactive import ChartLibrary, Series, chart_html
from nightpipe.store.db import Database
from nightpipe.store.models import Frame

LABELS = {"fwhm_px": "FWHM (px)", "sky": "sky (ADU/px)", "airmass": "airmass", "zero_point": "zero point"}
COLOURS = {"fwhm_px": "#5a8fd8", "sky": "#8c6d31", "airmass": "#2ca02c", "zero_point": "#9467bd"}
XLABEL = "hours since midnight UT of the night's date"


def conditions_series(db: Database, night: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """Seeing, sky, airmass and zero point per frame of the night, and the frames' names."""
    from nightpipe.store.models_calphot import ZeroPoint
    from nightpipe.store.models_photometry import PhotometryFrame

    with db.session() as session:
        rows = session.execute(
            select(
                Frame.jd_utc,
                PhotometryFrame.fwhm_px,
                PhotometryFrame.sky,
                ZeroPoint.airmass,
                ZeroPoint.zero_point,
                Frame.path,
            )
            .join(PhotometryFrame, PhotometryFrame.frame_id == Frame.id)
            .join(ZeroPoint, ZeroPoint.frame_id == Frame.id, isouter=True)
            .where(Frame.night == night, Frame.jd_utc.is_not(None))
            .order_by(Frame.jd_utc)
        ).all()
    names = ("time", "fwhm_px", "sky", "airmass", "zero_point")
    series = {n: np.array([r[k] for r in rows], dtype=float) for k, n in enumerate(names)}  # None -> nan
    return series, [Path(str(r[5])).name for r in rows]


def _hours(t: np.ndarray) -> np.ndarray:
    return np.asarray((t - np.floor(t.min() - 0.5) - 0.5) * 24.0, dtype=float)


def conditions_figure(series: dict[str, np.ndarray], night: str) -> str | None:
    """The static figure (a ``data:`` URI), or None without two frames with values."""
    keys = [k for k in LABELS if np.isfinite(series[k]).any()]
    if series["time"].size < 2 or not keys:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = _hours(series["time"])
    fig, axes = plt.subplots(len(keys), 1, figsize=(9, 2.0 * len(keys)), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], keys, strict=True):
        ax.plot(hours, series[key], ".", ms=4)
        ax.set_ylabel(LABELS[key])
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel(XLABEL)
    fig.suptitle(f"Conditions over the night {night}")
    return figure_data_uri(fig)


def conditions_section(db: Database, night: str, library: ChartLibrary) -> str:
    """Interactive charts when uPlot is at hand, else the static figure with a note."""
    series, frames = conditions_series(db, night)
    keys = [k for k in LABELS if np.isfinite(series[k]).any()]
    if series["time"].size < 2 or not keys:
        return "<p class='empty'>no source tables yet</p>"
    if library.script is None:
        uri = conditions_figure(series, night)
        note = f"<p class='note'>{library.missing}</p>"
        return note + (f"<img src='{uri}' alt='conditions'>" if uri else "")
    hours = _hours(series["time"])
    charts = [
        chart_html(
            f"conditions-{key}",
            hours.tolist(),
            [Series(LABELS[key], series[key].tolist(), COLOURS[key], digits=4)],
            xlabel=XLABEL,
            ylabel=LABELS[key],
            frames=frames,
            sync="conditions",
            height=170,
        )
        for key in keys
    ]
    hint = "<p class='hint'>Drag to zoom, double-click to reset; hover a point for its frame.</p>"
    return hint + "".join(charts)
