"""The per-frame steps make the same products however their frames are scheduled (slow).

The demo night is run into one folder frame by frame, then again into the same folder on a
local Dask cluster of two worker processes (frames finish out of order and are stored in
batches as they come): every product file, pixel and header card, and every database row
must be identical, minus the times of writing. ``test_parallel_night`` compares the two runs
science figure by science figure; this compares everything, bit for bit. The same fingerprint
(``tests/product_fingerprint.py``) compares a night run by two checkouts of the code when a
step moves onto the contract.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from night_helpers import DemoNight, night_settings
from nightpipe.pipeline.night import run_night
from product_fingerprint import differences, fingerprint

pytestmark = pytest.mark.slow


def test_demo_night_products_do_not_depend_on_scheduling(demo_night: DemoNight, tmp_path: Path) -> None:
    root, raw = demo_night(384, 24)
    prints = []
    for parallel in (["parallel.threads=1"], ["parallel.workers=2"]):
        run = tmp_path / "run"
        settings = night_settings(root, run, *parallel)
        result = run_night(settings, [raw])
        assert result.exit_code == 0, [s.error for s in result.steps if s.error]
        prints.append(fingerprint(settings.paths.output, settings.database.url))
        shutil.rmtree(run)
    first, second = prints
    assert len(first["files"]) > 50 and int(first["rows"]["measurements"].split(":")[0]) > 500
    assert int(first["rows"]["zero_points"].split(":")[0]) == 24
    assert differences(first, second) == []
