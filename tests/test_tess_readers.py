"""Reading TESS/Kepler/K2 pixel and light-curve files: real files, synthetic files, bad input."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from astropy.io import fits

from nightpipe.errors import FitsReadError, HeaderError
from nightpipe.tess.quality import BITMASKS, bitmask_value, describe_flags, good_cadences
from nightpipe.tess.readers import read_lightcurve_file, read_pixel_file
from nightpipe.tess.synthetic import InjectedTransit, write_synthetic_lightcurve, write_synthetic_tpf
from nightpipe.tess.times import TimeSystem, time_system_from_header

TESS_TPF = "tess-tpf/tess25155310-s01-first-cadences.fits.gz"
K2_IMAGE = "tess-tpf/ktwo201907706-c01-first-cadence.fits.gz"


def lightkurve() -> ModuleType:
    """lightkurve, the peer library used as an oracle (its import warns about optional extras)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("lightkurve")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- real TESS TPF


def test_real_tess_tpf_times_are_time_column_plus_bjdref(shared_data: Path) -> None:
    path = shared_data / TESS_TPF
    before = sha(path)
    tpf = read_pixel_file(path)
    assert sha(path) == before  # raw file untouched
    assert (tpf.kind, tpf.mission, tpf.target) == ("tpf", "TESS", "TIC 25155310")
    assert tpf.n_cadences == 5 and tpf.shape == (11, 11)
    with fits.open(path) as hdul:  # independent oracle: the raw column and keywords
        raw_time = np.array(hdul[1].data["TIME"], dtype=float)
        ref = hdul[1].header["BJDREFI"] + hdul[1].header["BJDREFF"]
        quality = np.array(hdul[1].data["QUALITY"])
    assert ref == 2457000
    np.testing.assert_array_equal(tpf.time_bjd, raw_time + ref)
    assert tpf.time_system.is_bjd_tdb and tpf.time_system.label == "BTJD"
    np.testing.assert_array_equal(tpf.quality, quality)
    assert tpf.quality[0] == 8  # the first cadence is flagged "Earth point"
    assert tpf.background_subtracted
    assert (tpf.column, tpf.row) == (1619, 389)


def test_real_tess_tpf_matches_lightkurve(shared_data: Path) -> None:
    lk = lightkurve()
    path = shared_data / TESS_TPF
    tpf = read_pixel_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = lk.read(str(path), quality_bitmask="none")
        peer_time = peer.time
        peer_flux = np.asarray(peer.flux.value)
        peer_mask = np.asarray(peer.pipeline_mask)
    assert peer_time.scale == "tdb"
    np.testing.assert_allclose(tpf.time_bjd, peer_time.jd, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(tpf.flux, peer_flux)
    assert tpf.pipeline_aperture is not None
    np.testing.assert_array_equal(tpf.pipeline_aperture, peer_mask)
    assert int(tpf.pipeline_aperture.sum()) == 9  # NPIXSAP of the APERTURE header


# --------------------------------------------------------------------------- real K2 image


def test_real_k2_single_cadence_image(shared_data: Path) -> None:
    path = shared_data / K2_IMAGE
    k2 = read_pixel_file(path)
    assert (k2.kind, k2.mission, k2.target) == ("image", "K2", "EPIC 201907706")
    assert k2.n_cadences == 1 and k2.shape == (14, 15)
    with fits.open(path) as hdul:
        header = hdul[1].header
        midtime = header["MIDTIME"]
        tstart, tstop, ref = header["TSTART"], header["TSTOP"], header["BJDREFI"]
    assert k2.time_system.label == "BKJD" and k2.time_system.offset == 2454833
    assert k2.time_bjd[0] == pytest.approx(midtime, abs=1e-9)
    assert tstart + ref < k2.time_bjd[0] < tstop + ref
    assert k2.quality[0] == 524288  # "possible thruster firing"
    assert describe_flags("K2", int(k2.quality[0])) == ["possible thruster firing"]
    # written by kepimages with imtype=FLUX_PLUS_BKG: the background is in the pixels
    assert not k2.background_subtracted
    assert k2.pipeline_aperture is None


# --------------------------------------------------------------------------- quality flags


def test_bitmasks_agree_with_lightkurve() -> None:
    lk = lightkurve()
    utils = lk.utils
    for ours, theirs in (("TESS", utils.TessQualityFlags), ("Kepler", utils.KeplerQualityFlags)):
        assert BITMASKS[ours]["default"] == theirs.DEFAULT_BITMASK
        assert BITMASKS[ours]["hard"] == theirs.HARD_BITMASK
        assert BITMASKS[ours]["hardest"] == theirs.HARDEST_BITMASK
    q = np.array([0, 8, 64, 8192])
    assert good_cadences(q, bitmask_value("TESS", "default")).tolist() == [True, False, True, True]
    assert good_cadences(q, bitmask_value("TESS", "hard")).tolist() == [True, False, False, True]
    assert good_cadences(q, 0).all()
    with pytest.raises(HeaderError, match="unknown quality bitmask"):
        bitmask_value("TESS", "strict")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- time systems


def test_time_system_keywords() -> None:
    h = fits.Header({"BJDREFI": 2454833, "BJDREFF": 0.5, "TIMEREF": "SOLARSYSTEM", "TIMESYS": "TDB"})
    ts = time_system_from_header(h, "Kepler")
    assert ts.offset == 2454833.5 and ts.is_bjd_tdb and ts.notes == ()
    local = time_system_from_header(
        fits.Header({"BJDREFI": 2457000, "TIMEREF": "LOCAL", "TIMESYS": "TDB"}), "TESS"
    )
    assert not local.is_bjd_tdb and "TIMEREF=LOCAL" in local.description
    assumed = time_system_from_header(fits.Header(), "TESS")
    assert assumed.offset == 2457000 and any("BJDREFI missing" in n for n in assumed.notes)
    with pytest.raises(HeaderError, match="BJDREFI"):
        time_system_from_header(fits.Header({"BJDREFI": "soon"}), "TESS", path="x.fits")
    with pytest.raises(HeaderError, match="unknown mission"):
        time_system_from_header(fits.Header(), "Gaia")
    assert TimeSystem(0.0, "TDB", "SOLARSYSTEM", "BJD").to_bjd(np.array([2.5e6]))[0] == 2.5e6
    start_stamped = time_system_from_header(
        fits.Header({"BJDREFI": 2457000, "TIMEPIXR": 0.0, "TIMEDEL": 0.02}), "TESS"
    )
    assert start_stamped.to_bjd(np.array([1.0]))[0] == pytest.approx(2457001.01, abs=1e-9)
    assert any("TIMEPIXR=0" in n for n in start_stamped.notes)


# --------------------------------------------------------------------------- synthetic files


def test_synthetic_tpf_round_trip_and_lightkurve_reads_it(tmp_path: Path) -> None:
    lk = lightkurve()
    transit = InjectedTransit(2458325.5, 3.0)
    path = tmp_path / "synthetic tpf.fits"  # a name with a space
    truth = write_synthetic_tpf(path, transit=transit, n_cadences=60, bad_cadences=(3,))
    tpf = read_pixel_file(path)
    np.testing.assert_allclose(tpf.time_bjd, truth.time_bjd, rtol=0, atol=1e-9)
    assert tpf.quality[3] == 32 and tpf.quality.sum() == 32
    assert tpf.pipeline_aperture is not None and truth.aperture is not None
    np.testing.assert_array_equal(tpf.pipeline_aperture, truth.aperture)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = lk.read(str(path), quality_bitmask="none")
    np.testing.assert_allclose(peer.time.jd, truth.time_bjd, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(np.asarray(peer.pipeline_mask), truth.aperture)


def test_synthetic_kepler_and_tesscut_files(tmp_path: Path) -> None:
    kep = read_pixel_file(write_synthetic_tpf(tmp_path / "k.fits", mission="K2", n_cadences=5).path)
    assert kep.mission == "K2" and kep.time_system.offset == 2454833 and kep.time_system.label == "BKJD"
    cut = read_pixel_file(write_synthetic_tpf(tmp_path / "c.fits", n_cadences=5, tesscut=True).path)
    assert cut.kind == "tesscut" and not cut.background_subtracted and cut.pipeline_aperture is None


def test_lightcurve_files_spoc_and_hlsp(tmp_path: Path) -> None:
    lk = lightkurve()
    transit = InjectedTransit(2458326.0, 2.5)
    spoc = write_synthetic_lightcurve(tmp_path / "lc.fits", transit=transit, days=3, bad_cadences=(5,))
    lc = read_lightcurve_file(spoc.path)
    assert lc.flux_column == "PDCSAP_FLUX" and lc.mission == "TESS"
    np.testing.assert_allclose(lc.time_bjd, spoc.time_bjd, rtol=0, atol=1e-9)
    assert lc.quality[5] == 32 and "SAP_FLUX" in lc.columns and "MOM_CENTR1" in lc.columns
    sap = read_lightcurve_file(spoc.path, flux_column="sap_flux")
    assert sap.flux_column == "SAP_FLUX" and not np.allclose(sap.flux, lc.flux)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = lk.read(str(spoc.path), quality_bitmask="none")
    np.testing.assert_allclose(np.asarray(peer.flux.value), lc.flux, rtol=1e-6)
    np.testing.assert_allclose(peer.time.jd, lc.time_bjd, rtol=0, atol=1e-9)
    qlp = read_lightcurve_file(write_synthetic_lightcurve(tmp_path / "q.fits", hlsp=True, days=1).path)
    assert qlp.flux_column == "KSPSAP_FLUX" and np.isfinite(qlp.flux_err).all()
    with pytest.raises(FitsReadError, match="no column 'NOPE'"):
        read_lightcurve_file(spoc.path, flux_column="NOPE")
    with pytest.raises(FitsReadError, match="light-curve file, not a pixel file"):
        read_pixel_file(spoc.path)


# --------------------------------------------------------------------------- bad input


def test_bad_files_give_typed_errors_naming_the_file(tmp_path: Path, shared_data: Path) -> None:
    text = tmp_path / "notes.fits"
    text.write_text("not a FITS file at all\n" * 200)
    with pytest.raises(FitsReadError, match="notes.fits"):
        read_pixel_file(text)
    with pytest.raises(FitsReadError, match="file not found"):
        read_pixel_file(tmp_path / "missing.fits")
    raw = gzip.decompress((shared_data / TESS_TPF).read_bytes())
    truncated = tmp_path / "truncated tpf.fits"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FitsReadError, match="truncated tpf.fits"):
        read_pixel_file(truncated)
    nomission = tmp_path / "plain.fits"
    fits.HDUList([fits.PrimaryHDU(np.zeros((4, 4), np.float32))]).writeto(nomission)
    with pytest.raises(HeaderError, match="cannot tell the mission"):
        read_pixel_file(nomission)
    table_only = tmp_path / "table.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("A", "D", array=[1.0])])]
    ).writeto(table_only)
    with pytest.raises(FitsReadError, match="no pixel table"):
        read_pixel_file(table_only)
    copy = tmp_path / "copy with space.fits.gz"
    shutil.copy(shared_data / TESS_TPF, copy)
    assert read_pixel_file(copy).n_cadences == 5


def test_k2sff_like_hlsp_without_errors_or_reference(tmp_path: Path) -> None:
    """A K2SFF-style table: columns T (BKJD), FRAW, FCOR; no errors, no quality, no BJDREFI."""
    t = np.linspace(2000.0, 2001.0, 50)
    table = fits.BinTableHDU.from_columns(
        [fits.Column("T", "D", array=t), fits.Column("FRAW", "D", array=np.full(50, 2.0)),
         fits.Column("FCOR", "D", array=np.ones(50))],
        name="BESTAPER",
    )  # fmt: skip
    primary = fits.PrimaryHDU()
    primary.header["TELESCOP"] = "Kepler"
    primary.header["MISSION"] = "K2"
    primary.header["OBJECT"] = "EPIC 1"
    path = tmp_path / "hlsp_k2sff.fits"
    fits.HDUList([primary, table]).writeto(path)
    lc = read_lightcurve_file(path)
    assert lc.flux_column == "FCOR" and np.isnan(lc.flux_err).all() and (lc.quality == 0).all()
    assert lc.time_system.offset == 2454833 and any("BJDREFI missing" in n for n in lc.time_system.notes)
    np.testing.assert_allclose(lc.time_bjd, t + 2454833)
    assert read_lightcurve_file(path, flux_column="FRAW").flux[0] == 2.0
