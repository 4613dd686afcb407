"""Shared fixtures: the real data folder, database URLs for SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from night_helpers import DemoNight

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("NIGHTPIPE_SHARED_DATA", ROOT.parent / "shared" / "data"))
PG_ADMIN_URL = os.environ.get("NIGHTPIPE_TEST_PG", "postgresql+psycopg://root@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real telescope data (../shared/data); tests skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} not found (set NIGHTPIPE_SHARED_DATA)")
    return SHARED_DATA


def _postgres_available() -> str | None:
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(
            PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as exc:
        return f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}"
    return None


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    import sqlalchemy as sa

    problem = _postgres_available()
    if problem is not None:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({problem}); CI runs these tests")
    name = f"nightpipe_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nightpipe.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def demo_night(tmp_path_factory: pytest.TempPathFactory) -> DemoNight:
    """``demo_night(size, n_lights) -> (root, raw)``: a simulated demo night, made once per size
    and shared read-only by the end-to-end tests (skipped without astrometry.net's solve-field)."""
    import shutil

    from nightpipe.pipeline.demo import prepare_demo

    made: dict[tuple[int, int], tuple[Path, Path]] = {}

    def make(size: int, n_lights: int) -> tuple[Path, Path]:
        if shutil.which("solve-field") is None:
            pytest.skip("astrometry.net solve-field not installed (apt-get install astrometry.net)")
        if (size, n_lights) not in made:
            root = tmp_path_factory.mktemp(f"demo-{size}-{n_lights}")
            _, raw = prepare_demo(root, size=size, n_lights=n_lights)
            made[size, n_lights] = (root, raw)
        return made[size, n_lights]

    return make
