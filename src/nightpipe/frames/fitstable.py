"""Fast reading and writing of simple FITS binary tables (numeric columns, fixed-size arrays).

astropy's table I/O spends ~15 ms of Python per small table building column objects; a night
writes one table per frame and two steps read them all back. A binary table whose columns are
plain numbers (TFORM ``L``, ``B``, ``I``, ``J``, ``K``, ``E``, ``D`` with a repeat count, ``I``
with ``TZERO = 32768`` for unsigned 16-bit) is one big-endian numpy record array after its header,
so both directions are a header plus one ``tobytes``/``frombuffer``. Any other layout is left
to astropy (:func:`read_table` returns ``None``), and tests check that astropy reads what
:func:`write_table` writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

BLOCK = 2880
_CODE_OF_KIND = {("b", 1): "L", ("u", 1): "B", ("i", 2): "I", ("i", 4): "J", ("i", 8): "K"}
_CODE_OF_KIND |= {("f", 4): "E", ("f", 8): "D", ("u", 2): "I"}
_DTYPE_OF_CODE = {"L": "i1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}


@dataclass
class FitsTable:
    """Columns (native byte order), their units and descriptions, and the extension's header."""

    columns: dict[str, np.ndarray]
    units: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    header: fits.Header = field(default_factory=fits.Header)


def _tform(array: np.ndarray) -> tuple[str, tuple[int, ...]]:
    """The TFORM code of a column and the shape of one cell."""
    dtype = array.dtype
    code = _CODE_OF_KIND.get((dtype.kind, dtype.itemsize))
    if code is None:
        raise TypeError(f"column of dtype {dtype} cannot be written by the fast FITS table writer")
    cell = tuple(int(n) for n in array.shape[1:])
    repeat = int(np.prod(cell)) if cell else 1
    return f"{repeat}{code}" if cell else code, cell


def table_header(table: FitsTable, nrows: int, row_bytes: int, extname: str) -> fits.Header:
    """The mandatory and column keywords of the extension, then the table's own cards."""
    cards: list[tuple[str, object, str]] = [
        ("XTENSION", "BINTABLE", "binary table extension"),
        ("BITPIX", 8, "array data type"),
        ("NAXIS", 2, "number of array dimensions"),
        ("NAXIS1", row_bytes, "length of dimension 1"),
        ("NAXIS2", nrows, "length of dimension 2"),
        ("PCOUNT", 0, "number of group parameters"),
        ("GCOUNT", 1, "number of groups"),
        ("TFIELDS", len(table.columns), "number of table fields"),
    ]
    for i, (name, array) in enumerate(table.columns.items(), start=1):
        tform, cell = _tform(array)
        cards.append((f"TTYPE{i}", name, ""))
        cards.append((f"TFORM{i}", tform, ""))
        if array.dtype.kind == "u" and array.dtype.itemsize == 2:
            cards.append((f"TZERO{i}", 32768, "unsigned 16-bit integers"))
        if cell:
            cards.append((f"TDIM{i}", "(" + ",".join(str(n) for n in reversed(cell)) + ")", ""))
        if table.units.get(name):
            cards.append((f"TUNIT{i}", table.units[name], ""))
        if table.descriptions.get(name):
            cards.append((f"TCOMM{i}", table.descriptions[name], ""))
    header = fits.Header(cards)
    header["EXTNAME"] = extname
    for card in table.header.cards:
        header.append(card)
    return header


def _file_dtype(table: FitsTable) -> np.dtype:
    fields = []
    for name, array in table.columns.items():
        _, cell = _tform(array)
        base = _DTYPE_OF_CODE[_CODE_OF_KIND[(array.dtype.kind, array.dtype.itemsize)]]
        fields.append((name, np.dtype(base), cell))
    return np.dtype(fields)


def table_bytes(table: FitsTable, extname: str = "TABLE") -> bytes:
    """The whole file: an empty primary HDU and the binary table extension, padded."""
    lengths = {len(a) for a in table.columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths {sorted(lengths)}")
    nrows = lengths.pop() if lengths else 0
    dtype = _file_dtype(table)
    records = np.empty(nrows, dtype=dtype)
    for name, array in table.columns.items():
        if array.dtype.kind == "u" and array.dtype.itemsize == 2:
            records[name] = (array.astype(np.int32) - 32768).astype(np.int16)
        elif array.dtype.kind == "b":
            records[name] = np.where(array, ord("T"), ord("F"))
        else:
            records[name] = array
    primary = fits.Header([("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 0), ("EXTEND", True)])
    header = table_header(table, nrows, dtype.itemsize, extname)
    data = records.tobytes()
    padding = b"\0" * (-len(data) % BLOCK)
    return (
        primary.tostring(padding=True).encode("ascii")
        + header.tostring(padding=True).encode("ascii")
        + data
        + padding
    )


def read_table(path: Path | str, hdu: int = 1) -> FitsTable | None:
    """Read a binary table written by :func:`table_bytes` (or any table of the same simple
    layout); ``None`` when the layout needs astropy (variable arrays, strings, scaling...)."""
    raw = Path(path).read_bytes()
    header, offset = _header_at(raw, 0)
    for _ in range(hdu):
        offset += _data_span(header)
        header, offset = _header_at(raw, offset)
    if header.get("XTENSION") != "BINTABLE" or int(header.get("PCOUNT", 0)) != 0:
        return None
    nrows, row_bytes, nfields = int(header["NAXIS2"]), int(header["NAXIS1"]), int(header["TFIELDS"])
    fields: list[tuple[str, np.dtype, tuple[int, ...]]] = []
    unsigned: set[str] = set()
    logical: set[str] = set()
    for i in range(1, nfields + 1):
        parsed = _parse_column(header, i)
        if parsed is None:
            return None
        name, dtype, cell, kind = parsed
        fields.append((name, dtype, cell))
        if kind == "unsigned":
            unsigned.add(name)
        elif kind == "logical":
            logical.add(name)
    dtype = np.dtype(fields)
    if dtype.itemsize != row_bytes:
        return None
    if offset + nrows * row_bytes > len(raw):
        held = len(raw) - offset
        raise ValueError(f"truncated: the table needs {nrows * row_bytes} data bytes, the file has {held}")
    records = np.frombuffer(raw, dtype=dtype, count=nrows, offset=offset)
    columns: dict[str, np.ndarray] = {}
    for name, _dt, _cell in fields:
        values = records[name]
        if name in unsigned:
            columns[name] = (values.astype(np.int32) + 32768).astype(np.uint16)
        elif name in logical:
            columns[name] = values == ord("T")
        else:
            columns[name] = values.astype(values.dtype.newbyteorder("="))
    units = {n: str(header[f"TUNIT{i}"]) for i, (n, _, _) in enumerate(fields, 1) if f"TUNIT{i}" in header}
    notes = {n: str(header[f"TCOMM{i}"]) for i, (n, _, _) in enumerate(fields, 1) if f"TCOMM{i}" in header}
    return FitsTable(columns, units, notes, header)


def _header_at(raw: bytes, offset: int) -> tuple[fits.Header, int]:
    """The header starting at ``offset`` and where its data start."""
    end = raw.find(b"END" + b" " * 77, offset)
    while end != -1 and (end - offset) % 80:
        end = raw.find(b"END" + b" " * 77, end + 1)
    if end == -1:
        raise ValueError("no END card: truncated or not FITS")
    stop = end + 80
    stop += -(stop - offset) % BLOCK
    return fits.Header.fromstring(raw[offset:end].decode("ascii")), stop


def _data_span(header: fits.Header) -> int:
    naxis = int(header.get("NAXIS", 0))
    if naxis == 0:
        return 0
    size = abs(int(header["BITPIX"])) // 8
    for i in range(1, naxis + 1):
        size *= int(header[f"NAXIS{i}"])
    size = (size + int(header.get("PCOUNT", 0))) * int(header.get("GCOUNT", 1))
    return size + (-size % BLOCK)


def _parse_column(header: fits.Header, i: int) -> tuple[str, np.dtype, tuple[int, ...], str] | None:
    """Name, file dtype, cell shape and kind of column ``i``; ``None`` when astropy is needed."""
    tform = str(header[f"TFORM{i}"]).strip()
    digits = len(tform) - len(tform.lstrip("0123456789"))
    repeat = int(tform[:digits]) if digits else 1
    code = tform[digits:]
    if code not in _DTYPE_OF_CODE or header.get(f"TSCAL{i}", 1) != 1 or repeat < 1:
        return None
    zero = header.get(f"TZERO{i}", 0)
    kind = "plain"
    if zero == 32768 and code == "I":
        kind = "unsigned"
    elif zero != 0:
        return None
    if code == "L":
        kind = "logical"
    cell: tuple[int, ...] = ()
    if f"TDIM{i}" in header:
        dims = str(header[f"TDIM{i}"]).strip("() ").split(",")
        cell = tuple(int(d) for d in reversed(dims))
        if int(np.prod(cell)) != repeat:
            return None
    elif repeat > 1:
        cell = (repeat,)
    return str(header[f"TTYPE{i}"]), np.dtype(_DTYPE_OF_CODE[code]), cell, kind
