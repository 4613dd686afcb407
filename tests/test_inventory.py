"""The frame inventory: scanning, incremental rescans, bad files, queries, the CLI."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import select

from nightpipe import inventory
from nightpipe.cli.app import main
from nightpipe.config import CameraOverride, Settings, TargetConfig, validate_settings
from nightpipe.inventory import (
    ScanSummary,
    calibration_frames,
    group_frames,
    is_scannable,
    light_frames,
    problem_frames,
    scan_paths,
)
from nightpipe.inventory import scan as inventory_scan
from nightpipe.progress import CountingProgress
from nightpipe.store import Database, open_database
from nightpipe.store.models import Frame, StepRun


def _frame(path: Path, imagetyp: str | None, *, exptime: float = 10.0, filt: str | None = "V",
           date: str = "2024-03-01T03:00:00", binning: int = 1, seed: int = 0) -> Path:  # fmt: skip
    rng = np.random.default_rng(seed)
    hdu = fits.PrimaryHDU(rng.normal(1000, 10, (32, 48)).astype(np.float32))
    if imagetyp is not None:
        hdu.header["IMAGETYP"] = imagetyp
    hdu.header["EXPTIME"] = exptime
    if filt is not None:
        hdu.header["FILTER"] = filt
    hdu.header["DATE-OBS"] = date
    hdu.header["XBINNING"] = binning
    hdu.header["YBINNING"] = binning
    hdu.header["CCD-TEMP"] = -10.2
    hdu.header["SET-TEMP"] = -10.0
    hdu.header["OBJCTRA"] = "02 04 10"
    hdu.header["OBJCTDEC"] = "+46 41 23"
    path.parent.mkdir(parents=True, exist_ok=True)
    hdu.writeto(path)
    return path


@pytest.fixture
def night(tmp_path: Path) -> Path:
    """A small night: calibrations, lights, MEF, compressed, and broken files."""
    root = tmp_path / "raw night"
    for i in range(3):
        _frame(root / "cal" / f"Bias Frame {i}.fits", "Bias Frame", exptime=0.0, filt=None, seed=i)
        _frame(root / "cal" / f"dark_{i}.fit", "Dark Frame", exptime=30.0, filt=None, seed=10 + i)
        _frame(root / "cal" / f"flat_{i}.fts", "Flat Field", exptime=2.0, filt="V", seed=20 + i)
    for i in range(4):
        _frame(root / "lights" / f"target {i}.FITS", "Light Frame", exptime=60.0,
               date=f"2024-03-01T0{3 + i}:00:00", seed=30 + i)  # fmt: skip
    # binned frames, no IMAGETYP (OBJECT says light)
    binned = _frame(root / "lights" / "binned.fits", None, exptime=60.0, binning=2)
    with fits.open(binned, mode="update") as hdul:
        hdul[0].header["OBJECT"] = "HATP-32"
    # multi-extension: two image HDUs after an empty primary
    mef = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((8, 8), np.float32)),
                        fits.ImageHDU(np.ones((8, 8), np.float32))])  # fmt: skip
    mef[0].header["OBSTYPE"] = "OBJECT"
    mef[0].header["EXPTIME"] = 5.0
    mef[0].header["DATE-OBS"] = "2024-03-01"
    mef[0].header["UT"] = "04:30:00"
    mef.writeto(root / "mef.fits")
    # compressed frames (a frame of its own: the gzip of another file would be its duplicate)
    src = (root / "lights" / "target 0.FITS").read_bytes()
    own = _frame(tmp_path / "elsewhere" / "own.fits", "Light Frame", exptime=60.0, seed=39).read_bytes()
    (root / "lights" / "target 0 copy.fits.gz").write_bytes(gzip.compress(own))
    comp = fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(np.arange(64, dtype=np.int16).reshape(8, 8))])
    comp[1].header["IMAGETYP"] = "BIAS"
    comp.writeto(root / "cal" / "bias.fits.fz")
    # broken ones
    (root / "junk").mkdir()
    (root / "junk" / "notes.fits").write_text("this is not FITS")
    (root / "junk" / "empty.fit").write_bytes(b"")
    (root / "junk" / "cut.fits").write_bytes(src[: len(src) - 2880])
    fits.BinTableHDU.from_columns([fits.Column(name="a", format="D", array=np.arange(3.0))]).writeto(
        root / "junk" / "table.fits"
    )
    (root / "readme.txt").write_text("not scanned")
    return root


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url)
    yield database
    database.dispose()


def _rows(db: Database) -> list[Frame]:
    with db.session() as s:
        return list(s.scalars(select(Frame).order_by(Frame.path, Frame.hdu)))


def _by_name(db: Database) -> dict[tuple[str, int], Frame]:
    return {(os.path.basename(f.path), f.hdu): f for f in _rows(db)}


def test_is_scannable() -> None:
    for name in (
        "a.fits",
        "a.FIT",
        "a.fts",
        "a.FITS",
        "a.fits.fz",
        "a.fits.gz",
        "a.mt",
        "a b.fit",
        "w.fit.bz2",
    ):
        assert is_scannable(name), name
    for name in ("a.txt", "a.fits.tmp", ".hidden.fits", "a.png"):
        assert not is_scannable(name), name


def test_scan_a_night(night: Path, db: Database) -> None:
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in night.rglob("*") if p.is_file()}
    progress = CountingProgress()
    summary = scan_paths([night], Settings(), db, progress=progress)
    # 9 cal + 1 .fz + 4 lights + 1 binned + 1 gz + 1 MEF + 4 junk = 21 files
    assert (summary.added, summary.updated, summary.unchanged, summary.missing, summary.bad) == (
        21,
        0,
        0,
        0,
        4,
    )
    assert summary.frames == 18  # 16 single-image files + 2 extensions of the MEF
    assert progress.total == 21 and progress.done == 21
    rows = _by_name(db)
    assert rows[("Bias Frame 0.fits", 0)].kind == "bias"
    assert rows[("dark_1.fit", 0)].kind == "dark" and rows[("dark_1.fit", 0)].exptime == 30.0
    flat = rows[("flat_2.fts", 0)]
    assert (flat.kind, flat.filter, flat.kind_inferred, flat.kind_source) == (
        "flat",
        "V",
        False,
        "IMAGETYP='Flat Field'",
    )
    assert (flat.naxis1, flat.naxis2, flat.xbin, flat.ybin) == (48, 32, 1, 1)
    assert (flat.ccd_temp, flat.set_temp) == (-10.2, -10.0)
    assert flat.sha1 is not None and len(flat.sha1) == 40
    assert flat.header is not None and flat.header["IMAGETYP"] == "Flat Field"
    binned = rows[("binned.fits", 0)]
    assert (binned.kind, binned.kind_inferred, binned.xbin, binned.ybin) == ("light", True, 2, 2)
    assert rows[("bias.fits.fz", 1)].kind == "bias"
    assert rows[("target 0 copy.fits.gz", 0)].kind == "light"
    mef = [rows[("mef.fits", 1)], rows[("mef.fits", 2)]]
    assert [m.kind for m in mef] == ["light", "light"]
    assert mef[0].time_source == "DATE-OBS + UT start + EXPTIME/2"
    light = rows[("target 2.FITS", 0)]
    assert (
        light.mid_utc is not None and light.mid_utc.replace(tzinfo=None).isoformat() == "2024-03-01T05:00:30"
    )
    assert light.time_source == "DATE-OBS start + EXPTIME/2"
    assert light.night == "2024-02-29"  # default observatory: Arizona
    assert light.jd_utc == pytest.approx(2460370.7086806, abs=1e-6)
    assert light.bjd_tdb is not None and abs(light.bjd_tdb - light.jd_utc - 69.184 / 86400) < 500 / 86400
    bad = {os.path.basename(f.path): f for f in _rows(db) if f.status == "bad"}
    assert set(bad) == {"notes.fits", "empty.fit", "cut.fits", "table.fits"}
    assert "truncated" in (bad["cut.fits"].error or "")
    assert "no 2-D image frame" in (bad["table.fits"].error or "")
    assert all(str(night) in (f.error or "") for f in bad.values())  # the message names the file
    with db.session() as s:
        failed = {r.frame_id: r for r in s.scalars(select(StepRun).where(StepRun.step == "scan"))}
    assert {f.id for f in bad.values()} == set(failed)
    assert all(r.status == "failed" and r.reason for r in failed.values())
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in night.rglob("*") if p.is_file()}
    assert after == before  # raw files are never modified


def test_rescan_reads_nothing_unchanged(night: Path, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    scan_paths([night], settings, db)
    ids = {(f.path, f.hdu): f.id for f in _rows(db)}
    reads: list[str] = []
    hashes: list[str] = []
    real_read, real_hash = inventory_scan.read_file_frames, inventory_scan.file_sha1

    def counting_read(path: str, s: Settings) -> list[inventory.FrameInfo]:
        reads.append(os.path.basename(path))
        return real_read(path, s)

    def counting_hash(path: str, chunk_size: int = 1 << 20) -> str:
        hashes.append(os.path.basename(path))
        return real_hash(path, chunk_size)

    monkeypatch.setattr(inventory_scan, "read_file_frames", counting_read)
    monkeypatch.setattr(inventory_scan, "file_sha1", counting_hash)
    again = scan_paths([night], settings, db)
    assert again == ScanSummary(unchanged=21, seconds=again.seconds)
    assert reads == [] and hashes == []
    assert {(f.path, f.hdu): f.id for f in _rows(db)} == ids

    # touched (new mtime) but same bytes: hashed, not read
    touched = night / "cal" / "dark_0.fit"
    os.utime(touched, (1_700_000_000, 1_700_000_000))
    # changed content: read again, same row id
    changed = night / "lights" / "target 1.FITS"
    with fits.open(changed) as hdul:
        hdul[0].header["FILTER"] = "R"
        hdul.writeto(changed.with_suffix(".tmp"), overwrite=True)
    os.replace(changed.with_suffix(".tmp"), changed)
    # new and vanished files
    _frame(night / "lights" / "new one.fits", "LIGHT", seed=99)
    (night / "cal" / "flat_0.fts").unlink()
    third = scan_paths([night], settings, db)
    assert (third.added, third.updated, third.unchanged, third.missing, third.bad) == (1, 1, 19, 1, 0)
    assert sorted(hashes) == ["dark_0.fit", "new one.fits", "target 1.FITS"]
    assert sorted(reads) == ["new one.fits", "target 1.FITS"]
    rows = _by_name(db)
    assert rows[("target 1.FITS", 0)].filter == "R"
    assert rows[("target 1.FITS", 0)].id == ids[(str(changed), 0)]
    assert rows[("dark_0.fit", 0)].mtime == 1_700_000_000
    assert rows[("flat_0.fts", 0)].status == "missing"
    # the flat comes back: read again and ok
    _frame(night / "cal" / "flat_0.fts", "Flat Field", exptime=2.0, seed=20)
    fourth = scan_paths([night], settings, db)
    assert (fourth.updated, fourth.missing) == (1, 0)
    assert _by_name(db)[("flat_0.fts", 0)].status == "ok"
    # a bad file replaced by a good one: ok again, and its failed scan step is cleared
    notes = night / "junk" / "notes.fits"
    notes.unlink()
    _frame(notes, "DARK", seed=5)
    assert scan_paths([night], settings, db).updated == 1
    fixed = _by_name(db)[("notes.fits", 0)]
    assert (fixed.status, fixed.kind, fixed.error) == ("ok", "dark", None)
    with db.session() as s:
        step = s.scalars(select(StepRun).where(StepRun.frame_id == fixed.id)).one()
    assert step.status == "ok"


def test_scanning_a_subfolder_does_not_mark_the_rest_missing(night: Path, db: Database) -> None:
    scan_paths([night], Settings(), db)
    sub = scan_paths([night / "cal"], Settings(), db)
    assert sub.missing == 0 and sub.unchanged == 10
    # a sibling folder whose name shares the prefix is not "under" cal
    _frame(night.parent / "raw night_2" / "x.fits", "BIAS")
    scan_paths([night.parent / "raw night_2"], Settings(), db)
    (night.parent / "raw night_2" / "x.fits").unlink()
    assert scan_paths([night], Settings(), db).missing == 0


def test_queries_and_groups(night: Path, db: Database) -> None:
    scan_paths([night], Settings(), db)
    with db.session() as s:
        lights = light_frames(s)
        assert len(lights) == 8  # 4 + binned + gz copy + 2 MEF extensions
        assert [f.mid_utc for f in lights] == sorted(f.mid_utc for f in lights if f.mid_utc is not None)
        assert len(light_frames(s, night="2024-02-29")) == 8
        assert light_frames(s, night="2024-03-01") == []
        assert len(calibration_frames(s, "bias")) == 4
        assert len(calibration_frames(s, "flat", filter="V")) == 3
        assert calibration_frames(s, "flat", filter="R") == []
        assert len(calibration_frames(s, "dark", xbin=1, ybin=1)) == 3
        with pytest.raises(ValueError, match="kind"):
            calibration_frames(s, "light")
        groups = group_frames(s)
        problems = problem_frames(s)
    assert len(problems) == 4 and all(p.status == "bad" for p in problems)
    keyed = {(g.kind, g.binning, g.filter, g.exptime, g.temperature): g.count for g in groups}
    assert keyed[("bias", "1x1", None, 0.0, -10.0)] == 3
    assert keyed[("dark", "1x1", None, 30.0, -10.0)] == 3
    assert keyed[("flat", "1x1", "V", 2.0, -10.0)] == 3
    assert keyed[("light", "2x2", "V", 60.0, -10.0)] == 1
    assert keyed[("light", "1x1", "V", 60.0, -10.0)] == 5
    assert [g.kind for g in groups] == sorted(
        (g.kind for g in groups), key=["bias", "dark", "flat", "light"].index
    )


def test_overrides_and_targets_from_settings(night: Path, db: Database) -> None:
    settings = validate_settings(
        {
            "camera": {
                "overrides": [{"match": {"FILTER": "V", "IMAGETYP": "Flat Field"}, "set": {"FILTER": "Vj"}}]
            },
            "timeseries": {"targets": [{"name": "HAT-P-32", "ra": 31.0, "dec": 46.0}]},
        }
    )
    assert isinstance(settings.camera.overrides[0], CameraOverride)
    assert isinstance(settings.timeseries.targets[0], TargetConfig)
    scan_paths([night / "cal", night / "lights"], settings, db)
    rows = _by_name(db)
    assert rows[("flat_0.fts", 0)].filter == "Vj"
    assert rows[("target 0.FITS", 0)].filter == "V"
    # binned.fits has OBJECT = HATP-32: its BJD uses the configured target, not OBJCTRA/DEC
    binned, other = rows[("binned.fits", 0)], rows[("target 0.FITS", 0)]
    assert binned.bjd_tdb is not None and other.bjd_tdb is not None
    assert binned.mid_utc == other.mid_utc
    assert abs(binned.bjd_tdb - other.bjd_tdb) * 86400 > 0.5  # 0.7 deg apart on the sky


def test_real_data_scan(shared_data: Path, tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'real.sqlite'}")
    try:
        summary = scan_paths([shared_data], Settings(), db)
        assert summary.bad == 3  # the two FITS tables of stellarphot-eyuma, the TESS pixel file
        rows = _by_name(db)
        assert rows[("flattest.fit", 0)].kind == "bias"
        dfosc = rows[("dfosc_skyflat_badfitskeys.mt", 0)]
        assert (dfosc.kind, dfosc.kind_inferred, dfosc.filter) == ("flat", True, "Stroem_u_711")
        assert rows[("NOT.fits", 1)].kind == "flat" and ("NOT.fits", 0) not in rows
        assert rows[("gmos.fits", 1)].kind == "light"  # SCI; VAR and SKYFIT are not frames
        assert ("gmos.fits", 2) not in rows and ("gmos.fits", 3) not in rows
        assert ("tess25155310-s01-first-cadences.fits.gz", 2) not in rows  # APERTURE mask
        assert rows[("tess25155310-s01-first-cadences.fits.gz", 0)].status == "bad"
        dark = rows[("Screen Center_Dark_20180619_00000161.fits", 0)]
        assert (dark.kind, dark.xbin, dark.ybin, dark.exptime) == ("dark", 3, 3, 5.0)
        assert rows[("wasp_12.B.060.fits", 0)].kind == "light"
        assert rows[("wasp_12.B.060.fits", 0)].kind_source.startswith("stats")  # type: ignore[union-attr]
        with db.session() as s:
            hat = light_frames(s, night="2017-12-19")
        assert len(hat) == 142
        assert all(f.time_source and f.time_source.startswith("UT-OBS") for f in hat)
        assert hat[0].mid_utc is not None and hat[0].mid_utc.isoformat()[:19] == "2017-12-20T01:34:13"
        again = scan_paths([shared_data], Settings(), db)
        assert again.unchanged == summary.files and again.added == again.updated == 0
    finally:
        db.dispose()


def test_cli_scan_and_frames(night: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    base = ["-q", "--set", f'database.url="{url}"']
    assert main([*base, "scan", str(night)]) == 0
    out = capsys.readouterr().out
    assert "21 files: 21 added" in out and "4 bad" in out
    assert main([*base, "frames", "--format", "json"]) == 0
    groups = json.loads(capsys.readouterr().out)
    assert groups[0]["kind"] == "bias"
    assert any(g["kind"] == "bias" and g["binning"] == "1x1" and g["count"] == 3 for g in groups)
    assert main([*base, "frames", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "kind,binning,filter,exptime,temperature,count,first_utc,last_utc,nights"
    assert len(lines) == 1 + len(groups)
    assert main([*base, "frames"]) == 0
    assert "light" in capsys.readouterr().out
    assert main([*base, "frames", "--list", "--kind", "dark", "--format", "json"]) == 0
    darks = json.loads(capsys.readouterr().out)
    assert sorted(Path(d["path"]).name for d in darks) == ["dark_0.fit", "dark_1.fit", "dark_2.fit"]
    assert darks[0]["time_source"] == "DATE-OBS start + EXPTIME/2" and darks[0]["binning"] == "1x1"
    assert main([*base, "frames", "--list"]) == 0
    assert capsys.readouterr().out.startswith("18 frames")
    assert main([*base, "frames", "--problems", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 4
    assert main([*base, "scan", str(tmp_path / "nowhere")]) == 2  # a usage error
    assert "nowhere" in capsys.readouterr().err


def test_copy_of_real_frames_with_spaces(shared_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "with space"
    for src in (shared_data / "guilford-sbig-darks").glob("*.fits"):
        shutil.copy(src, folder / src.name if folder.exists() else _mk(folder) / src.name)
    db = open_database(f"sqlite:///{tmp_path / 'g.sqlite'}")
    try:
        assert scan_paths([folder], Settings(), db).added == 4
        with db.session() as s:
            darks = calibration_frames(s, "dark", xbin=3, ybin=3)
        assert len(darks) == 4 and all(" " in Path(d.path).name for d in darks)
        assert {d.night for d in darks} == {"2018-06-18"}
    finally:
        db.dispose()


def _mk(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return folder


def test_raw_reader_compressed_and_broken(tmp_path: Path) -> None:
    from nightpipe.errors import FitsReadError
    from nightpipe.inventory import read_raw_headers

    hdul = fits.HDUList([fits.PrimaryHDU(np.zeros((20, 30), np.int16)), fits.ImageHDU(np.ones((5, 6)))])
    hdul[0].header["IMAGETYP"] = "BIAS"
    plain = tmp_path / "two.fits"
    hdul.writeto(plain)
    raw = plain.read_bytes()
    (tmp_path / "two.fits.gz").write_bytes(gzip.compress(raw))
    import bz2

    (tmp_path / "two.fit.bz2").write_bytes(bz2.compress(raw))
    for name in ("two.fits", "two.fits.gz", "two.fit.bz2"):
        hdus = read_raw_headers(str(tmp_path / name))
        assert [h.image for h in hdus] == [True, True], name
        assert hdus[0].cards["IMAGETYP"] == "BIAS" and hdus[1].cards["NAXIS1"] == 6
    # trailing garbage after the last HDU is ignored (as astropy does)
    (tmp_path / "tail.fits").write_bytes(raw + b"\0" * 100)
    assert len(read_raw_headers(str(tmp_path / "tail.fits"))) == 2
    # truncated data of the last HDU, plain and gzip; a header cut in the middle
    for name, blob in (
        ("cut.fits", raw[:-2700]),  # 180 of the 240 data bytes of the last HDU
        ("cut.fits.gz", gzip.compress(raw[:-3000])),
        ("cuthead.fits", raw[:1000]),
        ("badgz.fits.gz", b"\x1f\x8b" + b"garbage" * 50),
    ):
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(FitsReadError, match=name.replace(".", r"\.")):
            read_raw_headers(str(tmp_path / name))


def test_auxiliary_planes_are_not_frames(tmp_path: Path) -> None:
    from nightpipe.inventory import read_file_frames

    hdul = fits.HDUList(
        [
            fits.PrimaryHDU(np.zeros((10, 12), np.float32)),
            fits.ImageHDU(np.zeros((10, 12), np.float32), name="UNCERT"),
            fits.ImageHDU(np.zeros((10, 12), np.uint16), name="MASK"),
            fits.ImageHDU(np.zeros((10, 12), np.float32), name="SCI"),
        ]
    )
    hdul[0].header["IMAGETYP"] = "LIGHT"
    hdul.writeto(tmp_path / "calibrated.fits")
    assert [f.hdu for f in read_file_frames(str(tmp_path / "calibrated.fits"), Settings())] == [0, 3]


def test_settings_change_rereads_without_rehashing(
    night: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    scan_paths([night / "cal"], Settings(), db)
    hashes: list[str] = []
    real_hash = inventory_scan.file_sha1
    monkeypatch.setattr(inventory_scan, "file_sha1", lambda p, c=1 << 20: hashes.append(p) or real_hash(p, c))
    fixed = validate_settings(
        {"camera": {"overrides": [{"match": {"IMAGETYP": "Dark Frame"}, "set": {"EGAIN": 2.5}}]}}
    )
    again = scan_paths([night / "cal"], fixed, db)
    assert (again.updated, again.unchanged) == (10, 0)
    assert hashes == []  # the bytes did not change: the stored hashes stand
    rows = _by_name(db)
    assert rows[("dark_2.fit", 0)].gain == 2.5 and rows[("Bias Frame 1.fits", 0)].gain is None
    assert rows[("dark_2.fit", 0)].sha1 is not None
    assert scan_paths([night / "cal"], fixed, db).unchanged == 10
    forced = scan_paths([night / "cal"], fixed, db, force=True)
    assert (forced.updated, forced.unchanged) == (10, 0) and hashes == []


def test_colour_cube_is_reported_as_such(tmp_path: Path) -> None:
    from nightpipe.errors import FitsReadError
    from nightpipe.inventory import read_file_frames

    fits.PrimaryHDU(np.zeros((3, 10, 12), np.uint16)).writeto(tmp_path / "rgb frame.fits")
    with pytest.raises(FitsReadError, match=r"rgb frame\.fits: HDU 0 is a 12x10x3 cube"):
        read_file_frames(str(tmp_path / "rgb frame.fits"), Settings())


@pytest.mark.parametrize("dialect", ["maxim", "nina", "sbig", "microobservatory"])
def test_simulated_dialects_give_back_the_truth(dialect: str, tmp_path: Path) -> None:
    """Independent oracle: the simulator's truth (kinds, exposures, times, BJD_TDB) for frames
    written in the header dialects of MaxIm DL, N.I.N.A., TheSkyX/SBIG and MicroObservatory."""
    from datetime import datetime as dt

    from nightpipe.frames.timing import exposure_mid, night_of, resolve_location
    from nightpipe.simulate import CalibrationOptions, CameraOptions, SimOptions, SiteOptions, simulate_night

    opts = SimOptions(
        dialect=dialect,  # type: ignore[arg-type]
        camera=CameraOptions(size=32),
        calibration=CalibrationOptions(n_bias=1, n_dark=1, dark_exptimes=(30.0,), n_flat=1),
        site=SiteOptions(n_lights=3, start_utc="2017-12-20T02:00:00.250", longitude=-79.81, latitude=36.08),
    )
    truth = simulate_night(tmp_path / "night", opts)
    # the configured observatory is elsewhere: the site must come from the headers
    settings = validate_settings({"observatory": {"latitude": 46.87, "longitude": -96.45}})
    db = open_database(f"sqlite:///{tmp_path / 'sim.sqlite'}")
    try:
        summary = scan_paths([tmp_path / "night"], settings, db)
        assert summary.bad == 0
        rows = _by_name(db)
    finally:
        db.dispose()
    tolerance = 1.0 if dialect == "maxim" else 0.002  # MaxIm writes whole seconds
    for entry in truth.frames:
        row = rows[(entry["file"], 0)]
        assert row.kind == entry["kind"], entry["file"]
        assert row.exptime == entry["exptime"]
        assert row.ccd_temp == pytest.approx(entry["ccd_temp"], abs=0.06)
        mid = dt.fromisoformat(entry["mid_utc"]).replace(tzinfo=None)
        assert row.mid_utc is not None
        assert abs((row.mid_utc.replace(tzinfo=None) - mid).total_seconds()) <= tolerance
        assert row.jd_utc == pytest.approx(entry["mid_jd_utc"], abs=tolerance / 86400 + 1e-8)
        expected_night = night_of(dt.fromisoformat(entry["mid_utc"] + "+00:00"), -79.81)
        assert row.night == expected_night
        frame = inventory.read_file_frames(str(tmp_path / "night" / entry["file"]), settings)[0]
        stamp = exposure_mid(frame.cards, frame.header.exptime)
        assert stamp is not None
        lat, lon, _, _ = resolve_location(
            frame.header.site_lat, frame.header.site_lon, frame.header.site_elev, settings.observatory,
            local_offset_hours=stamp.local_offset_hours,
        )  # fmt: skip
        # the site is found, west longitudes included (SBIG and MicroObservatory write them west-positive)
        assert (lat, lon) == (pytest.approx(36.08, abs=0.01), pytest.approx(-79.81, abs=0.01))
        if dialect in ("nina", "sbig", "microobservatory"):  # DATE-LOC, LOCALTIM, DATE-OBS -0700
            assert stamp.local_offset_hours == -7.0
        if entry["kind"] == "light":
            assert (row.filter, row.object) == ("V", "SIM-1")
            assert row.bjd_tdb is not None
            assert abs(row.bjd_tdb - entry["bjd_tdb"]) * 86400 < tolerance + 0.1


def test_a_row_the_database_refuses_does_not_stop_the_scan(tmp_path: Path, db: Database) -> None:
    root = tmp_path / "deep"
    _frame(root / "ok.fits", "BIAS", exptime=0.0)
    deep = root.joinpath(*["d" * 200] * 5)  # a path over the 1024 characters of frames.path
    _frame(deep / "long.fits", "BIAS", exptime=0.0)
    summary = scan_paths([root], Settings(), db)
    assert summary.added == 2
    names = {os.path.basename(f.path) for f in _rows(db)}
    assert "ok.fits" in names
    if db.engine.dialect.name == "postgresql":  # String(1024) is enforced there
        assert summary.bad == 1 and "long.fits" not in names
    else:
        assert summary.bad == 0 and "long.fits" in names


def test_hatp32_scan_bjd_matches_exotic(shared_data: Path, tmp_path: Path) -> None:
    """End to end: the scanned HAT-P-32 night, with the target configured, has EXOTIC's BJD_TDB."""
    ref = json.loads((shared_data / "hatp32-microobservatory/exotic-reference/sampledata.json").read_text())
    exotic = np.array(ref["time"])
    settings = validate_settings(
        {"timeseries": {"targets": [{"name": "HAT-P-32", "ra": 31.041667, "dec": 46.689722}]}}
    )
    db = open_database(f"sqlite:///{tmp_path / 'hat.sqlite'}")
    try:
        assert scan_paths([shared_data / "hatp32-microobservatory"], settings, db).frames == 142
        with db.session() as s:
            ours = np.array([f.bjd_tdb for f in light_frames(s, night="2017-12-19")], dtype=float)
    finally:
        db.dispose()
    nearest = np.abs(ours[None, :] - exotic[:, None]).argmin(axis=1)
    assert np.all(np.abs(exotic - ours[nearest]) * 86400.0 < 0.1)
