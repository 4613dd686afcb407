"""The night report: one self-contained HTML file (figures embedded) and a ZIP of products."""

from __future__ import annotations

import html
import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from nightpipe import __version__
from nightpipe.config import Settings
from nightpipe.frames.fitsio import atomic_open, atomic_path
from nightpipe.report.conditions import conditions_section
from nightpipe.report.embed import png_data_uri, table_html
from nightpipe.report.identify_section import identify_section
from nightpipe.report.injection_section import injection_section
from nightpipe.report.interactive import load_library, page_scripts
from nightpipe.report.movers_section import movers_section
from nightpipe.report.night_state import state_rows, this_run_line
from nightpipe.report.target_section import target_sections
from nightpipe.store.db import Database
from nightpipe.store.models import Frame, Master, StepRun

log = logging.getLogger(__name__)

FRAME_STEPS = ("calibrate", "solve", "photometry")
CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}th{background:#f3f3f3}
.ok{color:#176e2c}.failed{color:#b00020;font-weight:bold}.skipped{color:#888}
.figs img{max-width:100%;margin:.5em 0;border:1px solid #eee}.empty{color:#888}
.summary span{display:inline-block;margin-right:2em}
figure{margin:.5em 0}figure img{max-width:100%}figcaption{font-size:.85em;color:#555}
.note{background:#fff6d6;padding:.3em .6em}.hint{color:#666;font-size:.85em}
.np-readout{font-family:ui-monospace,monospace;font-size:.8em;min-height:1.2em;color:#333}
.thisrun{color:#444}section.target{border-top:3px solid #5a8fd8;margin-top:1.5em}
"""


BINARY_SUFFIXES = frozenset({".fits", ".fit", ".fz", ".png", ".jpg", ".gz", ".zip"})


@dataclass(frozen=True)
class ReportPaths:
    """Where the report and the ZIP went."""

    html: Path
    zip: Path


def night_products(output: Path, night: str) -> list[Path]:
    """Product files of a night (tables, light curves, plots, masters), not calibrated frames."""
    found: list[Path] = []
    for sub in ("sources", "lightcurves", "plots", "astrometry", "tables", "identify", "movers"):
        folder = output / sub / night
        if folder.is_dir():
            found += sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return found


def _zip_options(path: Path) -> dict[str, int]:
    """Store binary products as they are (deflate gains little on floats and PNG, and costs
    seconds a night); compress text fast (level 1 is 5x faster than the default, ~10 % larger)."""
    if path.suffix.lower() in BINARY_SUFFIXES:
        return {"compress_type": zipfile.ZIP_STORED}
    return {"compress_type": zipfile.ZIP_DEFLATED, "compresslevel": 1}


def _frame_rows(db: Database, night: str | None) -> list[dict[str, Any]]:
    with db.session() as session:
        query = select(Frame).order_by(Frame.mid_utc, Frame.path)
        if night is not None:
            query = query.where(Frame.night == night)
        frames = list(session.scalars(query))
        ids = [f.id for f in frames]
        runs = list(session.scalars(select(StepRun).where(StepRun.frame_id.in_(ids)))) if ids else []
    by_frame: dict[int, dict[str, StepRun]] = {}
    for run in runs:
        if run.frame_id is not None:
            by_frame.setdefault(run.frame_id, {})[run.step] = run
    rows = []
    for frame in frames:
        row: dict[str, Any] = {
            "file": Path(frame.path).name,
            "kind": frame.kind + (" (inferred)" if frame.kind_inferred else ""),
            "filter": frame.filter,
            "exptime": frame.exptime,
            "mid UTC": frame.mid_utc.strftime("%H:%M:%S") if frame.mid_utc else None,
            "status": frame.status if frame.status == "ok" else f"{frame.status}: {frame.error}",
        }
        for step in FRAME_STEPS:
            step_run = by_frame.get(frame.id, {}).get(step)
            row[step] = None if step_run is None else step_run.status
        rows.append(row)
    return rows


STEP_ORDER = ("scan", "masters", "calibrate", "solve", "photometry", "zeropoint", "lightcurve", "report")


def _step_rank(step: str) -> tuple[int, str]:
    name = step.removeprefix("night:")
    aliases = {"zeropoints": "zeropoint", "lightcurves": "lightcurve"}
    name = aliases.get(name, name)
    return (STEP_ORDER.index(name) if name in STEP_ORDER else len(STEP_ORDER), name)


def _failures(db: Database, night: str | None) -> list[dict[str, Any]]:
    """Every failure of the night, in the order of the steps: each failed frame with its reason,
    each unreadable file, each target whose light curve failed, each step that could not run."""
    with db.session() as session:
        query = (
            select(StepRun, Frame)
            .join(Frame, StepRun.frame_id == Frame.id, isouter=True)
            .where(StepRun.status == "failed")
            .order_by(Frame.mid_utc, Frame.path, StepRun.id)
        )
        rows = []
        for run, frame in session.execute(query):
            if night is not None and (frame.night if frame is not None else run.night) != night:
                continue
            if frame is not None:
                rows.append({"step": run.step, "file": Path(frame.path).name, "reason": run.reason})
            elif run.step.startswith("night:"):
                if run.reason:  # the step could not run; its failed frames have rows of their own
                    rows.append(
                        {"step": run.step.removeprefix("night:"), "file": "(night)", "reason": run.reason}
                    )
            else:
                rows += _night_failures(run)
        bad = select(Frame).where(Frame.status == "bad").order_by(Frame.path)
        if night is not None:
            bad = bad.where((Frame.night == night) | Frame.night.is_(None))
        scanned = {(row["step"], row["file"]) for row in rows}
        for f in session.scalars(bad):
            if ("scan", Path(f.path).name) not in scanned:
                rows.append({"step": "scan", "file": Path(f.path).name, "reason": f.error})
    return sorted(rows, key=lambda row: _step_rank(str(row["step"])))  # stable: frame order kept


def _night_failures(run: StepRun) -> list[dict[str, Any]]:
    """A night-level run that failed: one row per failed target when its details name them."""
    details = run.details if isinstance(run.details, dict) else {}
    targets = [
        {"step": run.step, "file": f"(target {name})", "reason": item.get("reason")}
        for name, item in details.items()
        if isinstance(item, dict) and item.get("status") == "failed"
    ]
    return targets or [{"step": run.step, "file": "(night)", "reason": run.reason}]


def _masters(db: Database) -> list[dict[str, Any]]:
    with db.session() as session:
        masters = session.scalars(select(Master).where(Master.valid).order_by(Master.kind, Master.obs_time))
        return [
            {
                "kind": m.kind,
                "file": Path(m.path).name,
                "binning": f"{m.xbin}x{m.ybin}",
                "filter": m.filter,
                "exptime": m.exptime,
                "frames": m.nframes,
                "date": m.obs_time.date().isoformat() if m.obs_time else None,
            }
            for m in masters
        ]


def _figure_gallery(output: Path, night: str) -> str:
    parts = []
    for sub in ("plots",):  # the light curves' own figures are in the targets' sections
        folder = output / sub / night
        if not folder.is_dir():
            continue
        for png in sorted(p for p in folder.rglob("*.png") if not p.name.startswith(".")):
            caption = html.escape(str(png.relative_to(output)))
            image = f"<img src='{png_data_uri(png)}' alt='{caption}'>"
            parts.append(f"<figure>{image}<figcaption>{caption}</figcaption></figure>")
    return "".join(parts) or "<p class='empty'>no plots</p>"


def _estimate(params: dict[str, Any], name: str, fmt: str, scale: float = 1.0) -> str | None:
    """``median +plus/-minus`` of a fitted parameter (``None`` when it was not fitted)."""
    value = params.get(name)
    if not isinstance(value, dict) or value.get("median") is None:
        return None
    med = float(value["median"]) * scale
    plus, minus = value.get("plus"), value.get("minus")
    if plus is None or minus is None:
        return f"{med:{fmt}}"
    return f"{med:{fmt}} +{float(plus) * scale:{fmt}}/-{float(minus) * scale:{fmt}}"


def reference_t0_text(ephemeris: dict[str, Any]) -> str | None:
    """The ephemeris' reference time with its time standard, as published and as used.

    Examples
    --------
    >>> reference_t0_text({"t0_published": 2455867.402743, "t0_bjd_tdb": 2455867.402743, "t0_scale": "tdb"})
    '2455867.402743 BJD_TDB'
    >>> reference_t0_text({"t0_published": 2455867.4, "t0_bjd_tdb": 2455867.4008, "t0_scale": "utc",
    ...                    "t0_shift_s": 66.18})
    '2455867.400000 BJD_UTC = 2455867.400800 BJD_TDB (+66.2 s)'
    """
    scale, published = ephemeris.get("t0_scale"), ephemeris.get("t0_published")
    if scale is None or published is None:
        return None  # a fit written before the scale was recorded
    text = f"{published:.6f} BJD_{str(scale).upper()}"
    used = ephemeris.get("t0_bjd_tdb")
    if scale != "tdb" and used is not None:
        text += f" = {used:.6f} BJD_TDB ({ephemeris.get('t0_shift_s') or 0:+.1f} s)"
    return text


def fit_summary_row(fit: dict[str, Any]) -> dict[str, Any]:
    """The figures a reader looks for first in a transit fit (the JSON written by the light-curve step)."""
    params = fit.get("params") or {}
    derived = fit.get("derived") or {}
    ephemeris = fit.get("ephemeris") or {}
    binned = fit.get("binned") or {}
    row: dict[str, Any] = {
        "target": fit.get("target"),
        "points used": f"{fit.get('n_used')}/{fit.get('n_points')}",
        "Rp/Rs": _estimate(params, "rp_rs", ".4f"),
    }
    if derived.get("depth") is not None:
        err = derived.get("depth_err")
        row["depth %"] = f"{100 * derived['depth']:.3f}" + (f" ± {100 * err:.3f}" if err else "")
    tc = params.get("tc")
    if isinstance(tc, dict) and tc.get("median") is not None:
        err_min = 0.5 * (float(tc.get("plus") or 0) + float(tc.get("minus") or 0)) * 1440.0
        row["mid-transit " + str(fit.get("time_scale") or "")] = f"{tc['median']:.5f} ± {err_min:.1f} min"
    if ephemeris.get("o_minus_c_min") is not None:
        row["O-C min"] = f"{ephemeris['o_minus_c_min']:+.1f} ± {ephemeris.get('o_minus_c_err_min') or 0:.1f}"
        row["O-C reference t0"] = reference_t0_text(ephemeris)
    row["a/Rs"] = _estimate(params, "a_rs", ".2f")
    row["inc deg"] = _estimate(params, "inc", ".2f")
    if derived.get("duration_days") is not None:
        row["T14 h"] = f"{24 * derived['duration_days']:.2f}"
    if fit.get("rms") is not None:
        row["rms %"] = f"{100 * fit['rms']:.3f}"
    if binned.get("rms") is not None:
        beta = f" (beta {binned['beta']:.2f})" if binned.get("beta") is not None else ""
        row[f"{binned.get('minutes', 10):g}-min rms %"] = f"{100 * binned['rms']:.3f}{beta}"
    return {k: v for k, v in row.items() if v is not None}


def report_inputs_digest(settings: Settings, db: Database, night: str) -> str:
    """A hash of everything the report shows: product files (name, size, mtime) and the night's step rows."""
    import hashlib

    output = settings.paths.output
    digest = hashlib.sha256(settings.digest().encode())
    for path in night_products(output, night):
        stat = path.stat()
        digest.update(f"{path.relative_to(output)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    with db.session() as session:
        rows = session.execute(
            select(StepRun.step, StepRun.status, StepRun.frame_id, StepRun.input_hash, StepRun.reason)
            .join(Frame, StepRun.frame_id == Frame.id, isouter=True)
            .where((Frame.night == night) | (StepRun.night == night))
            .where(~StepRun.step.startswith("night:"), StepRun.step != "report")
            .order_by(StepRun.step, StepRun.frame_id)
        ).all()
        frames = session.execute(
            select(Frame.path, Frame.status, Frame.sha1).where(Frame.night == night).order_by(Frame.path)
        ).all()
        masters = session.execute(select(Master.path, Master.inputs_hash).order_by(Master.path)).all()
    for row in (*rows, *frames, *masters):
        digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()[:32]


def extra_sections(settings: Settings, db: Database, night: str) -> list[str]:
    """Sections other steps add to the report (injection-recovery, movers...): each is a function
    ``(settings, db, night) -> html`` listed in :data:`EXTRA_SECTIONS`; an empty string leaves it out."""
    return [text for section in EXTRA_SECTIONS if (text := section(settings, db, night))]


EXTRA_SECTIONS: tuple[Callable[[Settings, Database, str], str], ...] = ()


def write_night_report(settings: Settings, db: Database, night: str) -> ReportPaths:
    """Write ``reports/<night>.html`` and ``reports/<night>.zip`` under ``paths.output``."""
    output = settings.paths.output
    frames = _frame_rows(db, night)
    failures = _failures(db, night)
    library = load_library()
    counts: dict[str, int] = {}
    for row in frames:
        counts[row["kind"]] = counts.get(row["kind"], 0) + 1
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        f"<h1>{html.escape(settings.observatory.name)}: night {html.escape(night)}</h1>",
        f"<p class='summary'><span>{len(frames)} frames</span>"
        + "".join(f"<span>{html.escape(k)}: {v}</span>" for k, v in sorted(counts.items()))
        + f"<span>{len(failures)} failures</span>"
        + f"<span>generated {generated} by nightpipe {__version__}</span></p>",
        f"<p class='thisrun'>{html.escape(this_run_line(db, night))}</p>",
        target_sections(settings, night, library),
        "<h2>Injection-recovery</h2>",
        injection_section(output, night),
        "<h2>The night</h2>",
        table_html(state_rows(db, night, output)),
        "<h2>Conditions over the night</h2>",
        conditions_section(db, night, library),
        *extra_sections(settings, db, night),
        "<h2>What is in the field</h2>",
        identify_section(output, night),
        "<h2>Moving objects</h2>",
        movers_section(output, night),
        "<h2>Other figures</h2>",
        f"<div class='figs'>{_figure_gallery(output, night)}</div>",
        "<h2>Masters in the library</h2>",
        table_html(_masters(db)),
        "<h2>Failures</h2>",
        table_html(failures),
        "<h2>Frames</h2>",
        table_html(frames, limit=2000),
        page_scripts(library),
    ]
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>nightpipe {html.escape(night)}</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )
    report = output / "reports" / f"{night}.html"
    with atomic_open(report, "w", encoding="utf-8") as handle:
        handle.write(page)
    archive = output / "reports" / f"{night}.zip"
    with atomic_path(archive, suffix=".zip") as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(report, f"{night}/report.html", compresslevel=1)
        for path in night_products(output, night):
            zf.write(path, f"{night}/{path.relative_to(output)}", **_zip_options(path))
    log.info("report written to %s", report)
    return ReportPaths(html=report, zip=archive)
