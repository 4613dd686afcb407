"""Write a whole synthetic night (calibration and light frames) and its ``truth.json``.

The night is reproducible: the seed fixes the camera, the field and every frame, and each
frame draws its noise from its own stream (``SeedSequence([seed, kind, index])``), so changing
the number of frames of one kind does not change the others.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u

from nightpipe.errors import ConfigError, NightpipeError
from nightpipe.progress import NullProgress, Progress
from nightpipe.simulate.camera import Exposure, dark_scale, expose_and_read
from nightpipe.simulate.cosmics import cosmic_tracks, expected_hits
from nightpipe.simulate.detector import Detector, build_detector
from nightpipe.simulate.field import StarField, build_field
from nightpipe.simulate.fitswrite import Card, write_uint16_fits
from nightpipe.simulate.flats import gradient_map
from nightpipe.simulate.headers import FrameMeta, header_cards
from nightpipe.simulate.noise import ccd_noise, total_noise
from nightpipe.simulate.options import SimOptions
from nightpipe.simulate.plan import PlannedFrame, plan_frames, write_junk
from nightpipe.simulate.psf import enclosed_fraction, render_stars_compiled
from nightpipe.simulate.series import LightSeries, build_series
from nightpipe.simulate.truth import TRUTH_VERSION, Truth, to_jsonable, write_json
from nightpipe.simulate.turns import frame_positions, turned_wcs

logger = logging.getLogger(__name__)

TRUTH_FILE = "truth.json"
NOISE_APERTURE_FWHM = 1.5
"""Aperture radius, in FWHM, assumed by the expected noise of the target in the truth file."""

_STREAMS = {"setup": 0, "series": 1, "bias": 2, "dark": 3, "flat": 4, "light": 5}


def _rng(seed: int, kind: str, index: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _STREAMS[kind], index]))


class _Night:
    """Renders the frames of one night; holds the drawn detector, field and series."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        setup = _rng(options.seed, "setup")
        self.detector: Detector = build_detector(options, setup)
        self.field: StarField = build_field(options, setup)
        self.series: LightSeries = build_series(options, self.field, _rng(options.seed, "series"))
        cam = options.camera
        side_cm = cam.size * cam.binning * cam.pixel_size_um * 1e-4
        self.area_cm2 = side_cm**2
        self.shape = (cam.size, cam.size)
        self.dark_median = float(np.median(self.detector.dark_rate))
        self.bias_mean = float(np.mean(self.detector.bias[:, : cam.size]))

    # ------------------------------------------------------------------ electrons per kind
    def _temperature(self, rng: np.random.Generator) -> float:
        cam = self.options.camera
        return float(cam.ccd_temp + cam.ccd_temp_jitter * rng.standard_normal())

    def _dark_factor(self, exptime: float, temperature: float) -> float:
        cam = self.options.camera
        return dark_scale(temperature, cam.dark_ref_temp, cam.dark_doubling) * exptime

    def _flat_light(self, rng: np.random.Generator) -> tuple[np.ndarray, float, dict[str, float]]:
        """Illumination of a flat (electrons before the pixel response), uniform part, truth entries."""
        opts = self.options
        target_adu = opts.calibration.flat_level * opts.adc_max - opts.camera.bias_level
        level = max(target_adu, 0.0) * opts.camera.gain
        if opts.calibration.flat_kind == "twilight":  # level falls with the sky, small gradient
            level *= float(rng.uniform(0.85, 1.15))
            gradient = (float(rng.uniform(0.0, 0.02)), float(rng.uniform(0, 2 * np.pi)))
            light = gradient_map(self.shape, *gradient)
            light *= np.float32(level)
            uniform = 0.0
        else:
            level *= float(rng.uniform(0.98, 1.02))
            gradient = (0.0, 0.0)
            light = np.zeros(self.shape, dtype=np.float32)
            uniform = level
        info = {"level_e": level, "gradient_amplitude": gradient[0], "gradient_angle": gradient[1]}
        return light, uniform, info

    def _star_light(self, i: int) -> tuple[np.ndarray, float]:
        """Stars (and the moving object) of light ``i`` in electrons, and its sky per pixel."""
        s, sky = self.series, self.options.sky
        x, y = frame_positions(self.field.x, self.field.y, s.dx[i], s.dy[i], s.rotation_deg[i], self.shape[1])
        flux = s.star_e[i]
        if s.moving_x.size:
            mx, my = self._moving_position(i)
            x, y = np.append(x, mx), np.append(y, my)
            flux = np.append(flux, s.moving_e[i])
        stars = render_stars_compiled(self.shape, x, y, flux, float(s.fwhm_px[i]), sky.psf, sky.moffat_beta)
        return stars, float(s.sky_e[i])

    def _moving_position(self, i: int) -> tuple[float, float]:
        """The moving object in light ``i`` (its path already holds the pointing offset)."""
        s = self.series
        mx, my = frame_positions(
            s.moving_x[i : i + 1], s.moving_y[i : i + 1], 0.0, 0.0, s.rotation_deg[i], self.shape[1]
        )
        return float(mx[0]), float(my[0])

    def exposure(
        self, frame: PlannedFrame, rng: np.random.Generator, temperature: float
    ) -> tuple[Exposure, dict[str, Any]]:
        """Expected electrons of the light-sensitive area (by component) and the frame's truth entries.

        Cosmic-ray charge is included (it then gets photon noise like the rest).
        """
        info: dict[str, Any] = {}
        dark = self.detector.dark_rate
        if frame.kind == "bias":
            return Exposure(dark=dark, dark_factor=0.0), info
        factor = self._dark_factor(frame.exptime, temperature)
        light: np.ndarray | None = None
        sky_e = 0.0
        if frame.kind == "flat":
            light, sky_e, flat_info = self._flat_light(rng)
            info.update(flat_info)
        elif frame.kind == "light":
            light, sky_e = self._star_light(frame.index)
        pixels, charge = np.zeros((0, 2), dtype=np.int64), np.zeros(0)
        if frame.kind in ("dark", "light"):
            n = int(rng.poisson(expected_hits(self.options.sky.cosmic_rate, self.area_cm2, frame.exptime)))
            pixels, charge = cosmic_tracks(rng, self.shape, n)
            info.update(cosmic_count=n, cosmic_pixels=pixels)
        exposure = Exposure(
            dark=dark,
            dark_factor=factor,
            light=light,
            response=None if light is None else self.detector.response[str(frame.filter)],
            sky=sky_e,
            cosmic_index=pixels[:, 0] * self.shape[1] + pixels[:, 1],
            cosmic_charge=charge,
        )
        return exposure, info

    # ------------------------------------------------------------------ files
    def meta(self, frame: PlannedFrame, temperature: float) -> FrameMeta:
        """Dialect-independent description of one file, for its header."""
        opts, cam, site = self.options, self.options.camera, self.options.site
        is_light = frame.kind == "light"
        i = frame.index
        focal_mm = 206.265 * cam.pixel_size_um / opts.sky.pixel_scale
        return FrameMeta(
            kind=frame.kind,
            start=frame.start,
            exptime=frame.exptime,
            filter=frame.filter,
            ccd_temp=temperature,
            set_temp=cam.ccd_temp,
            binning=cam.binning,
            gain=cam.gain,
            read_noise=cam.read_noise,
            object_name=site.object_name if is_light else frame.kind.capitalize(),
            ra=site.ra if is_light else None,
            dec=site.dec if is_light else None,
            airmass=float(self.series.airmass[i]) if is_light else None,
            altitude=float(self.series.altitude[i]) if is_light else None,
            site_name=site.name,
            latitude=site.latitude,
            longitude=site.longitude,
            elevation=site.elevation,
            utc_offset_hours=site.utc_offset_hours,
            telescope=site.telescope,
            aperture_mm=site.aperture_cm * 10,
            focal_length_mm=round(focal_mm, 1),
            pixel_size_um=cam.pixel_size_um,
            pixel_scale=opts.scale,
            data_width=cam.size,
            height=cam.size,
            overscan=cam.overscan,
            gain_setting=cam.gain_setting,
            offset_setting=cam.offset_setting,
            header_egain=cam.header_egain,
            pier_side=self.series.pier_side[i] if is_light and self.series.pier_side else None,
        )

    def header(self, frame: PlannedFrame, temperature: float) -> list[Card]:
        """The frame's header cards in the chosen dialect, plus the true WCS when asked for."""
        cards = header_cards(self.options.dialect, self.meta(frame, temperature))
        if frame.kind == "light" and self.options.write_wcs:
            s, i = self.series, frame.index
            wcs = turned_wcs(self.field.wcs, s.dx[i], s.dy[i], s.rotation_deg[i], self.shape[1])
            cards.extend((c.keyword, c.value, c.comment) for c in wcs.to_header().cards)
        return cards

    def render(self, frame: PlannedFrame) -> tuple[np.ndarray, list[Card], dict[str, Any]]:
        """Raw uint16 pixels, header and truth entry of one frame."""
        opts, cam = self.options, self.options.camera
        rng = _rng(opts.seed, frame.kind, frame.index)
        temperature = self._temperature(rng)
        bias_offset = float(cam.bias_drift * rng.standard_normal())
        exposure, info = self.exposure(frame, rng, temperature)
        raw = expose_and_read(
            exposure,
            self.detector.bias,
            rng=rng,
            gain=cam.gain,
            read_noise=cam.read_noise,
            bias_offset=bias_offset,
            full_well=cam.full_well,
            knee=cam.nonlinear_knee * opts.adc_max,
            adc_max=opts.adc_max,
        )
        mid = frame.start + 0.5 * frame.exptime * u.s
        entry: dict[str, Any] = {
            "file": frame.name,
            "kind": frame.kind,
            "index": frame.index,
            "exptime": frame.exptime,
            "filter": frame.filter,
            "start_utc": frame.start.isot,
            "mid_utc": mid.isot,
            "mid_jd_utc": float(mid.jd),
            "ccd_temp": temperature,
            "bias_level": cam.bias_level + bias_offset,
            "bias_mean_adu": self.bias_mean + bias_offset,
            "dark_scale": dark_scale(temperature, cam.dark_ref_temp, cam.dark_doubling),
            **info,
        }
        if frame.kind == "light":
            entry.update(self._light_truth(frame.index, temperature))
        return raw, self.header(frame, temperature), entry

    def _light_truth(self, i: int, temperature: float) -> dict[str, Any]:
        s, opts, cam = self.series, self.options, self.options.camera
        fwhm = float(s.fwhm_px[i])
        radius = NOISE_APERTURE_FWHM * fwhm
        frac = float(enclosed_fraction(radius, fwhm, opts.sky.psf, opts.sky.moffat_beta))
        target_e = float(s.star_e[i, self.field.target])
        dark_e = float(
            self.dark_median
            * dark_scale(temperature, cam.dark_ref_temp, cam.dark_doubling)
            * opts.site.exptime
        )
        ccd = float(
            ccd_noise(
                np.array([target_e * frac]),
                np.pi * radius**2,
                np.array([s.sky_e[i]]),
                dark_e,
                cam.read_noise,
                cam.gain,
            )[0]
        )
        scint = float(s.scintillation[i])
        entry: dict[str, Any] = {
            "bjd_tdb": float(s.bjd[i]),
            "airmass": float(s.airmass[i]),
            "altitude": float(s.altitude[i]),
            "fwhm_arcsec": float(s.fwhm_arcsec[i]),
            "fwhm_px": fwhm,
            "sky_e": float(s.sky_e[i]),
            "sky_adu": float(s.sky_e[i] / cam.gain),
            "dx": float(s.dx[i]),
            "dy": float(s.dy[i]),
            "rotation_deg": float(s.rotation_deg[i]),
            "target_rel_flux": float(s.target_rel[i]),
            "target_flux_e": target_e,
            "variable_rel_flux": float(s.variable_rel[i]),
            "star_flux_e": s.star_e[i],
            "noise": {
                "aperture_radius_px": radius,
                "ccd": ccd,
                "scintillation": scint,
                "total": float(total_noise(np.array([ccd]), np.array([scint]))[0]),
            },
        }
        if s.pier_side:
            entry["pier_side"] = s.pier_side[i]
        if s.moving_x.size:
            mx, my = self._moving_position(i)
            entry["moving"] = {
                "x": mx,
                "y": my,
                "flux_e": float(s.moving_e[i]),
            }
        return entry


def _truth(night: _Night, entries: list[dict[str, Any]]) -> Truth:
    opts, det, fld, s = night.options, night.detector, night.field, night.series
    cam, cal, sky, tr = opts.camera, opts.calibration, opts.sky, opts.transit
    hot_flat = det.hot[:, 0] * cam.size + det.hot[:, 1] if det.hot.size else np.zeros(0, dtype=np.int64)
    options_data = to_jsonable(replace(opts, stars=None))
    options_data["stars"] = "given" if opts.stars is not None else "random"
    return Truth(
        version=TRUTH_VERSION,
        seed=opts.seed,
        dialect=opts.dialect,
        options=options_data,
        camera={
            "shape": [cam.size, cam.size + cam.overscan],
            "data_width": cam.size,
            "overscan": cam.overscan,
            "binning": cam.binning,
            "gain": cam.gain,
            "read_noise_e": cam.read_noise,
            "read_noise_adu": cam.read_noise / cam.gain,
            "bias_level": cam.bias_level,
            "bias_mean_adu": night.bias_mean,
            "bias_pattern_rms": float(np.std(det.bias - det.bias.mean())),
            "bias_drift_rms": cam.bias_drift,
            "adc_max": opts.adc_max,
            "nonlinear_knee_adu": cam.nonlinear_knee * opts.adc_max,
            "full_well_e": cam.full_well,
            "dark": {
                "median_e_per_s": float(np.median(det.dark_rate)),
                "mean_e_per_s": float(np.mean(det.dark_rate)),
                "mean_e_per_s_without_hot": float(np.mean(np.delete(det.dark_rate.ravel(), hot_flat))),
                "ref_temp": cam.dark_ref_temp,
                "doubling_temp": cam.dark_doubling,
                "law": "rate(T) = rate(ref_temp) * 2 ** ((T - ref_temp) / doubling_temp)",
            },
            "hot_pixels": det.hot,
            "hot_pixel_rates_e_per_s": det.dark_rate[det.hot[:, 0], det.hot[:, 1]] if det.hot.size else [],
            "dead_pixels": det.dead,
            "dead_column": det.dead_column,
            "dead_column_rows": [0, int(cam.size * 0.4)] if det.dead_column is not None else None,
        },
        flat={
            "vignetting_centre": det.vignetting_centre,
            "vignetting_corner_loss": cal.vignetting,
            "vignetting_law": "1 / (1 + k r^2)^2",
            "dust": [d.to_dict() for d in det.dust],
            "prnu_rms": cam.prnu,
            "kind": cal.flat_kind,
        },
        field={
            "ra": opts.site.ra,
            "dec": opts.site.dec,
            "pixel_scale": opts.scale,
            "rotation": sky.rotation,
            "zeropoint": sky.zeropoint,
            "extinction": sky.extinction,
            "psf": sky.psf,
            "moffat_beta": sky.moffat_beta,
            "wcs": dict(night.field.wcs.to_header()),
            "target_index": fld.target,
            "variable_index": fld.variable,
            "stars": {"ra": fld.ra, "dec": fld.dec, "mag": fld.mag, "x": fld.x, "y": fld.y},
            "site": {
                "name": opts.site.name,
                "latitude": opts.site.latitude,
                "longitude": opts.site.longitude,
                "elevation": opts.site.elevation,
            },
        },
        transit={
            "enabled": tr.enabled,
            "t0_bjd_tdb": s.t0_bjd,
            "period": tr.period,
            "rp": tr.rp,
            "a": tr.a,
            "inc": tr.inc,
            "ecc": 0.0,
            "u": tr.u,
            "limb_dark": "quadratic",
        },
        frames=entries,
        moving_object={"mag": opts.moving_mag, "rate_arcsec_per_min": opts.moving_rate}
        if opts.moving_object
        else None,
        variable={
            "index": fld.variable,
            "amplitude": opts.variable_amplitude,
            "period_hours": opts.variable_period,
        }
        if fld.variable >= 0
        else None,
    )


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
