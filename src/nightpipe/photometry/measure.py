"""One frame, arrays in: background, detection, shapes, seeing, multi-aperture photometry.

:func:`measure_frame` chains the pure steps of this package on a frame held in memory;
it knows nothing of files or databases (see :mod:`nightpipe.photometry.step` for that).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from nightpipe.config import PhotometryConfig
from nightpipe.errors import PhotometryError
from nightpipe.photometry.aperture import ApertureResult, aperture_photometry
from nightpipe.photometry.background import Background, mesh_background
from nightpipe.photometry.detect import Detections
from nightpipe.photometry.frame_sources import detect_frame
from nightpipe.photometry.profiles import ProfileFit, fit_profile
from nightpipe.photometry.psf import EPSF, PSFResult, build_epsf, fit_psf
from nightpipe.photometry.shape import Shapes, frame_fwhm, measure_shapes

log = logging.getLogger(__name__)

MAX_PROFILE_STARS = 40
MAX_PSF_STARS = 100


@dataclass(frozen=True)
class CameraParams:
    """Detector figures used by the error model (ADU-based data)."""

    gain: float = 1.0
    read_noise: float = 0.0
    """Electrons."""
    dark: float = 0.0
    """Electrons per pixel accumulated during the exposure."""
    saturation: float = np.inf
    """ADU."""


@dataclass(frozen=True)
class FrameMeasurement:
    """Everything measured on one frame."""

    background: Background
    detections: Detections
    shapes: Shapes
    fwhm: float
    """Seeing of the frame, pixels (Moffat fit to the stacked bright stars, or the moments' median)."""
    fwhm_method: str
    profile: ProfileFit | None
    radii: np.ndarray
    """K aperture radii, pixels."""
    annulus: tuple[float, float] | None
    photometry: ApertureResult
    psf: PSFResult | None = None
    epsf: EPSF | None = None
    extra: dict[str, float] = field(default_factory=dict)


def aperture_radii(config: PhotometryConfig, fwhm: float) -> np.ndarray:
    """The K radii of a frame, in the order of the settings: fixed radii, then FWHM multiples.

    The order is kept (not sorted) so that column ``k`` of ``aper_flux`` always means the same
    setting, e.g. the k-th FWHM factor, whatever the frame's FWHM.

    Examples
    --------
    >>> cfg = PhotometryConfig(aperture_radii_px=(5.0,), aperture_fwhm_factors=(1.0, 2.0))
    >>> aperture_radii(cfg, 3.0).tolist()
    [5.0, 3.0, 6.0]
    """
    radii = list(config.aperture_radii_px)
    if np.isfinite(fwhm) and fwhm > 0:
        radii += [f * fwhm for f in config.aperture_fwhm_factors]
    if not radii:
        raise PhotometryError(
            "no aperture radius: the FWHM is unknown and no fixed radius is set",
            hint="set photometry.aperture_radii_px",
        )
    return np.asarray(radii, dtype=float)


def _profile_stars(det: Detections, shapes: Shapes, n: int) -> np.ndarray:
    good = (det.flags == 0) & np.isfinite(shapes.fwhm) & (shapes.ellipticity < 0.3)
    idx = np.flatnonzero(good)
    if idx.size == 0:
        return idx
    # isolated: no other detection within 5 x median moment FWHM
    from scipy.spatial import cKDTree

    scale = float(np.nanmedian(shapes.fwhm[idx]))
    tree = cKDTree(np.column_stack([det.x, det.y]))
    dist, _ = tree.query(np.column_stack([det.x[idx], det.y[idx]]), k=2)
    iso = dist[:, 1] > 5 * scale if det.x.size > 1 else np.ones(idx.size, bool)
    idx = idx[iso]
    order = np.argsort(-det.peak[idx])
    return idx[order[:n]]


def measure_frame(
    data: np.ndarray,
    config: PhotometryConfig,
    *,
    mask: np.ndarray | None = None,
    uncertainty: np.ndarray | None = None,
    uncertainty_includes_source: bool = True,
    camera: CameraParams | None = None,
    detections: Detections | None = None,
) -> FrameMeasurement:
    """Background, detection, shapes, seeing and multi-aperture photometry of one frame.

    Parameters
    ----------
    data
        The image (ADU or e-), not background-subtracted.
    config
        ``settings.photometry``.
    mask
        uint16 PixelFlag plane of a calibrated frame.
    uncertainty
        Per-pixel standard deviation (the UNCERT plane).
    uncertainty_includes_source
        Whether ``uncertainty`` includes the Poisson noise of the stars' light.
    camera
        Gain, read noise, dark and saturation.
    detections
        The frame's sources when already found by :func:`~nightpipe.photometry.frame_sources.detect_frame`
        with these settings on these pixels (the solve step's shared list): not detected again.

    Returns
    -------
    FrameMeasurement

    Raises
    ------
    PhotometryError
        When nothing can be detected or measured.

    Examples
    --------
    >>> from nightpipe.photometry.synthetic import make_star_field
    >>> field = make_star_field((256, 256), 20, seed=2, min_separation=20)
    >>> meas = measure_frame(field.data, PhotometryConfig(), camera=CameraParams(gain=1.5))
    >>> bool(abs(meas.fwhm - 3.0) < 0.15)
    True
    """
    cam = camera or CameraParams()
    bkg = mesh_background(data, mask, box=config.background_box, filter_size=config.background_filter)
    if detections is None:
        detections = detect_frame(
            data, config, mask=mask, saturation=cam.saturation, background=bkg
        ).detections
    if len(detections) == 0:
        raise PhotometryError(
            f"no source above {config.detect_sigma} sigma", hint="lower photometry.detect_sigma"
        )
    det = detections
    sub = np.asarray(data, dtype=np.float32) - bkg.level
    shapes, fwhm, method, profile = _seeing(sub, det)
    radii = aperture_radii(config, fwhm)
    annulus = _annulus(config, fwhm, radii)
    phot = aperture_photometry(
        data,
        det.x,
        det.y,
        radii,
        annulus=annulus,
        statistic=config.annulus_statistic,
        background=bkg.level if annulus is None else None,
        background_err=bkg.global_rms / np.sqrt(config.background_box**2) if annulus is None else None,
        mask=mask,
        uncertainty=uncertainty,
        uncertainty_includes_source=uncertainty_includes_source,
        gain=cam.gain,
        read_noise=cam.read_noise,
        dark=cam.dark,
        saturation=cam.saturation,
    )
    psf_result: PSFResult | None = None
    epsf: EPSF | None = None
    if config.psf and np.isfinite(fwhm):
        psf_result, epsf = _psf_photometry(sub, det, shapes, fwhm, bkg, uncertainty, cam)
    return FrameMeasurement(
        background=bkg,
        detections=det,
        shapes=shapes,
        fwhm=float(fwhm),
        fwhm_method=method,
        profile=profile,
        radii=radii,
        annulus=annulus,
        photometry=phot,
        psf=psf_result,
        epsf=epsf,
    )


def _seeing(sub: np.ndarray, det: Detections) -> tuple[Shapes, float, str, ProfileFit | None]:
    """Shapes of the sources and the frame's FWHM: a Moffat fit of clean stars when it agrees with
    the moments' FWHM (the per-source FWHMs are then rescaled to it), else the moments'.

    Returns the shapes, the FWHM, how it was found (``"moffat"`` or ``"moments"``) and the profile fit.
    """
    shapes = measure_shapes(sub, det.x, det.y, fwhm_guess=3.0)
    moment_fwhm, _scatter, _n = frame_fwhm(shapes.fwhm, ellipticity=shapes.ellipticity, flags=det.flags)
    profile: ProfileFit | None = None
    fwhm = moment_fwhm
    method = "moments"
    stars = _profile_stars(det, shapes, MAX_PROFILE_STARS)
    if stars.size >= 1 and np.isfinite(moment_fwhm):
        try:
            profile = fit_profile(sub, det.x[stars], det.y[stars], fwhm_guess=moment_fwhm)
        except PhotometryError as exc:
            log.warning("profile fit failed, using the moments' FWHM: %s", exc)
        if profile is not None and 0.3 * moment_fwhm < profile.fwhm < 2.0 * moment_fwhm:
            fwhm = profile.fwhm
            method = "moffat"
            # rescale the per-source moment FWHM to the profile's
            shapes = Shapes(
                fwhm=shapes.fwhm * (fwhm / moment_fwhm),
                ellipticity=shapes.ellipticity,
                theta=shapes.theta,
                a=shapes.a,
                b=shapes.b,
            )
    return shapes, fwhm, method, profile


def _annulus(config: PhotometryConfig, fwhm: float, radii: np.ndarray) -> tuple[float, float] | None:
    """The local-sky annulus (inner, outer radius, px) clear of the largest aperture; None for mesh sky."""
    annulus: tuple[float, float] | None = None
    if np.isfinite(fwhm) and config.sky == "annulus":
        annulus = (config.annulus_fwhm[0] * fwhm, config.annulus_fwhm[1] * fwhm)
        annulus = (max(annulus[0], float(radii.max()) + 1.0), max(annulus[1], float(radii.max()) + 4.0))
    return annulus


def _psf_photometry(
    sub: np.ndarray,
    det: Detections,
    shapes: Shapes,
    fwhm: float,
    bkg: Background,
    uncertainty: np.ndarray | None,
    cam: CameraParams,
) -> tuple[PSFResult | None, EPSF | None]:
    stars = _profile_stars(det, shapes, MAX_PSF_STARS)
    if stars.size < 3:
        log.warning("only %d clean isolated stars: no PSF photometry", stars.size)
        return None, None
    try:
        epsf = build_epsf(sub, det.x[stars], det.y[stars], fwhm=fwhm, others=(det.x, det.y))
    except PhotometryError as exc:
        log.warning("no PSF photometry: %s", exc)
        return None, None
    if uncertainty is not None:
        variance = np.square(uncertainty, dtype=np.float32)
    else:
        variance = np.square(bkg.rms) + np.maximum(sub, 0.0) / np.float32(cam.gain)
    fit_half = max(2, int(np.ceil(fwhm)))
    return fit_psf(sub, det.x, det.y, epsf, variance=variance, fit_half=fit_half), epsf
