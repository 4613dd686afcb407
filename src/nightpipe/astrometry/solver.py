"""Running astrometry.net's ``solve-field`` on a star list, offline, with header hints.

The pipeline feeds the solver the stars it detected itself (an xylist FITS table of X, Y,
FLUX), so ``solve-field`` does no image work: with a position and scale hint a frame solves
in about a second. The command is built as an argument list (never a shell string), runs in
a private temporary folder with a time limit, and its ``.wcs`` and ``.corr`` outputs are
parsed into a :class:`SolveFieldResult`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from nightpipe.astrometry.sources import StarList
from nightpipe.errors import AstrometryError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hints:
    """What the header (or the settings) say about where the frame points and its scale."""

    ra: float | None = None
    dec: float | None = None
    radius_deg: float = 2.0
    scale_low: float | None = None
    scale_high: float | None = None


@dataclass(frozen=True)
class SolveFieldResult:
    """A solution of ``solve-field``: its WCS and the star correspondences it found."""

    wcs: WCS
    header: fits.Header
    field_x: np.ndarray
    field_y: np.ndarray
    index_ra: np.ndarray
    index_dec: np.ndarray
    seconds: float
    blind: bool


def solver_available(program: str = "solve-field") -> bool:
    """True when the ``solve-field`` program can be found."""
    return shutil.which(program) is not None


def write_xylist(stars: StarList, path: Path) -> None:
    """Write stars as an astrometry.net xylist (1-based FITS pixel convention, brightest first)."""
    columns = [
        fits.Column(name="X", format="D", array=stars.x + 1.0),
        fits.Column(name="Y", format="D", array=stars.y + 1.0),
        fits.Column(name="FLUX", format="D", array=stars.flux),
    ]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns)]).writeto(path, overwrite=True)


def write_engine_config(index_dirs: tuple[Path, ...], path: Path, *, cpulimit: float) -> None:
    """Write an astrometry-engine configuration naming the index folders."""
    lines = [f"cpulimit {int(np.ceil(cpulimit))}", "inparallel"]
    lines += [f"add_path {Path(d).expanduser()}" for d in index_dirs]
    lines.append("autoindex")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def build_command(
    program: str,
    xylist: Path,
    *,
    width: int,
    height: int,
    hints: Hints,
    config: Path,
    outdir: Path,
    cpulimit: float,
    tweak_order: int,
    blind: bool,
) -> list[str]:
    """The ``solve-field`` argument list for one star list (no shell involved)."""
    cmd = [
        program,
        "--no-plots",
        "--overwrite",
        "--no-remove-lines",
        "--uniformize",
        "0",
        "--x-column",
        "X",
        "--y-column",
        "Y",
        "--sort-column",
        "FLUX",
        "--width",
        str(width),
        "--height",
        str(height),
        "--config",
        str(config),
        "--dir",
        str(outdir),
        "--out",
        "frame",
        "--cpulimit",
        str(int(np.ceil(cpulimit))),
        "--crpix-center",
        "--new-fits",
        "none",
        "--index-xyls",
        "none",
        "--rdls",
        "none",
        "--match",
        "none",
        "--corr",
        str(outdir / "frame.corr"),
        "--wcs",
        str(outdir / "frame.wcs"),
        "--solved",
        str(outdir / "frame.solved"),
        "--temp-dir",
        str(outdir),
    ]
    if tweak_order > 0:
        cmd += ["--tweak-order", str(tweak_order)]
    else:
        cmd += ["--no-tweak"]
    if hints.scale_low is not None and hints.scale_high is not None:
        cmd += ["--scale-units", "arcsecperpix", "--scale-low", f"{hints.scale_low:.6g}"]
        cmd += ["--scale-high", f"{hints.scale_high:.6g}"]
    if not blind and hints.ra is not None and hints.dec is not None:
        cmd += ["--ra", f"{hints.ra:.6f}", "--dec", f"{hints.dec:.6f}", "--radius", f"{hints.radius_deg:.4g}"]
    cmd.append(str(xylist))
    return cmd


def parse_outputs(outdir: Path, *, seconds: float, blind: bool) -> SolveFieldResult | None:
    """Read ``frame.wcs`` and ``frame.corr`` from a finished run; ``None`` when it did not solve."""
    wcs_path = outdir / "frame.wcs"
    if not (outdir / "frame.solved").exists() or not wcs_path.exists():
        return None
    import warnings

    header = fits.getheader(wcs_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header)
    fx = fy = ira = idec = np.empty(0)
    corr = outdir / "frame.corr"
    if corr.exists():
        table = fits.getdata(corr, 1)
        # .corr positions use the 1-based convention of the xylist; convert back to 0-based.
        fx = np.asarray(table["field_x"], float) - 1.0
        fy = np.asarray(table["field_y"], float) - 1.0
        ira = np.asarray(table["index_ra"], float)
        idec = np.asarray(table["index_dec"], float)
    return SolveFieldResult(wcs, header, fx, fy, ira, idec, seconds, blind)


def _run_with_timeout(cmd: list[str], *, timeout: float) -> tuple[int, str]:
    """Run ``cmd`` in its own process group; on timeout kill the whole group (solve-field's
    ``astrometry-engine`` child included) and re-raise :class:`subprocess.TimeoutExpired`."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, output or ""


def run_solve_field(
    stars: StarList,
    *,
    hints: Hints,
    index_dirs: tuple[Path, ...],
    program: str = "solve-field",
    timeout_s: float = 60.0,
    tweak_order: int = 2,
    blind_fallback: bool = True,
    max_stars: int = 100,
) -> SolveFieldResult:
    """Solve a star list with ``solve-field``: hinted first, then blind if allowed.

    Parameters
    ----------
    stars
        Detected stars (0-based positions), brightest first.
    hints
        Pointing and scale hints; missing ones are simply not used.
    index_dirs
        Folders of index files.
    program
        The ``solve-field`` executable.
    timeout_s
        Time limit of each attempt (CPU limit for the solver, wall limit for the process).
    tweak_order
        SIP order of solve-field's own fit (0: none).
    blind_fallback
        Try again without the position hint when the hinted attempt fails.
    max_stars
        Give the solver at most this many of the brightest stars.

    Raises
    ------
    AstrometryError
        When the solver is missing, too few stars were given, or no attempt solved.
    """
    if shutil.which(program) is None:
        raise AstrometryError(
            f"the plate solver {program!r} is not installed",
            hint="install astrometry.net (apt-get install astrometry.net astrometry-data-tycho2) "
            "or set astrometry.solve_field",
        )
    if len(stars) < 5:
        raise AstrometryError(f"only {len(stars)} stars detected; need at least 5 to solve")
    height, width = stars.shape
    attempts = [False]
    if blind_fallback and hints.ra is not None:
        attempts.append(True)
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="nightpipe-solve-") as tmp:
        folder = Path(tmp)
        xylist = folder / "stars.xyls"
        write_xylist(stars.brightest(max_stars), xylist)
        config = folder / "engine.cfg"
        write_engine_config(index_dirs, config, cpulimit=timeout_s)
        for blind in attempts:
            # a right hint solves in about a second; a wrong one would search its whole radius
            budget = timeout_s if blind or len(attempts) == 1 else min(timeout_s, max(3.0, timeout_s / 12))
            cmd = build_command(
                program,
                xylist,
                width=width,
                height=height,
                hints=hints,
                config=config,
                outdir=folder,
                cpulimit=budget,
                tweak_order=tweak_order,
                blind=blind,
            )
            log.debug("running %s", " ".join(cmd))
            start = time.perf_counter()
            try:
                returncode, output = _run_with_timeout(cmd, timeout=budget * 1.5 + 10)
            except subprocess.TimeoutExpired:
                errors.append(f"{'blind' if blind else 'hinted'} solve timed out after {budget:.0f} s")
                continue
            seconds = time.perf_counter() - start
            result = parse_outputs(folder, seconds=seconds, blind=blind)
            if result is not None:
                log.debug("solve-field solved in %.2f s (%s)", seconds, "blind" if blind else "hinted")
                return result
            tail = output.strip().splitlines()[-1:] or ["no output"]
            errors.append(
                f"{'blind' if blind else 'hinted'} solve failed (exit {returncode}: {tail[0][:120]})"
            )
    raise AstrometryError(
        "; ".join(errors),
        hint="check the pointing/scale hints (astrometry.pixel_scale) "
        "and that the index files cover the field size",
    )
