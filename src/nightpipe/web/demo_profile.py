"""A profile from a nightpipe TOML file (the demo night's, say): what a job may take from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nightpipe.config import read_config_file
from nightpipe.web.job_settings import PROTECTED


def profile_from_file(path: Path) -> dict[str, Any]:
    """The settings of ``path`` without the sections a web job decides itself (paths, database...)."""
    return {k: v for k, v in read_config_file(path).items() if k not in PROTECTED}
