"""Faults a night can meet: another run on the same database, a disk that fills up mid-write."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from nightpipe.errors import PipelineError, ProductWriteError
from nightpipe.frames.fitsio import atomic_path
from nightpipe.pipeline.lock import database_lock
from nightpipe.store.db import open_database


def test_a_second_run_on_the_same_database_is_refused_naming_the_first(db_url: str) -> None:
    first, second = open_database(db_url), open_database(db_url)
    try:
        with database_lock(first):
            with pytest.raises(PipelineError) as refused, database_lock(second):
                pytest.fail("two runs held the database's lock at once")
            message = str(refused.value)
            assert "another nightpipe run is working on the database" in message
            assert f"pid {os.getpid()}" in message  # the holder is named
        with database_lock(second):  # released with the block: the next run goes ahead
            pass
    finally:
        first.dispose()
        second.dispose()


def test_a_full_disk_keeps_the_previous_product_and_names_it(tmp_path: Path, monkeypatch) -> None:
    product = tmp_path / "night" / "curve.csv"
    product.parent.mkdir()
    product.write_text("the previous night's curve\n")

    def disk_full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(ProductWriteError) as failed, atomic_path(product) as tmp:
        tmp.write_text("half of a new curve")
    assert "the disk is full" in str(failed.value) and "curve.csv" in str(failed.value)
    assert product.read_text() == "the previous night's curve\n"
    assert sorted(p.name for p in product.parent.iterdir()) == ["curve.csv"]  # no temporary left
