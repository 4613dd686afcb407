"""ADES XML beside the PSV: the same fields, in the order and with the value forms of the MPC's
submission schema (``submit.xsd``, ADES version 2017, IAU-ADES/ADES-Master
``past_versions/v2017/submit_v2017.xsd``: its ``OpticalType`` sequence, ``ObsContextType``'s
required elements and the patterns of ``PermIDType``, ``ProvIDType``, ``TrkSubType``,
``StationType``, ``TimeHelp``); and 80-column lines checked column by column."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from nightpipe.movers.ades_xml import OPTICAL_ORDER, Telescope, ades_xml
from nightpipe.movers.designations import pack_number, pack_provisional
from nightpipe.movers.mpc import Observation, ades_psv, mpc80_line

PATTERNS = {  # from submit_v2017.xsd
    "permID": r"\d+([IPD](-[A-Z]{1,2})?)?",
    "provID": r"\d{4} [A-HJ-Y][A-HJ-Z]\d*",
    "trkSub": r"[-A-Za-z0-9_]{1,8}",
    "stn": r"[A-Za-z0-9_]{3,4}",
    "obsTime": r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z",
    "mode": r"[A-Za-z0-9_]{1,3}",
    "astCat": r"[.A-Za-z0-9_]{1,8}",
    "band": r"[A-Za-z0-9_]{1,3}",
}
REQUIRED = ("mode", "stn", "obsTime", "ra", "dec", "astCat")


def _jd(when: datetime) -> float:
    return (when - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() / 86400.0 + 2440587.5


def _observations() -> list[Observation]:
    t = _jd(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    return [
        Observation("", pack_number("229762"), t, 81.30319, 4.49030, 19.62, "V", "G96", 0.21, 0.19, 0.05),
        Observation(
            pack_provisional("2019 RB21"), "", t + 0.01, 81.21229, 4.63282, None, " ", "G96", 0.3, 0.3
        ),
        Observation("NP00001", "", t + 0.02, 359.99, -0.5, 18.1, "R", "G96", 0.25, 0.25, 0.1),
    ]


def test_ades_xml_follows_the_submission_schema_and_carries_the_psv_fields() -> None:
    obs = _observations()
    text = ades_xml(obs, observer="A. Observer", site_code="G96", catalogue="Gaia3",
                    telescope=Telescope("Reflector", 0.4, "CCD", "Test site"))  # fmt: skip
    root = ET.fromstring(text)
    assert root.tag == "ades" and root.get("version") == "2017"
    block = root.find("obsBlock")
    assert block is not None and [c.tag for c in block] == ["obsContext", "obsData"]
    context = block.find("obsContext")
    assert context is not None
    assert {c.tag for c in context} >= {"observatory", "submitter", "observers", "measurers", "telescope"}
    assert context.findtext("observatory/mpcCode") == "G96" and context.findtext("submitter/name")
    scope = context.find("telescope")
    assert scope is not None and all(scope.findtext(k) for k in ("design", "aperture", "detector"))
    opticals = block.findall("obsData/optical")
    assert len(opticals) == len(obs)
    for optical in opticals:
        tags = [c.tag for c in optical]
        assert tags == sorted(tags, key=OPTICAL_ORDER.index)  # the schema's sequence
        assert set(REQUIRED) <= set(tags) and {"permID", "provID", "trkSub"} & set(tags)
        if "mag" in tags:
            assert "band" in tags  # the schema's Photometry group: mag then band
        for child in optical:
            if child.tag in PATTERNS:
                assert re.fullmatch(PATTERNS[child.tag], child.text or ""), (child.tag, child.text)
        assert (
            0 <= float(optical.findtext("ra") or -1) < 360
            and -90 <= float(optical.findtext("dec") or 99) <= 90
        )
    ids = [(o.findtext("permID"), o.findtext("provID"), o.findtext("trkSub")) for o in opticals]
    assert ids == [("229762", None, None), (None, "2019 RB21", None), (None, None, "NP00001")]
    # the PSV rows carry the same values
    psv = ades_psv(obs, observer="A. Observer", site_code="G96", catalogue="Gaia3").splitlines()
    header = next(k for k, line in enumerate(psv) if line.startswith("permID"))
    columns = [c.strip() for c in psv[header].split("|")]
    for line, optical in zip(psv[header + 1 :], opticals, strict=True):
        row = dict(zip(columns, (v.strip() for v in line.split("|")), strict=True))
        assert {k: v for k, v in row.items() if v} == {c.tag: c.text for c in optical}


@pytest.mark.parametrize("k", range(3))
def test_80_column_lines_put_each_field_in_its_columns(k: int) -> None:
    o = _observations()[k]
    line = mpc80_line(o)
    assert len(line) == 80
    assert line[0:5] == f"{o.number:>5}" and line[5:12] == f"{o.designation:<7}"
    assert line[14] == "C" and line[12] == " "  # note 2 (CCD), no discovery asterisk
    if k == 0:
        assert line[15:32] == "2025 01 02.12784 "  # 03:04:05 UTC, columns 16-32
    assert re.fullmatch(r"\d{4} \d\d \d\d\.\d{5}", line[15:31])
    assert re.fullmatch(r"\d\d \d\d \d\d\.\d\d", line[32:43])  # RA, columns 33-44
    assert re.fullmatch(r"[+-]\d\d \d\d \d\d\.\d", line[44:55])  # Dec, columns 45-56
    assert line[65:70].strip() == ("" if o.mag is None else f"{o.mag:.1f}") and line[77:80] == "G96"
    assert line[56:65] == " " * 9 and line[72:77] == " " * 5
