"""Progress as plain log lines (``nightpipe.progress.LineProgress``), for output that is not a terminal."""

from __future__ import annotations

import logging

import pytest

from nightpipe.progress import LineProgress


@pytest.mark.parametrize(("total", "every"), [(8, 1), (100, 10), (1000, 25)])
def test_a_line_at_the_start_every_tenth_or_25_items_and_at_the_end(
    total: int, every: int, caplog: pytest.LogCaptureFixture
) -> None:
    progress = LineProgress(logging.getLogger("test.progress"))
    with caplog.at_level(logging.INFO, logger="test.progress"):
        progress.start(total, "calibrate")
        for i in range(total):
            progress.advance(f"f{i}.fits")
        progress.stop()
        progress.stop()  # a loop's finally and a stop both say so: one line
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == f"calibrate: {total} to do"
    assert messages[1:-1] == [
        f"calibrate: {n} of {total} done (f{n - 1}.fits)" for n in range(every, total, every)
    ]
    assert messages[-1].startswith(f"calibrate: {total} of {total} done in ")
    assert len(messages) == 2 + len(range(every, total, every))


def test_an_empty_loop_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    progress = LineProgress(logging.getLogger("test.progress"))
    with caplog.at_level(logging.INFO, logger="test.progress"):
        progress.start(0, "solve (full)")
        progress.stop()
    assert caplog.records == []
