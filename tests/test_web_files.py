"""The Files pages and the files API: uploads stored as the caller's Upload rows, refused files with
their reasons, the quota, deletes, and another user's files answering 404 (real SQLite in tmp)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from nightpipe.web.accounts import create_user, new_api_token
from nightpipe.web.models import Upload, User
from nightpipe.web.paths import UserPaths
from upload_helpers import all_files, hatp, zip_of
from web_helpers import PASSWORD, client, csrf_of, log_in, make_app, register


@pytest.fixture
def app(tmp_path: Path):
    return make_app(tmp_path, "web.quota_mb=4", "web.max_file_mb=1.5")


def uploads_dir(app, name: str) -> Path:
    with app.state.ctx.db.session() as session:
        user_id = session.scalar(select(User.id).where(User.name == name))
    return UserPaths(app.state.ctx.data_dir, user_id).uploads


def test_upload_page_accepts_and_refuses_per_file(app, shared_data: Path, tmp_path: Path) -> None:
    browser = client(app)
    csrf = register(browser, "ada")
    page = browser.get("/files")
    assert page.status_code == 200 and 'hx-post="/files"' in page.text and "No files yet" in page.text
    archive = zip_of({"night/raw/HATP-2.FITS": hatp(shared_data, 1), "../evil.fits": hatp(shared_data, 2)},
                     tmp_path / "night.zip")  # fmt: skip
    files = [
        ("files", ("HATP-1.FITS", hatp(shared_data, 0).read_bytes())),
        ("files", ("notes.fits", b"clouds\n" * 50)),
        ("files", ("night.zip", archive.read_bytes())),
    ]
    answer = browser.post("/files", files=files, headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert answer.status_code == 200
    assert answer.text.count(">accepted") == 2
    assert "refused: this is not a FITS file" in answer.text
    assert "night.zip: ../evil.fits" in answer.text and "refused: its path climbs out" in answer.text
    listing = browser.get("/files").text
    assert "HATP-1.FITS" in listing and "HATP-2.FITS" in listing and "650×500" in listing
    assert "notes.fits" not in listing
    assert all_files(uploads_dir(app, "ada").parent) == {"uploads/HATP-1.FITS", "uploads/HATP-2.FITS"}
    with app.state.ctx.db.session() as session:
        rows = session.scalars(select(Upload).order_by(Upload.name)).all()
        assert [(r.name, r.size, r.summary["kind"], r.summary["shape"]) for r in rows] == [
            ("HATP-1.FITS", 656640, "light", [500, 650]),
            ("HATP-2.FITS", 656640, "light", [500, 650]),
        ]


def test_a_multipart_upload_without_the_csrf_header_is_refused(app, shared_data: Path) -> None:
    browser = client(app)
    register(browser, "ada")
    files = [("files", ("HATP-1.FITS", hatp(shared_data).read_bytes()))]
    assert browser.post("/files", files=files).status_code == 403
    assert browser.post("/files", files=files, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert all_files(uploads_dir(app, "ada").parent) <= {"uploads", "jobs", "tmp"}


def test_api_upload_list_delete_and_quota(app, shared_data: Path, tmp_path: Path) -> None:
    with app.state.ctx.db.session() as session:
        ada = create_user(session, "ada", PASSWORD)
        token = new_api_token(session, ada, "script")
    api = client(app)
    api.headers["Authorization"] = f"Bearer {token}"
    files = [("files", (f"f{i}.fits", hatp(shared_data, i).read_bytes())) for i in range(2)]
    dark = shared_data / "guilford-sbig-darks" / "Screen Center_Dark_20180619_00000161.fits"  # 1.8 MB
    files.append(("files", ("big.fits", dark.read_bytes())))
    answer = api.post("/api/files", files=files)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert [a["name"] for a in result["accepted"]] == ["f0.fits", "f1.fits"]
    assert result["accepted"][0]["shape"] == [500, 650] and result["accepted"][0]["kind"] == "light"
    reason = "it is larger than the limit of 1.5 MB per file; it was not stored"
    assert result["rejected"] == [{"status": "rejected", "name": "big.fits", "reason": reason}]
    listed = api.get("/api/files").json()
    assert [f["name"] for f in listed["files"]] == ["f0.fits", "f1.fits"]
    assert listed["used"] == 2 * 656640 and listed["quota"] == 4 * 1024 * 1024
    # an archive that fits as sent but not unpacked (5 frames, 3.1 MB, in the 2.7 MB left)
    archive = zip_of({f"night/g{i}.fits": hatp(shared_data, i % 3) for i in range(5)}, tmp_path / "n.zip")
    assert archive.stat().st_size < 2.6 * 1024 * 1024
    result = api.post("/api/files", files=[("files", ("n.zip", archive.read_bytes()))]).json()
    assert result["accepted"] == [] and result["rejected"][0]["name"] == "n.zip"
    assert "unpacks to more than the 2.7 MB left in your quota" in result["rejected"][0]["reason"]
    # a request larger than all the quota left: 413 before anything is read
    huge = api.post("/api/files", files=[("files", ("x.fits", b"\0" * (3 * 1024 * 1024)))])
    assert huge.status_code == 413 and "left in your quota" in huge.json()["detail"]
    first = listed["files"][0]["id"]
    assert api.delete(f"/api/files/{first}").json() == {"deleted": first}
    assert api.delete(f"/api/files/{first}").status_code == 404
    assert [f["name"] for f in api.get("/api/files").json()["files"]] == ["f1.fits"]
    assert all_files(uploads_dir(app, "ada").parent) == {"uploads/f1.fits"}


def test_another_users_files_answer_404(app, shared_data: Path) -> None:
    ada = client(app)
    csrf = register(ada, "ada")
    files = [("files", ("secret-frame.fits", hatp(shared_data).read_bytes()))]
    ada.post("/files", files=files, headers={"X-CSRF-Token": csrf})
    with app.state.ctx.db.session() as session:
        upload_id = session.scalar(select(Upload.id))
    bob = client(app)
    bob_csrf = register(bob, "bob")
    assert "secret-frame" not in bob.get("/files").text
    assert bob.get("/api/files").json()["files"] == []
    assert bob.post(f"/files/{upload_id}/delete", data={"csrf_token": bob_csrf}).status_code == 404
    assert bob.delete(f"/api/files/{upload_id}", headers={"X-CSRF-Token": bob_csrf}).status_code == 404
    assert all_files(uploads_dir(app, "ada")) == {"secret-frame.fits"}
    # the owner deletes it through the page's form
    assert log_in(ada, "ada") == 303
    csrf = csrf_of(ada.get("/files").text)
    answer = ada.post(f"/files/{upload_id}/delete", data={"csrf_token": csrf})
    assert answer.status_code == 303 and answer.headers["location"] == "/files"
    assert all_files(uploads_dir(app, "ada")) == set()
    with app.state.ctx.db.session() as session:
        assert session.scalar(select(Upload.id)) is None


def test_logged_out_visitors_get_nothing(app) -> None:
    visitor = client(app)
    assert visitor.get("/files").status_code == 303
    assert visitor.get("/api/files").status_code == 401
    assert visitor.post("/api/files", files=[("files", ("a.fits", b"x"))]).status_code == 401
