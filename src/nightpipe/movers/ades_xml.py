"""ADES XML (version 2017, the MPC's submission schema ``submit.xsd``) of the same observations and
fields as the PSV file: ``<ades version="2017"><obsBlock><obsContext>`` (observatory, submitter,
observers, measurers, telescope) and ``<obsData>`` with one ``<optical>`` per observation, its
elements in the schema's order (permID, provID, trkSub, mode, stn, obsTime, ra, dec, rmsRA, rmsDec,
astCat, mag, rmsMag, band)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from nightpipe.movers.designations import ades_ids
from nightpipe.movers.mpc import Observation, _utc

OPTICAL_ORDER: tuple[str, ...] = (
    "permID",
    "provID",
    "trkSub",
    "mode",
    "stn",
    "obsTime",
    "ra",
    "dec",
    "rmsRA",
    "rmsDec",
)
OPTICAL_ORDER += ("astCat", "mag", "rmsMag", "band")


@dataclass(frozen=True)
class Telescope:
    """The schema's required telescope description (aperture in metres)."""

    design: str
    aperture_m: float
    detector: str
    name: str = ""


def _text(parent: ET.Element, tag: str, value: str) -> ET.Element:
    child = ET.SubElement(parent, tag)
    child.text = value
    return child


def optical_fields(o: Observation, catalogue: str) -> list[tuple[str, str]]:
    """(element, text) of one observation, in the schema's order, empty ones left out."""
    perm, prov, trk = ades_ids(o.number, o.designation)
    fields = [
        ("permID", perm),
        ("provID", prov),
        ("trkSub", trk),
        ("mode", "CCD"),
        ("stn", o.station),
        ("obsTime", _utc(o.jd_utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"),
        ("ra", f"{o.ra % 360.0:.6f}"),
        ("dec", f"{o.dec:+.6f}"),
        ("rmsRA", _opt(o.rms_ra_arcsec, 3)),
        ("rmsDec", _opt(o.rms_dec_arcsec, 3)),
        ("astCat", catalogue),
    ]
    if o.mag is not None and np.isfinite(o.mag) and o.band.strip():
        fields += [("mag", f"{o.mag:.2f}"), ("rmsMag", _opt(o.rms_mag, 2)), ("band", o.band.strip())]
    return [(k, v) for k, v in fields if v]


def _opt(value: float | None, digits: int) -> str:
    return f"{value:.{digits}f}" if value is not None and np.isfinite(value) and value > 0 else ""


def ades_xml(
    observations: list[Observation],
    *,
    observer: str,
    site_code: str,
    catalogue: str,
    telescope: Telescope | None,
) -> str:
    """The ADES XML document of the observations."""
    root = ET.Element("ades", version="2017")
    block = ET.SubElement(root, "obsBlock")
    context = ET.SubElement(block, "obsContext")
    _text(ET.SubElement(context, "observatory"), "mpcCode", site_code)
    _text(ET.SubElement(context, "submitter"), "name", observer)
    _text(ET.SubElement(context, "observers"), "name", observer)
    _text(ET.SubElement(context, "measurers"), "name", observer)
    if telescope is not None:
        scope = ET.SubElement(context, "telescope")
        if telescope.name:
            _text(scope, "name", telescope.name)
        _text(scope, "design", telescope.design)
        _text(scope, "aperture", f"{telescope.aperture_m:g}")
        _text(scope, "detector", telescope.detector)
    data = ET.SubElement(block, "obsData")
    for o in observations:
        optical = ET.SubElement(data, "optical")
        for tag, value in optical_fields(o, catalogue):
            _text(optical, tag, value)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
