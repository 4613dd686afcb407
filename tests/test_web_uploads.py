"""Uploads: safe names, and the FITS check on real frames and on bad files (each refused with a
clear message). Archives: test_web_uploads_archives.py; the streaming receiver:
test_web_uploads_stream.py."""

from __future__ import annotations

import bz2
import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st

from nightpipe.web.uploads import UploadRejected, check_fits, fitscheck, place_file, safe_name, unique_name
from nightpipe.web.uploads.names import MAX_NAME_BYTES, sweep_temporary, temp_file
from upload_helpers import MB, all_files, big_fits, endless_header, hatp, header_bytes, limits

SIMPLE = ("SIMPLE  =                    T",)


# -- names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("HATP-32171220013343.FITS", "HATP-32171220013343.FITS"),
        ("Screen Center_Dark_20180619_00000161.fits", "Screen Center_Dark_20180619_00000161.fits"),
        ("../../evil.fits", "evil.fits"),
        ("/etc/passwd", "passwd"),
        ("C:\\Users\\ann\\night\\m51.fit", "m51.fit"),
        (".bashrc", "bashrc"),
        ("...fits", "upload.fits"),
        ("..", "upload"),
        ("", "upload"),
        ("bad\x00na\x1bme\x7f.fits", "badname.fits"),
        ("<b>alert(1)<b>.fits", "_b_alert(1)_b_.fits"),
        ("<script>x</script>.fits", "script_.fits"),
        ("a\u2215b\uff0fc.fits.gz", "c.fits.gz"),  # NFKC: the fullwidth solidus is a slash
        ("e\u0301toile.fts", "\u00e9toile.fts"),  # NFD -> NFC
        ("frame\u202e.fits", "frame.fits"),  # a right-to-left override (format character)
        ("  night 1 .fits  ", "night 1.fits"),
        ("name.", "name"),
    ],
)
def test_safe_name(sent: str, stored: str) -> None:
    assert safe_name(sent) == stored


def test_safe_name_caps_the_length_and_keeps_the_extension() -> None:
    name = safe_name("é" * 400 + ".fits.gz")
    assert name.endswith("é.fits.gz") and len(name.encode()) <= MAX_NAME_BYTES
    assert safe_name("x" * 300 + ".FITS").endswith("x.FITS")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_safe_name_is_always_a_plain_file_name(tmp_path_factory: pytest.TempPathFactory, sent: str) -> None:
    name = safe_name(sent)
    assert name and "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith((".", " ")) and name not in {".", ".."}
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert safe_name(name) == name  # idempotent
    folder = tmp_path_factory.mktemp("names")
    (folder / name).write_bytes(b"")
    assert [p.name for p in folder.iterdir()] == [name]


def test_place_file_never_replaces_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "uploads"
    placed = []
    for content in (b"one", b"two", b"three"):
        fd, temp = temp_file(tmp_path)
        os.write(fd, content)
        os.close(fd)
        placed.append(place_file(temp, folder, "frame.fits"))
        assert not temp.exists()
    assert [p.name for p in placed] == ["frame.fits", "frame-2.fits", "frame-3.fits"]
    assert [p.read_bytes() for p in placed] == [b"one", b"two", b"three"]
    assert unique_name(folder, "frame.fits") == "frame-4.fits"
    assert unique_name(folder, "other.fits.gz") == "other.fits.gz"
    assert all_files(tmp_path) == {"uploads/frame.fits", "uploads/frame-2.fits", "uploads/frame-3.fits"}


def test_sweep_removes_only_stale_temporary_files(tmp_path: Path) -> None:
    fd, stale = temp_file(tmp_path)
    os.close(fd)
    os.utime(stale, (1_000_000_000, 1_000_000_000))
    fd, fresh = temp_file(tmp_path)
    os.close(fd)
    (tmp_path / "frame.fits").write_bytes(b"")
    os.utime(tmp_path / "frame.fits", (1_000_000_000, 1_000_000_000))
    assert sweep_temporary(tmp_path) == 1
    assert all_files(tmp_path) == {fresh.name, "frame.fits"}


# -- check_fits on real frames -----------------------------------------------------------------------


def test_real_frames_are_accepted_with_their_summary(shared_data: Path) -> None:
    summary = check_fits(hatp(shared_data), "HATP-32171220013343.FITS", limits())
    assert summary.kind == "light" and summary.shape == (500, 650) and summary.dimensions == "650x500"
    assert (summary.object, summary.filter, summary.exptime) == ("HATP-32", "Clear", 60.0)
    assert summary.date_obs == "2017-12-19T18:33:43.317-0700" and not summary.compressed

    bias = check_fits(shared_data / "feder-apogee" / "biastest1.fit", "biastest1.fit", limits())
    dark = check_fits(shared_data / "feder-apogee" / "darktest1.fit", "darktest1.fit", limits())
    assert (bias.kind, bias.exptime, dark.kind, dark.exptime) == ("bias", 0.0, "dark", 30.0)

    gmos = check_fits(shared_data / "gmos-cosmics" / "gmos.fits", "gmos.fits", limits())  # MEF
    assert gmos.hdu == 1 and gmos.n_hdus == 4 and gmos.shape == (150, 200)
    assert gmos.object == "LTT7379" and gmos.filter == "GG455_G0329"  # primary header cards

    flat = check_fits(shared_data / "eso-midas" / "NOT.fits", "NOT.fits", limits())  # 17 MB, MEF
    assert flat.kind == "flat" and flat.shape == (2052, 2148)


def test_gzip_and_bzip2_frames(shared_data: Path, tmp_path: Path) -> None:
    tess = shared_data / "tess-tpf" / "tess25155310-s01-first-cadences.fits.gz"
    summary = check_fits(tess, tess.name, limits())
    assert summary.hdu == 2 and summary.shape == (11, 11)  # the aperture image after the pixel table

    wasp = shared_data / "stellarphot-eyuma" / "wasp-10-tiny.fit.bz2"  # 4.5 kB that unpack to 32 MB
    assert check_fits(wasp, wasp.name, limits(max_file=40 * MB)).shape == (4096, 4096)
    with pytest.raises(UploadRejected, match=r"unpacked, this file is larger than the limit of 8\.0 MB"):
        check_fits(wasp, wasp.name, limits(max_file=8 * MB))

    gz = tmp_path / "frame.fits.gz"
    gz.write_bytes(gzip.compress(hatp(shared_data).read_bytes()))
    assert check_fits(gz, gz.name, limits()).shape == (500, 650)
    bz = tmp_path / "frame.fits.bz2"
    bz.write_bytes(bz2.compress(hatp(shared_data).read_bytes()))
    assert check_fits(bz, bz.name, limits()).kind == "light"


def test_fpack_compressed_frame(shared_data: Path, tmp_path: Path) -> None:
    data, header = fits.getdata(hatp(shared_data), header=True)
    path = tmp_path / "frame.fits.fz"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header)]).writeto(path)
    summary = check_fits(path, path.name, limits())
    assert summary.compressed and summary.hdu == 1 and summary.shape == (500, 650)
    assert summary.object == "HATP-32" and summary.exptime == 60.0
    truncated = tmp_path / "cut.fz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UploadRejected, match="cut off: HDU 1 promises"):
        check_fits(truncated, truncated.name, limits())


def test_a_missing_last_padding_is_tolerated(shared_data: Path, tmp_path: Path) -> None:
    raw = hatp(shared_data).read_bytes()
    path = tmp_path / "unpadded.fits"
    path.write_bytes(raw[: 5760 + 650 * 500 * 2])  # header + data, no padding
    assert check_fits(path, path.name, limits()).shape == (500, 650)


# -- bad files ---------------------------------------------------------------------------------------


def test_a_text_file_named_fits_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.fits"
    path.write_text("observing log: clouds after 2 am\n" * 20)
    with pytest.raises(UploadRejected, match=r"not a FITS file \(it does not begin with the card 'SIMPLE  ="):
        check_fits(path, "notes.fits", limits())
    empty = tmp_path / "empty.fits"
    empty.write_bytes(b"")
    with pytest.raises(UploadRejected, match="not a FITS file"):
        check_fits(empty, "empty.fits", limits())


def test_a_name_without_fits_extension_is_refused(shared_data: Path) -> None:
    with pytest.raises(UploadRejected, match=r"the name does not end in \.fits, \.fit, \.fts, \.fz") as info:
        check_fits(hatp(shared_data), "frame.jpg", limits())
    assert info.value.name == "frame.jpg" and str(info.value).startswith("frame.jpg: ")


def test_truncated_frames_are_refused(shared_data: Path, tmp_path: Path) -> None:
    raw = hatp(shared_data).read_bytes()
    cut = tmp_path / "cut.FITS"
    cut.write_bytes(raw[:300_000])
    promise = r"cut off: HDU 0 promises 650,000 bytes of data but only 294,240"
    with pytest.raises(UploadRejected, match=promise):
        check_fits(cut, cut.name, limits())
    in_header = tmp_path / "header.fits"
    in_header.write_bytes(raw[:2880])
    with pytest.raises(UploadRejected, match="ends inside the header of HDU 0"):
        check_fits(in_header, in_header.name, limits())
    mef = (shared_data / "gmos-cosmics" / "gmos.fits").read_bytes()
    last = tmp_path / "mef.fits"
    last.write_bytes(mef[:-5000])  # the last extension is short
    with pytest.raises(UploadRejected, match="cut off: HDU 3 promises"):
        check_fits(last, last.name, limits())
    gz = tmp_path / "cut.fits.gz"
    gz.write_bytes(gzip.compress(raw)[:20_000])
    with pytest.raises(UploadRejected, match="compressed data is damaged or cut off"):
        check_fits(gz, gz.name, limits())


def test_an_endless_header_is_refused_while_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = endless_header(tmp_path / "huge.fits")  # 50 000 cards, 4 MB, no END
    assert path.stat().st_size == 4_000_000
    read: list[int] = []
    original = fitscheck._Reader.read

    def spy(self: fitscheck._Reader, n: int) -> bytes:
        data = original(self, n)
        read.append(len(data))
        return data

    monkeypatch.setattr(fitscheck._Reader, "read", spy)
    endless = r"header of HDU 0 goes on for more than 256 KB without an END card"
    with pytest.raises(UploadRejected, match=endless):
        check_fits(path, path.name, limits(header=256 * 1024))
    assert sum(read) <= 256 * 1024 + 2880 and max(read) == 2880  # block by block, stopped at the limit
    gz = tmp_path / "huge.fits.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(UploadRejected, match="without an END card"):
        check_fits(gz, gz.name, limits())


def test_files_without_image_are_refused(shared_data: Path, tmp_path: Path) -> None:
    table = shared_data / "stellarphot-eyuma" / "unclipped_ey_uma_vsx.fits"
    with pytest.raises(UploadRejected, match="no HDU of this FITS file holds an image of at least two"):
        check_fits(table, table.name, limits())
    header_only = tmp_path / "header.fits"
    header_only.write_bytes(header_bytes(*SIMPLE, "BITPIX  =                    8", "NAXIS   =  0"))
    with pytest.raises(UploadRejected, match="no HDU"):
        check_fits(header_only, header_only.name, limits())
    spectrum = tmp_path / "spectrum.fits"
    fits.PrimaryHDU(np.zeros(100, dtype=np.float32)).writeto(spectrum)
    with pytest.raises(UploadRejected, match="no HDU"):
        check_fits(spectrum, spectrum.name, limits())


def test_bad_structural_cards_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bitpix.fits"
    path.write_bytes(header_bytes(*SIMPLE, "BITPIX  = 12", "NAXIS   = 2", "NAXIS1  = 4", "NAXIS2  = 4"))
    with pytest.raises(UploadRejected, match="BITPIX = 12, which FITS does not allow"):
        check_fits(path, path.name, limits())
    path.write_bytes(header_bytes(*SIMPLE, "BITPIX  = 16", "NAXIS   = 2", "NAXIS1  = 'wide'", "NAXIS2  = 4"))
    with pytest.raises(UploadRejected, match="no valid NAXIS1 card"):
        check_fits(path, path.name, limits())


def test_an_oversized_file_is_refused(shared_data: Path, tmp_path: Path) -> None:
    with pytest.raises(UploadRejected, match=r"the file is 641 KB, more than the limit of 100 KB per file"):
        check_fits(hatp(shared_data), "frame.fits", limits(max_file=100 * 1024))
    bomb = tmp_path / "bomb.fits.gz"  # 2 MB of data in a few kB of gzip
    with gzip.open(bomb, "wb") as out, big_fits(tmp_path / "big.fits", 2 * MB).open("rb") as source:
        shutil.copyfileobj(source, out)
    assert bomb.stat().st_size < 100 * 1024
    with pytest.raises(UploadRejected, match="unpacked, this file is larger than the limit of 1.0 MB"):
        check_fits(bomb, bomb.name, limits(max_file=MB))
