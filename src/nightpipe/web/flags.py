"""Site switches an admin sets at run time (registration open or closed)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from nightpipe.config import Settings
from nightpipe.web.models import SiteFlag


def registration_open(session: Session, settings: Settings) -> bool:
    """The admin's switch when set, else the settings' ``web.registration``."""
    flag = session.get(SiteFlag, "registration")
    return settings.web.registration if flag is None else flag.value == "on"


def set_registration(session: Session, is_open: bool) -> None:
    flag = session.get(SiteFlag, "registration")
    if flag is None:
        session.add(SiteFlag(name="registration", value="on" if is_open else "off"))
    else:
        flag.value = "on" if is_open else "off"
