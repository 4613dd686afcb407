"""Rendering the frames of a simulated night: :class:`_Night` draws the detector, the field and the
light series once (each from its own random stream, ``SeedSequence([seed, kind, index])``) and
renders every planned frame with its header and its truth entry."""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy import units as u

from nightpipe.simulate.camera import Exposure, dark_scale, expose_and_read
from nightpipe.simulate.cosmics import cosmic_tracks, expected_hits
from nightpipe.simulate.detector import Detector, build_detector
from nightpipe.simulate.field import StarField, build_field
from nightpipe.simulate.fitswrite import Card
from nightpipe.simulate.flats import gradient_map
from nightpipe.simulate.headers import FrameMeta, header_cards
from nightpipe.simulate.movers import trail_points
from nightpipe.simulate.noise import ccd_noise, total_noise
from nightpipe.simulate.options import SimOptions
from nightpipe.simulate.plan import PlannedFrame
from nightpipe.simulate.psf import enclosed_fraction, render_stars_compiled
from nightpipe.simulate.series import LightSeries, build_series
from nightpipe.simulate.turns import frame_positions, turned_wcs

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
        if s.movers is not None:
            tx, ty, tf = trail_points(s.movers, i)
            tx, ty = frame_positions(tx, ty, s.dx[i], s.dy[i], s.rotation_deg[i], self.shape[1])
            x, y, flux = np.append(x, tx), np.append(y, ty), np.append(flux, tf)
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
        if s.movers is not None:
            p = s.movers
            px, py = frame_positions(p.x[:, i], p.y[:, i], s.dx[i], s.dy[i], s.rotation_deg[i], self.shape[1])
            entry["movers"] = [
                {"x": float(a), "y": float(b), "flux_e": float(f)}
                for a, b, f in zip(px, py, p.flux_e[:, i], strict=True)
            ]
        return entry
