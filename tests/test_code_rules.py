"""Rules the source must keep, checked on its syntax tree: no shell, no SQL built from strings.

A ``subprocess`` call (or ``os.system``/``os.popen``) with a shell lets a file name run commands;
SQL built with f-strings, ``+``, ``%`` or ``.format`` lets a value become SQL. Both fail the build:
commands are argument lists, SQL values are SQLAlchemy parameters (``text("... :name")``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "nightpipe"
SQL_CALLS = {"text", "execute", "exec_driver_sql", "executescript", "executemany"}


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _dotted(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return _name(func)


def _calls(tree: ast.AST) -> Iterator[ast.Call]:
    return (node for node in ast.walk(tree) if isinstance(node, ast.Call))


def shell_calls(source: str) -> list[int]:
    """Lines of calls that run a shell: any call with ``shell=<not False>``, ``os.system``, ``os.popen``.

    Examples
    --------
    >>> shell_calls("import subprocess\\nsubprocess.run('ls', shell=True)")
    [2]
    >>> shell_calls("subprocess.run(['ls'], shell=False)\\nos.system('ls')")
    [2]
    """
    lines = []
    for call in _calls(ast.parse(source)):
        shell = [k.value for k in call.keywords if k.arg == "shell"]
        if any(not (isinstance(v, ast.Constant) and v.value is False) for v in shell) or _dotted(
            call.func
        ) in ("os.system", "os.popen", "os.spawnlp", "os.spawnvp"):
            lines.append(call.lineno)
    return sorted(set(lines))


def _built(node: ast.expr) -> bool:
    """True for a string built at run time: an f-string with values, ``+``/``%`` of strings, ``.format``."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return True
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return False
    # "...".format(...) or "sep".join(...) (a query's own .join(...) is SQLAlchemy, not a string)
    return node.func.attr == "format" or (
        node.func.attr == "join" and isinstance(node.func.value, ast.Constant)
    )


def string_built_sql(source: str) -> list[int]:
    """Lines where ``text()``, ``execute()``, ``exec_driver_sql()``... get a string built at run time.

    Examples
    --------
    >>> string_built_sql('conn.execute(text(f"SELECT * FROM t WHERE id = {i}"))')
    [1]
    >>> string_built_sql('cur.execute("DELETE FROM " + table)\\ncur.execute("SELECT %s" % x)')
    [1, 2]
    >>> string_built_sql('conn.execute(text("SELECT :x"), {"x": 1})\\nsession.execute(select(t))')
    []
    """
    lines = []
    for call in _calls(ast.parse(source)):
        if _name(call.func) in SQL_CALLS and call.args and _built(call.args[0]):
            lines.append(call.lineno)
    return sorted(set(lines))


@pytest.mark.parametrize("rule", [shell_calls, string_built_sql], ids=["shell", "sql"])
def test_the_source_keeps_the_rule(rule) -> None:
    found = [
        f"{path.relative_to(SRC.parent)}:{line}"
        for path in _sources()
        for line in rule(path.read_text(encoding="utf-8"))
    ]
    assert len(_sources()) > 100  # the scan sees the whole package
    assert found == [], f"{rule.__name__} in: {', '.join(found)}"


def test_the_rules_catch_what_they_are_for() -> None:
    bad = """
import os, subprocess
from sqlalchemy import text
subprocess.run("solve-field " + name, shell=True)
subprocess.Popen(cmd, shell=flag)
conn.execute(text(f"DELETE FROM frames WHERE path = '{path}'"))
conn.exec_driver_sql("VACUUM " + schema)
cursor.execute("SELECT * FROM t WHERE a = '%s'" % value)
conn.execute(text("SELECT * FROM {}".format(table)))
conn.execute(text(", ".join(columns)))
session.execute(select(a).join(b))
"""
    assert shell_calls(bad) == [4, 5]
    assert string_built_sql(bad) == [6, 7, 8, 9, 10]
