"""Reference stars read straight from astrometry.net index files (offline Tycho-2).

An astrometry.net index file (4100 series built from Tycho-2, 5200 series from Gaia...) keeps
its stars in a k-d tree: the ``kdtree_data_stars`` extension holds unit vectors packed as
unsigned 32-bit integers, ``kdtree_range_stars`` the seven doubles that unpack them (minimum
and maximum of each axis, then the scale), and a ``TAGALONG`` extension the magnitudes
(``MAG_VT`` for Debian's Tycho-2 files) in the same order. Reading those arrays gives a
positional catalogue that works without any network, used to check and refine plate
solutions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from nightpipe.errors import CatalogError

log = logging.getLogger(__name__)

INDEX_GLOBS = ("index-*.fits", "index-*.fits.fz")


@dataclass(frozen=True)
class RefStars:
    """Reference stars: positions (degrees, ICRS/J2000) and a magnitude (NaN when unknown)."""

    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray

    def __len__(self) -> int:
        return int(self.ra.size)

    def select(self, keep: np.ndarray) -> RefStars:
        """The stars where ``keep`` (boolean mask or index array) selects."""
        return RefStars(self.ra[keep], self.dec[keep], self.mag[keep])


@dataclass(frozen=True)
class IndexFile:
    """Where the star arrays of one index file sit (byte offsets), read lazily."""

    path: Path
    nstars: int
    index_id: int
    scale_lo_arcmin: float
    scale_hi_arcmin: float
    data_offset: int
    range_offset: int
    mag_offset: int | None
    mag_column: str | None
    little_endian: bool


def radec_to_xyz(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Unit vectors (N x 3) of positions in degrees."""
    r = np.radians(np.asarray(ra, dtype=float))
    d = np.radians(np.asarray(dec, dtype=float))
    cd = np.cos(d)
    return np.stack([cd * np.cos(r), cd * np.sin(r), np.sin(d)], axis=-1)


def xyz_to_radec(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in degrees (RA in [0, 360)) of vectors (N x 3, any length)."""
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return ra, dec


def _extension_offsets(path: Path) -> IndexFile:
    try:
        with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            primary = hdul[0].header
            data_offset = range_offset = None
            mag_offset: int | None = None
            mag_column: str | None = None
            little = True
            for hdu in hdul[1:]:
                header = hdu.header
                name = str(header.get("TTYPE1", ""))
                info = hdu.fileinfo()
                if name == "kdtree_header_stars":
                    if header.get("KDT_DATA", "u32") != "u32" or header.get("KDT_EXT", "double") != "double":
                        raise CatalogError(
                            f"unsupported star k-d tree types {header.get('KDT_DATA')}/"
                            f"{header.get('KDT_EXT')}",
                            path=path,
                        )
                    little = str(header.get("ENDIAN", "04:03:02:01")).startswith("04")
                elif name == "kdtree_data_stars":
                    data_offset = int(info["datLoc"])
                elif name == "kdtree_range_stars":
                    range_offset = int(info["datLoc"])
                elif (
                    header.get("AN_FILE", "").strip() == "TAGALONG"
                    and str(header.get("TFORM1")) == "1E"
                    and (mag_column is None or name.upper().startswith("MAG"))
                ):
                    mag_offset, mag_column = int(info["datLoc"]), name
    except (OSError, ValueError, KeyError) as exc:
        raise CatalogError(
            f"cannot read astrometry.net index file ({exc})",
            path=path,
            hint="re-install the index package or remove the file from astrometry.index_dirs",
        ) from None
    if data_offset is None or range_offset is None:
        raise CatalogError(
            "no star k-d tree in this file (not an astrometry.net index file?)",
            path=path,
            hint="remove it from the index folder",
        )
    return IndexFile(
        path=path,
        nstars=int(primary.get("NSTARS", 0)),
        index_id=int(primary.get("INDEXID", -1)),
        scale_lo_arcmin=float(primary.get("SCALE_L", 0.0)) * 180 / np.pi * 60,
        scale_hi_arcmin=float(primary.get("SCALE_U", 0.0)) * 180 / np.pi * 60,
        data_offset=data_offset,
        range_offset=range_offset,
        mag_offset=mag_offset,
        mag_column=mag_column,
        little_endian=little,
    )


def find_index_files(dirs: Iterable[Path]) -> list[Path]:
    """Every astrometry.net index file in ``dirs`` (not recursive), sorted by name."""
    found: list[Path] = []
    for folder in dirs:
        folder = Path(folder).expanduser()
        if folder.is_dir():
            for pattern in INDEX_GLOBS:
                found.extend(p for p in folder.glob(pattern) if p.is_file())
    return sorted(set(found))


@dataclass
class IndexCatalog:
    """Cone searches over the stars of a set of index files.

    Stars repeated in several files (the same Tycho-2 star sits in every scale of the series)
    are merged. Each file's arrays are memory-mapped, so opening is cheap and a cone search
    only unpacks the stars of the declination band it needs (tens of milliseconds).

    Examples
    --------
    >>> cat = IndexCatalog.from_dirs([Path("/usr/share/astrometry")])  # doctest: +SKIP
    >>> stars = cat.cone(31.0429, 46.6878, 0.5)  # doctest: +SKIP
    """

    files: Sequence[IndexFile]
    smallest_quad_arcmin: float | None = None  # over every index file found, kept or not

    @classmethod
    def from_dirs(cls, dirs: Iterable[Path], *, max_files: int | None = 3) -> IndexCatalog:
        """Open the index files of ``dirs``, keeping the ``max_files`` densest indexes (None: all).

        An index (one ``INDEXID``) is either one all-sky file (Debian's Tycho-2 4100 series)
        or a set of healpix tiles (the 4200/5200 series): ``max_files`` counts indexes, and all
        the tiles of a kept index are kept.

        Raises
        ------
        CatalogError
            When no index file is found.
        """
        dirs = list(dirs)
        paths = find_index_files(dirs)
        if not paths:
            raise CatalogError(
                f"no astrometry.net index files in {', '.join(str(d) for d in dirs) or '(none)'}",
                hint="install astrometry-data-tycho2 (apt-get) or set astrometry.index_dirs",
            )
        files = [_extension_offsets(p) for p in paths]
        totals: dict[int, int] = {}
        for f in files:
            totals[f.index_id] = totals.get(f.index_id, 0) + f.nstars
        keep = sorted(totals, key=lambda i: -totals[i])[: max_files or None]
        smallest = min((f.scale_lo_arcmin for f in files if f.scale_lo_arcmin > 0), default=None)
        return cls(files=[f for f in files if f.index_id in keep], smallest_quad_arcmin=smallest)

    def _vectors_near(self, index: IndexFile, z_low: float, z_high: float) -> tuple[np.ndarray, np.ndarray]:
        """Row numbers and unit vectors of the stars with z in [z_low, z_high] (a band of Dec)."""
        order = "<" if index.little_endian else ">"
        raw = np.memmap(
            index.path, dtype=f"{order}u4", mode="r", offset=index.data_offset, shape=(index.nstars, 3)
        )
        bounds = np.fromfile(index.path, dtype=f"{order}f8", count=7, offset=index.range_offset)
        low, scale = bounds[:3], bounds[6]
        z = low[2] + raw[:, 2].astype(np.float64) / scale
        rows = np.flatnonzero((z >= z_low) & (z <= z_high))
        xyz = low + raw[rows].astype(np.float64) / scale
        return rows, xyz

    def _mags(self, index: IndexFile, rows: np.ndarray) -> np.ndarray:
        if index.mag_offset is None:
            return np.full(rows.size, np.nan)
        # A tag-along column is an ordinary FITS table column: big-endian.
        mags = np.memmap(index.path, dtype=">f4", mode="r", offset=index.mag_offset, shape=(index.nstars,))
        return np.asarray(mags[rows], dtype=float)

    def cone(self, ra: float, dec: float, radius_deg: float, *, max_mag: float | None = None) -> RefStars:
        """Stars within ``radius_deg`` of (``ra``, ``dec``), duplicates across files merged.

        Parameters
        ----------
        ra, dec
            Centre, degrees.
        radius_deg
            Radius, degrees.
        max_mag
            Keep only stars brighter than this magnitude (when the files carry one).
        """
        centre = radec_to_xyz(np.array([ra]), np.array([dec]))[0]
        cos_r = np.cos(np.radians(radius_deg))
        chunks_xyz: list[np.ndarray] = []
        chunks_mag: list[np.ndarray] = []
        z_low = np.sin(np.radians(max(dec - radius_deg, -90.0))) - 1e-9
        z_high = np.sin(np.radians(min(dec + radius_deg, 90.0))) + 1e-9
        for index in self.files:
            rows, xyz = self._vectors_near(index, z_low, z_high)
            inside = xyz @ centre >= cos_r * np.linalg.norm(xyz, axis=1)
            chunks_xyz.append(xyz[inside])
            chunks_mag.append(self._mags(index, rows[inside]))
        xyz = np.concatenate(chunks_xyz) if chunks_xyz else np.empty((0, 3))
        mag = np.concatenate(chunks_mag) if chunks_mag else np.empty(0)
        xyz, mag = _merge_duplicates(xyz, mag, tol_arcsec=1.0)
        ra_out, dec_out = xyz_to_radec(xyz)
        stars = RefStars(ra_out, dec_out, mag)
        if max_mag is not None:
            stars = stars.select(~(mag > max_mag))
        order = np.argsort(np.where(np.isfinite(stars.mag), stars.mag, np.inf), kind="stable")
        log.debug("index cone (%.4f, %.4f, r=%.3f deg): %d stars", ra, dec, radius_deg, order.size)
        return stars.select(order)


def _merge_duplicates(
    xyz: np.ndarray, mag: np.ndarray, *, tol_arcsec: float
) -> tuple[np.ndarray, np.ndarray]:
    if xyz.shape[0] < 2:
        return xyz, mag
    from scipy.spatial import cKDTree

    unit = xyz / np.linalg.norm(xyz, axis=1)[:, None]
    tree = cKDTree(unit)
    pairs = tree.query_pairs(np.radians(tol_arcsec / 3600.0), output_type="ndarray")
    keep = np.ones(xyz.shape[0], dtype=bool)
    for i, j in pairs:
        if keep[i] and keep[j]:
            keep[j] = False
    return unit[keep], mag[keep]
