"""The header dialects the simulator writes (no numpy here: the CLI's help lists them)."""

from __future__ import annotations

from typing import Literal

Dialect = Literal["maxim", "nina", "sbig", "microobservatory"]
DIALECTS: tuple[str, ...] = ("maxim", "nina", "sbig", "microobservatory")
