"""The scan on bad input: what a file is when it is not FITS, unreadable exposure and time keywords,
links that lead nowhere, byte-identical copies, and the problems table that shows them all."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import select

from nightpipe.cli.app import main
from nightpipe.config import Settings
from nightpipe.errors import FitsReadError
from nightpipe.inventory import problem_frames, scan_paths
from nightpipe.inventory.notes import exposure_problem, time_problem
from nightpipe.inventory.raw_headers import read_raw_headers
from nightpipe.store import Database, open_database
from nightpipe.store.models import Frame, StepRun


def _light(path: Path, seed: int = 0, **cards: object) -> Path:
    header = fits.Header()
    header["IMAGETYP"] = "Light Frame"
    header["EXPTIME"] = 60.0
    header["DATE-OBS"] = "2024-03-01T03:00:00"
    header["OBJECT"] = "HATP-32"
    for key, value in cards.items():
        key = key.replace("_", "-")
        if value is None:
            header.remove(key, ignore_missing=True)
        else:
            header[key] = value
    data = np.random.default_rng(seed).normal(1000, 10, (24, 32)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(data, header=header).writeto(path)
    return path


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")


def _rows(db: Database) -> dict[str, Frame]:
    with db.session() as session:
        rows = {Path(f.path).name: f for f in session.scalars(select(Frame))}
        session.expunge_all()
    return rows


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(200), "not a FITS file: a JPEG image"),
        (b"\x89PNG\r\n\x1a\n" + bytes(3000), "not a FITS file: a PNG image"),
        (b"clouds after 3 UT\n", "not a FITS file: text"),  # shorter than a FITS block
        (b"seeing 2 arcsec\n" * 400, "not a FITS file: text"),
        (b"", "empty file (0 bytes)"),
        (b"SIMPLE  =                    T" + b" " * 50, "truncated header: HDU 0 ends after 80 bytes"),
    ],
)
def test_a_file_that_is_not_fits_says_what_it_is(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "frame.fits"
    path.write_bytes(content)
    with pytest.raises(FitsReadError) as caught:
        read_raw_headers(str(path))
    assert str(caught.value).startswith(f"{path}: {says}")


def test_exposure_and_time_problems_name_the_keyword_and_value() -> None:
    assert exposure_problem({"EXPTIME": "sixty"}, None) == (
        "EXPTIME = 'sixty' is not an exposure time in seconds (a number >= 0)",
        True,
    )
    assert exposure_problem({"EXPTIME": -60.0}, None)[1] is True
    noted, fatal = exposure_problem({"EXPTIME": "sixty", "EXPOSURE": 60.0}, 60.0)
    assert not fatal and noted is not None and "60 s of a later keyword is used" in noted
    assert exposure_problem({"EXPTIME": 0.0}, 0.0) == (None, False)
    assert exposure_problem({}, None) == (None, False)  # missing: said when a dark is matched
    impossible = time_problem({"DATE-OBS": "2017-13-45T99:99:99"}, "light", "JD start")
    assert impossible == (
        "DATE-OBS = '2017-13-45T99:99:99' is not a date-time (YYYY-MM-DDThh:mm:ss); "
        "the time comes from JD start"
    )
    timeless = time_problem({"DATE-OBS": "yesterday evening"}, "light", None)
    assert timeless is not None and timeless.startswith("no time: DATE-OBS = 'yesterday evening'")
    assert "left out of every light curve" in timeless
    assert time_problem({}, "bias", None) is None  # a bias needs no time
    assert time_problem({"DATE-OBS": "2024-03-01T03:00:00"}, "light", "DATE-OBS start") is None


def test_scan_marks_unusable_headers_bad_and_notes_odd_ones(tmp_path: Path, db: Database) -> None:
    raw = tmp_path / "raw"
    _light(raw / "good.fits")
    _light(raw / "exptime_text.fits", 1, EXPTIME="sixty")
    _light(raw / "exptime_negative.fits", 2, EXPTIME=-60.0)
    _light(raw / "impossible_date.fits", 3, DATE_OBS="2017-13-45T99:99:99", JD=2460370.625)
    _light(raw / "text_date.fits", 4, DATE_OBS="yesterday evening")
    summary = scan_paths([raw], Settings(), db)
    assert summary.bad == 2
    rows = _rows(db)
    assert rows["good.fits"].status == "ok" and rows["good.fits"].error is None
    for name, value in (("exptime_text.fits", "'sixty'"), ("exptime_negative.fits", "-60.0")):
        assert rows[name].status == "bad"
        assert rows[name].error == (
            f"{raw / name}: EXPTIME = {value} is not an exposure time in seconds (a number >= 0) "
            "(the frame cannot be matched to a dark nor scaled; fix the card, or set it with a "
            "[[camera.overrides]] rule)"
        )
    dated = rows["impossible_date.fits"]
    assert dated.status == "ok" and dated.time_source is not None and dated.time_source.startswith("JD")
    assert dated.error is not None and "'2017-13-45T99:99:99' is not a date-time" in dated.error
    assert f"the time comes from {dated.time_source}" in dated.error
    timeless = rows["text_date.fits"]
    assert timeless.status == "ok" and timeless.night is None
    assert timeless.error is not None and str(raw / "text_date.fits") in timeless.error
    assert "no time: DATE-OBS = 'yesterday evening'" in timeless.error
    with db.session() as session:
        problems = sorted(Path(f.path).name for f in problem_frames(session))
        failed = session.scalars(select(StepRun).where(StepRun.step == "scan")).all()
        assert sorted(r.status for r in failed) == ["failed", "failed"]
    assert problems == sorted(["exptime_text.fits", "exptime_negative.fits", "impossible_date.fits",
                               "text_date.fits"])  # fmt: skip
    _light(raw / "exptime_text.fits.fixed")  # the fixed file replaces the bad one: ok again
    (raw / "exptime_text.fits.fixed").replace(raw / "exptime_text.fits")
    scan_paths([raw], Settings(), db)
    assert _rows(db)["exptime_text.fits"].status == "ok"


def test_links_that_lead_nowhere_are_named(tmp_path: Path, db: Database) -> None:
    raw = tmp_path / "raw"
    _light(raw / "good.fits")
    (raw / "loop.fits").symlink_to("loop.fits")
    (raw / "gone.fits").symlink_to("moved_away.fits")
    (raw / "again").symlink_to(".", target_is_directory=True)  # a folder loop: not followed
    summary = scan_paths([raw], Settings(), db)
    assert (summary.added, summary.bad, summary.frames) == (3, 2, 1)
    rows = _rows(db)
    assert rows["loop.fits"].status == "bad"
    assert rows["loop.fits"].error == (
        f"{raw / 'loop.fits'}: a symbolic link loop (Too many levels of symbolic links) "
        "(remove the link, or point it at the real file)"
    )
    assert rows["gone.fits"].error is not None
    assert "a symbolic link to a missing file (moved_away.fits)" in rows["gone.fits"].error
    assert scan_paths([raw], Settings(), db).bad == 2  # the same verdict again, no crash


def test_a_byte_identical_copy_is_used_once_with_a_note_naming_both(tmp_path: Path, db: Database) -> None:
    raw = tmp_path / "raw"
    original = _light(raw / "a_light.fits")
    copy = raw / "z_copy.fits"
    shutil.copyfile(original, copy)
    _light(raw / "other.fits", 5)
    summary = scan_paths([raw], Settings(), db)
    assert summary.duplicates == 1
    rows = _rows(db)
    assert rows["a_light.fits"].status == "ok" and rows["a_light.fits"].error is None
    assert rows["z_copy.fits"].status == "duplicate"
    assert rows["z_copy.fits"].error is not None
    assert rows["z_copy.fits"].error.startswith(f"{copy}: same bytes as {original} (SHA-1 ")
    assert f"used once as {original}" in rows["z_copy.fits"].error
    with db.session() as session:
        lights = session.scalars(select(Frame).where(Frame.status == "ok", Frame.kind == "light")).all()
        assert sorted(Path(f.path).name for f in lights) == ["a_light.fits", "other.fits"]
    assert scan_paths([raw], Settings(), db).duplicates == 1  # stable on a rescan
    original.unlink()  # the original goes: the copy is the frame now
    scan_paths([raw], Settings(), db)
    rows = _rows(db)
    assert rows["z_copy.fits"].status == "ok" and rows["a_light.fits"].status == "missing"
    scan_paths([raw], Settings(), db)  # re-read once revived, then unchanged
    assert _rows(db)["z_copy.fits"].status == "ok"


def test_a_frame_and_its_gzip_twin_are_used_once_with_a_note(tmp_path: Path, db: Database) -> None:
    raw = tmp_path / "raw"
    original = _light(raw / "a_light.fits")
    twin = raw / "a_light.fits.gz"
    twin.write_bytes(gzip.compress(original.read_bytes()))
    broken = raw / "cut.fits.gz"  # a gzip cut short: hashed as it is, its read says what is wrong
    broken.write_bytes(gzip.compress(_light(tmp_path / "other.fits", 7).read_bytes())[:400])
    summary = scan_paths([raw], Settings(), db)
    assert summary.duplicates == 1
    rows = _rows(db)
    assert rows["a_light.fits"].status == "ok" and rows["a_light.fits"].error is None
    assert rows["a_light.fits.gz"].status == "duplicate"
    assert rows["a_light.fits.gz"].error is not None
    assert rows["a_light.fits.gz"].error.startswith(
        f"{twin}: same bytes, once decompressed, as {original} (SHA-1 "
    )
    assert rows["cut.fits.gz"].status == "bad"


def test_a_dark_without_an_exposure_time_is_named_and_never_grouped(tmp_path: Path, db: Database) -> None:
    from nightpipe.calib.master_groups import group_frames

    raw = tmp_path / "raw"
    for i in range(3):
        _light(raw / f"dark_{i}.fits", i, IMAGETYP="Dark Frame", EXPTIME=30.0)
    _light(raw / "dark_no_exptime.fits", 9, IMAGETYP="Dark Frame", EXPTIME=None)
    scan_paths([raw], Settings(), db)
    rows = _rows(db)
    bad = rows["dark_no_exptime.fits"]
    assert bad.status == "bad"
    assert bad.error is not None and bad.error.startswith(
        f"{raw / 'dark_no_exptime.fits'}: a dark without an exposure time: no EXPTIME/EXPOSURE card"
    )
    # the masters' grouping leaves a dark without EXPTIME out even when it is handed one
    darks = [f for f in rows.values() if f.kind == "dark"]
    assert len(darks) == 4
    groups = group_frames(darks, Settings())
    assert [sorted(Path(f.path).name for f in g.frames) for g in groups] == [
        ["dark_0.fits", "dark_1.fits", "dark_2.fits"]
    ]


def test_problems_table_shows_whole_relative_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tmp_path / "a rather long folder name for the night of 2024-03-01" / "lights and darks"
    long_name = "HATP-32_V_light_frame_of_the_transit_egress_number_0042_unreadable.fits"
    (raw / "sub").mkdir(parents=True)
    (raw / "sub" / long_name).write_text("not a frame")
    _light(raw / "text_date.fits", DATE_OBS="yesterday evening")
    base = ["--set", f"database.url='sqlite:///{tmp_path / 'cli.sqlite'}'"]
    assert main([*base, "scan", str(raw)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("COLUMNS", "80")
    assert main([*base, "frames", "--problems"]) == 0
    out = capsys.readouterr().out
    # a terminal draws the table with box characters, a capture (like this one) in ASCII
    border = next(line for line in out.splitlines() if line.startswith(("┏", "+")))
    title, _, table = out.partition(border)
    assert f"(files under {raw})" in "".join(title.split("\n"))
    cells = [re.split("[│|]", line) for line in table.splitlines() if "│" in line or line.startswith("|")]
    first_column = "".join(c[1].strip() for c in cells if len(c) > 2)
    assert f"sub/{long_name}" in first_column and "text_date.fits" in first_column
    assert "…" not in out  # nothing cut
    assert main([*base, "frames", "--problems", "--format", "json"]) == 0
    rows = {Path(r["path"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert rows[long_name]["status"] == "bad" and rows["text_date.fits"]["status"] == "note"
    assert rows[long_name]["reason"].startswith("not a FITS file: text")
