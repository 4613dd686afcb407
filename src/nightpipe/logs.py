"""Logging set-up: every record carries the frame and the step it concerns.

Library code logs through ``logging.getLogger(__name__)`` and passes context with
``extra={"frame": ..., "step": ...}`` or by using :func:`frame_logger`.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

_FORMAT = "%(asctime)s %(levelname)-7s [%(step)s] %(frame)s%(message)s"


class ContextFilter(logging.Filter):
    """Makes sure every record has ``frame`` and ``step`` attributes for the formatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        frame = getattr(record, "frame", None)
        record.frame = f"{frame}: " if frame else ""
        if not getattr(record, "step", None):
            record.step = record.name.removeprefix("nightpipe.")
        return True


class FrameAdapter(logging.LoggerAdapter[logging.Logger]):
    """A logger adapter that adds a frame name and a step name to every record."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs


def frame_logger(
    logger: logging.Logger, *, frame: str | None = None, step: str | None = None
) -> FrameAdapter:
    """Return ``logger`` wrapped so that records name ``frame`` and ``step``."""
    return FrameAdapter(logger, {"frame": frame, "step": step})


def configure_logging(level: int = logging.INFO, *, handler: logging.Handler | None = None) -> None:
    """Configure the ``nightpipe`` logger hierarchy (called by the CLI, never at import)."""
    root = logging.getLogger("nightpipe")
    root.setLevel(level)
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = handler or logging.StreamHandler()
    handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.propagate = False
