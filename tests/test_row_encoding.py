"""The per-star encodings of a night (issue 22's Python overhead) write what the per-row ones wrote."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from nightpipe.calphot.night_products import write_sources_csv
from nightpipe.photometry.step_rows import finite_rows


@pytest.mark.parametrize("shape", [(0, 3), (1, 1), (7, 3), (5,), (2, 0)])
def test_flux_rows_are_the_json_of_each_row(shape: tuple[int, ...]) -> None:
    values = np.random.default_rng(4).normal(1e4, 3e3, shape)
    values.flat[::4] = np.nan
    if values.size > 2:
        values.flat[1], values.flat[2] = np.inf, -0.0
    arr = values if values.ndim == 2 else values[:, np.newaxis]
    expected = [json.dumps([v if np.isfinite(v) else None for v in row]) for row in arr.tolist()]
    assert finite_rows(values) == expected


def test_sources_csv_is_what_the_dict_writer_wrote(tmp_path: Path) -> None:
    rows: list[dict[str, object]] = [
        {"id": "TYC 1", "RA_C": 1.5, "MAG_V": 12.25, "IMGNAME": "a, b.fits", "DATETIME": "2017-12-19"},
        {"id": "nan", "DIF": "nan", "MAG_err": 0.01},
    ]
    path = write_sources_csv(rows, tmp_path / "sources.csv", "V")
    fields = ["id", "RA_C", "DEC_C", "RA_M", "DEC_M", "DIF", "MAG_V", "MAG_err", "CMAG_V"]
    fields += ["DATETIME", "IMGNAME"]
    expected = io.StringIO(newline="")
    writer = csv.DictWriter(expected, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "---") for k in fields})
    assert path.read_bytes() == expected.getvalue().encode("utf-8")
