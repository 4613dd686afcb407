"""Downloading by target name (online only): the wrapper, tested with stand-ins for MAST."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nightpipe.cli.app import main
from nightpipe.errors import CatalogError
from nightpipe.tess.download import download_products


class FakeProduct:
    def __init__(self, path: Path) -> None:
        self.path = str(path)


class FakeResult:
    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.download_kwargs: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def download_all(self, **kwargs: Any) -> list[FakeProduct]:
        self.download_kwargs = kwargs
        return [FakeProduct(p) for p in self.paths]


def test_download_returns_the_files_and_passes_the_choices(tmp_path: Path) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    result = FakeResult([tmp_path / "a_lc.fits", tmp_path / "b_lc.fits"])

    def search(target: str, **kwargs: Any) -> FakeResult:
        calls.append((target, kwargs))
        return result

    paths = download_products("WASP-126", tmp_path / "cache", sector=1, search=search)
    assert paths == [tmp_path / "a_lc.fits", tmp_path / "b_lc.fits"]
    assert calls == [("WASP-126", {"sector": 1, "author": "SPOC"})]
    assert result.download_kwargs["download_dir"] == str(tmp_path / "cache")
    download_products("WASP-126", tmp_path / "cache", product="tesscut", cutout_size=15, search=search)
    assert calls[-1] == ("WASP-126", {}) and result.download_kwargs["cutout_size"] == 15


def test_download_failures_are_catalog_errors(tmp_path: Path) -> None:
    def offline(target: str, **kwargs: Any) -> FakeResult:
        raise ConnectionError("Name or service not known")

    with pytest.raises(CatalogError, match="needs the network"):
        download_products("WASP-126", tmp_path, search=offline)
    with pytest.raises(CatalogError, match="MAST has no lc files for 'Nobody' in sector 3"):
        download_products("Nobody", tmp_path, sector=3, search=lambda target, **kw: FakeResult([]))


def test_cli_without_files_or_download_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["--set", f"database.url=sqlite:///{tmp_path / 'db.sqlite'}", "tess"]) == 2
