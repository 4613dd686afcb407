"""The worked example of docs/architecture.md: a whole per-frame step (the median of each frame)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from nightpipe.frames.fitsio import read_image
from nightpipe.pipeline.framestep import FrameTask, StepRecord


class MedianStep:
    name, store_batch, retry_failed = "median", 32, True

    def process(self, path: Path) -> float:  # on a worker: no database
        data, _header = read_image(path)  # a FitsReadError names the file: the frame fails, the night goes on
        return float(np.nanmedian(data))

    def store(self, session: Session, task: FrameTask[Path], result: float) -> StepRecord:
        return StepRecord(details={"median": result})  # a step with rows of its own adds them here
