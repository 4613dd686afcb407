"""The identify step's known variables, as the light curves read them (never comparison stars)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from nightpipe.config import Settings

if TYPE_CHECKING:
    from astropy.table import Table

log = logging.getLogger(__name__)
VARIABLES = "variables.ecsv"


def identify_dir(settings: Settings, night: str) -> Path:
    """Where a night's identification products are."""
    return settings.paths.output / "identify" / night


def variables_file(settings: Settings, night: str) -> Path:
    """Where the identify step writes a night's known variables."""
    return identify_dir(settings, night) / VARIABLES


def known_variables_of(
    settings: Settings, night: str
) -> tuple[tuple[tuple[float, float], ...], tuple[str, ...]]:
    """Positions and labels ('VSX EY UMa (RRAB)') of the night's known variables (empty when none)."""
    path = variables_file(settings, night)
    if not path.is_file():
        return (), ()
    from astropy.table import Table

    try:
        table = Table.read(path, format="ascii.ecsv")
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable known-variable list, no identify veto (%s)", path, exc)
        return (), ()
    positions = tuple((float(r["ra"]), float(r["dec"])) for r in table)
    labels = tuple(str(r["label"]) for r in table)
    return positions, labels


def night_catalogue(settings: Settings, night: str) -> Table | None:
    """The identify step's annotated star list of a night (``None`` when it did not run)."""
    path = identify_dir(settings, night) / "catalogue.ecsv"
    if not path.is_file():
        return None
    from astropy.table import Table

    try:
        return Table.read(path, format="ascii.ecsv")
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable night catalogue, stars named by coordinates (%s)", path, exc)
        return None
