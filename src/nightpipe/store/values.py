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


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: dict keys as strings, tuples as lists, numpy scalars as Python
    numbers, paths as strings, NaN and infinities as ``None``.

    >>> import numpy as np
    >>> jsonable({"n": np.int64(3), "x": float("nan"), "t": (1.5, np.float32(2.0))})
    {'n': 3, 'x': None, 't': [1.5, 2.0]}
    """
    import math
    from pathlib import PurePath

    import numpy as np

    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
