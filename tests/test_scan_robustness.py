"""The scan on bad input: what a file is when it is not FITS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import select

from nightpipe.errors import FitsReadError
from nightpipe.inventory.raw_headers import read_raw_headers
from nightpipe.store import Database, open_database
from nightpipe.store.models import Frame


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
