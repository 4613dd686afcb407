"""Solving the frames of a night: header WCS, reference-frame matching, solve-field fallback.

:class:`NightSolver` is fed frames one after the other (data and header, in time order). The
first frame that needs it is solved with ``solve-field`` on its star list, refined against the
index stars with SIP, and becomes the reference. Every later frame is matched to the reference
star list (offset voting and an affine fit; when the field has turned, by a meridian flip or an
alt-azimuth mount's field rotation, or is mirrored, rotation voting first: see
:mod:`nightpipe.astrometry.match`), which gives a first WCS at almost no cost; that WCS is then
refined on the index stars (CRVAL and CD with the reference's SIP distortion; a turned frame
also tries a SIP of its own) and checked. A frame whose matching or checks fail gets a full
solve of its own and becomes the new reference (after a re-pointing the next frames match it).
A frame that cannot be solved raises :class:`~nightpipe.errors.AstrometryError` with the reason.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from nightpipe.astrometry.catalog_solve import CatalogueSource, solve_by_catalogue
from nightpipe.astrometry.checks import (
    RefinedWcs,
    WcsQuality,
    check_wcs,
    header_has_celestial_wcs,
    refine_wcs,
    wcs_geometry,
)
from nightpipe.astrometry.fitting import SipTerms, fit_wcs, sip_of
from nightpipe.astrometry.hints import hints_from_header
from nightpipe.astrometry.index_catalog import IndexCatalog, RefStars
from nightpipe.astrometry.match import (
    PointMatch,
    match_points,
    match_points_any_orientation,
    turn_angle_deg,
)
from nightpipe.astrometry.solver import run_solve_field
from nightpipe.astrometry.sources import StarList, frame_stars
from nightpipe.config import AstrometryConfig, PhotometryConfig
from nightpipe.errors import AstrometryError, CatalogError, PhotometryError
from nightpipe.photometry.frame_sources import FrameDetection, detect_frame

log = logging.getLogger(__name__)

MIN_MATCHES = 8
MIN_UNSATURATED_FOR_FIT = 15
MAX_STARS = 300  # star lists for astrometry need only the few hundred brightest stars
MAX_SIP_TURN_DEG = 2.0  # a frame turned more than this from the reference also tries a SIP of its own


@dataclass(frozen=True)
class FrameSolution:
    """The outcome of solving one frame."""

    wcs: WCS
    method: str  # "header", "reference-match", "solve-field" or "catalog-match"
    quality: WcsQuality
    stars: StarList
    seconds: float
    note: str = ""


@dataclass
class _Reference:
    stars: StarList
    wcs: WCS
    sip: SipTerms | None


@dataclass
class NightSolver:
    """Solve a sequence of frames of one field, re-using a reference frame's solution.

    Parameters
    ----------
    config
        The ``astrometry`` settings.
    catalog
        Reference stars (from the index files) used to check and refine every WCS.
    detection
        The ``photometry`` settings: the frame's stars are the photometry's detection (one
        detection per frame, shared with the photometry step).

    Examples
    --------
    >>> cfg = settings.astrometry  # doctest: +SKIP
    >>> solver = NightSolver(cfg, IndexCatalog.from_dirs(cfg.index_dirs))  # doctest: +SKIP
    >>> solution = solver.solve(data, header, name="frame 1")  # doctest: +SKIP
    """

    config: AstrometryConfig
    catalog: IndexCatalog
    reference: _Reference | None = None
    _cone: tuple[float, float, float, RefStars] | None = field(default=None, repr=False)
    sources: tuple[CatalogueSource, ...] = ()  # catalogues to match small fields to directly
    blind_fallback: bool = True  # a blind solve after a failed hinted one
    detection: PhotometryConfig = field(default_factory=PhotometryConfig)

    # ------------------------------------------------------------------ detection
    def detect(self, data: np.ndarray, flags: np.ndarray | None = None) -> tuple[FrameDetection, float]:
        """The photometry's detection of a frame and the saturation level it used.

        ``flags`` is a calibrated frame's uint16 MASK plane (its SATURATED bits mark saturated
        stars); without it a star reaching the image's maximum, when at least 5 pixels do, is
        saturated.
        """
        saturation = np.inf
        if flags is None:
            finite = np.isfinite(data)
            top = float(np.max(data, where=finite, initial=-np.inf))
            if np.isfinite(top) and np.count_nonzero(data >= top) >= 5:
                saturation = top
        try:
            found = detect_frame(data, self.detection, mask=flags, saturation=saturation)
        except PhotometryError as exc:  # no usable sky (an all-NaN frame, a 3-D array)
            raise AstrometryError(f"source detection failed: {exc.message}") from None
        return found, saturation

    # ------------------------------------------------------------------ catalogue
    def refs_near(self, ra: float, dec: float, radius: float) -> RefStars:
        """Index stars within ``radius`` of a position, from a cached wider cone when possible."""
        if self._cone is not None:
            cra, cdec, crad, stars = self._cone
            dist = _separation(cra, cdec, ra, dec)
            if dist + radius <= crad:
                return stars
        crad = radius + 0.5
        stars = self.catalog.cone(ra, dec, crad)
        self._cone = (ra, dec, crad, stars)
        return stars

    def _field_radius(self, wcs: WCS, shape: tuple[int, int]) -> tuple[float, float, float]:
        geometry = wcs_geometry(wcs, shape)
        half_diag = 0.5 * np.hypot(*shape) * geometry.pixel_scale / 3600.0
        return geometry.ra_center, geometry.dec_center, 1.2 * half_diag

    # ------------------------------------------------------------------ steps
    def _refine(
        self, wcs: WCS, stars: StarList, *, fixed_sip: SipTerms | None, max_shift_px: float = 0.0
    ) -> RefinedWcs | None:
        ra, dec, radius = self._field_radius(wcs, stars.shape)
        refs = self.refs_near(ra, dec, radius)
        radius_px = max(3.0, 1.5 * (stars.fwhm_px if np.isfinite(stars.fwhm_px) else 2.0))
        refine = partial(
            refine_wcs,
            sip_order=self.config.sip_order,
            fixed_sip=fixed_sip,
            radius_px=radius_px,
            max_shift_px=max_shift_px,
            min_matches=MIN_MATCHES,
        )
        # saturated stars have biased centroids (2-4 arcsec RMS on the HAT-P-32 night): fit
        # without them when enough others match
        unsaturated = stars.select(~stars.saturated)
        best = None
        if len(unsaturated) >= MIN_UNSATURATED_FOR_FIT:
            best = refine(wcs, unsaturated, refs)
            if best is not None and best.quality.n_matched < MIN_UNSATURATED_FOR_FIT:
                best = None
        if best is None:
            best = refine(wcs, stars, refs)
        return best

    def _acceptable(self, quality: WcsQuality) -> str | None:
        if quality.n_matched < MIN_MATCHES:
            return f"only {quality.n_matched} index stars matched (of {quality.n_reference} on the frame)"
        if not quality.rms_arcsec <= self.config.max_rms_arcsec:
            limit = self.config.max_rms_arcsec
            return f"residual RMS {quality.rms_arcsec:.2f} arcsec exceeds astrometry.max_rms_arcsec={limit}"
        return None

    def try_header(self, header: fits.Header, stars: StarList) -> tuple[WcsQuality | None, str]:
        """Check the header's own WCS; returns its quality when it passes, else the reason."""
        wcs = header_has_celestial_wcs(header)
        if wcs is None:
            return None, "no celestial WCS in the header"
        ra, dec, radius = self._field_radius(wcs, stars.shape)
        refs = self.refs_near(ra, dec, radius)
        radius_px = max(3.0, 1.5 * (stars.fwhm_px if np.isfinite(stars.fwhm_px) else 2.0))
        quality = check_wcs(wcs, stars, refs, radius_px=radius_px)
        problem = self._acceptable(quality)
        return (None, f"header WCS rejected: {problem}") if problem else (quality, "")

    def try_reference(self, stars: StarList) -> tuple[RefinedWcs | None, str]:
        """WCS from matching the frame's stars to the reference frame's, refined on index stars.

        A shift is tried first (a drifting field); when it fails, any rotation and a mirror (a
        meridian flip, an alt-azimuth mount's field rotation).
        """
        ref = self.reference
        if ref is None:
            return None, "no reference frame yet"
        height, width = stars.shape
        src, dst = stars.xy[:150], ref.stars.xy[:150]
        why = "matching to the reference frame failed"
        for attempt in ("shift", "any orientation"):  # a chance match of a shift can fail the checks
            if attempt == "shift":
                match = match_points(src, dst, max_shift=0.75 * max(height, width), radius=3.0)
            else:
                match = match_points_any_orientation(src, dst, radius=3.0)
            if match is None or len(match) < MIN_MATCHES:
                continue
            refined, why = self._from_match(stars, match, ref)
            if refined is not None:
                return refined, ""
        return None, why

    def _from_match(
        self, stars: StarList, match: PointMatch, ref: _Reference
    ) -> tuple[RefinedWcs | None, str]:
        """The frame's WCS from its stars matched to the reference's, refined and checked.

        The reference's SIP distortion is kept: the optics' distortion stays in the detector's
        axes whichever way the camera looks. A frame turned by more than ``MAX_SIP_TURN_DEG`` or
        mirrored may instead hold pixels turned in software (a capture program flipping the image
        after a meridian flip turns the distortion with it), so it also fits a SIP of its own and
        keeps the one with the smaller residuals.
        """
        scale = np.sqrt(abs(np.linalg.det(match.matrix[:, :2])))
        if not 0.95 < scale < 1.05:
            return None, f"reference match implies a scale change of {scale:.3f}"
        turned = (
            np.linalg.det(match.matrix[:, :2]) < 0 or abs(turn_angle_deg(match.matrix)) > MAX_SIP_TURN_DEG
        )
        ref_xy = ref.stars.xy[:150][match.dst_index]
        sky = ref.wcs.all_pix2world(ref_xy, 0)
        frame_xy = stars.xy[:150][match.src_index]
        why = "too few index stars matched after reference matching"
        best: RefinedWcs | None = None
        for sip in (ref.sip, None) if turned and ref.sip is not None else (ref.sip,):
            guess = fit_wcs(
                frame_xy[:, 0], frame_xy[:, 1], sky[:, 0], sky[:, 1], shape=stars.shape, fixed_sip=sip
            )
            refined = self._refine(guess, stars, fixed_sip=sip)
            if refined is None:
                continue
            problem = self._acceptable(refined.quality)
            if problem:
                why = problem
            elif best is None or refined.quality.rms_arcsec < best.quality.rms_arcsec:
                best = refined
        return (best, "") if best is not None else (None, why)

    def try_solve_field(self, header: fits.Header, stars: StarList) -> tuple[RefinedWcs | None, str]:
        """A full solve of the star list with solve-field, refined with SIP on the index stars."""
        cfg = self.config
        hints = hints_from_header(header, cfg)
        result = run_solve_field(
            stars,
            hints=hints,
            index_dirs=cfg.index_dirs,
            program=cfg.solve_field,
            timeout_s=cfg.timeout_s,
            tweak_order=cfg.sip_order,
            blind_fallback=self.blind_fallback,
        )
        refined = self._refine(result.wcs, stars, fixed_sip=None)
        if refined is None:
            return None, "solve-field solved but too few index stars matched to refine"
        problem = self._acceptable(refined.quality)
        return (None, problem) if problem else (refined, "")

    def smaller_than_index(self, header: fits.Header, stars: StarList) -> str | None:
        """Why solve-field cannot solve this frame's field (narrower than the smallest index
        quads, by the scale hint), or None."""
        hints = hints_from_header(header, self.config)
        smallest = self.catalog.smallest_quad_arcmin
        if hints.scale_high is None or smallest is None:
            return None
        field_arcmin = max(stars.shape) * hints.scale_high / 60.0
        if field_arcmin >= smallest:
            return None
        return (
            f"the field ({field_arcmin:.0f}' wide) is smaller than the smallest quads of the installed "
            f"index files ({smallest:.0f}'; Debian's Tycho-2 files are the 4100 series, whose smallest is "
            "index-4107 at 22'; add 5200 series files, index-52XX-YY.fits from data.astrometry.net, "
            "to astrometry.index_dirs)"
        )

    def try_catalogue(self, header: fits.Header, stars: StarList) -> tuple[RefinedWcs | None, str]:
        """The detected stars matched straight to the catalogue stars of the hinted field."""
        cfg = self.config
        attempt, why = solve_by_catalogue(
            stars,
            hints_from_header(header, cfg),
            self.sources,
            sip_order=cfg.sip_order,
            min_matches=MIN_MATCHES,
            max_rms_arcsec=cfg.max_rms_arcsec,
        )
        if attempt is None or attempt.solution is None or attempt.refs is None:
            return None, why
        # later frames are refined on the catalogue that solved this one
        ra, dec, radius = self._field_radius(attempt.solution.wcs, stars.shape)
        self._cone = (ra, dec, 2.0 * radius, attempt.refs)
        return attempt.solution, ""

    def _full_solve(self, header: fits.Header, stars: StarList) -> tuple[RefinedWcs | None, str, str]:
        """solve-field, or the catalogue match for a field too small for the index files (and
        after solve-field failed): the WCS, its method and why not."""
        too_small = self.smaller_than_index(header, stars)
        reasons = []
        if too_small is None:
            try:
                refined, why = self.try_solve_field(header, stars)
            except (AstrometryError, CatalogError) as exc:
                refined, why = None, exc.message + (f" ({exc.hint})" if exc.hint else "")
            if refined is not None:
                return refined, "solve-field", ""
            reasons.append(why)
        else:
            reasons.append(f"solve-field not tried: {too_small}")
        if self.sources:
            refined, why = self.try_catalogue(header, stars)
            if refined is not None:
                return refined, "catalog-match", ""
            reasons.append(why)
        return None, "", "; ".join(reasons)

    # ------------------------------------------------------------------ entry point
    def solve(
        self,
        data: np.ndarray,
        header: fits.Header,
        *,
        name: str = "frame",
        flags: np.ndarray | None = None,
        stars: StarList | None = None,
    ) -> FrameSolution:
        """Find a checked WCS for one frame.

        ``flags``: a calibrated frame's uint16 MASK plane; ``stars``: its star list when already
        built (:func:`~nightpipe.astrometry.sources.frame_stars`), else the frame is detected here.

        Raises
        ------
        AstrometryError
            With every reason when nothing works (too few stars, solver failure, checks).
        """
        start = time.perf_counter()
        if stars is None:
            stars = frame_stars(data, self.detect(data, flags)[0], max_stars=MAX_STARS)
        if len(stars) < MIN_MATCHES:
            raise AstrometryError(
                f"only {len(stars)} stars detected (blank, cloudy or badly out of focus?)", path=name
            )
        reasons: list[str] = []
        if self.config.use_header_wcs:
            quality, why = self.try_header(header, stars)
            if quality is not None:
                wcs = header_has_celestial_wcs(header)
                assert wcs is not None
                return FrameSolution(wcs, "header", quality, stars, time.perf_counter() - start)
            reasons.append(why)
        refined, why = self.try_reference(stars)
        method = "reference-match"
        if refined is None:
            if self.reference is not None:
                reasons.append(why)
            refined, method, why = self._full_solve(header, stars)
            if refined is None:
                reasons.append(why)
                raise AstrometryError("; ".join(r for r in reasons if r), path=name)
            # the first solved frame, or one the old reference no longer matches (a meridian flip,
            # a re-pointing): later frames are matched to this one
            self.reference = _Reference(stars.brightest(150), shipped_wcs(refined.wcs), sip_of(refined.wcs))
        note = "; ".join(r for r in reasons if r and not r.startswith("no celestial WCS"))
        return FrameSolution(refined.wcs, method, refined.quality, stars, time.perf_counter() - start, note)


def shipped_wcs(wcs: WCS) -> WCS:
    """The WCS as another process receives it: astropy pickles a WCS as its FITS header, whose
    values wcslib writes with fewer digits than a float holds (CRVAL to ~1e-13 deg). The reference
    frame's WCS is rounded so once, here, so that frames matched to it in this process, in
    threads or on Dask workers start from the same bits (the round trip gives back what it is given).

    Examples
    --------
    >>> w = WCS(naxis=2)
    >>> w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    >>> w.wcs.crval = [31.043793340209337, 46.688426030000001]
    >>> once = shipped_wcs(w)
    >>> bool((shipped_wcs(once).wcs.crval == once.wcs.crval).all())
    True
    """
    import pickle

    return pickle.loads(pickle.dumps(wcs))


def _separation(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    r1, d1, r2, d2 = np.radians([ra1, dec1, ra2, dec2])
    cos = np.sin(d1) * np.sin(d2) + np.cos(d1) * np.cos(d2) * np.cos(r1 - r2)
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
