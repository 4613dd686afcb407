"""Cosmic-ray detection's parameters (:class:`CosmicParams`), their allowed values and its result.

Shared by the detection (:mod:`nightpipe.calib.cosmics`), the first-pass screen of the fast
mode (:mod:`nightpipe.calib.cosmics_screen`) and the PSF veto (:mod:`nightpipe.calib.cosmics_psf`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MODES = ("off", "full", "fast")


@dataclass(frozen=True)
class CosmicParams:
    """Parameters of L.A.Cosmic (astroscrappy names in brackets).

    Attributes
    ----------
    gain
        Electrons per data unit (``gain``); 1 for data already in electrons.
    read_noise
        Read noise, electrons (``readnoise``).
    sigclip
        Laplacian-to-noise limit (``sigclip``).
    objlim
        Contrast limit between Laplacian and fine structure (``objlim``).
    sigfrac
        Fraction of ``sigclip`` for neighbouring pixels (``sigfrac``).
    saturation
        Saturation level in data units; astroscrappy gets it in electrons (``satlevel``).
    niter
        L.A.Cosmic iterations (``niter``).
    clean
        Return a cleaned image (cosmic-ray pixels replaced by a masked 5x5 mean).
    threads
        OpenMP threads of a full-frame astroscrappy run (``None``: its default, all cores).
        Per-frame parallelism is the pipeline's job, so one thread is the default; the fast
        mode always uses one thread (its many small calls would wait on thread barriers).
    grow
        Fast mode: pixels around each candidate cluster where flags are kept.
    context
        Fast mode: extra input pixels around the kept region, for astroscrappy's filters.
    screen_sigclip_factor, screen_objlim_factor
        Fast mode: candidates are kept when L.A.Cosmic's first-pass significance and
        contrast, computed at the candidate, exceed these fractions of ``sigclip`` and ``objlim``.
    fine_structure
        ``"median"``: the classic L.A.Cosmic median filters (``fsmode="median"``);
        ``"psf"``: fine-structure image from a matched filter of the PSF
        (``fsmode="convolve"``).
    psf_veto
        Unflag groups whose profile is consistent with the PSF (:func:`reject_psf_like`).
    veto_nsigma
        Noise margin of the PSF veto, in standard deviations.
    psf_fwhm
        PSF FWHM in pixels for the veto and ``fine_structure="psf"`` (``psffwhm``);
        ``None``: estimated from the frame (:func:`estimate_psf`); a frame with too few
        usable stars gets no veto and the median fine structure.
    psf_model
        ``"gauss"`` or ``"moffat"`` (``psfmodel``).
    psf_sharpness
        The veto's limit on a star's peak sharpness (:class:`PsfShape`); ``None``: measured
        with the FWHM, or from ``psf_fwhm`` as for a Gaussian when that is given.
    """

    gain: float = 1.0
    read_noise: float = 6.5
    sigclip: float = 4.5
    objlim: float = 5.0
    sigfrac: float = 0.3
    saturation: float = 65535.0
    niter: int = 4
    clean: bool = False
    threads: int | None = 1
    grow: int = 8
    context: int = 8
    screen_sigclip_factor: float = 0.8
    screen_objlim_factor: float = 0.5
    fine_structure: str = "median"
    psf_veto: bool = True
    veto_nsigma: float = 2.0
    psf_fwhm: float | None = None
    psf_model: str = "gauss"
    psf_sharpness: float | None = None


FINE_STRUCTURES = ("psf", "median")


PSF_MODELS = ("gauss", "moffat")


MIN_PSF_FWHM = 1.2  # narrower estimates are not trusted (a kernel that sharp would hide hits)


MAX_PSF_FWHM = 15.0


@dataclass(frozen=True)
class CosmicResult:
    """Which pixels are cosmic rays, and optionally the cleaned image.

    Attributes
    ----------
    mask
        Boolean array, True on cosmic-ray pixels.
    cleaned
        The image with cosmic-ray pixels replaced (same units as the input), or ``None``.
    mode
        ``"full"`` or ``"fast"``.
    candidates
        Fast mode: number of screened candidate pixels that were examined.
    windows
        Fast mode: number of windows astroscrappy ran on.
    examined_fraction
        Fraction of the frame's pixels astroscrappy read (1 in full mode).
    """

    mask: np.ndarray
    cleaned: np.ndarray | None
    mode: str
    candidates: int = 0
    windows: int = 0
    examined_fraction: float = 1.0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def npixels(self) -> int:
        """Number of flagged pixels."""
        return int(np.count_nonzero(self.mask))
