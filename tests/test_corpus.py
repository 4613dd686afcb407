"""The whole pipeline on the bad-input corpus (tests/corpus): a small simulated night with more than
thirty broken, odd and tricky files mixed in.

The night must complete; every bad case must be named with a clear message (frames.error,
step_runs.reason or the log), every odd but valid one used correctly; no traceback, no NaN frame in
the light curve, no frame twice; the raw files byte-identical afterwards; no temporary file left.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from corpus.make_corpus import ERROR, NOTED, USED, CorpusProgress, make_corpus
from corpus.verdicts import CLEAR, LogCapture, figures, judge, read_facts
from night_helpers import DemoNight, night_settings
from nightpipe.exit_codes import ExitCode
from nightpipe.frames.fitsio import is_temporary
from nightpipe.inventory import scan_paths
from nightpipe.pipeline.night import run_night
from nightpipe.store import open_database
from nightpipe.store.models import Frame, Master

pytestmark = pytest.mark.slow
SIZE, LIGHTS = 256, 22


def test_the_night_completes_and_names_every_bad_file(demo_night: DemoNight, tmp_path: Path) -> None:
    root, good = demo_night(SIZE, LIGHTS)
    corpus = make_corpus(good, tmp_path / "raw")
    assert len(corpus.cases) >= 30
    assert {c.expect for c in corpus.cases} == {ERROR, USED, NOTED}
    before = corpus.raw_digests()
    settings = night_settings(root, tmp_path)
    capture = LogCapture()
    logger = logging.getLogger("nightpipe")
    logger.addHandler(capture)
    try:
        run = run_night(settings, [corpus.raw], progress=CorpusProgress(corpus))
    finally:
        logger.removeHandler(capture)
    # the bad frames fail (exit 1: some frames failed); no step fails as a whole
    assert run.exit_code == ExitCode.FAILED, [s.error for s in run.steps if s.error]
    assert not [s.name for s in run.steps if s.status == "failed"]
    assert list(run.nights) == ["2017-12-19"]

    verdicts = judge(corpus, read_facts(settings, capture.lines))
    unclear = [f"{v.case.name}: {v.outcome}: {v.detail}" for v in verdicts if v.outcome != CLEAR]
    assert not unclear, "\n".join(unclear)
    assert figures(verdicts, aborted=0, raw_changed=0)["clear"] == len(corpus.cases)

    # raw files: byte-identical, but for the one the test deleted and the one it completed
    expected = dict(before)
    del expected[corpus.vanishing.name]
    expected[corpus.growing.name] = hashlib.sha1(corpus.growing.read_bytes()).hexdigest()
    assert corpus.raw_digests() == expected
    leftovers = [p for p in settings.paths.output.rglob(".*") if p.is_file() and is_temporary(p)]
    assert not leftovers

    db = open_database(settings.database.url)
    try:
        with db.session() as session:
            masters = {Path(m.path).name: m.nframes for m in session.scalars(select(Master))}
            assert masters["bias_1x1_g1.5_Monochrome_20171220.fits"] == 10  # the real one: plain name
            assert masters["bias_1x1_g1.5_Monochrome_128x128px_20171220.fits"] == 1
        # the growing file is complete now: the next scan reads it
        scan_paths([corpus.raw], settings, db)
        with db.session() as session:
            grown = session.scalars(select(Frame).where(Frame.path == str(corpus.growing))).one()
            assert grown.status == "ok" and grown.kind == "light" and grown.error is None
    finally:
        db.dispose()
