"""nightpipe doctor: what this machine gives the pipeline, and the fix for what is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nightpipe.cli.app import main
from nightpipe.config import load_settings
from nightpipe.doctor import run_checks


def _settings(tmp_path: Path, *overrides: str):  # type: ignore[no-untyped-def]
    return load_settings(None, environ={}, overrides=[
        f"paths.cache={str(tmp_path / 'cache')!r}", f"database.url='sqlite:///{tmp_path / 'db.sqlite'}'",
        *overrides])  # fmt: skip


def test_missing_pieces_come_with_the_command_that_installs_them(tmp_path: Path) -> None:
    empty = tmp_path / "no-index"
    empty.mkdir()
    checks = {c.name: c for c in run_checks(_settings(tmp_path, f"astrometry.index_dirs=[{str(empty)!r}]"))}
    assert not checks["index files"].ok
    assert "astrometry-data-tycho2-07-littleendian" in checks["index files"].fix
    assert not checks["cache"].ok and "nightpipe catalog fetch" in checks["cache"].fix
    assert checks["database"].ok and "empty" in checks["database"].found
    solver = checks["plate solver"]
    assert solver.ok == (shutil.which("solve-field") is not None)
    assert solver.ok or solver.fix == "sudo apt-get install astrometry.net"


@pytest.mark.skipif(not list(Path("/usr/share/astrometry").glob("*.fits")), reason="no Tycho-2 index files")
def test_installed_index_files_say_which_fields_they_solve(tmp_path: Path) -> None:
    checks = {
        c.name: c for c in run_checks(_settings(tmp_path, "astrometry.index_dirs=['/usr/share/astrometry']"))
    }
    found = checks["index files"].found
    assert checks["index files"].ok and "quads 22'" in found and "fields under 22'" in found


def test_database_migration_level_and_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nightpipe.store import open_database

    open_database(f"sqlite:///{tmp_path / 'db.sqlite'}").dispose()
    checks = {c.name: c for c in run_checks(_settings(tmp_path))}
    assert "up to date" in checks["database"].found
    bad = _settings(tmp_path, "database.url='postgresql+psycopg://nobody@127.0.0.1:1/none'")
    broken = {c.name: c for c in run_checks(bad)}["database"]
    assert not broken.ok and broken.required and "database.url" in broken.fix
    code = main(["-s", f"paths.cache={str(tmp_path / 'cache')!r}", "-s",
                 f"database.url='sqlite:///{tmp_path / 'db.sqlite'}'", "doctor"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "plate solver" in out and "numba cache" in out
    browser = {c.name: c for c in run_checks(_settings(tmp_path))}["browser (web app tests)"]
    assert browser.ok == (shutil.which("chromium") is not None) and "chromium" in out
    assert browser.ok or browser.fix == "sudo apt-get install chromium"


def test_the_demo_says_what_it_skipped_and_the_fix(tmp_path: Path) -> None:
    from nightpipe.cli.demo_cmd import skipped_because

    lines = skipped_because(_settings(tmp_path, f"astrometry.index_dirs=[{str(tmp_path)!r}]"))
    assert any("no plate solutions" in ln and "astrometry-data-tycho2-07-littleendian" in ln for ln in lines)
