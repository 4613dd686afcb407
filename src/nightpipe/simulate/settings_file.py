"""The settings file of a simulated night (the demo's and the accuracy campaign's nights)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nightpipe.config import toml_value


def night_settings_lines(outdir: Path, site: dict[str, Any], camera: dict[str, Any]) -> list[str]:
    """The settings a simulated night shares with the demo's: its site and camera (from the
    truth), every product, the cache and an SQLite database under ``outdir``, Tycho-2 offline."""
    return [
        "[observatory]",
        f"name = {toml_value(site['name'])}",
        f"latitude = {site['latitude']}",
        f"longitude = {site['longitude']}",
        f"elevation = {site['elevation']}",
        "[camera]",
        f"gain = {camera.get('gain', 1.5)}",
        f"read_noise = {camera.get('read_noise_e', 9.0)}",
        "[paths]",
        f"output = {toml_value(str(outdir / 'out'))}",
        f"masters = {toml_value(str(outdir / 'out' / 'masters'))}",
        f"cache = {toml_value(str(outdir / 'cache'))}",
        "[database]",
        f"url = {toml_value('sqlite:///' + str((outdir / 'nightpipe.sqlite').resolve()))}",
        "[catalog]",
        'order = ["tycho2"]',
        "offline = true",
    ]
