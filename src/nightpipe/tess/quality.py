"""Quality flags of TESS and Kepler/K2 cadences, and the bitmasks used to reject them.

The bit values are those of the SPOC (TESS) and Kepler Science Operations Center data
products (TESS Science Data Products Description Document, table 28; Kepler Archive
Manual, table 2-3). The "default", "hard" and "hardest" masks follow the conventions of
the lightkurve package, so that the same cadences are rejected by both.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from nightpipe.errors import HeaderError

Mission = Literal["TESS", "Kepler", "K2"]
BitmaskName = Literal["none", "default", "hard", "hardest"]

TESS_FLAGS: dict[int, str] = {
    1: "attitude tweak",
    2: "safe mode",
    4: "coarse point",
    8: "Earth point",
    16: "Argabrightening",
    32: "desaturation event",
    64: "cosmic ray in optimal aperture",
    128: "manual exclude",
    256: "discontinuity corrected",
    512: "impulsive outlier",
    1024: "cosmic ray in collateral data",
    2048: "stray light",
    4096: "stray light 2",
    8192: "planet search exclude",
    16384: "bad calibration exclude",
    32768: "insufficient targets for error correction",
}

KEPLER_FLAGS: dict[int, str] = {
    1: "attitude tweak",
    2: "safe mode",
    4: "coarse point",
    8: "Earth point",
    16: "zero crossing",
    32: "desaturation event",
    64: "Argabrightening",
    128: "cosmic ray in optimal aperture",
    256: "manual exclude",
    1024: "sudden sensitivity dropout",
    2048: "impulsive outlier",
    4096: "Argabrightening on CCD",
    8192: "cosmic ray in collateral data",
    16384: "detector anomaly",
    32768: "no fine point",
    65536: "no data",
    131072: "rolling band in optimal aperture",
    262144: "rolling band in full mask",
    524288: "possible thruster firing",
    1048576: "thruster firing",
}

_TESS_DEFAULT = 1 | 2 | 4 | 8 | 16 | 32 | 128 | 512 | 16384
_TESS_HARD = _TESS_DEFAULT | 64 | 1024 | 2048 | 4096
_KEPLER_DEFAULT = 1 | 2 | 4 | 8 | 32 | 256 | 16384 | 65536 | 1048576
_KEPLER_HARD = _KEPLER_DEFAULT | 128 | 1024 | 8192 | 524288

BITMASKS: dict[str, dict[str, int]] = {
    "TESS": {"none": 0, "default": _TESS_DEFAULT, "hard": _TESS_HARD, "hardest": sum(TESS_FLAGS)},
    "Kepler": {
        "none": 0,
        "default": _KEPLER_DEFAULT,
        "hard": _KEPLER_HARD,
        "hardest": sum(KEPLER_FLAGS),
    },
}


def bitmask_value(mission: str, bitmask: BitmaskName | int) -> int:
    """The integer bitmask of a named choice (``none``, ``default``, ``hard``, ``hardest``).

    Parameters
    ----------
    mission
        ``TESS``, ``Kepler`` or ``K2`` (K2 uses the Kepler flags).
    bitmask
        A name, or an integer that is returned unchanged.

    Examples
    --------
    >>> bitmask_value("TESS", "none")
    0
    >>> bitmask_value("K2", 5)
    5
    """
    if isinstance(bitmask, int | np.integer):
        if bitmask < 0:
            raise HeaderError(f"quality bitmask {bitmask} is negative", hint="use a non-negative integer")
        return int(bitmask)
    table = BITMASKS["TESS" if mission == "TESS" else "Kepler"]
    if bitmask not in table:
        raise HeaderError(
            f"unknown quality bitmask {bitmask!r}", hint=f"use one of {', '.join(table)} or an integer"
        )
    return table[bitmask]


def good_cadences(quality: np.ndarray, bitmask: int) -> np.ndarray:
    """True for cadences whose quality word has none of the bits of ``bitmask``."""
    return (np.asarray(quality, dtype=np.int64) & int(bitmask)) == 0


def describe_flags(mission: str, value: int) -> list[str]:
    """The names of the bits set in one quality word.

    Examples
    --------
    >>> describe_flags("TESS", 8 | 32)
    ['Earth point', 'desaturation event']
    """
    table = TESS_FLAGS if mission == "TESS" else KEPLER_FLAGS
    return [name for bit, name in table.items() if value & bit] + (
        [f"unknown bits {value & ~sum(table)}"] if value & ~sum(table) else []
    )
