"""The masters a frame is calibrated with: which ones (:class:`MasterRef`), read once per night
(:class:`MasterCache`), and assembled into the arrays the fused pass applies (:func:`master_arrays`)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nightpipe.calib.apply import MasterArrays, check_flat
from nightpipe.errors import CalibrationError
from nightpipe.frames.fitsio import open_fits, read_image
from nightpipe.store.models import Master

_CACHE_SIZE = 8


@dataclass(frozen=True)
class MasterRef:
    """A library master chosen for a frame: where it is and what is needed to apply it."""

    kind: str
    path: str
    exptime: float | None
    bias_included: bool
    inputs_hash: str

    @classmethod
    def from_row(cls, row: Master) -> MasterRef:
        """Copy the fields of a library row (so no session is needed later)."""
        return cls(row.kind, row.path, row.exptime, bool(row.bias_included), row.inputs_hash)


@dataclass(frozen=True)
class MasterPlanes:
    """The planes of one master file: data, standard error, flags."""

    data: np.ndarray
    error: np.ndarray | None
    flags: np.ndarray | None


def load_master_planes(path: Path | str, kind: str) -> MasterPlanes:
    """Read a master written by the masters step (``badpix``: the primary holds the flags).

    Raises
    ------
    FitsReadError
        When the file is missing or unreadable.
    """
    if kind == "badpix":
        data, _ = read_image(path, hdu=0, dtype=np.uint16)
        return MasterPlanes(data=data, error=None, flags=data)
    data, _ = read_image(path, hdu=0, dtype=np.float32)
    error = flags = None
    with open_fits(path) as hdul:
        names = [h.name for h in hdul]
        if "UNCERT" in names:
            error = np.asarray(hdul["UNCERT"].data, dtype=np.float32)
        if "MASK" in names:
            flags = np.asarray(hdul["MASK"].data, dtype=np.uint16)
    return MasterPlanes(data=data, error=error, flags=flags)


class MasterCache:
    """The last few masters read, so that a night reads each master once (bounded in size).

    It also keeps the last few assembled :class:`MasterArrays` (the bad-pixel planes of a
    set of masters OR-ed together), and the flats it checked.
    """

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str], MasterPlanes] = OrderedDict()
        self.assembled: OrderedDict[tuple[tuple[str, str], ...], MasterArrays] = OrderedDict()

    def get(self, ref: MasterRef) -> MasterPlanes:
        """The planes of ``ref``, read on first use."""
        key = (ref.kind, ref.path)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        planes = load_master_planes(ref.path, ref.kind)
        self._items[key] = planes
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return planes


def master_arrays(
    masters: dict[str, MasterRef], cache: MasterCache, shape: tuple[int, int], min_flat: float = 0.05
) -> MasterArrays:
    """Assemble the :class:`MasterArrays` of a frame of ``shape`` (after trimming) from its masters.

    Raises
    ------
    CalibrationError
        When a master does not have the frame's shape (the message names the master).
    """
    key = tuple(sorted((kind, ref.path) for kind, ref in masters.items()))
    known = cache.assembled.get(key)
    if known is not None:
        _check_shapes(masters, known, shape)
        return known
    planes = {kind: cache.get(ref) for kind, ref in masters.items()}
    for kind, plane in planes.items():
        if plane.data.shape != shape:
            ny, nx = plane.data.shape
            raise CalibrationError(
                f"master {kind} is {nx}x{ny} but the frame is {shape[1]}x{shape[0]} after trimming",
                hint=f"use masters of the same size and binning (master: {masters[kind].path})",
            )
    bad: np.ndarray | None = None
    for kind in ("badpix", "bias", "dark", "flat"):
        found = planes.get(kind)
        if found is not None and found.flags is not None:
            bad = found.flags.copy() if bad is None else bad | found.flags
    dark_ref = masters.get("dark")
    flat = planes.get("flat")
    if flat is not None:
        try:
            check_flat(flat.data, min_flat)
        except CalibrationError as exc:
            raise CalibrationError(f"{exc.message} ({masters['flat'].path})", hint=exc.hint) from None
    assembled = MasterArrays(
        bias=planes["bias"].data if "bias" in planes else None,
        bias_err=planes["bias"].error if "bias" in planes else None,
        dark=planes["dark"].data if "dark" in planes else None,
        dark_err=planes["dark"].error if "dark" in planes else None,
        dark_exptime=dark_ref.exptime if dark_ref is not None else None,
        dark_bias_included=dark_ref.bias_included if dark_ref is not None else False,
        flat=planes["flat"].data if "flat" in planes else None,
        flat_err=planes["flat"].error if "flat" in planes else None,
        bad_pixels=bad,
    )
    cache.assembled[key] = assembled
    while len(cache.assembled) > 4:
        cache.assembled.popitem(last=False)
    return assembled


def _check_shapes(masters: dict[str, MasterRef], arrays: MasterArrays, shape: tuple[int, int]) -> None:
    for kind, plane in (("bias", arrays.bias), ("dark", arrays.dark), ("flat", arrays.flat)):
        if plane is not None and plane.shape != shape:
            ny, nx = plane.shape
            raise CalibrationError(
                f"master {kind} is {nx}x{ny} but the frame is {shape[1]}x{shape[0]} after trimming",
                hint=f"use masters of the same size and binning (master: {masters[kind].path})",
            )
