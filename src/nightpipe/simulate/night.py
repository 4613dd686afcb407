"""Write a whole synthetic night (calibration and light frames) and its ``truth.json``.

The night is reproducible: the seed fixes the camera, the field and every frame, and each
frame draws its noise from its own stream (``SeedSequence([seed, kind, index])``), so changing
the number of frames of one kind does not change the others.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from nightpipe.errors import ConfigError, NightpipeError
from nightpipe.progress import NullProgress, Progress
from nightpipe.simulate.fitswrite import write_uint16_fits
from nightpipe.simulate.night_render import NOISE_APERTURE_FWHM, _Night
from nightpipe.simulate.night_truth import _truth
from nightpipe.simulate.options import SimOptions
from nightpipe.simulate.plan import PlannedFrame, plan_frames, write_junk
from nightpipe.simulate.truth import Truth, write_json

logger = logging.getLogger(__name__)

TRUTH_FILE = "truth.json"

__all__ = ["NOISE_APERTURE_FWHM", "TRUTH_FILE", "simulate_night"]


def simulate_night(
    outdir: Path, options: SimOptions | None = None, *, progress: Progress | None = None, threads: int = 2
) -> Truth:
    """Write a synthetic raw night into ``outdir`` and its truth into ``outdir/truth.json``.

    Parameters
    ----------
    outdir
        Folder for the FITS files (created if needed; existing files of the same names are replaced).
    options
        What to simulate; the defaults give a 1024x1024 MaxIm DL night of 60 lights of a
        transiting target and 30 calibration frames.
    progress
        Receives one advance per file written.
    threads
        Frames rendered at once (the compiled kernels and the random draws release the GIL).
        The result does not depend on it: every frame has its own random stream.

    Returns
    -------
    Truth
        Every injected quantity (also written to ``truth.json``).

    Raises
    ------
    ConfigError
        When ``outdir`` exists and is not a folder, or the options cannot make a night (for
        example a pointing below 10 degrees of altitude).

    Examples
    --------
    >>> from dataclasses import replace
    >>> opts = SimOptions()
    >>> opts = replace(opts, camera=replace(opts.camera, size=128))
    >>> truth = simulate_night(tmp_path / "night", opts)  # doctest: +SKIP
    >>> truth.lights()[0]["target_rel_flux"]  # doctest: +SKIP
    1.0
    """
    options = options or SimOptions()
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ConfigError("the output folder is a file", path=outdir, hint="choose another folder")
    night = _Night(options)
    plan = plan_frames(options, night.series.starts)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        return _write_night(outdir, night, plan, progress, threads)
    except OSError as exc:
        raise NightpipeError(
            f"cannot write the night ({exc.strerror or exc})",
            path=exc.filename or outdir,
            hint="check the folder's permissions and free space",
        ) from None


def _write_night(
    outdir: Path, night: _Night, plan: list[PlannedFrame], progress: Progress | None, threads: int
) -> Truth:
    bar = progress or NullProgress()
    bar.start(len(plan), "simulating the night")

    def one(frame: PlannedFrame) -> dict[str, Any]:
        raw, cards, entry = night.render(frame)
        write_uint16_fits(outdir / frame.name, raw, cards)
        return entry

    entries: list[dict[str, Any]] = [{} for _ in plan]
    try:
        with ThreadPoolExecutor(max_workers=max(int(threads), 1)) as pool:
            futures = {pool.submit(one, frame): i for i, frame in enumerate(plan)}
            try:
                for future in as_completed(futures):
                    i = futures[future]
                    entries[i] = future.result()
                    bar.advance(plan[i].name)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    finally:
        bar.stop()
    truth_record = _truth(night, entries)
    if night.options.junk_files:
        truth_record.junk = write_junk(outdir, plan)
    data = truth_record.to_dict()
    write_json(outdir / TRUTH_FILE, data)
    truth = Truth(**data)  # plain JSON data, as Truth.load gives
    logger.info("wrote %d frames and %s into %s", len(plan), TRUTH_FILE, outdir)
    return truth
