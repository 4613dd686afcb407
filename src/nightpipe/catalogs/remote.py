"""Gentle remote calls: one throttle per service, retries with exponential back-off.

Both the reference catalogues (zero points) and the identification services (SIMBAD, VSX,
Gaia, SkyBoT, Astro-Colibri) call remote services through :func:`call_with_retries`, so a
busy or unreachable service is treated the same way everywhere.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from nightpipe.errors import CatalogError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Throttle:
    """At most one remote call per ``interval_s`` (CDS and IMCCE ask clients to be gentle)."""

    interval_s: float = 1.0
    last: float = field(default=0.0)

    def wait(self) -> None:
        """Sleep until the next call is allowed."""
        delay = self.last + self.interval_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self.last = time.monotonic()


def call_with_retries(
    call: Callable[[], T],
    *,
    label: str,
    retries: int,
    throttle: Throttle,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()`` until it succeeds, at most ``retries + 1`` times, backing off 1, 2, 4 ... s.

    Only :class:`~nightpipe.errors.CatalogError` is retried (the fetchers turn network, HTTP
    and timeout failures into it); the last one is raised.
    """
    last: CatalogError | None = None
    for attempt in range(retries + 1):
        throttle.wait()
        try:
            return call()
        except CatalogError as exc:
            last = exc
            if attempt < retries:
                backoff = 2.0**attempt
                log.info("retrying %s in %.0f s (%s)", label, backoff, exc)
                sleep(backoff)
    assert last is not None
    raise last
