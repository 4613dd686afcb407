"""Unattended ingest: verified copies into the archive by night, incremental, settle time, move."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from nightpipe.config import load_settings
from nightpipe.errors import NightpipeError
from nightpipe.pipeline.ingest import MANIFEST, file_night, ingest, verified_copy


def _incoming(tmp_path: Path, shared_data: Path) -> Path:
    incoming = tmp_path / "incoming"
    (incoming / "cam 1").mkdir(parents=True)
    hat = sorted((shared_data / "hatp32-microobservatory").glob("*.FITS"))[:3]
    for src in hat:
        shutil.copy(src, incoming / src.name)
    dark = next((shared_data / "guilford-sbig-darks").glob("*.fits"))
    shutil.copy(dark, incoming / "cam 1" / dark.name)
    (incoming / "broken.fits").write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    old = time.time() - 3600
    for p in incoming.rglob("*"):
        os.utime(p, (old, old))
    return incoming


def test_ingest_by_night_and_incremental(tmp_path: Path, shared_data: Path) -> None:
    settings = load_settings(None, environ={})
    incoming = _incoming(tmp_path, shared_data)
    archive = tmp_path / "archive"
    first = ingest(incoming, archive, settings)
    assert first.copied == 4 and first.bad == 1
    assert "2017-12-19" in first.nights  # UT 2017-12-20 01:33 is the evening of the 19th in Arizona
    hat_copies = sorted((archive / "2017-12-19").glob("HATP-32*.FITS"))
    assert len(hat_copies) == 3
    src = incoming / hat_copies[0].name
    assert hat_copies[0].read_bytes() == src.read_bytes()
    assert any(p.name.startswith("Screen Center_Dark") for p in archive.rglob("*.fits"))
    assert "broken.fits" in (archive / "ingest-errors.log").read_text()
    assert (archive / MANIFEST).is_file()
    assert not list(archive.rglob("*.part"))
    second = ingest(incoming, archive, settings)
    assert second.copied == 0 and second.unchanged == 5
    fresh = incoming / "new.fits"
    shutil.copy(src, fresh)  # just written: waits for the next pass
    third = ingest(incoming, archive, settings)
    assert third.waiting == 1 and third.copied == 0
    later = ingest(incoming, archive, settings, clock=lambda: time.time() + 120, move=True)
    assert later.copied == 1 and later.moved == 1 and not fresh.exists()
    assert src.exists()  # never deleted without --move


def test_file_night_of_real_frames(shared_data: Path) -> None:
    settings = load_settings(None, environ={})
    frame = sorted((shared_data / "hatp32-microobservatory").glob("*.FITS"))[-1]  # UT 08:36
    assert file_night(frame, settings) == "2017-12-19"


def test_verified_copy_refuses_missing_source(tmp_path: Path) -> None:
    with pytest.raises(NightpipeError, match="cannot copy"):
        verified_copy(tmp_path / "nope.fits", tmp_path / "out" / "x.fits")
    assert not (tmp_path / "out" / "x.fits").exists()


def test_missing_incoming_is_clear(tmp_path: Path) -> None:
    with pytest.raises(NightpipeError, match="incoming folder not found"):
        ingest(tmp_path / "nope", tmp_path / "a", load_settings(None, environ={}))
