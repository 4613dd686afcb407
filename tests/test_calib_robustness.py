"""Calibration on bad input: corrupt pixels, file names a FITS header cannot hold, masters of an odd
size, and a frame without an exposure time."""

from __future__ import annotations

from datetime import UTC, datetime

from astropy.io import fits

from nightpipe.frames.headers import ascii_name, ascii_text

T0 = datetime(2024, 3, 10, 4, 0, tzinfo=UTC)


def test_names_a_header_cannot_hold_are_escaped_or_hashed() -> None:
    header = fits.Header()
    header["NPRAW"] = ascii_name("lumière_ü_星.fits")
    header.add_history(ascii_text("raw: /nuit d'été/lumière_ü_星.fits[0]"))
    text = header.tostring()  # astropy refuses non-ASCII values: this must not raise
    assert "lumi\\xe8re_\\xfc_\\u661f.fits" in text and "t\\xe9/" in text
    long_a, long_b = ascii_name("星" * 30 + "a.fits"), ascii_name("星" * 30 + "b.fits")
    assert len(long_a) == 68 and long_a != long_b and long_a.isascii()
    assert ascii_name("plain name.fits") == "plain name.fits"
    assert ascii_text("tab\there") == "tab\\there"
