"""What every request of the web app shares: the settings, the database, the templates, the key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi.templating import Jinja2Templates

from nightpipe.config import Settings
from nightpipe.store.db import Database

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


@dataclass(frozen=True)
class WebContext:
    """Made once by :func:`nightpipe.web.app.create_app`; kept on ``app.state.ctx``."""

    settings: Settings
    db: Database
    templates: Jinja2Templates
    key: bytes

    @property
    def data_dir(self) -> Path:
        return self.settings.web.data_dir
