"""The catalogue layer: parsers on recorded VizieR answers, cache, offline mode, fall-backs, retries."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.table import Table

from nightpipe.catalogs import vizier
from nightpipe.catalogs.propermotion import at_epoch, propagate
from nightpipe.catalogs.service import ReferenceCatalogs
from nightpipe.config import CatalogConfig
from nightpipe.errors import CatalogError


@pytest.fixture(scope="module")
def apass_answer(shared_data: Path) -> Table:
    return Table.read(shared_data / "stellarphot-eyuma" / "all_apass_ey_uma.ecsv")


@pytest.fixture(scope="module")
def refcat_answer(shared_data: Path) -> Table:
    return Table.read(shared_data / "stellarphot-eyuma" / "all_refcat2_ey_uma.ecsv")


def test_parse_recorded_apass(apass_answer: Table) -> None:
    table = vizier.parse(vizier.SPECS["apass"], apass_answer)
    assert len(table) == len(apass_answer) == 54
    assert {"ra", "dec", "V", "e_V", "B", "r", "i"} <= set(table.colnames)
    np.testing.assert_allclose(table["ra"], apass_answer["RAJ2000"])
    np.testing.assert_allclose(
        np.nan_to_num(table["V"]), np.nan_to_num(np.ma.filled(apass_answer["Vmag"], np.nan))
    )
    assert table.meta["catalog"] == "apass"


def test_parse_recorded_refcat2(refcat_answer: Table) -> None:
    table = vizier.parse(vizier.SPECS["refcat2"], refcat_answer)
    assert len(table) == 187
    assert {"G", "BP", "RP", "r", "pmra", "pmdec"} <= set(table.colnames)
    assert table.meta["epoch"] == 2015.5
    assert np.isfinite(table["pmra"]).sum() > 100


def test_parse_rejects_wrong_layout() -> None:
    with pytest.raises(CatalogError, match="no position columns"):
        vizier.parse(vizier.SPECS["gaia"], Table({"x": [1.0]}))


def test_proper_motion_moves_positions() -> None:
    ra, dec = propagate(np.array([10.0]), np.array([60.0]), np.array([1000.0]), np.array([-2000.0]), 10.0)
    assert dec[0] == pytest.approx(60.0 - 20.0 / 3600)
    assert ra[0] == pytest.approx(10.0 + 10.0 / 3600 / 0.5)
    t = Table({"ra": [1.0], "dec": [2.0], "pmra": [np.nan], "pmdec": [np.nan]}, meta={"epoch": 2016.0})
    assert at_epoch(t, 2020.0)["ra"][0] == 1.0  # unknown proper motion: unchanged


class FakeVizier:
    """Answers from recorded tables; counts calls; can fail a number of times."""

    def __init__(self, answers: Mapping[str, Table], failures: int = 0) -> None:
        self.answers = answers
        self.failures = failures
        self.calls: list[dict[str, Any]] = []

    def __call__(self, spec: vizier.VizierSpec, payload: Mapping[str, Any]) -> Table:
        self.calls.append(dict(payload))
        if self.failures:
            self.failures -= 1
            raise CatalogError("HTTP 503 from VizieR")
        if spec.name not in self.answers:
            raise CatalogError(f"{spec.name} is down")
        return vizier.parse(spec, self.answers[spec.name])


def test_cache_makes_second_query_offline(tmp_path: Path, apass_answer: Table) -> None:
    fake = FakeVizier({"apass": apass_answer})
    cats = ReferenceCatalogs(CatalogConfig(order=("apass",)), tmp_path, fetcher=fake, sleep=lambda s: None)
    first = cats.cone(135.6, 49.8, 0.2, mag_limit=16)
    offline = ReferenceCatalogs(
        CatalogConfig(order=("apass",), offline=True), tmp_path, fetcher=FakeVizier({}), sleep=lambda s: None
    )
    second = offline.cone(135.6, 49.8, 0.2, mag_limit=16)
    assert len(fake.calls) == 1
    assert len(first) == len(second) == 54
    np.testing.assert_allclose(first["ra"], second["ra"])
    assert fake.calls[0]["column_filters"] == {"Vmag": "<16"}


def test_offline_without_cache_falls_back_then_fails(tmp_path: Path, apass_answer: Table) -> None:
    config = CatalogConfig(order=("gaia", "apass"), offline=True)
    cats = ReferenceCatalogs(config, tmp_path, fetcher=FakeVizier({}), sleep=lambda s: None)
    with pytest.raises(CatalogError, match=r"gaia: .*offline.*apass: .*offline"):
        cats.cone(135.6, 49.8, 0.2)
    local = ReferenceCatalogs(
        config,
        tmp_path,
        fetcher=FakeVizier({}),
        sleep=lambda s: None,
        local={"gaia": lambda ra, dec, r, m: vizier.parse(vizier.SPECS["apass"], apass_answer)},
    )
    assert len(local.cone(135.6, 49.8, 0.2)) == 54


def test_falls_back_to_next_catalogue_and_retries(tmp_path: Path, apass_answer: Table) -> None:
    sleeps: list[float] = []
    fake = FakeVizier({"apass": apass_answer}, failures=2)
    cats = ReferenceCatalogs(
        CatalogConfig(order=("apass",), retries=3), tmp_path, fetcher=fake, sleep=sleeps.append
    )
    assert len(cats.cone(135.6, 49.8, 0.2)) == 54
    assert sleeps == [1.0, 2.0]  # exponential back-off
    down = FakeVizier({"apass": apass_answer})
    cats = ReferenceCatalogs(
        CatalogConfig(order=("gaia", "apass"), retries=0), tmp_path / "b", fetcher=down, sleep=lambda s: None
    )
    assert cats.cone(135.6, 49.8, 0.2).meta["catalog"] == "apass"
    assert [c["catalog"] for c in down.calls] == ["gaia", "apass"]
