"""The light-curve container: times, relative flux, per-aperture and comparison fluxes, aux vectors.

A :class:`LightCurve` is immutable; every operation (selection, normalisation, binning)
returns a new object, so calls chain (``lc.select(ok).normalize(oot).bin(10)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nightpipe.errors import TimeseriesError

FloatArray = NDArray[np.float64]

#: Auxiliary vectors a light curve may carry, used by the detrending.
AUX_NAMES = ("airmass", "fwhm", "sky", "x", "y", "exptime")


def _as_1d(values: ArrayLike, name: str, n: int | None = None) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise TimeseriesError(f"light-curve column {name!r} must be 1-D, got shape {array.shape}")
    if n is not None and array.size != n:
        raise TimeseriesError(f"light-curve column {name!r} has {array.size} values, expected {n}")
    return array


def _as_2d(values: ArrayLike | None, name: str, n: int) -> FloatArray | None:
    if values is None:
        return None
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] != n:
        raise TimeseriesError(f"light-curve column {name!r} has shape {array.shape}, expected ({n}, K)")
    return array


@dataclass(frozen=True, eq=False)
class LightCurve:
    """A differential light curve of one target.

    Parameters
    ----------
    time
        Mid-exposure times, BJD_TDB (or the scale named in ``meta["time_scale"]``).
    flux, flux_err
        Relative flux of the target (chosen aperture) and its 1-sigma error.
    jd_utc
        Mid-exposure JD_UTC, when known.
    aperture_flux, aperture_flux_err
        Relative flux and error for every aperture radius (N x K).
    comparison_flux
        Raw fluxes of the comparison stars in the chosen aperture (N x C).
    target_flux
        Raw (background-subtracted) flux of the target in the chosen aperture.
    aux
        Auxiliary vectors of length N (``airmass``, ``fwhm``, ``sky``, ``x``, ``y``...).
    meta
        Free-form description: ``target``, ``time_source``, ``time_scale``, ``aperture_px``,
        ``comparisons``, ``outlier_rule``...

    Examples
    --------
    >>> lc = LightCurve(time=[1.0, 2.0, 3.0], flux=[2.0, 2.2, 1.8], flux_err=[0.1, 0.1, 0.1])
    >>> lc.normalize().flux.round(3).tolist()
    [1.0, 1.1, 0.9]
    """

    time: FloatArray
    flux: FloatArray
    flux_err: FloatArray
    jd_utc: FloatArray | None = None
    aperture_flux: FloatArray | None = None
    aperture_flux_err: FloatArray | None = None
    comparison_flux: FloatArray | None = None
    target_flux: FloatArray | None = None
    aux: Mapping[str, FloatArray] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        time = _as_1d(self.time, "time")
        n = time.size
        set_ = object.__setattr__
        set_(self, "time", time)
        set_(self, "flux", _as_1d(self.flux, "flux", n))
        set_(self, "flux_err", _as_1d(self.flux_err, "flux_err", n))
        if self.jd_utc is not None:
            set_(self, "jd_utc", _as_1d(self.jd_utc, "jd_utc", n))
        if self.target_flux is not None:
            set_(self, "target_flux", _as_1d(self.target_flux, "target_flux", n))
        set_(self, "aperture_flux", _as_2d(self.aperture_flux, "aperture_flux", n))
        set_(self, "aperture_flux_err", _as_2d(self.aperture_flux_err, "aperture_flux_err", n))
        set_(self, "comparison_flux", _as_2d(self.comparison_flux, "comparison_flux", n))
        set_(self, "aux", {k: _as_1d(v, k, n) for k, v in self.aux.items()})
        set_(self, "meta", dict(self.meta))

    def __len__(self) -> int:
        return int(self.time.size)

    @property
    def time_scale(self) -> str:
        """The time scale of :attr:`time` (``BJD_TDB`` unless the meta says otherwise)."""
        return str(self.meta.get("time_scale", "BJD_TDB"))

    def select(self, mask: ArrayLike) -> LightCurve:
        """A new light curve with only the points where ``mask`` is true (or the given indices)."""
        index = np.asarray(mask)

        def pick(a: FloatArray | None) -> FloatArray | None:
            return None if a is None else a[index]

        return replace(
            self,
            time=self.time[index],
            flux=self.flux[index],
            flux_err=self.flux_err[index],
            jd_utc=pick(self.jd_utc),
            aperture_flux=pick(self.aperture_flux),
            aperture_flux_err=pick(self.aperture_flux_err),
            comparison_flux=pick(self.comparison_flux),
            target_flux=pick(self.target_flux),
            aux={k: v[index] for k, v in self.aux.items()},
        )

    def sort(self) -> LightCurve:
        """A copy sorted by time."""
        return self.select(np.argsort(self.time, kind="stable"))

    def finite(self) -> LightCurve:
        """A copy without points whose time, flux or error is not finite (or error <= 0)."""
        ok = np.isfinite(self.time) & np.isfinite(self.flux) & np.isfinite(self.flux_err)
        ok &= self.flux_err > 0
        return self.select(ok)

    def normalize(self, mask: ArrayLike | None = None) -> LightCurve:
        """Divide flux and errors by the median flux (of the points in ``mask``, e.g. out of transit)."""
        ref = self.flux if mask is None else self.flux[np.asarray(mask, dtype=bool)]
        ref = ref[np.isfinite(ref)]
        if ref.size == 0:
            raise TimeseriesError("cannot normalise a light curve without finite flux")
        scale = float(np.median(ref))
        if scale == 0:
            raise TimeseriesError("cannot normalise a light curve whose median flux is zero")
        return self.with_flux(self.flux / scale, self.flux_err / abs(scale), normalised_by=scale)

    def with_flux(self, flux: ArrayLike, flux_err: ArrayLike, **meta: Any) -> LightCurve:
        """A copy with new flux and errors (same times and aux vectors); ``meta`` items are added."""
        return replace(
            self,
            flux=np.asarray(flux, dtype=np.float64),
            flux_err=np.asarray(flux_err, dtype=np.float64),
            meta={**self.meta, **meta},
        )

    def with_time(self, time: ArrayLike, **meta: Any) -> LightCurve:
        """A copy with new times (e.g. BJD_TDB recomputed); ``meta`` items are added."""
        return replace(self, time=np.asarray(time, dtype=np.float64), meta={**self.meta, **meta})

    def with_meta(self, **meta: Any) -> LightCurve:
        """A copy with ``meta`` items added or replaced."""
        return replace(self, meta={**self.meta, **meta})

    def bin(self, minutes: float) -> LightCurve:
        """Bin in time into intervals of ``minutes``: mean flux, error of the mean, mean aux vectors.

        Only ``time``, ``flux``, ``flux_err`` and ``aux`` are kept; the meta records ``binned_min``
        and ``n_per_bin`` (the number of points in each bin).
        """
        t, f, e, counts, aux = bin_arrays(self.time, self.flux, self.flux_err, minutes, self.aux)
        return LightCurve(
            time=t,
            flux=f,
            flux_err=e,
            aux=aux,
            meta={**self.meta, "binned_min": minutes, "n_per_bin": counts.tolist()},
        )


def bin_arrays(
    time: FloatArray,
    flux: FloatArray,
    flux_err: FloatArray,
    minutes: float,
    aux: Mapping[str, FloatArray] | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.int64], dict[str, FloatArray]]:
    """Bin a series into fixed time intervals.

    Returns mean times, mean fluxes, the error of each mean (standard error from the
    scatter inside the bin when it holds 3 or more points, else propagated from
    ``flux_err``), the number of points per bin and the mean aux vectors.
    Empty bins are dropped.
    """
    if minutes <= 0:
        raise TimeseriesError(f"bin width must be positive, got {minutes} min")
    if time.size == 0:
        empty = np.zeros(0)
        return empty, empty, empty, np.zeros(0, dtype=np.int64), {}
    width = minutes / 1440.0
    index = np.floor((time - time.min()) / width).astype(np.int64)
    uniq, inverse, counts = np.unique(index, return_inverse=True, return_counts=True)
    nb = uniq.size

    def mean(values: FloatArray) -> FloatArray:
        return np.bincount(inverse, weights=values, minlength=nb) / counts

    t = mean(time)
    f = mean(flux)
    dev2 = np.bincount(inverse, weights=(flux - f[inverse]) ** 2, minlength=nb)
    scatter_err = np.sqrt(dev2 / np.maximum(counts - 1, 1) / counts)
    prop_err = np.sqrt(np.bincount(inverse, weights=flux_err**2, minlength=nb)) / counts
    err = np.where(counts >= 3, scatter_err, prop_err)
    binned_aux = {k: mean(v) for k, v in (aux or {}).items()}
    return t, f, err, counts.astype(np.int64), binned_aux
