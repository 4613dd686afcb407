"""Numbers as the database and JSON take them: Python floats, with ``None`` for what is not finite."""

from __future__ import annotations

from typing import Any

import numpy as np


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float, or ``None`` when it is missing, not a number, NaN or infinite.

    Examples
    --------
    >>> finite_or_none(np.float32(2.5)), finite_or_none(np.nan), finite_or_none(None)
    (2.5, None, None)
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def finite_list(values: Any) -> list[float | None]:
    """``values`` as a list of Python floats with NaN and infinities replaced by ``None``.

    Examples
    --------
    >>> finite_list([1.0, np.inf, 3])
    [1.0, None, 3.0]
    """
    arr = np.asarray(values, dtype=float)
    out: list[float | None] = arr.tolist()
    for i in np.flatnonzero(~np.isfinite(arr)).tolist():
        out[i] = None
    return out
