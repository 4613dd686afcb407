"""A fingerprint of a night's products: every file's bytes and every database row, minus clocks.

Two runs into the same output folder that made the same science give the same fingerprint,
whatever order the frames finished in: files are hashed byte for byte (FITS files card by card
and pixel by pixel, leaving out only the times of writing), rows are compared without their
autoincrement keys, timestamps and durations, and sorted.

As a script it compares two runs of one night, the first moved away from the folder the second
ran in (rows name their files by the folder they were made in)::

    python tests/product_fingerprint.py BEFORE_DIR AFTER_DIR

where each DIR holds ``out/`` and ``db.sqlite`` (see ``docs/step-contract.md``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from astropy.io import fits
from sqlalchemy import MetaData, select

from nightpipe.store import open_database

CLOCK_CARDS = {"DATE", "DATE-CAL", "DATE-RED", "DATE-PIP", "CHECKSUM", "DATASUM"}
# keys, clocks, durations, and the input keys of step runs (made of the files' modification times)
CLOCK_COLUMNS = {
    "id",
    "seconds",
    "cpu_s",
    "finished_at",
    "created_at",
    "updated_at",
    "scanned_at",
    "input_hash",
    "at",  # when a night-level step last did its work (pipeline/step_state.py)
    "wall_s",
}
WRITTEN_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")  # HISTORY's time of writing
FITS_SUFFIXES = (".fits", ".fit", ".fts")


def _fits_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with fits.open(path, memmap=False) as hdul:
        for hdu in hdul:
            for card in hdu.header.cards:
                if card.keyword in CLOCK_CARDS or card.keyword.startswith("HIERARCH NIGHTPIPE TIME"):
                    continue
                image = WRITTEN_AT.sub("<now>", card.image) if card.keyword == "HISTORY" else card.image
                digest.update(image.encode())
            if hdu.data is not None:
                data = hdu.data
                digest.update(data.tobytes() if hasattr(data, "tobytes") else repr(data).encode())
    return digest.hexdigest()


SKIPPED_SUFFIXES = (".png", ".log", ".html", ".zip")


def file_fingerprint(output: Path, *, skip: tuple[str, ...] = SKIPPED_SUFFIXES) -> dict[str, str]:
    """``{relative path: digest}`` of every product file (pictures and logs left out)."""
    result: dict[str, str] = {}
    for path in sorted(output.rglob("*")):
        if not path.is_file() or path.name.startswith(".") or path.suffix.lower() in skip:
            continue
        rel = str(path.relative_to(output))
        if path.suffix.lower() in FITS_SUFFIXES:
            result[rel] = _fits_digest(path)
        else:
            result[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return result


def _portable(value: Any, output: Path) -> Any:
    """A row value that does not depend on where the output folder lies."""
    if isinstance(value, str) and value[:1] in "{[":
        with contextlib.suppress(ValueError):  # a JSON column, as reflection reads it
            value = json.loads(value)
    if isinstance(value, str):
        return value.replace(str(output), "<out>")
    if isinstance(value, dict):
        return {k: _portable(v, output) for k, v in value.items() if k not in CLOCK_COLUMNS}
    if isinstance(value, list):
        return [_portable(v, output) for v in value]
    if isinstance(value, float):
        return repr(value)
    return value if value is None or isinstance(value, int | bool) else str(value)


def table_rows(database_url: str, output: Path) -> dict[str, list[str]]:
    """``{table: its rows as JSON}``, without keys, clocks and durations."""
    db = open_database(database_url)
    result: dict[str, list[str]] = {}
    tables = MetaData()
    tables.reflect(db.engine)  # what the database holds, whichever models are imported
    try:
        with db.session() as session:
            for name, table in sorted(tables.tables.items()):
                columns = [c for c in table.columns if c.name not in CLOCK_COLUMNS]
                result[name] = [
                    json.dumps([_portable(v, output) for v in row], sort_keys=True)
                    for row in session.execute(select(*columns)).all()
                ]
    finally:
        db.dispose()
    return result


def row_fingerprint(database_url: str, output: Path) -> dict[str, str]:
    """``{table: digest of its sorted rows}``, without keys, clocks and durations."""
    return {
        name: f"{len(rows)}:" + hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest()
        for name, rows in table_rows(database_url, output).items()
    }


def fingerprint(output: Path, database_url: str) -> dict[str, dict[str, str]]:
    """The files and rows of a night's products."""
    return {"files": file_fingerprint(output), "rows": row_fingerprint(database_url, output)}


def differences(a: dict[str, dict[str, str]], b: dict[str, dict[str, str]]) -> list[str]:
    """What differs between two fingerprints, one line per file or table."""
    lines = []
    for part in ("files", "rows"):
        for key in sorted(set(a[part]) | set(b[part])):
            if a[part].get(key) != b[part].get(key):
                lines.append(f"{part} {key}: {a[part].get(key)} != {b[part].get(key)}")
    return lines


def _compare(before: Path, after: Path) -> int:
    made_in = after / "out"
    a = {
        "files": file_fingerprint(before / "out"),
        "rows": row_fingerprint(f"sqlite:///{before}/db.sqlite", made_in),
    }
    b = {"files": file_fingerprint(made_in), "rows": row_fingerprint(f"sqlite:///{after}/db.sqlite", made_in)}
    rows = ", ".join(f"{name} {value.split(':')[0]}" for name, value in a["rows"].items())
    lines = differences(a, b)
    sys.stdout.write(f"{len(a['files'])} files; rows: {rows}\n")
    sys.stdout.write("\n".join(lines) + "\n" if lines else "identical\n")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(_compare(Path(sys.argv[1]), Path(sys.argv[2])))
