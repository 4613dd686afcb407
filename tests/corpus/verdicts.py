"""Judging a night run on the corpus: per case, a clear message, a frame used correctly, or a failure.

:func:`judge` reads the database (``frames.error``, ``step_runs.reason``), the captured log and the
light curve of a run on a :class:`~corpus.make_corpus.Corpus`, and gives each case a
:class:`Verdict`. :func:`figures` sums them up as reported in ``benchmarks/README.md``:

    PYTHONPATH=src python tests/corpus/verdicts.py [--keep DIR]

simulates the small night, builds the corpus, runs the whole pipeline on it and prints the figures.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

if __package__ in (None, ""):  # run as a script: make ``corpus`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpus.make_corpus import ERROR, NOTED, USED, Case, Corpus
from nightpipe.config import Settings
from nightpipe.store import open_database
from nightpipe.store.models import Frame, StepRun

CLEAR, WRONG, UNCLEAR, CRASH = "clear", "silently wrong", "unclear message", "traceback"
#: The checks of the whole night that :func:`judge` adds to the cases' verdicts.
NIGHT_CHECKS = ("good-lights", "light-curve")


@dataclass(frozen=True)
class Verdict:
    """What became of one case: ``clear`` when it did what :attr:`Case.expect` says."""

    case: Case
    outcome: str
    detail: str


class LogCapture(logging.Handler):
    """Keeps the text of every warning and error logged during the run."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record's text (with its traceback, if any)."""
        text = record.getMessage()
        if record.exc_info:
            text += "\nTraceback (logged)"
        self.lines.append(text)


@dataclass
class RunFacts:
    """What a run left that the verdicts are read from."""

    rows: dict[str, list[Frame]]  # by absolute path
    reasons: dict[int, list[str]]  # step_runs reasons by frame id
    calibrated: dict[int, str]  # frame id -> calibrated product
    curve_frames: list[str]  # calibrated products in the light curve
    curve_flux: list[float]
    reference: str | None  # the calibrated product the light curve's stars were matched on
    log: list[str]


def read_facts(settings: Settings, log: list[str]) -> RunFacts:
    """Collect the rows, reasons, calibrated products and light curve of a run."""
    db = open_database(settings.database.url)
    try:
        with db.session() as session:
            rows: dict[str, list[Frame]] = {}
            for frame in session.scalars(select(Frame)):
                rows.setdefault(frame.path, []).append(frame)
            reasons: dict[int, list[str]] = {}
            calibrated: dict[int, str] = {}
            for run in session.scalars(select(StepRun).where(StepRun.frame_id.is_not(None))):
                assert run.frame_id is not None
                if run.reason:
                    reasons.setdefault(run.frame_id, []).append(f"{run.step}: {run.reason}")
                if run.step == "calibrate" and run.status == "ok" and run.output_path:
                    calibrated[run.frame_id] = run.output_path
            session.expunge_all()
    finally:
        db.dispose()
    fits_json = sorted(settings.paths.output.glob("lightcurves/*/*_fit.json"))
    frames: list[str] = []
    flux: list[float] = []
    reference = None
    if fits_json:
        fit = json.loads(fits_json[0].read_text())
        frames = [str(f) for f in fit["meta"]["frames"]]
        reference = fit["meta"].get("reference_frame")
        csv = fits_json[0].with_name(fits_json[0].name.replace("_fit.json", ".csv")).read_text().splitlines()
        column = csv[0].split(",").index("rel_flux_T1")
        flux = [float(line.split(",")[column]) for line in csv[1:]]
    return RunFacts(rows, reasons, calibrated, frames, flux, reference, log)


def _messages(facts: RunFacts, path: Path) -> list[str]:
    out: list[str] = []
    for frame in facts.rows.get(str(path), []):
        if frame.error:
            out.append(frame.error)
        out.extend(facts.reasons.get(frame.id, []))
    out.extend(line for line in facts.log if path.name in line)
    return out


def judge_case(case: Case, corpus: Corpus, facts: RunFacts) -> Verdict:
    """The verdict of one case (see the module doc)."""
    problems: list[str] = []
    for rel in case.files:
        path = corpus.raw / rel
        messages = _messages(facts, path)
        if any("Traceback" in m or "unexpected error" in m for m in messages):
            return Verdict(case, CRASH, f"{rel}: {messages}")
        rows = facts.rows.get(str(path), [])
        products = [facts.calibrated[f.id] for f in rows if f.id in facts.calibrated]
        in_curve = [p for p in products if p in facts.curve_frames]
        if case.expect == ERROR:
            if in_curve:
                return Verdict(case, WRONG, f"{rel} is in the light curve")
            if not messages:
                return Verdict(case, WRONG, f"{rel}: no message anywhere")
            wanted = (path.name.lower(), *(w.lower() for w in case.says))
            if not any(all(w in m.lower() for w in wanted) for m in messages):
                problems.append(f"{rel}: none of {messages} says all of {wanted}")
            continue
        usable = rows and all(f.status == "ok" for f in rows)
        if case.role == "light" and (not usable or len(in_curve) != 1):
            why = messages or "no message"
            return Verdict(case, WRONG, f"{rel} not used once in the light curve ({why})")
        if case.role == "calibration" and not usable:
            return Verdict(case, WRONG, f"{rel} not used ({messages or 'no message'})")
        if case.expect == NOTED:
            wanted = (path.name.lower(), *(w.lower() for w in case.says))
            if not any(all(w in m.lower() for w in wanted) for m in messages):
                problems.append(f"{rel}: none of {messages} says all of {wanted}")
        if case.expect == USED and any(f.error for f in rows):
            problems.append(f"{rel}: used, but flagged: {[f.error for f in rows]}")
    if problems:
        return Verdict(case, UNCLEAR, "; ".join(problems))
    return Verdict(case, CLEAR, "")


def _bad_products(corpus: Corpus, facts: RunFacts) -> set[str]:
    """The names of the calibrated products of the cases that must not be used."""
    return {
        Path(facts.calibrated[f.id]).name
        for case in corpus.cases
        if case.expect == ERROR
        for rel in case.files
        for f in facts.rows.get(str(corpus.raw / rel), [])
        if f.id in facts.calibrated
    }


def judge(corpus: Corpus, facts: RunFacts) -> list[Verdict]:
    """The verdict of every case, plus the checks on the whole light curve: the good lights in it,
    once each, no non-finite point, and a reference frame that is not a corrupt one."""
    verdicts = [judge_case(c, corpus, facts) for c in corpus.cases]
    good = Case(NIGHT_CHECKS[0], tuple(corpus.good_lights), USED)
    verdicts.append(judge_case(good, corpus, facts))
    whole = Case(NIGHT_CHECKS[1], (), USED)
    if not facts.curve_frames:
        verdicts.append(Verdict(whole, WRONG, "no light curve"))
    elif len(set(facts.curve_frames)) != len(facts.curve_frames):
        verdicts.append(Verdict(whole, WRONG, "a frame is in the light curve twice"))
    elif not all(math.isfinite(v) for v in facts.curve_flux):
        verdicts.append(Verdict(whole, WRONG, "a non-finite point in the light curve"))
    elif facts.reference is None or Path(facts.reference).name in _bad_products(corpus, facts):
        verdicts.append(Verdict(whole, WRONG, f"the light curve's reference frame is {facts.reference}"))
    else:
        verdicts.append(Verdict(whole, CLEAR, ""))
    return verdicts


def figures(verdicts: list[Verdict], *, aborted: int, raw_changed: int) -> dict[str, int]:
    """The corpus figures: cases tried, clear outcomes, aborted nights, silently wrong results,
    raw files changed."""
    cases = [v for v in verdicts if v.case.name not in NIGHT_CHECKS]
    return {
        "cases": len(cases),
        "clear": sum(v.outcome == CLEAR for v in cases),
        "aborted": aborted + sum(v.outcome == CRASH for v in verdicts),
        "silently_wrong": sum(v.outcome == WRONG for v in verdicts),
        "raw_changed": raw_changed,
    }


def main(argv: list[str]) -> int:
    """Simulate the night, build the corpus, run the pipeline and print the figures."""
    import tempfile

    from corpus.make_corpus import CorpusProgress, make_corpus
    from nightpipe.config import load_settings
    from nightpipe.pipeline.demo import prepare_demo
    from nightpipe.pipeline.night import run_night

    keep = Path(argv[argv.index("--keep") + 1]) if "--keep" in argv else None
    work = keep or Path(tempfile.mkdtemp(prefix="nightpipe-corpus-"))
    _, good = prepare_demo(work / "demo", size=256, n_lights=22)
    corpus = make_corpus(good, work / "corpus")
    before = corpus.raw_digests()
    settings = load_settings(
        work / "demo" / "nightpipe.toml",
        environ={},
        overrides=[
            f"paths.output={str(work / 'out')!r}",
            f"paths.masters={str(work / 'out' / 'masters')!r}",
            f"database.url='sqlite:///{work / 'db.sqlite'}'",
        ],
    )
    capture = LogCapture()
    logging.getLogger("nightpipe").addHandler(capture)
    run = run_night(settings, [corpus.raw], progress=CorpusProgress(corpus))
    after = corpus.raw_digests()
    changed = [k for k in before if k in after and before[k] != after[k] and k != corpus.growing.name]
    verdicts = judge(corpus, read_facts(settings, capture.lines))
    for v in verdicts:
        print(f"{v.outcome:16s} {v.case.name:24s} {v.detail[:200]}")
    aborted = int(any(s.status == "failed" for s in run.steps))
    print(json.dumps(figures(verdicts, aborted=aborted, raw_changed=len(changed))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
