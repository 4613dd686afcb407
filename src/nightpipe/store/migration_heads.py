"""Whether a database is already at the newest schema, answered without importing alembic.

Every command opens the database, and importing alembic to find nothing to do costs about 0.4 s
of each one (issue 22). The newest revision of every migration branch is read here from the
migration scripts themselves (their ``revision`` and ``down_revision`` assignments, parsed, not
imported) and compared with the database's ``alembic_version`` rows; when they differ, or the
scripts use something this reading does not follow (``depends_on``), alembic decides as before.
"""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import Connection, inspect, text

_NAMES = ("revision", "down_revision", "depends_on")


def _assigned(tree: ast.Module) -> dict[str, object]:
    """Module-level literal assignments of ``revision``, ``down_revision`` and ``depends_on``."""
    found: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in _NAMES:
            found[target.id] = ast.literal_eval(value)
    return found


def _names(value: object) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str):
        return {value}
    if isinstance(value, tuple | list) and all(isinstance(v, str) for v in value):
        return set(value)
    raise ValueError(f"not a revision or a sequence of revisions: {value!r}")


def script_heads(versions: Path) -> frozenset[str] | None:
    """The revisions no other script of ``versions`` revises; ``None`` when the scripts cannot be
    read this way (then only alembic can say)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    try:
        for path in sorted(versions.glob("*.py")):
            found = _assigned(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
            if "revision" not in found or _names(found.get("depends_on")):
                return None
            revisions |= _names(found["revision"])
            revised |= _names(found.get("down_revision"))
    except (OSError, SyntaxError, ValueError):
        return None
    heads = frozenset(revisions - revised)
    return heads or None


def database_heads(connection: Connection) -> frozenset[str] | None:
    """The revisions recorded in the database's ``alembic_version`` table (``None``: no table)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
    return frozenset(str(r) for r in rows)


def is_current(connection: Connection, versions: Path) -> bool:
    """True when the database holds exactly the newest revision of every branch of ``versions``."""
    expected = script_heads(versions)
    return expected is not None and database_heads(connection) == expected
