"""The streaming multipart receiver, through a tiny FastAPI app: files go to temporary files as they
arrive, parts over the per-file limit or the quota are stopped (the others still received), bad
files refused by accept_received, and nothing is ever left in the temporary folder."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path
from typing import Any

import httpx2 as httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from nightpipe.web.uploads import UploadLimits, UploadRejected
from nightpipe.web.uploads.stream import accept_received, receive_multipart
from upload_helpers import MB, all_files, big_fits, hatp, limits, zip_of

BOUNDARY = "----nightpipe-test-boundary"


def make_app(root: Path, lim: UploadLimits) -> FastAPI:
    app = FastAPI()

    @app.post("/upload")
    async def upload(request: Request) -> JSONResponse:
        try:
            form = await receive_multipart(request, root / "tmp", lim)
        except UploadRejected as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        received = [{"name": r.name, "size": r.size, "rejected": r.rejected} for r in form.files]
        outcomes = accept_received(form, root / "uploads", lim)
        shown = [{"type": type(o).__name__, "name": o.name, "reason": getattr(o, "reason", None)}
                 for o in outcomes]  # fmt: skip
        return JSONResponse({"fields": form.fields, "received": received, "outcomes": shown})

    return app


def post(root: Path, lim: UploadLimits, **kwargs: Any) -> httpx.Response:
    with TestClient(make_app(root, lim)) as client:
        return client.post("/upload", **kwargs)


def body(*parts: tuple[str, str | None, bytes], close: bool = True) -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        disposition += f'; filename="{filename}"' if filename is not None else ""
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + data + b"\r\n"
    return out + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


HEADERS = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}


def test_frames_and_fields_are_received(shared_data: Path, tmp_path: Path) -> None:
    files = [
        ("files", ("HATP-1.FITS", hatp(shared_data, 0).read_bytes())),
        ("files", ("notes.fits", b"not FITS at all\n" * 100)),
        ("files", ("../../HATP-2.FITS", hatp(shared_data, 1).read_bytes())),
    ]
    answer = post(tmp_path, limits(), files=files, data={"csrf_token": "t0ken", "note": "night 1"}).json()
    assert answer["fields"] == {"csrf_token": "t0ken", "note": "night 1"}
    assert [r["size"] for r in answer["received"]] == [656640, 1600, 656640]
    assert [(o["type"], o["name"]) for o in answer["outcomes"]] == [
        ("Accepted", "HATP-1.FITS"),
        ("Rejected", "notes.fits"),
        ("Accepted", "HATP-2.FITS"),
    ]
    assert "not a FITS file" in answer["outcomes"][1]["reason"]
    assert all_files(tmp_path) == {"uploads/HATP-1.FITS", "uploads/HATP-2.FITS"}
    assert (tmp_path / "uploads" / "HATP-1.FITS").read_bytes() == hatp(shared_data, 0).read_bytes()


def test_an_oversized_part_is_stopped_and_the_next_still_received(shared_data: Path, tmp_path: Path) -> None:
    dark = shared_data / "guilford-sbig-darks" / "Screen Center_Dark_20180619_00000161.fits"  # 1.8 MB
    files = [
        ("files", ("a.fits", hatp(shared_data, 0).read_bytes())),
        ("files", (dark.name, dark.read_bytes())),
        ("files", ("b.fits", hatp(shared_data, 1).read_bytes())),
    ]
    answer = post(tmp_path, limits(max_file=1200 * 1024), files=files).json()
    assert [o["type"] for o in answer["outcomes"]] == ["Accepted", "Rejected", "Accepted"]
    assert answer["outcomes"][1] == {
        "type": "Rejected",
        "name": dark.name,
        "reason": "it is larger than the limit of 1.2 MB per file; it was not stored",
    }
    assert all_files(tmp_path) == {"uploads/a.fits", "uploads/b.fits"}


def test_a_huge_part_stops_the_reading(shared_data: Path, tmp_path: Path) -> None:
    files = [
        ("files", ("NOT.fits", (shared_data / "eso-midas" / "NOT.fits").read_bytes())),  # 17 MB
        ("files", ("b.fits", hatp(shared_data, 1).read_bytes())),
    ]
    answer = post(tmp_path, limits(max_file=MB), files=files).json()
    assert [(o["type"], o["name"]) for o in answer["outcomes"]] == [("Rejected", "NOT.fits")]
    assert "larger than the limit of 1.0 MB per file" in answer["outcomes"][0]["reason"]
    assert all_files(tmp_path) == set()


def test_parts_past_the_quota_are_refused(shared_data: Path, tmp_path: Path) -> None:
    files = [("files", (f"f{i}.fits", hatp(shared_data, i).read_bytes())) for i in range(3)]
    answer = post(tmp_path, limits(quota=MB), files=files).json()
    assert [o["type"] for o in answer["outcomes"]] == ["Accepted", "Rejected", "Rejected"]
    assert answer["outcomes"][1]["reason"] == (
        "it does not fit in the 383 KB left in your quota; it was not stored (delete old uploads first)"
    )
    assert all_files(tmp_path) == {"uploads/f0.fits"}


def test_an_archive_is_unpacked_and_its_bad_members_refused(shared_data: Path, tmp_path: Path) -> None:
    archive = zip_of(
        {"night/raw/good.fits": hatp(shared_data), "../evil.fits": hatp(shared_data, 1)}, tmp_path / "n.zip"
    )
    root = tmp_path / "user"
    answer = post(root, limits(), files=[("files", ("night.zip", archive.read_bytes()))]).json()
    assert [(o["type"], o["name"]) for o in answer["outcomes"]] == [
        ("Accepted", "good.fits"),
        ("Rejected", "night.zip: ../evil.fits"),
    ]
    assert all_files(root) == {"uploads/good.fits"}
    assert not (tmp_path / "evil.fits").exists()


def test_a_body_cut_off_leaves_nothing(shared_data: Path, tmp_path: Path) -> None:
    data = body(("csrf_token", None, b"x"), ("files", "a.fits", hatp(shared_data).read_bytes()), close=False)
    answer = post(tmp_path, limits(), content=data[:-300_000], headers=HEADERS).json()
    assert answer["outcomes"] == [
        {
            "type": "Rejected",
            "name": "a.fits",
            "reason": "the upload ended before this file was complete; send it again",
        }
    ]
    assert all_files(tmp_path) == set()


def test_an_empty_file_input_is_ignored(tmp_path: Path) -> None:
    data = body(("csrf_token", None, b"x"), ("files", "", b""))
    answer = post(tmp_path, limits(), content=data, headers=HEADERS).json()
    assert answer == {"fields": {"csrf_token": "x"}, "received": [], "outcomes": []}
    assert all_files(tmp_path) == set()


def test_requests_that_are_not_uploads_are_refused(tmp_path: Path) -> None:
    response = post(tmp_path, limits(), data={"csrf_token": "x"})  # urlencoded
    assert response.status_code == 400
    assert "not a multipart/form-data upload" in response.json()["error"]
    many = body(*[(f"f{i}", None, b"v") for i in range(101)], ("files", "a.fits", b"SIMPLE  ="))
    response = post(tmp_path, limits(), content=many, headers=HEADERS)
    assert response.status_code == 400 and "more than 100 fields" in response.json()["error"]
    long = body(("files", "a.fits", b"SIMPLE  =" * 1000), ("csrf_token", None, b"x" * 70_000))
    response = post(tmp_path, limits(), content=long, headers=HEADERS)
    assert response.status_code == 400 and "'csrf_token' is too long" in response.json()["error"]
    assert all_files(tmp_path) == set()  # the file part before the refused field is removed too


def test_a_30_mb_upload_is_streamed_not_held_in_memory(tmp_path: Path) -> None:
    """httpx's ASGI transport streams the request body to the app in 64 kB chunks (the TestClient
    would read it whole first), so tracemalloc sees what the receiver itself holds."""
    big = big_fits(tmp_path / "big.fits", 30 * MB)
    root = tmp_path / "user"
    app = make_app(root, limits(max_file=64 * MB))

    async def upload() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            with big.open("rb") as handle:
                files = {"files": ("big.fits", handle)}
                return await client.post("/upload", files=files, data={"csrf_token": "x"})

    tracemalloc.start()
    try:
        response = asyncio.run(upload())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    outcomes = response.json()["outcomes"]
    assert [o["type"] for o in outcomes] == ["Accepted"]
    assert (root / "uploads" / "big.fits").stat().st_size == big.stat().st_size > 30 * MB
    assert peak < 4 * MB, f"peak Python memory {peak / MB:.1f} MB for a 30 MB upload"
    assert all_files(root) == {"uploads/big.fits"}


def test_accept_received_shares_the_quota_between_files(shared_data: Path, tmp_path: Path) -> None:
    tiny = shared_data / "feder-apogee" / "uint16.fit"  # 5760 bytes, a few hundred zipped
    archive = zip_of({f"m{i}.fit": tiny for i in range(20)}, tmp_path / "tiny.zip")
    assert archive.stat().st_size < 40 * 1024
    frame = hatp(shared_data).read_bytes()
    files = [("files", ("one.fits", frame)), ("files", ("tiny.zip", archive.read_bytes()))]
    answer = post(tmp_path / "u", limits(quota=700 * 1024), files=files).json()  # the zip fits, not unpacked
    assert [o["type"] for o in answer["outcomes"]] == ["Accepted", "Rejected"]
    assert answer["outcomes"][1]["name"] == "tiny.zip"
    assert "unpacks to more than the 58.8 KB left in your quota" in answer["outcomes"][1]["reason"]
    assert all_files(tmp_path / "u") == {"uploads/one.fits"}
