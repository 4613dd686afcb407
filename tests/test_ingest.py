"""Unattended ingest: verified copies into the archive by night, incremental, settle time, move."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nightpipe.config import load_settings
from nightpipe.errors import NightpipeError
from nightpipe.pipeline.ingest import MANIFEST, archive_destination, file_night, ingest, verified_copy


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


@pytest.mark.parametrize("moment", ["read", "copied"])
def test_a_file_still_written_while_it_is_ingested_waits_for_the_next_pass(
    tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch, moment: str
) -> None:
    """A writer thread appends to a frame while ``ingest`` reads its header (the frame is half
    written) or copies it (an extension is being appended), with no settle time: nothing is
    copied, the file is not called bad, it waits; once the writer is done, the next pass copies
    the whole file."""
    import threading

    from astropy.io import fits

    from nightpipe.pipeline import ingest as ingest_module

    settings = load_settings(None, environ={})
    incoming, archive = tmp_path / "incoming", tmp_path / "archive"
    incoming.mkdir()
    frame = next((shared_data / "hatp32-microobservatory").glob("*.FITS")).read_bytes()
    extension = fits.ImageHDU(np.zeros((64, 64), np.float32), name="EXTRA")
    whole = frame + extension.header.tostring().encode() + extension.data.tobytes() + b"\0" * 2880
    whole = whole[: len(whole) - len(whole) % 2880]
    first_part = len(frame) // 2 if moment == "read" else len(frame)
    growing = incoming / "growing.fits"
    growing.write_bytes(whole[:first_part])
    writing, done = threading.Event(), threading.Event()

    def writer() -> None:  # the camera software, still writing
        writing.wait(timeout=30)
        rest = whole[first_part:]
        with growing.open("ab") as handle:
            for start in range(0, len(rest), 2880):
                handle.write(rest[start : start + 2880])
                handle.flush()
                time.sleep(0.002)
        done.set()

    def while_written(real: Any) -> Any:
        def call(*args: Any) -> Any:
            try:
                return real(*args)
            finally:
                writing.set()
                done.wait(timeout=30)  # the writer appends while this read or copy is in hand

        return call

    target = (ingest_module, "file_night") if moment == "read" else (ingest_module.shutil, "copyfile")
    real = getattr(*target)
    thread = threading.Thread(target=writer)
    thread.start()
    monkeypatch.setattr(*target, while_written(real))
    first = ingest(incoming, archive, settings, settle_s=0.0)
    thread.join(timeout=30)
    assert (first.copied, first.waiting, first.bad) == (0, 1, 0)
    assert not [p for p in archive.rglob("*") if p.is_file() and p.name != MANIFEST], "a partial copy"

    monkeypatch.setattr(*target, real)
    second = ingest(incoming, archive, settings, settle_s=0.0)
    assert (second.copied, second.waiting, second.bad) == (1, 0, 0)
    (copy,) = archive.rglob("growing.fits")
    assert copy.read_bytes() == whole


@pytest.mark.parametrize("name", ["../evil.fits", "night/../../evil.fits", "/tmp/evil.fits", ""])
def test_an_archive_destination_never_leaves_the_archive(tmp_path: Path, name: str) -> None:
    with pytest.raises(NightpipeError, match="outside the archive folder"):
        archive_destination(tmp_path / "archive", "2017-12-19", name)
    for night in ("..", "../x", ""):
        with pytest.raises(NightpipeError, match="outside the archive folder"):
            archive_destination(tmp_path / "archive", night, "x.fits")


def test_a_linked_folder_in_incoming_is_copied_inside_the_archive(tmp_path: Path, shared_data: Path) -> None:
    """A symbolic link in the incoming folder to a folder elsewhere: its frames are copied into
    the archive under the link's name, never beside their real folder."""
    settings = load_settings(None, environ={})
    elsewhere, incoming, archive = tmp_path / "elsewhere", tmp_path / "incoming", tmp_path / "archive"
    elsewhere.mkdir()
    incoming.mkdir()
    frame = next((shared_data / "hatp32-microobservatory").glob("*.FITS"))
    shutil.copy(frame, elsewhere / frame.name)
    (incoming / "linked").symlink_to(elsewhere, target_is_directory=True)
    old = time.time() - 3600
    os.utime(elsewhere / frame.name, (old, old))
    summary = ingest(incoming, archive, settings)
    copies = [p for p in archive.rglob("*.FITS")]
    assert summary.copied == len(copies) <= 1
    assert all(p.resolve().is_relative_to(archive.resolve()) for p in copies)
    assert sorted(p.name for p in elsewhere.iterdir()) == [frame.name]  # nothing written there
