"""Archives of a night (ZIP, tar.gz/bz2/xz): members checked one by one, dangerous ones refused,
non-FITS ones skipped, the whole archive refused (and nothing left) for too many members, a size
over the quota, a zip bomb or damage."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from nightpipe.cli.app import main
from nightpipe.simulate import Truth
from nightpipe.web.uploads import Accepted, Rejected, Skipped, UploadRejected, extract_archive
from upload_helpers import MB, all_files, big_fits, hatp, limits, lying_zip, zip_of


@pytest.fixture(scope="module")
def small_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated night (``nightpipe simulate``): 3 lights, 2 biases, 1 dark, 1 flat."""
    night = tmp_path_factory.mktemp("night") / "raw"
    args = ["-q", "simulate", str(night), "--size", "48", "--lights", "3", "--bias", "2", "--darks", "1"]
    assert main([*args, "--flats", "1", "--seed", "3"]) == 0
    return night


def kinds(outcomes: list) -> list[str]:
    return [type(o).__name__ for o in outcomes]


def test_a_zip_of_the_simulated_night(small_night: Path, tmp_path: Path) -> None:
    truth = Truth.load(small_night / "truth.json")
    members: dict[str, bytes | Path] = {
        f"night/raw/{f['file']}": small_night / f["file"] for f in truth.frames
    }
    members["night/truth.json"] = (small_night / "truth.json").read_bytes()
    archive = zip_of(members, tmp_path / "night.zip")
    dest = tmp_path / "uploads"
    dest.mkdir()
    outcomes = extract_archive(archive, dest, limits())
    accepted = [o for o in outcomes if isinstance(o, Accepted)]
    assert len(accepted) == len(truth.frames) >= 3 + 2 + 1 + 1
    assert {a.name for a in accepted} == {f["file"] for f in truth.frames}  # flattened
    assert sorted(a.summary.kind for a in accepted) == sorted(f["kind"] for f in truth.frames)
    assert all(a.path == dest / a.name and a.size == a.path.stat().st_size for a in accepted)
    assert [o for o in outcomes if isinstance(o, Skipped)] == [
        Skipped(
            "night.zip: night/truth.json",
            "not a FITS file name (.fits, .fit, .fts, .fz, .fits.gz), left out",
        )
    ]
    assert all_files(dest) == {f["file"] for f in truth.frames}  # no temporary file left


def test_a_mixed_zip_three_good_one_bad(shared_data: Path, tmp_path: Path) -> None:
    archive = zip_of(
        {
            "night/a/HATP-1.FITS": hatp(shared_data, 0),
            "night/b/HATP-2.FITS": hatp(shared_data, 1),
            "night/deep/er/folder/HATP-3.FITS": hatp(shared_data, 2),
            "night/broken.fits": b"this is a text file with a FITS name\n" * 10,
            "night/README.txt": b"HAT-P-32, 2017-12-20\n",
            "night/.DS_Store": b"\x00\x00\x00\x01Bud1",
            "__MACOSX/night/._HATP-1.FITS": b"\x00\x05\x16\x07",
        },
        tmp_path / "mixed.zip",
    )
    dest = tmp_path / "uploads"
    outcomes = extract_archive(archive, dest, limits())
    assert kinds(outcomes) == ["Accepted"] * 3 + ["Rejected"] + ["Skipped"] * 3
    assert [o.name for o in outcomes[:3]] == ["HATP-1.FITS", "HATP-2.FITS", "HATP-3.FITS"]
    bad = outcomes[3]
    assert isinstance(bad, Rejected) and bad.name == "mixed.zip: night/broken.fits"
    assert "not a FITS file" in bad.reason
    reasons = [o.reason for o in outcomes[4:]]
    assert "not a FITS file name" in reasons[0] and "hidden file" in reasons[1] and "__MACOSX" in reasons[2]
    assert all_files(dest) == {"HATP-1.FITS", "HATP-2.FITS", "HATP-3.FITS"}


def test_same_names_in_two_folders_get_unique_names(shared_data: Path, tmp_path: Path) -> None:
    one, two = hatp(shared_data, 0), hatp(shared_data, 1)
    members: dict[str, bytes | Path] = {"a/frame.fits": one, "b/frame.fits": two}
    archive = zip_of(members, tmp_path / "z.zip")
    dest = tmp_path / "uploads"
    dest.mkdir()
    (dest / "frame.fits").write_bytes(b"an earlier upload")
    outcomes = extract_archive(archive, dest, limits())
    assert [o.name for o in outcomes] == ["frame-2.fits", "frame-3.fits"]
    assert (dest / "frame.fits").read_bytes() == b"an earlier upload"


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ("../evil.fits", "climbs out of the archive with '..'"),
        ("night/../../evil.fits", "climbs out"),
        ("..\\evil.fits", "climbs out"),
        ("/tmp/evil.fits", "absolute path"),
        ("\\evil.fits", "absolute path"),
        ("C:/evil.fits", "drive letter"),
    ],
)
def test_dangerous_zip_members_are_refused(
    shared_data: Path, tmp_path: Path, member: str, reason: str
) -> None:
    archive = zip_of({member: hatp(shared_data)}, tmp_path / "evil.zip")
    dest = tmp_path / "box" / "uploads"
    dest.mkdir(parents=True)
    outcomes = extract_archive(archive, dest, limits())
    assert len(outcomes) == 1 and isinstance(outcomes[0], Rejected)
    assert outcomes[0].name == f"evil.zip: {member}" and reason in outcomes[0].reason
    assert all_files(tmp_path / "box") == set()
    assert not Path("/tmp/evil.fits").exists()


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as archive:  # type: ignore[call-overload]
        for info, data in members:
            if data is not None:
                info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _info(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz", "w"])
def test_tar_links_devices_and_traversal_are_refused(shared_data: Path, tmp_path: Path, mode: str) -> None:
    frame = hatp(shared_data).read_bytes()
    suffix = {"w:gz": ".tar.gz", "w:bz2": ".tar.bz2", "w:xz": ".tar.xz", "w": ".tar"}[mode]
    archive = _tar(
        tmp_path / f"night{suffix}",
        [
            (_info("night", tarfile.DIRTYPE), None),
            (_info("night/good.fits"), frame),
            (_info("night/link.fits", tarfile.SYMTYPE, "/etc/passwd"), None),
            (_info("night/hard.fits", tarfile.LNKTYPE, "night/good.fits"), None),
            (_info("night/dev.fits", tarfile.CHRTYPE), None),
            (_info("night/fifo.fits", tarfile.FIFOTYPE), None),
            (_info("../evil.fits"), frame),
            (_info("/abs.fits"), frame),
        ],
        mode,
    )
    dest = tmp_path / "uploads"
    outcomes = extract_archive(archive, dest, limits())
    assert kinds(outcomes) == ["Accepted"] + ["Rejected"] * 6
    reasons = [o.reason for o in outcomes[1:]]
    assert all("it is a link" in r for r in reasons[:2])
    assert all("device or special file" in r for r in reasons[2:4])
    assert "climbs out" in reasons[4] and "absolute path" in reasons[5]
    assert all_files(dest) == {"good.fits"}


def test_a_zip_bomb_with_lying_sizes_is_refused(tmp_path: Path) -> None:
    real = big_fits(tmp_path / "big.fits", 30 * MB).read_bytes()  # deflates to a few kB
    archive = lying_zip(tmp_path / "bomb.zip", real, declared=2880 * 3)
    assert archive.stat().st_size < MB
    dest = tmp_path / "uploads"
    outcomes = extract_archive(archive, dest, limits(max_file=MB, quota=4 * MB))
    assert len(outcomes) == 1 and isinstance(outcomes[0], Rejected)
    assert "does not match the archive's records" in outcomes[0].reason  # unpacked bytes != declared
    assert all_files(dest) == set()


def test_an_archive_larger_than_the_quota_is_refused_whole(shared_data: Path, tmp_path: Path) -> None:
    members = {f"f{i}.fits": hatp(shared_data, i % 3) for i in range(8)}  # 8 x 641 kB declared
    archive = zip_of(members, tmp_path / "big.zip")
    dest = tmp_path / "uploads"
    with pytest.raises(UploadRejected, match=r"unpacks to more than the 4\.0 MB left in your quota") as info:
        extract_archive(archive, dest, limits(quota=4 * MB))
    assert info.value.name == "big.zip"
    tar = _tar(tmp_path / "big.tar.gz", [(_info(name), path.read_bytes()) for name, path in members.items()])
    with pytest.raises(UploadRejected, match="left in your quota"):
        extract_archive(tar, dest, limits(quota=4 * MB))  # refused at member 7: the first 6 are removed
    assert all_files(dest) == set()


def test_too_many_members_are_refused(shared_data: Path, tmp_path: Path) -> None:
    tiny = (shared_data / "feder-apogee" / "uint16.fit").read_bytes()  # 5760 bytes
    zipped = zip_of({f"m{i}.fit": tiny for i in range(60)}, tmp_path / "many.zip")
    dest = tmp_path / "uploads"
    with pytest.raises(UploadRejected, match="holds more than 50 members"):
        extract_archive(zipped, dest, limits(members=50))
    tar = _tar(tmp_path / "many.tar.bz2", [(_info(f"m{i}.fit"), tiny) for i in range(60)], "w:bz2")
    with pytest.raises(UploadRejected, match="holds more than 50 members; nothing of it was stored"):
        extract_archive(tar, dest, limits(members=50))  # 50 were stored before the 51st: all removed
    assert all_files(dest) == set()
    assert len([o for o in extract_archive(tar, dest, limits(members=60)) if isinstance(o, Accepted)]) == 60


def test_damaged_archives_are_refused(shared_data: Path, tmp_path: Path) -> None:
    archive = zip_of({f"f{i}.fits": hatp(shared_data, i) for i in range(3)}, tmp_path / "night.zip")
    cut = tmp_path / "cut.zip"
    cut.write_bytes(archive.read_bytes()[:-2000])  # the central directory is gone
    dest = tmp_path / "uploads"
    with pytest.raises(UploadRejected, match="not a ZIP archive, or it is damaged or cut off"):
        extract_archive(cut, dest, limits())
    frames = [(_info(f"f{i}.fits"), hatp(shared_data, i).read_bytes()) for i in range(3)]
    tar = _tar(tmp_path / "night.tar.gz", frames)
    cut_tar = tmp_path / "cut.tar.gz"
    cut_tar.write_bytes(tar.read_bytes()[: tar.stat().st_size * 2 // 3])
    with pytest.raises(UploadRejected, match="not a tar archive, or it is damaged or cut off"):
        extract_archive(cut_tar, dest, limits())
    text = tmp_path / "notes.zip"
    text.write_text("not an archive")
    with pytest.raises(UploadRejected, match="not a ZIP archive"):
        extract_archive(text, dest, limits())
    assert all_files(dest) == set()


def test_an_oversized_member_is_left_out(shared_data: Path, tmp_path: Path) -> None:
    archive = zip_of(
        {"small.fit": shared_data / "feder-apogee" / "uint16.fit", "large.fits": hatp(shared_data)},
        tmp_path / "night.zip",
    )
    dest = tmp_path / "uploads"
    outcomes = extract_archive(archive, dest, limits(max_file=100 * 1024))
    assert kinds(outcomes) == ["Accepted", "Rejected"]
    assert outcomes[1].reason == "it is 641 KB, more than the limit of 100 KB per file; it was left out"
    assert all_files(dest) == {"small.fit"}


def test_symlinks_in_a_zip_are_refused(shared_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "links.zip"
    with zipfile.ZipFile(path, "w") as archive:
        link = zipfile.ZipInfo("night/link.fits")
        link.create_system = 3
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
        archive.writestr("night/good.fits", hatp(shared_data).read_bytes())
    outcomes = extract_archive(path, tmp_path / "uploads", limits())
    assert kinds(outcomes) == ["Rejected", "Accepted"] and "it is a link" in outcomes[0].reason
