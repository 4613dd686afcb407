"""The database opens and migrates on SQLite and PostgreSQL, and stores frames."""

from __future__ import annotations

from sqlalchemy import func, inspect, select

from nightpipe.store import open_database
from nightpipe.store.models import Frame


def test_migrate_and_store_a_frame(db_url: str) -> None:
    db = open_database(db_url)
    try:
        tables = set(inspect(db.engine).get_table_names())
        assert {"frames", "masters", "step_runs", "alembic_version"} <= tables
        with db.session() as s:
            s.add(Frame(path="/a b/c.fits", size=5_000_000_000, mtime=1.0, kind="bias"))
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(Frame)) == 1
            assert s.scalar(select(Frame.size)) == 5_000_000_000
    finally:
        db.dispose()
    again = open_database(db_url)  # migrating twice is a no-op
    again.dispose()


def test_sqlite_uses_wal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = open_database(f"sqlite:///{tmp_path / 'x.sqlite'}")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    db.dispose()


def test_per_source_tables_have_no_frame_id_index_of_their_own(db_url: str) -> None:
    """The unique (frame_id, source) constraints' indexes serve queries by frame_id, so the
    migrations (photometry_0002, calphot_0002) drop the separate frame_id indexes."""
    db = open_database(db_url)
    try:
        insp = inspect(db.engine)
        for table, unique in (
            ("measurements", ("uq_measurements_frame_source", ["frame_id", "source_index"])),
            ("calibrated_mags", ("uq_calibrated_mags_frame_source", ["frame_id", "source_id"])),
        ):
            indexes = insp.get_indexes(table)
            assert not [i for i in indexes if i["column_names"] == ["frame_id"]], indexes
            assert unique in [(u["name"], u["column_names"]) for u in insp.get_unique_constraints(table)]
            if db.engine.dialect.name == "sqlite":  # and a lookup by frame_id still uses an index
                with db.engine.connect() as conn:
                    plan = conn.exec_driver_sql(
                        f"EXPLAIN QUERY PLAN SELECT * FROM {table} WHERE frame_id = 1"
                    ).fetchall()
                assert any("INDEX" in row[-1] for row in plan), plan
    finally:
        db.dispose()


def test_the_migration_heads_read_from_the_scripts_are_alembics_own(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The scripts' heads as read without alembic are the revisions alembic itself leaves in the
    database; a database missing one of them (an older schema) is not current."""
    from sqlalchemy import text

    from nightpipe.store.db import MIGRATIONS
    from nightpipe.store.migration_heads import database_heads, is_current, script_heads

    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    versions = MIGRATIONS / "versions"
    with db.engine.begin() as connection:
        assert database_heads(connection) == script_heads(versions)
        assert is_current(connection, versions)
        newest = sorted(script_heads(versions) or [])[0]
        connection.execute(text("DELETE FROM alembic_version WHERE version_num = :v"), {"v": newest})
        assert not is_current(connection, versions)
    db.dispose()


def test_an_older_database_is_still_migrated_and_a_current_one_opens_without_alembic(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Opening a current database imports no alembic (0.4 s of every command); one at an older
    schema (only the first revisions of one branch applied) goes through alembic and comes out at
    every head."""
    import subprocess
    import sys

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from nightpipe.store.db import MIGRATIONS, make_engine
    from nightpipe.store.migration_heads import script_heads

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    probe = (
        "import sys; from nightpipe.store import open_database; "
        f"open_database({url!r}).dispose(); print('alembic' in sys.modules)"
    )
    engine = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "calphot_0001")
    engine.dispose()
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "True"  # the older schema needed alembic
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"  # now current: opened without it
    db = open_database(url)
    with db.engine.connect() as connection:
        after = {
            str(v) for v in connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        }
    db.dispose()
    assert after == script_heads(MIGRATIONS / "versions")
