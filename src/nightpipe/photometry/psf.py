"""Empirical PSF (ePSF) photometry: build the PSF from the frame's clean stars, fit every source.

Building: stamps of bright, isolated, unflagged stars (background-subtracted, normalised to
unit flux) are stacked on a grid oversampled ``oversampling`` times, each pixel value landing
in the cell of its offset from the star's centre; each cell is a 3-sigma clipped mean. The
centres are refined by fitting the new ePSF and the stack is rebuilt (``iters`` times).
The ePSF follows photutils' ``ImagePSF`` convention: the value at offset ``(dx, dy)`` of a
unit-flux star is the bicubic spline of the grid at ``(origin + oversampling * d)``, so the
same array can be handed to ``photutils.psf.ImagePSF`` (as the benchmark does).

Fitting: every source's flux and position are fitted by batched Gauss-Newton steps (a 3x3
linear system per star, all stars at once in numpy) on the pixels of a small box; the light
of neighbouring sources (within the box plus the PSF's reach) is subtracted with their
current parameters before each step, which converges to the joint fit of each group of
neighbours (block coordinate descent). Errors come from the inverse normal matrix with the
per-pixel variance; ``qfit`` is photutils' ``sum |residual| / flux``.

The pieces: :mod:`nightpipe.photometry.psf_model` (the :class:`EPSF` grid and its lookups),
:mod:`nightpipe.photometry.psf_build` (:func:`build_epsf`) and
:mod:`nightpipe.photometry.psf_fit` (:func:`fit_psf`); this module gathers them.
"""

from __future__ import annotations

from nightpipe.photometry.psf_build import build_epsf
from nightpipe.photometry.psf_fit import fit_psf
from nightpipe.photometry.psf_model import EPSF, FINE, PSFResult

__all__ = ["EPSF", "FINE", "PSFResult", "build_epsf", "fit_psf"]
