"""Faults a night can meet: another run on the same database, a disk that fills up mid-write, a
read-only output folder."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from nightpipe.errors import ProductWriteError, RunBusyError
from nightpipe.frames.fitsio import atomic_path, write_fits_atomic
from nightpipe.pipeline.lock import database_lock
from nightpipe.store.db import open_database


def test_a_second_run_on_the_same_database_is_refused_naming_the_first(db_url: str) -> None:
    first, second = open_database(db_url), open_database(db_url)
    try:
        with database_lock(first):
            with pytest.raises(RunBusyError) as refused, database_lock(second):
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


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Callable[[], None]]:
    """A folder ``tmp_path/ro`` and a function that makes it read-only for real: a tmpfs remounted
    read-only (root ignores file modes, so ``chmod`` would not do), or ``chmod a-w`` when not root."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        yield lambda: _chmod_tree(folder, 0o555)
        _chmod_tree(folder, 0o755)
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"running as root and tmpfs cannot be mounted ({mounted.stderr.decode().strip()})")
    try:
        yield lambda: subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def _chmod_tree(folder: Path, mode: int) -> None:
    for path in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        path.chmod(mode)


def test_a_read_only_output_folder_keeps_the_previous_product_and_says_so(
    tmp_path: Path, read_only: Callable[[], None]
) -> None:
    product = tmp_path / "ro" / "calibrated" / "frame.fits"
    product.parent.mkdir()
    write_fits_atomic(fits.HDUList([fits.PrimaryHDU(np.ones((4, 4), np.float32))]), product)
    before = product.read_bytes()
    read_only()
    with pytest.raises(ProductWriteError) as failed:
        write_fits_atomic(fits.HDUList([fits.PrimaryHDU(np.zeros((4, 4), np.float32))]), product)
    message = str(failed.value)
    assert "frame.fits" in message and "not writable" in message and "paths.output" in message
    assert product.read_bytes() == before
    assert sorted(p.name for p in product.parent.iterdir()) == ["frame.fits"]


def test_a_run_into_a_read_only_output_folder_is_a_clear_error(
    tmp_path: Path, read_only: Callable[[], None], shared_data: Path
) -> None:
    """``nightpipe run`` with its products on a read-only disk: one line naming the folder and
    what to do, no traceback, the previous products as they were."""
    output = tmp_path / "ro"
    (output / "previous.csv").write_text("the previous night's curve\n")
    read_only()
    cmd = [
        sys.executable,
        "-m",
        "nightpipe.cli.app",
        "-s",
        f"paths.output={str(output)!r}",
        "-s",
        f"database.url='sqlite:///{tmp_path / 'db.sqlite'}'",
        "run",
        str(shared_data / "hatp32-microobservatory"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    error = " ".join(proc.stderr.split())
    assert str(output) in error and "Read-only file system" in error and "paths.output" in error, error
    assert (output / "previous.csv").read_text() == "the previous night's curve\n"


def test_a_solver_that_hangs_is_killed_with_its_children_and_the_error_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``solve-field`` on PATH that never answers (it starts a child, as solve-field starts
    astrometry-engine, and waits): the attempt is given up after its time limit, the whole process
    group is killed, and the error says the solve timed out."""
    from nightpipe.astrometry.solver import Hints, run_solve_field
    from nightpipe.astrometry.sources import StarList
    from nightpipe.errors import AstrometryError

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    child = tmp_path / "child.pid"
    fake = bin_dir / "solve-field"
    fake.write_text(f"#!/bin/sh\nsleep 600 &\necho $! > {child}\nwait\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    n = 20
    rng = np.random.default_rng(1)
    stars = StarList(
        rng.uniform(0, 200, n), rng.uniform(0, 200, n), np.linspace(1e5, 1e3, n), np.ones(n),
        np.zeros(n, bool), 3.0, (200, 200),
    )  # fmt: skip
    with pytest.raises(AstrometryError) as failed:
        run_solve_field(stars, hints=Hints(), index_dirs=(tmp_path,), timeout_s=1.0)
    assert "hinted solve timed out after 1 s" in str(failed.value)
    pid = int(child.read_text())
    state = Path(f"/proc/{pid}/status")
    alive = state.is_file() and "\nState:\tZ" not in state.read_text()
    assert not alive, f"the solver's child {pid} is still running"
