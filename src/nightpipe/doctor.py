"""What this machine gives the pipeline (``nightpipe doctor``), and the command for each missing piece.

Each check is a :class:`Check`: what was looked at, whether it is usable, what was found and,
when something is missing, the exact command that installs or fixes it. Checks only read:
nothing is installed, migrated or written.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nightpipe import __version__
from nightpipe.config import Settings

TYCHO2_APT = (
    "sudo apt-get install astrometry-data-tycho2-07-littleendian astrometry-data-tycho2-08-littleendian "
    "astrometry-data-tycho2-09-littleendian astrometry-data-tycho2-10-19-littleendian"
)


@dataclass(frozen=True)
class Check:
    """One thing the pipeline may use."""

    name: str
    ok: bool
    found: str
    fix: str = ""
    required: bool = False


def quad_range_arcmin(paths: list[Path]) -> tuple[float, float] | None:
    """The smallest and largest quad sizes (arcmin) of index files, from their SCALE_L/SCALE_U cards."""
    import math

    from astropy.io import fits

    low, high = math.inf, 0.0
    for path in paths:
        try:
            header = fits.getheader(path)
        except OSError:
            continue
        low = min(low, float(header.get("SCALE_L", math.inf)) * 180 / math.pi * 60)
        high = max(high, float(header.get("SCALE_U", 0.0)) * 180 / math.pi * 60)
    return (low, high) if high > 0 else None


def check_solver() -> Check:
    """astrometry.net's solve-field."""
    path = shutil.which("solve-field")
    if path is None:
        return Check("plate solver", False, "solve-field not found", "sudo apt-get install astrometry.net")
    return Check("plate solver", True, f"solve-field at {path}")


def check_index_files(settings: Settings) -> Check:
    """The installed index files and the field sizes they solve.

    An index solves fields about 1 to 10 times the size of its quads (astrometry.net: choose
    quads of 10 % to 100 % of the field).
    """
    from nightpipe.astrometry.index_catalog import find_index_files

    dirs = [Path(d).expanduser() for d in settings.astrometry.index_dirs]
    paths = find_index_files(dirs)
    quads = quad_range_arcmin(paths)
    where = ", ".join(str(d) for d in dirs) or "(astrometry.index_dirs is empty)"
    if quads is None:
        return Check("index files", False, f"none in {where}", TYCHO2_APT)
    small = ""
    if quads[0] > 10:
        small = (f"; fields under {quads[0]:.0f}' need the 5200 series (Tycho-2 and Gaia, quads down to 2') "
                 "(data.astrometry.net) in a folder listed in astrometry.index_dirs")  # fmt: skip
    widest = min(10 * quads[1] / 60, 180.0)
    found = f"{len(paths)} files in {where}: quads {quads[0]:.0f}' to {quads[1]:.0f}', "
    return Check("index files", True, f"{found}fields of about {quads[0]:.0f}' to {widest:.0f} deg{small}")


def check_database(settings: Settings) -> Check:
    """The database: reachable, and at which migration level."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.exc import SQLAlchemyError

    from nightpipe.store.db import MIGRATIONS, make_engine, safe_url

    url = settings.database.url
    heads = set(ScriptDirectory(str(MIGRATIONS)).get_heads())
    try:
        engine = make_engine(url)
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
        engine.dispose()
    except (SQLAlchemyError, OSError) as exc:
        return Check("database", False, f"{safe_url(url)}: {exc.__class__.__name__}",
                     "start the server or fix database.url", required=True)  # fmt: skip
    if not current:
        return Check("database", True, f"{safe_url(url)}: empty (created on the first run)")
    if current != heads:
        missing = ", ".join(sorted(heads - current))
        return Check("database", True, f"{safe_url(url)}: migrations to apply on the next run: {missing}")
    return Check("database", True, f"{safe_url(url)}: up to date ({len(heads)} migration branches)")


def check_cache(settings: Settings) -> Check:
    """The catalogue and service answers available offline."""
    from nightpipe.catalogs.answers import AnswerCache

    root = Path(settings.paths.cache).expanduser()
    answers = AnswerCache(root).entries()
    by_service: dict[str, int] = {}
    for record in answers:
        by_service[record.parent.name] = by_service.get(record.parent.name, 0) + 1
    catalogues = len(list((root / "catalogs").glob("*.ecsv"))) if (root / "catalogs").is_dir() else 0
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0
    detail = ", ".join(f"{n} {s}" for s, n in sorted(by_service.items())) or "no service answers"
    mode = "offline: cache only" if settings.catalog.offline else "online when needed"
    fix = "" if answers else "online, fill it ahead: nightpipe catalog fetch --ra RA --dec DEC --radius 0.5"
    return Check("cache", bool(answers), f"{root} ({size / 1e6:.1f} MB): {detail}, {catalogues} "
                 f"reference catalogue answers; {mode}", fix)  # fmt: skip


def check_numba() -> Check:
    """Whether compiled kernels can be cached (else every first run compiles again), and where:
    ``NUMBA_CACHE_DIR`` (the command line sets it to the user cache, see :mod:`nightpipe.kernel_cache`),
    else numba's own choice, ``__pycache__`` beside the modules or its user-wide cache."""
    from nightpipe.kernel_cache import cache_dir, default_cache_dir

    chosen = cache_dir(os.environ)
    in_tree = Path(__file__).parent / "photometry" / "__pycache__"
    user_wide = Path("~/.cache/numba").expanduser()
    target = chosen or (in_tree if os.access(in_tree.parent, os.W_OK) else user_wide)
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    writable = os.access(probe, os.W_OK)
    cached = sum(1 for _ in target.rglob("*.nbi")) if target.is_dir() else 0
    fix = "" if writable else f"export NUMBA_CACHE_DIR={default_cache_dir(os.environ)}"
    return Check("numba cache", writable, f"{target} ({'writable' if writable else 'read-only'}, "
                 f"{cached} kernels cached)", fix)  # fmt: skip


def check_program(name: str, what: str, fix: str) -> Check:
    """An optional program on the PATH."""
    path = shutil.which(name)
    return Check(what, path is not None, path or f"{name} not found", "" if path else fix)


def check_module(module: str, what: str, fix: str) -> Check:
    """An optional Python module."""
    found = importlib.util.find_spec(module) is not None
    return Check(what, found, module + (" importable" if found else " missing"), "" if found else fix)


def run_checks(settings: Settings) -> list[Check]:
    """Every check, in the order ``nightpipe doctor`` shows them."""
    python = f"Python {sys.version.split()[0]}, nightpipe {__version__}"
    checks: list[Callable[[], Check]] = [
        lambda: Check("python", True, python),
        check_solver,
        lambda: check_index_files(settings),
        lambda: check_database(settings),
        lambda: check_cache(settings),
        check_numba,
        lambda: check_module("distributed", "dask cluster", "pip install 'dask[distributed]'"),
        lambda: check_module("psycopg", "PostgreSQL driver", "pip install 'psycopg[binary]'"),
        lambda: check_program("chromium", "browser (web app tests)", "sudo apt-get install chromium"),
    ]
    return [check() for check in checks]
