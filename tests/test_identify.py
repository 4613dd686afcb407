"""Identification: recorded real answers through the real parsers, the cache, offline, failures, matching.

Recordings (tests/data/identify, see its SOURCES.md; re-record with tests/record_identify.py):
SIMBAD around the Crab nebula and SkyBoT near (81.28, +4.49) on 2025-01-02 and two Gaia DR3
sources, from astroquery's test suites; the VSX answer and the measured stars of the EY UMa
field come from stellarphot's test data in ../shared/data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.table import Table
from astropy.time import Time

from nightpipe.catalogs.answers import AnswerCache
from nightpipe.config import IdentifyConfig, Settings
from nightpipe.errors import CatalogError
from nightpipe.identify.catalogue import annotate, known_variables
from nightpipe.identify.colibri import ColibriService
from nightpipe.identify.lookup import FieldLookup
from nightpipe.identify.match import match_sky
from nightpipe.identify.night_input import NightSky
from nightpipe.identify.service import FieldQuery, Service
from nightpipe.identify.simbad import SimbadService, adql_cone, is_variable_type
from nightpipe.identify.skybot import SkybotService, move_to
from nightpipe.identify.solar_system import FrameSources, bodies, epoch_of, epochs, match_frames
from nightpipe.identify.step import identify_sky, write_products
from nightpipe.identify.vizier_services import GaiaService, VsxService
from nightpipe.report.identify_section import identify_section

RECORDED = Path(__file__).parent / "data" / "identify"
SKYBOT_EPOCH = Time("2025-01-02 00:00:00", scale="utc").jd


@pytest.fixture(scope="module")
def vsx_raw(shared_data: Path) -> bytes:
    return (shared_data / "stellarphot-eyuma" / "unclipped_ey_uma_vsx.fits").read_bytes()


@pytest.fixture(scope="module")
def eyuma(shared_data: Path) -> Table:
    """Real measured stars of the EY UMa field: 94 frames, 41 stars each, with RA/Dec."""
    return Table.read(shared_data / "stellarphot-eyuma" / "2014-12-29-ey-uma-9.fits")


def raw(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


# --- parsers on recorded answers -------------------------------------------------------------


def test_simbad_recording_parses_positions_and_names() -> None:
    table = SimbadService().parse(raw("simbad_script_coo_crab.data"))
    assert len(table) == 65
    crab = table[table["name"] == "M   1"][0]
    assert crab["ra"] == pytest.approx(83.63308, abs=1e-4)  # 05 34 31.94
    assert crab["dec"] == pytest.approx(22.0145, abs=1e-4)  # +22 00 52.2
    assert "V* CM Tau" in set(table["name"])
    assert table.meta["epoch"] == 2000.0


def test_simbad_query_is_a_checked_cone() -> None:
    text = adql_cone(FieldQuery(83.63, 22.01, 0.25))
    assert "CIRCLE('ICRS', 83.630000, 22.010000, 0.250000)" in text
    with pytest.raises(CatalogError, match="out of range"):
        adql_cone(FieldQuery(float("nan"), 22.0, 0.25))
    assert is_variable_type("RR*") and is_variable_type("EB*?") and is_variable_type("LPV*")
    assert not is_variable_type("*") and not is_variable_type("QSO")


def test_vsx_recording_gives_names_types_periods_ranges(vsx_raw: bytes) -> None:
    table = VsxService().parse(vsx_raw)
    assert len(table) == 39
    ey = table[table["name"] == "EY UMa"][0]
    assert ey["kind"] == "RRAB/BL"
    assert ey["period"] == pytest.approx(0.54907)
    assert ey["range"] == "14.27-15.38 V"


def test_gaia_recording_gives_ids_colours_and_epoch() -> None:
    table = GaiaService().parse(raw("gaia_dr3_archive_two_sources.vot"))
    assert list(table["source_id"]) == ["4583627001381815936", "5348723816842275584"]
    assert np.all(table["BP"] - table["RP"] > 3.0)  # two very red stars
    assert np.isfinite(table["pmra"]).all() and np.isfinite(table["parallax"]).all()
    assert table.meta["epoch"] == 2016.0


def test_skybot_recording_gives_bodies_with_rates() -> None:
    table = SkybotService().parse(raw("skybot_cone_81.28_4.49_2025-01-02.vot"))
    assert list(table["name"]) == ["G!kun||'homdima", "2014 UP224", "2019 RB21", "2007 TE366"]
    assert list(table["kind"])[2:] == ["MB>Middle", "Mars-Crosser"]
    assert table["number"][0] == "229762" and table["number"][2] == ""
    assert table["ra"][0] == pytest.approx(81.3031906)
    assert np.isfinite(table["V"]).all() and np.isfinite(table["dra_arcsec_h"]).all()


@pytest.mark.parametrize(
    "answer",
    [b"", b"<html><body>503 Service Unavailable</body></html>", b'<?xml version="1.0"?><VOTABLE><RES'],
)
def test_malformed_answers_are_clear_errors(answer: bytes) -> None:
    for service in (SimbadService(), VsxService(), SkybotService()):
        with pytest.raises(CatalogError, match="malformed"):
            service.parse(answer)


def test_colibri_request_keeps_the_key_out_of_the_cache() -> None:
    service = ColibriService(key="secret-uid")
    payload = service.payload(FieldQuery(83.63, 22.01, 0.5, epoch_jd=2460000.5))
    assert "secret-uid" not in repr(payload)
    body = service.request_body(payload)
    assert body["uid"] == "secret-uid"
    assert body["properties"] == {"type": "cone", "position": {"ra": 83.63, "dec": 22.01}, "radius": 0.5}
    assert body["time_range"]["max"].startswith("2023-02-25T00:00:00")
    with pytest.raises(CatalogError, match="needs a user id"):
        ColibriService().fetch(payload, 1.0)


@pytest.mark.skipif(
    not (RECORDED / "colibri_cone.json").is_file(),
    reason="no recorded Astro-Colibri answer yet: record one with tests/record_identify.py --colibri-key",
)
def test_colibri_recording_parses() -> None:  # pragma: no cover - needs a recording
    table = ColibriService().parse(raw("colibri_cone.json"))
    assert len(table) > 0 and set(table["kind"]) != {""}


# --- the lookup: cache, offline, expiry, failures --------------------------------------------


@dataclass
class Recorded:
    """A real service whose network fetch is replaced by a recorded answer (or a failure)."""

    real: Service
    answer: bytes | None
    calls: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.real.name

    @property
    def version(self) -> str:
        return self.real.version

    @property
    def per_epoch(self) -> bool:
        return self.real.per_epoch

    def payload(self, query: FieldQuery) -> dict[str, Any]:
        return self.real.payload(query)

    def fetch(self, payload: Mapping[str, Any], timeout_s: float) -> bytes:
        self.calls.append(payload)
        if self.answer is None:
            raise CatalogError("read timed out (20 s)")
        return self.answer

    def parse(self, raw: bytes) -> Table:
        return self.real.parse(raw)


FIELD = FieldQuery(135.6, 49.85, 0.3)


def lookup(
    tmp_path: Path, services: list[Any], *, offline: bool, sleeps: list[float] | None = None
) -> FieldLookup:
    return FieldLookup(
        IdentifyConfig(retries=1), tmp_path, offline=offline, services=services,
        sleep=(sleeps if sleeps is not None else []).append,
    )  # fmt: skip


def test_offline_without_cache_says_what_is_missing(tmp_path: Path, vsx_raw: bytes) -> None:
    vsx = Recorded(VsxService(), vsx_raw)
    found = lookup(tmp_path, [vsx], offline=True)
    assert found.answer("vsx", FIELD) is None
    assert vsx.calls == []
    assert found.outcomes["vsx"].status == "missed"
    assert "offline and not in the cache" in found.summary()[0]


def test_an_answer_is_cached_with_its_record_and_reused_offline(tmp_path: Path, vsx_raw: bytes) -> None:
    vsx = Recorded(VsxService(), vsx_raw)
    online = lookup(tmp_path, [vsx], offline=False)
    first = online.answer("vsx", FIELD)
    assert first is not None and len(first) == 39 and len(vsx.calls) == 1
    stored = AnswerCache(tmp_path).get("vsx", VsxService().payload(FIELD))
    assert stored is not None and stored.raw == vsx_raw
    assert stored.service_version == "VizieR B/vsx/vsx" and stored.query["catalog"] == "B/vsx/vsx"
    again = lookup(tmp_path, [Recorded(VsxService(), None)], offline=True)
    second = again.answer("vsx", FieldQuery(135.62, 49.86, 0.2))  # a smaller cone inside the first
    assert second is not None and list(second["name"]) == list(first["name"])
    assert again.outcomes["vsx"].describe() == "vsx: used (1 from cache)"
    assert again.answer("vsx", FieldQuery(136.5, 49.85, 0.3)) is None  # outside: not served


def test_old_answers_are_fetched_again_online_and_used_stale_offline(tmp_path: Path, vsx_raw: bytes) -> None:
    payload = VsxService().payload(FIELD)
    AnswerCache(tmp_path).put("vsx", payload, vsx_raw, service_version="old",
                              fetched=datetime.now(UTC) - timedelta(days=40))  # fmt: skip
    offline = lookup(tmp_path, [Recorded(VsxService(), None)], offline=True)
    assert offline.answer("vsx", FIELD) is not None
    assert offline.outcomes["vsx"].stale == 1
    vsx = Recorded(VsxService(), vsx_raw)
    online = lookup(tmp_path, [vsx], offline=False)
    assert online.answer("vsx", FIELD) is not None and len(vsx.calls) == 1
    assert AnswerCache(tmp_path).get("vsx", payload).service_version == "VizieR B/vsx/vsx"  # type: ignore[union-attr]


def test_a_timing_out_service_is_retried_then_skipped_for_the_night(tmp_path: Path, vsx_raw: bytes) -> None:
    skybot = Recorded(SkybotService(), None)
    vsx = Recorded(VsxService(), vsx_raw)
    sleeps: list[float] = []
    found = lookup(tmp_path, [skybot, vsx], offline=False, sleeps=sleeps)
    for k in range(5):
        assert found.answer("skybot", FieldQuery(81.28, 4.49, 0.2, epoch_jd=SKYBOT_EPOCH + k * 0.01)) is None
    assert len(skybot.calls) == 2 and sleeps == [1.0]  # one retry after 1 s, then marked down
    assert found.answer("vsx", FIELD) is not None  # the other services go on
    outcome = found.outcomes["skybot"]
    assert outcome.missed == 5 and "timed out" in outcome.describe()


def test_a_malformed_answer_is_not_cached(tmp_path: Path) -> None:
    vsx = Recorded(VsxService(), b"<html>maintenance</html>")
    found = lookup(tmp_path, [vsx], offline=False)
    assert found.answer("vsx", FIELD) is None
    assert "malformed" in found.summary()[0]
    assert AnswerCache(tmp_path).entries() == []


# --- matching --------------------------------------------------------------------------------


def test_match_keeps_the_nearest_and_counts_the_candidates() -> None:
    obj_ra = np.array([10.0, 10.0 + 1.0 / 3600, 10.1])
    obj_dec = np.array([20.0, 20.0, 20.0])
    found = match_sky(np.array([10.0 + 0.2 / 3600, 10.05]), np.array([20.0, 20.0]), obj_ra, obj_dec,
                      np.full(3, 2.0))  # fmt: skip
    assert list(found.index) == [0, -1]
    assert list(found.count) == [2, 0]
    assert found.separation[0] == pytest.approx(0.2 * np.cos(np.radians(20.0)), abs=1e-3)


def test_known_variables_of_a_real_field(eyuma: Table, vsx_raw: bytes) -> None:
    first = eyuma[eyuma["file"] == eyuma["file"][0]]
    stars = Table({"ra": np.asarray(first["RA"], float), "dec": np.asarray(first["Dec"], float),
                   "star_id": first["star_id"]})  # fmt: skip
    catalogue = annotate(
        stars, {"vsx": VsxService().parse(vsx_raw)}, epoch=2015.0, astrometric_err=0.5, floor=2.0
    )
    variables = known_variables(catalogue)
    assert len(variables) == 7
    ey = variables[variables["star_id"] == 19][0]
    assert ey["label"] == "VSX EY UMa (RRAB/BL)" and ey["vsx_sep"] < 1.0 and ey["vsx_n"] == 1
    assert (catalogue["vsx_name"] == "").sum() == 34


def test_proper_motion_moves_gaia_to_the_night() -> None:
    gaia = GaiaService().parse(raw("gaia_dr3_archive_two_sources.vot"))
    later = annotate(Table({"ra": gaia["ra"], "dec": gaia["dec"]}), {"gaia": gaia}, epoch=2036.0,
                     astrometric_err=0.0, floor=0.01)  # fmt: skip
    moved = np.hypot(gaia["pmra"], gaia["pmdec"]) * 20 / 1000  # arcsec in 20 years
    expect = np.where(moved < 0.03, 1, 0)  # positions of 2016 only match where the star barely moved
    assert list(later["gaia_n"]) == list(expect)


# --- solar-system bodies ----------------------------------------------------------------------


def test_skybot_epochs_sit_on_a_fixed_grid() -> None:
    jds = [2460677.5 + k * 2 / 1440 for k in range(30)]  # an hour, one frame per 2 minutes
    grid = epochs(jds, 10.0)
    assert len(grid) in (6, 7)
    assert epoch_of(jds[0], 10.0) == epoch_of(jds[0] + 1 / 1440, 10.0)
    assert len(epochs(jds, 0.0)) == 30


def test_bodies_are_found_on_the_frames_where_they_are(tmp_path: Path) -> None:
    answer = SkybotService().parse(raw("skybot_cone_81.28_4.49_2025-01-02.vot"))
    rng = np.random.default_rng(1)
    frames = []
    for k in range(6):
        jd = SKYBOT_EPOCH + (k - 3) * 5 / 1440
        ra, dec = move_to(answer, SKYBOT_EPOCH, jd)
        seen = np.arange(len(answer)) != (k % 4)  # each body missing from some frames
        stars_ra = 81.28 + rng.uniform(-0.2, 0.2, 200)
        stars_dec = 4.49 + rng.uniform(-0.2, 0.2, 200)
        src_ra = np.concatenate([stars_ra, ra[seen] + 0.3 / 3600])
        src_dec = np.concatenate([stars_dec, dec[seen]])
        frames.append(FrameSources(k, jd, src_ra, src_dec))

    def answer_at(jd: float) -> Table:  # what SkyBoT answers for another epoch: the bodies moved there
        moved = answer.copy()
        moved["ra"], moved["dec"] = move_to(answer, SKYBOT_EPOCH, jd)
        return moved

    per_frame = match_frames(frames, answer_at, 10.0, centre=(81.2833, 4.49278), radius_deg=0.25,
                             astrometric_err=0.3, floor=1.0)  # fmt: skip
    assert len(per_frame) == 6 * 4
    hits = per_frame[per_frame["source_index"] >= 0]
    assert len(hits) == 6 * 3
    assert np.all(hits["offset_arcsec"] == pytest.approx(0.3 * np.cos(np.radians(4.5)), abs=0.05))
    summary = bodies(per_frame)
    assert set(summary["n_frames"]) == {6} and sorted(summary["n_seen"]) == [4, 4, 5, 5]


# --- the whole identification of a night from the cache ------------------------------------


def eyuma_sky(eyuma: Table) -> NightSky:
    from nightpipe.identify.night_input import field_of

    frames = []
    for k, name in enumerate(np.unique(eyuma["file"])):
        part = eyuma[eyuma["file"] == name]
        jd = Time(str(part["date-obs"][0]), scale="utc").jd
        frames.append(FrameSources(k, jd, np.asarray(part["RA"], float), np.asarray(part["Dec"], float)))
    first = eyuma[eyuma["file"] == eyuma["file"][0]]
    reference = Table({"ra": np.asarray(first["RA"], float), "dec": np.asarray(first["Dec"], float)})
    centre, radius = field_of(np.asarray(eyuma["RA"], float), np.asarray(eyuma["Dec"], float))
    return NightSky(frames, reference, centre, radius + 2 / 60, float(np.mean([f.jd for f in frames])), 0.5)


def test_a_night_identified_from_the_cache_offline(tmp_path: Path, eyuma: Table, vsx_raw: bytes) -> None:
    sky = eyuma_sky(eyuma)
    settings = Settings().model_copy(update={})
    AnswerCache(tmp_path).put("vsx", VsxService().payload(FieldQuery(*sky.centre, 0.5)), vsx_raw,
                              service_version="VizieR B/vsx/vsx")  # fmt: skip
    found_lookup = FieldLookup(settings.identify, tmp_path, offline=True)
    found = identify_sky(sky, found_lookup, settings)
    assert len(found.variables) == 7
    assert "VSX EY UMa (RRAB/BL)" in set(found.variables["label"])
    assert found.services["vsx"]["status"] == "used"
    assert found.services["simbad"]["status"] == "missed" and found.services["skybot"]["missed"] > 0
    folder = tmp_path / "out" / "identify" / "2014-12-29"
    summary = write_products(found, folder, "2014-12-29", found_lookup.summary())
    assert summary["known_variables"] == 7
    assert len(Table.read(folder / "catalogue.ecsv")) == 41
    assert len(Table.read(folder / "variables.ecsv")) == 7
    assert (folder / "field_map.png").stat().st_size > 10_000
    page = identify_section(tmp_path / "out", "2014-12-29")
    assert "VSX EY UMa (RRAB/BL)" in page and "14.27-15.38 V" in page
    assert "vsx: used (1 from cache)" in page and "simbad: missed" in page
    assert "data:image/png;base64," in page


def test_identified_objects_are_rows_replaced_on_each_identification(
    db_url: str, tmp_path: Path, eyuma: Table, vsx_raw: bytes
) -> None:
    from sqlalchemy import func, select

    from nightpipe.identify.store_rows import store_identified
    from nightpipe.store import open_database
    from nightpipe.store.models_identify import FieldObject

    sky = eyuma_sky(eyuma)
    AnswerCache(tmp_path).put("vsx", VsxService().payload(FieldQuery(*sky.centre, 0.5)), vsx_raw,
                              service_version="VizieR B/vsx/vsx")  # fmt: skip
    found = identify_sky(sky, FieldLookup(Settings().identify, tmp_path, offline=True), Settings())
    db = open_database(db_url)
    try:
        for _ in range(2):  # a second identification replaces the night's rows
            with db.session() as session:
                written = store_identified(session, "2014-12-29", None, found)
        with db.session() as session:
            assert session.scalar(select(func.count()).select_from(FieldObject)) == written
            ey = session.scalars(select(FieldObject).where(FieldObject.name == "EY UMa")).all()
            assert {r.role for r in ey} == {"variable", "object"}
            variable = next(r for r in ey if r.role == "variable")
            assert variable.kind == "RRAB/BL" and variable.details is not None
            assert variable.details["vsx_range"] == "14.27-15.38 V" and variable.separation_arcsec < 1.0
    finally:
        db.dispose()


def test_comparison_stars_are_named_by_catalogue_or_coordinates(eyuma: Table, vsx_raw: bytes) -> None:
    from nightpipe.timeseries.star_names import catalogue_names, coordinate_name

    first = eyuma[eyuma["file"] == eyuma["file"][0]]
    stars = Table({"ra": np.asarray(first["RA"], float), "dec": np.asarray(first["Dec"], float)})
    catalogue = annotate(
        stars, {"vsx": VsxService().parse(vsx_raw)}, epoch=2015.0, astrometric_err=0.5, floor=2.0
    )
    ey = int(np.flatnonzero(catalogue["vsx_name"] == "EY UMa")[0])
    plain = int(np.flatnonzero(catalogue["vsx_name"] == "")[0])
    ra, dec = stars["ra"][[ey, plain]] + 0.3 / 3600, stars["dec"][[ey, plain]]
    names = catalogue_names(ra, dec, catalogue)
    assert names[0] == "EY UMa"
    assert names[1] == coordinate_name(ra[1], dec[1]) and names[1].startswith("J09")
    assert catalogue_names(ra, dec, None) == [coordinate_name(a, d) for a, d in zip(ra, dec, strict=True)]
