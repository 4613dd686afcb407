"""FITS reading errors name the file; atomic writes leave nothing half-written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from nightpipe.errors import FitsReadError
from nightpipe.frames.fitsio import atomic_path, header_span, read_image, write_fits_atomic, write_with_header


def test_not_fits_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "notes with space.fits"
    bad.write_text("hello")
    with pytest.raises(FitsReadError, match="notes with space.fits"):
        read_image(bad)


def test_truncated_file(tmp_path: Path) -> None:
    good = tmp_path / "good.fits"
    fits.PrimaryHDU(np.ones((100, 100), np.float32)).writeto(good)
    cut = tmp_path / "cut.fits"
    cut.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(FitsReadError, match=r"cut\.fits"):
        read_image(cut)


def test_atomic_write_round_trip_and_failure(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "x.fits"
    write_fits_atomic(fits.HDUList([fits.PrimaryHDU(np.zeros((4, 5), np.float32))]), dest)
    data, _ = read_image(dest)
    assert data.shape == (4, 5)
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("crash")
    assert read_image(dest)[0].shape == (4, 5)
    assert [p.name for p in dest.parent.iterdir()] == ["x.fits"]


def test_products_are_readable_by_everyone(tmp_path: Path) -> None:
    dest = write_fits_atomic(
        fits.HDUList([fits.PrimaryHDU(np.zeros((2, 2), np.float32))]), tmp_path / "p.fits"
    )
    assert dest.stat().st_mode & 0o777 == 0o644


def test_interrupted_writes_are_ignored_and_swept(tmp_path: Path) -> None:
    from nightpipe.frames.fitsio import product_files, sweep_temporary

    (tmp_path / "a.ecsv").write_text("done")
    (tmp_path / ".a.ecsv.k3j_x9q2.ecsv").write_text("half")  # what a kill -9 mid-write leaves
    (tmp_path / ".nightpipe-run.lock").write_text("pid 1")
    assert product_files(tmp_path, "*.ecsv") == [tmp_path / "a.ecsv"]
    assert sweep_temporary(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".nightpipe-run.lock", "a.ecsv"]


def test_header_splice_keeps_every_data_byte(tmp_path: Path) -> None:
    raw = np.arange(60 * 40, dtype=np.uint16).reshape(60, 40)
    sci = fits.PrimaryHDU(raw)  # unsigned: BZERO = 32768 must survive the splice
    sci.header["OBJECT"] = "field"
    unc = fits.ImageHDU(np.full((60, 40), 2.5, np.float32), name="UNCERT")
    mask = fits.ImageHDU(np.zeros((60, 40), np.uint8), name="MASK")
    path = tmp_path / "with space.fits"
    fits.HDUList([sci, unc, mask]).writeto(path)
    before = path.read_bytes()
    span = header_span(path, 0)
    assert span is not None
    header, start, end = span
    for i in range(60):  # more than fits in the original header block: the header grows
        header[f"KEY{i}"] = (i, "a card")
    header.add_history("spliced")
    write_with_header(path, path, header, start, end)
    with fits.open(path) as hdul:
        np.testing.assert_array_equal(hdul[0].data, raw)
        assert hdul[0].header["KEY59"] == 59 and hdul[0].header["OBJECT"] == "field"
        assert hdul["UNCERT"].data[0, 0] == 2.5 and hdul["MASK"].data.dtype == np.uint8
    assert path.read_bytes()[-(len(before) - end) :] == before[end:]  # data copied verbatim
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_header_span_declines_compressed_files(tmp_path: Path) -> None:
    path = tmp_path / "a.fits.gz"
    fits.PrimaryHDU(np.ones((10, 10), np.float32)).writeto(path)
    assert header_span(path, 0) is None
    tiles = tmp_path / "a.fits.fz"  # starts as plain FITS, but HDU 1 is a compressed table
    image = fits.CompImageHDU(np.arange(100, dtype=np.int16).reshape(10, 10))
    fits.HDUList([fits.PrimaryHDU(), image]).writeto(tiles)
    assert header_span(tiles, 1) is None
    table = tmp_path / "t.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("a", "E")])]).writeto(table)
    assert header_span(table, 1) is None and header_span(table, 5) is None


def test_fast_fits_table_round_trip_and_astropy_agreement(tmp_path: Path) -> None:
    from nightpipe.frames.fitstable import FitsTable, read_table, table_bytes

    rng = np.random.default_rng(3)
    columns = {
        "i": np.arange(7, dtype=np.int32),
        "f": rng.normal(size=7).astype(np.float32),
        "d": np.r_[rng.normal(size=6), np.nan],
        "u": np.array([0, 1, 2, 65535, 32768, 32767, 9], np.uint16),
        "b": np.array([True, False] * 3 + [True]),
        "m": rng.normal(size=(7, 2, 3)),
    }
    head = fits.Header([("NOTE", "x" * 200)])  # a long string (CONTINUE cards)
    path = tmp_path / "t.fits"
    path.write_bytes(table_bytes(FitsTable(columns, {"d": "deg"}, {"f": "a float"}, head), "DATA"))
    back = read_table(path)
    assert back is not None and back.header["NOTE"] == "x" * 200
    assert back.units == {"d": "deg"} and back.descriptions == {"f": "a float"}
    with fits.open(path) as hdul:
        ref = hdul["DATA"].data
        for name, values in columns.items():
            np.testing.assert_array_equal(back.columns[name], values)
            assert back.columns[name].dtype == values.dtype and back.columns[name].dtype.isnative
            np.testing.assert_array_equal(np.asarray(ref[name]), values)
    for size in (4000, len(path.read_bytes()) - 2880):  # in the header, in the data
        cut = tmp_path / "cut.fits"
        cut.write_bytes(path.read_bytes()[:size])
        with pytest.raises(ValueError, match="truncated"):
            read_table(cut)
