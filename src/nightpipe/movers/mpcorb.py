"""Reading the MPC's orbit file ``MPCORB.DAT`` (or a subset of it) into numpy arrays.

Column layout (MPC, "Export Format for Minor-Planet Orbits"; 1-based columns): 1-7 packed
designation, 9-13 H, 15-19 G, 21-25 packed epoch (TT), 27-35 mean anomaly M, 38-46 argument of
perihelion, 49-57 node, 60-68 inclination (degrees, ecliptic and equinox J2000), 71-79 e,
81-91 mean daily motion n (deg/day), 93-103 a (AU), 167-194 the readable designation. The header
(everything up to the dashed rule) and blank lines are skipped; a line whose numbers do not read
is skipped and counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
LINE = 202
_COLUMNS = {  # name: (start, stop), 0-based, stop exclusive
    "H": (8, 13),
    "G": (14, 19),
    "M": (26, 35),
    "peri": (37, 46),
    "node": (48, 57),
    "incl": (59, 68),
    "e": (70, 79),
    "n": (80, 91),
    "a": (92, 103),
}
_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Orbits:
    """Osculating heliocentric elements (ecliptic J2000), one entry per orbit."""

    packed: np.ndarray  # str, the packed designation (columns 1-7)
    name: np.ndarray  # str, the readable designation, e.g. "(1) Ceres" or "2019 RB21"
    epoch_tt: np.ndarray  # JD TT
    H: np.ndarray
    M: np.ndarray  # deg
    peri: np.ndarray  # deg
    node: np.ndarray  # deg
    incl: np.ndarray  # deg
    e: np.ndarray
    n: np.ndarray  # deg/day
    a: np.ndarray  # AU

    def __len__(self) -> int:
        return int(self.a.size)

    def take(self, index: np.ndarray) -> Orbits:
        """The orbits at ``index``."""
        return Orbits(**{k: getattr(self, k)[index] for k in self.__dataclass_fields__})


def unpack_epoch(packed: str) -> tuple[int, int, int]:
    """(year, month, day) of a packed epoch such as ``K205V`` (2020 May 31)."""
    century = {"I": 1800, "J": 1900, "K": 2000}.get(packed[0])
    if century is None or len(packed) != 5:
        raise ValueError(f"not a packed MPC epoch: {packed!r}")
    return century + int(packed[1:3]), _DIGITS.index(packed[3]), _DIGITS.index(packed[4])


def calendar_jd(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """JD of Gregorian dates whose day may have a fraction (Fliegel and Van Flandern), vectorised."""
    whole = np.floor(day).astype(np.int64)
    a = (14 - month) // 12
    y = year + 4800 - a
    m = month + 12 * a - 3
    jdn = whole + (153 * m + 2) // 5 + 365 * y + y // 4 - y // 100 + y // 400 - 32045
    return np.asarray(jdn.astype(float) - 0.5 + (day - whole), float)


def _epochs(packed: np.ndarray) -> np.ndarray:
    """JD TT of packed epochs (vectorised over the distinct ones: a file has a handful)."""
    out = np.full(packed.size, np.nan)
    for value in np.unique(packed):
        try:
            y, m, d = unpack_epoch(str(value))
        except (ValueError, IndexError):
            continue
        out[packed == value] = calendar_jd(np.array([y]), np.array([m]), np.array([d]))[0]
    return out


def parse_mpcorb(lines: list[bytes]) -> tuple[Orbits, int]:
    """The orbits of MPCORB lines (header lines included or not) and how many lines were skipped."""
    for k, line in enumerate(lines[:200]):
        if line.startswith(b"-----"):
            lines = lines[k + 1 :]
            break
    body = [ln.rstrip(b"\r\n") for ln in lines]
    body = [ln for ln in body if ln.strip()]
    if not body:
        return _empty(), 0
    fixed = np.array([ln.ljust(LINE)[:LINE] for ln in body], dtype=f"S{LINE}")
    chars = fixed.view(np.uint8).reshape(-1, LINE)

    def field(start: int, stop: int) -> np.ndarray:
        return np.ascontiguousarray(chars[:, start:stop]).view(f"S{stop - start}").ravel()

    values: dict[str, np.ndarray] = {}
    good = np.ones(len(body), bool)
    for name, (start, stop) in _COLUMNS.items():
        raw = field(start, stop)
        blank = np.char.strip(raw) == b""
        parsed = np.full(raw.size, np.nan)
        try:
            parsed[~blank] = raw[~blank].astype(float)
        except ValueError:  # a bad number somewhere: read these one by one
            parsed = np.array([_float(v) for v in raw])
        if name not in ("H", "G"):
            good &= np.isfinite(parsed)
        values[name] = parsed
    epoch = _epochs(np.char.decode(field(20, 25), "ascii", "replace"))
    good &= np.isfinite(epoch) & (values["a"] > 0) & (values["e"] < 1.0)
    skipped = int((~good).sum())
    if skipped:
        log.warning("MPCORB: %d of %d lines skipped (unreadable elements)", skipped, len(body))
    packed = np.char.strip(np.char.decode(field(0, 7), "ascii", "replace"))
    readable = np.char.strip(np.char.decode(field(166, 194), "ascii", "replace"))
    orbits = Orbits(
        packed.astype(str),
        np.where(readable == "", packed, readable).astype(str),
        epoch,
        values["H"],
        values["M"],
        values["peri"],
        values["node"],
        values["incl"],
        values["e"],
        values["n"],
        values["a"],
    )
    return orbits.take(np.flatnonzero(good)), skipped


def _float(value: bytes) -> float:
    try:
        return float(value)
    except ValueError:
        return float("nan")


def _empty() -> Orbits:
    f = np.zeros(0)
    s = np.zeros(0, dtype=str)
    return Orbits(s, s, f, f, f, f, f, f, f, f, f)


def read_bytes(path: Path) -> bytes:
    """A file's bytes, decompressed when it ends in ``.gz``."""
    if path.suffix == ".gz":
        import gzip

        with gzip.open(path, "rb") as handle:
            return handle.read()
    return path.read_bytes()


def read_mpcorb(path: Path, cache_dir: Path | None = None) -> Orbits:
    """The orbits of an MPCORB.DAT file (plain or ``.gz``); with ``cache_dir``, parsed once and kept
    there as ``.npz`` (keyed by the file's path, size and modification time)."""
    if not path.is_file():
        raise FileNotFoundError(f"movers.mpcorb: no file {path} (download MPCORB.DAT or a subset of it)")
    cached = None
    if cache_dir is not None:
        import hashlib

        stat = path.stat()
        key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:20]
        cached = cache_dir / f"mpcorb-{key}.npz"
        if cached.is_file():
            with np.load(cached, allow_pickle=False) as data:
                return Orbits(**{k: data[k] for k in Orbits.__dataclass_fields__})
    data = read_bytes(path)
    orbits, _ = parse_mpcorb(data.splitlines())
    if not len(orbits):
        raise ValueError(f"movers.mpcorb: {path} has no readable orbit line (is it MPCORB.DAT format?)")
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp.npz")
        np.savez(tmp, **{k: getattr(orbits, k) for k in Orbits.__dataclass_fields__})
        tmp.replace(cached)
    return orbits
