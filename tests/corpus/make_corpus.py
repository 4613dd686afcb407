"""The bad-input corpus: a good small simulated night with bad, odd and broken files mixed in.

:func:`make_corpus` copies a simulated night (``nightpipe simulate`` / the demo night) into a new
raw folder and adds one file (or a few) per :class:`Case`: truncated and fake FITS, NaN and inf
pixels, odd BITPIX, compressed and multi-extension files, cubes, huge headers, broken time and
exposure keywords, calibration frames of another size, duplicates, odd names, links and folders.
Every case says what the pipeline must do with it (:attr:`Case.expect`): name the file with a
clear message, or use the frame correctly. Two cases change while the night runs (a file that
disappears after the scan, one still growing while it is scanned): :class:`CorpusProgress` does
that when it is passed to the run as its progress.

Everything is generated from the simulated night at test time; nothing is committed as data.
``python tests/corpus/verdicts.py`` builds a corpus, runs a night on it and prints the figures.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

#: What the pipeline must do with a case's files.
ERROR = "error"  # not used, with a message naming the file (frames.error, step_runs.reason or the log)
USED = "used"  # used correctly: scanned, calibrated, measured (lights: in the light curve)
NOTED = "noted"  # used, and a note says what was odd (which keyword, which other file)


@dataclass(frozen=True)
class Case:
    """One bad-input case.

    Attributes
    ----------
    name
        Short identifier (``truncated-mid-data``).
    files
        The case's files, relative to the raw folder.
    expect
        :data:`ERROR`, :data:`USED` or :data:`NOTED`.
    says
        Words the message must contain (case-insensitive), besides the file's name.
    role
        ``light`` or ``calibration``: where "used" is looked for (light curve, or a master's inputs).
    """

    name: str
    files: tuple[str, ...]
    expect: str
    says: tuple[str, ...] = ()
    role: str = "light"


@dataclass
class Corpus:
    """A raw folder of cases, and what is to happen to the two files that change during the run."""

    raw: Path
    cases: list[Case]
    good_lights: list[str]
    vanishing: Path
    growing: Path
    growing_rest: bytes = field(repr=False, default=b"")

    def case(self, name: str) -> Case:
        """The case called ``name``."""
        return next(c for c in self.cases if c.name == name)

    def raw_digests(self) -> dict[str, str]:
        """sha1 of every raw file (links not followed), by path relative to the raw folder."""
        import hashlib

        out: dict[str, str] = {}
        for path in sorted(self.raw.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue
            out[str(path.relative_to(self.raw))] = hashlib.sha1(path.read_bytes()).hexdigest()
        return out


class CorpusProgress:
    """A progress sink that plays the corpus's moving files: when the scan's loop ends, the growing
    file gets its last bytes and the vanishing file is deleted (before any step reads their pixels)."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self._current = ""
        self.done = False

    def start(self, total: int, description: str) -> None:
        """Remember which loop runs."""
        self._current = description

    def advance(self, item: str | None = None) -> None:
        """Nothing to do."""

    def stop(self) -> None:
        """After the first scan: finish the growing file, delete the vanishing one."""
        if self._current == "scanning" and not self.done:
            self.done = True
            with open(self.corpus.growing, "ab") as handle:
                handle.write(self.corpus.growing_rest)
            self.corpus.vanishing.unlink()


def _read(path: Path) -> tuple[np.ndarray, fits.Header]:
    with fits.open(path) as hdul:
        return np.asarray(hdul[0].data), hdul[0].header.copy()


def _write(path: Path, data: np.ndarray | None, header: fits.Header, **kwargs: object) -> None:
    hdu = fits.PrimaryHDU(data, header=header, **kwargs)  # type: ignore[arg-type]
    hdu.writeto(path, output_verify="silentfix")


def _float_header(header: fits.Header) -> fits.Header:
    out = header.copy()
    for key in ("BZERO", "BSCALE"):
        out.remove(key, ignore_missing=True)
    return out


def _cases(raw: Path, lights: list[Path], target_xy: tuple[float, float]) -> tuple[list[Case], list[str]]:
    """Write every case into ``raw``; returns the cases and the good lights left unchanged."""
    cases: list[Case] = []
    light = {i: p for i, p in enumerate(lights)}
    used_lights: set[int] = set()

    def take(i: int) -> tuple[np.ndarray, fits.Header]:
        used_lights.add(i)
        data, header = _read(light[i])
        return data, header

    def replace_light(i: int, name: str, writer: Callable[[Path, np.ndarray, fits.Header], None]) -> Path:
        """Write light ``i`` again in another form under ``name`` (the original goes)."""
        data, header = take(i)
        light[i].unlink()
        path = raw / name
        path.parent.mkdir(parents=True, exist_ok=True)
        writer(path, data.astype(np.float64), header)
        return path

    def add(case: Case) -> None:
        cases.append(case)

    first_bias = raw / "bias_001.fits"
    first_flat = raw / "flat_V_001.fits"
    template = light[0].read_bytes()
    size = len(template)

    # -- broken files: never read as frames, each named with what is wrong --------------------
    with fits.open(light[0]) as hdul:
        data_start = int(hdul.fileinfo(0)["datLoc"])
        data_end = data_start + hdul[0].data.nbytes  # BITPIX 16: the unpadded pixels
    for label, cut in (("in-first-card", 40), ("mid-header", 1500), ("after-header", data_start),
                       ("mid-data", size // 2), ("last-data-byte", data_end - 1)):  # fmt: skip
        name = f"truncated_{label}.fits"
        (raw / name).write_bytes(template[:cut])
        add(Case(f"truncated-{label}", (name,), ERROR, ("truncated",)))
    # only the zero padding after the last pixel is missing: every pixel is there, the frame is used
    used_lights.add(19)
    (raw / "no_padding.fits").write_bytes(light[19].read_bytes()[:data_end])
    light[19].unlink()
    add(Case("truncated-padding-only", ("no_padding.fits",), USED))
    (raw / "empty.fits").write_bytes(b"")
    add(Case("zero-length", ("empty.fits",), ERROR, ("empty file",)))
    (raw / "notes.fits").write_text("Observing log 2017-12-19\nclouds after 3 UT\n" * 3)
    add(Case("text-as-fits", ("notes.fits",), ERROR, ("not a fits file",)))
    (raw / "long_notes.fits").write_text("seeing 2.1 arcsec, humidity 40 %\n" * 400)
    add(Case("long-text-as-fits", ("long_notes.fits",), ERROR, ("not a fits file",)))
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((32, 32), dtype=np.uint8)).save(buffer, format="JPEG")
    (raw / "preview.fits").write_bytes(buffer.getvalue())
    add(Case("jpeg-as-fits", ("preview.fits",), ERROR, ("not a fits file", "jpeg")))

    # -- bad pixels ---------------------------------------------------------------------------
    data, header = take(1)
    _write(raw / "nan_light.fits", np.full(data.shape, np.nan, np.float32), _float_header(header))
    add(Case("nan-light", ("nan_light.fits",), ERROR, ("no finite pixel",)))
    _write(raw / "inf_light.fits", np.full(data.shape, np.inf, np.float32), _float_header(header))
    add(Case("inf-light", ("inf_light.fits",), ERROR, ("no finite pixel",)))
    x, y = (round(v) for v in target_xy)

    def inf_patch(path: Path, data: np.ndarray, header: fits.Header) -> None:
        patched = data.astype(np.float32)
        patched[max(y - 6, 0) : y + 7, max(x - 6, 0) : x + 7] = np.inf
        _write(path, patched, _float_header(header))

    replace_light(10, "inf_patch_light.fits", inf_patch)
    add(Case("inf-over-target", ("inf_patch_light.fits",), ERROR, ("infinite", "re-copy")))
    flat, fheader = _read(first_flat)
    _write(raw / "flat_zero.fits", np.zeros(flat.shape, np.uint16), fheader.copy())
    add(Case("all-zero-flat", ("flat_zero.fits",), ERROR, ("flat",), role="calibration"))
    _write(raw / "flat_negative.fits", -np.abs(flat.astype(np.float32)), _float_header(fheader))
    add(Case("negative-flat", ("flat_negative.fits",), ERROR, ("flat",), role="calibration"))

    # -- every BITPIX, with and without BZERO/BSCALE: used ---------------------------------------
    def bitpix(bits: int, bzero: float | None, bscale: float | None) -> Callable[..., None]:
        def write(path: Path, data: np.ndarray, header: fits.Header) -> None:
            h = _float_header(header)
            dtype = {8: np.uint8, 16: np.int16, 32: np.int32, -32: np.float32, -64: np.float64}[bits]
            stored = (data - (bzero or 0.0)) / (bscale or 1.0)
            hdu = fits.PrimaryHDU(stored.astype(dtype), header=h)
            if bzero is not None or bscale is not None:
                hdu.header["BSCALE"] = bscale or 1.0
                hdu.header["BZERO"] = bzero or 0.0
            hdu.writeto(path)

        return write

    replace_light(3, "bitpix32.fits", bitpix(32, None, None))
    add(Case("bitpix-32", ("bitpix32.fits",), USED))
    replace_light(4, "bitpix32_bzero.fits", bitpix(32, 1000.0, 1.0))
    add(Case("bitpix-32-bzero", ("bitpix32_bzero.fits",), USED))
    replace_light(5, "bitpix-32.fits", bitpix(-32, None, None))
    add(Case("bitpix-float32", ("bitpix-32.fits",), USED))
    replace_light(6, "bitpix-64_bscale.fits", bitpix(-64, 100.0, 0.5))
    add(Case("bitpix-float64-bscale", ("bitpix-64_bscale.fits",), USED))
    bias, bheader = _read(first_bias)
    first_bias.unlink()
    level = float(np.floor(bias.min()))
    bitpix(8, level, 1.0)(raw / "bias_bitpix8.fits", bias.astype(np.float64), bheader)
    add(Case("bitpix-8-bzero", ("bias_bitpix8.fits",), USED, role="calibration"))
    second_bias = raw / "bias_002.fits"
    bias2, bheader2 = _read(second_bias)
    second_bias.unlink()
    bitpix(16, None, None)(raw / "bias_int16.fits", bias2.astype(np.float64), bheader2)
    add(Case("bitpix-16-signed", ("bias_int16.fits",), USED, role="calibration"))

    # -- containers: fpack, gzip, MEF with an empty primary: used --------------------------------
    def fpack(path: Path, data: np.ndarray, header: fits.Header) -> None:
        h = _float_header(header)
        comp = fits.CompImageHDU(data.astype(np.int32), header=h, compression_type="RICE_1")
        fits.HDUList([fits.PrimaryHDU(), comp]).writeto(path)

    replace_light(7, "fpacked.fits.fz", fpack)
    add(Case("fpack-fz", ("fpacked.fits.fz",), USED))
    data, header = take(8)
    with gzip.open(raw / "gzipped.fits.gz", "wb") as handle:
        handle.write(light[8].read_bytes())
    light[8].unlink()
    add(Case("gzip", ("gzipped.fits.gz",), USED))

    def mef(path: Path, data: np.ndarray, header: fits.Header) -> None:
        primary = fits.PrimaryHDU(header=fits.Header([("OBSERVER", "nightpipe corpus")]))
        ext = fits.ImageHDU(data.astype(np.float32), header=_float_header(header), name="SCI")
        fits.HDUList([primary, ext]).writeto(path)

    replace_light(9, "mef_empty_primary.fits", mef)
    add(Case("mef-empty-primary", ("mef_empty_primary.fits",), USED))

    # -- shapes -------------------------------------------------------------------------------
    data, header = take(1)
    cube = fits.PrimaryHDU(np.stack([data] * 3).astype(np.int16), header=_float_header(header))
    cube.writeto(raw / "cube.fits")
    add(Case("cube-3d", ("cube.fits",), ERROR, ("cube", "2-d")))
    fits.PrimaryHDU(np.arange(1000, dtype=np.int16), header=_float_header(header)).writeto(raw / "row.fits")
    add(Case("array-1d", ("row.fits",), ERROR, ("no 2-d image",)))

    # -- headers ------------------------------------------------------------------------------
    def huge_header(path: Path, data: np.ndarray, header: fits.Header) -> None:
        h = _float_header(header)
        for i in range(10_000):
            h.append((f"NPX{i:05d}", i, "filler card"), end=True)
        _write(path, data.astype(np.float32), h)

    replace_light(2, "huge_header.fits", huge_header)
    add(Case("header-10000-cards", ("huge_header.fits",), USED))

    def header_case(name: str, i: int, change: Callable[[fits.Header], None]) -> None:
        data, header = take(i)
        h = header.copy()
        change(h)
        fits.PrimaryHDU(data, header=h, do_not_scale_image_data=False).writeto(raw / name)

    def set_cards(**cards: object) -> Callable[[fits.Header], None]:
        def change(h: fits.Header) -> None:
            for key, value in cards.items():
                key = key.replace("_", "-")
                if value is None:
                    h.remove(key, ignore_missing=True)
                else:
                    h[key] = value

        return change

    header_case("text_date.fits", 1, set_cards(DATE_OBS="yesterday evening", JD=None))
    add(Case("date-obs-text", ("text_date.fits",), ERROR, ("date-obs", "yesterday evening")))
    header_case("no_date.fits", 1, set_cards(DATE_OBS=None, JD=None))
    add(Case("date-obs-missing", ("no_date.fits",), ERROR, ("no time", "date-obs")))
    header_case("reduced_jd.fits", 1, set_cards(DATE_OBS=None, JD=58107.58333))
    add(Case("jd-reduced", ("reduced_jd.fits",), ERROR, ("no time", "jd = 58107.58333")))
    header_case("exptime_text.fits", 1, set_cards(EXPTIME="sixty", EXPOSURE=None))
    add(Case("exptime-text", ("exptime_text.fits",), ERROR, ("exptime", "sixty")))
    header_case("exptime_negative.fits", 1, set_cards(EXPTIME=-60.0, EXPOSURE=None))
    add(Case("exptime-negative", ("exptime_negative.fits",), ERROR, ("exptime", "-60")))
    header_case("dark_exptime_text.fits", 1, set_cards(IMAGETYP="Dark Frame", EXPTIME="sixty", EXPOSURE=None))
    add(Case("dark-exptime-text", ("dark_exptime_text.fits",), ERROR, ("exptime", "sixty"), "calibration"))
    header_case("dark_no_exptime.fits", 1, set_cards(IMAGETYP="Dark Frame", EXPTIME=None, EXPOSURE=None))
    add(
        Case(
            "dark-no-exptime",
            ("dark_no_exptime.fits",),
            ERROR,
            ("without an exposure time", "exptime"),
            "calibration",
        )
    )
    # the next ones replace good lights: they must stay in the light curve
    for i, name, cards, expect, says in (
        (11, "no_imagetyp.fits", {"IMAGETYP": None}, USED, ()),
        (12, "no_object.fits", {"OBJECT": None}, USED, ()),
        (17, "bad_date.fits", {"DATE_OBS": "2017-13-45T99:99:99"}, NOTED, ("2017-13-45T99:99:99", "jd")),
        (18, "jd_only.fits", {"DATE_OBS": None}, USED, ()),
        (20, "blank_site.fits", {"SITELAT": "", "SITELONG": ""}, USED, ()),
    ):
        header_case(name, i, set_cards(**cards))
        light[i].unlink()
        add(Case(name.removesuffix(".fits").replace("_", "-"), (name,), expect, says))

    # -- calibration frames of another size or binning: their own masters, never applied ---------
    bias, bheader = _read(raw / "bias_003.fits")
    _write(raw / "bias_small.fits", bias[:128, :128], bheader.copy())
    add(Case("bias-other-size", ("bias_small.fits",), USED, role="calibration"))
    flat, fheader = _read(raw / "flat_V_002.fits")
    binned = flat.reshape(128, 2, 128, 2).mean(axis=(1, 3))
    fh = fheader.copy()
    fh["XBINNING"], fh["YBINNING"] = 2, 2
    _write(raw / "flat_2x2.fits", binned.astype(np.uint16), fh)
    add(Case("flat-other-binning", ("flat_2x2.fits",), USED, role="calibration"))

    # -- duplicates, names, links, folders -----------------------------------------------------
    shutil.copyfile(light[13], raw / "copy_of_light.fits")
    used_lights.add(13)
    add(Case("duplicate", ("copy_of_light.fits",), ERROR, ("same bytes", light[13].name)))
    # the same frame compressed: used once (light 21 stays a good light: in the light curve once)
    with gzip.open(raw / "twin_of_light.fits.gz", "wb") as handle:
        handle.write(light[21].read_bytes())
    add(Case("duplicate-gzip", ("twin_of_light.fits.gz",), ERROR, ("once decompressed", light[21].name)))
    spaced = raw / "light with spaces.fits"
    light[0].rename(spaced)
    used_lights.add(0)
    add(Case("name-with-spaces", (spaced.name,), USED))
    accented = raw / "lumière_ü_星.fits"
    light[14].rename(accented)
    used_lights.add(14)
    add(Case("name-non-ascii", (accented.name,), USED))
    (raw / "loop.fits").symlink_to("loop.fits")
    add(Case("symlink-loop", ("loop.fits",), ERROR, ("symbolic link",)))
    (raw / "gone.fits").symlink_to("moved_away.fits")
    add(Case("dangling-symlink", ("gone.fits",), ERROR, ("symbolic link", "missing")))
    (raw / "again").symlink_to(".", target_is_directory=True)
    folder = raw / "x.fits"
    folder.mkdir()
    light[15].rename(folder / light[15].name)
    used_lights.add(15)
    add(Case("folder-named-fits", (f"x.fits/{light[15].name}",), USED))
    return cases, [str(p.relative_to(raw)) for i, p in light.items() if i not in used_lights and p.exists()]


def make_corpus(good_raw: Path, dest: Path) -> Corpus:
    """Copy the simulated night ``good_raw`` (at least 22 lights, bias, darks, flats, a
    ``truth.json``) into ``dest`` and add the corpus's cases; returns the :class:`Corpus`."""
    truth = json.loads((good_raw / "truth.json").read_text())
    shutil.copytree(good_raw, dest, ignore=shutil.ignore_patterns("truth.json"))
    lights = sorted(dest / f["file"] for f in truth["frames"] if f["kind"] == "light")
    if len(lights) < 22:
        raise ValueError(f"the corpus needs a night of at least 22 lights, {good_raw} has {len(lights)}")
    stars, target = truth["field"]["stars"], int(truth["field"]["target_index"])
    cases, good = _cases(dest, lights, (stars["x"][target], stars["y"][target]))
    # the two files that change during the run: a dark that disappears after the scan, a light
    # half-copied when the scan reads it (completed right after)
    vanishing = dest / "dark_060s_005.fits"
    cases.append(Case("vanishes-after-scan", (vanishing.name,), ERROR, ("not found",), "calibration"))
    growing = dest / lights[16].name
    whole = growing.read_bytes()
    half = len(whole) // 2
    growing.write_bytes(whole[:half])
    good.remove(growing.name)
    cases.append(Case("growing-during-scan", (growing.name,), ERROR, ("truncated", "still being")))
    os.utime(dest, None)
    return Corpus(dest, cases, good, vanishing, growing, whole[half:])
