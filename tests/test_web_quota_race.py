"""Two uploads of one user finishing at the same time cannot together pass the quota."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import func, select

from nightpipe.web.accounts import create_user
from nightpipe.web.models import Upload
from nightpipe.web.routes_files import QuotaReachedError, store_rows
from nightpipe.web.uploads import Accepted
from nightpipe.web.uploads.limits import FitsSummary
from web_helpers import PASSWORD, make_app


def accepted(folder: Path, name: str, size: int) -> Accepted:
    path = folder / name
    path.write_bytes(b"\0" * 16)
    return Accepted(name=name, path=path, size=size, summary=FitsSummary(kind="light", shape=(4, 4)))


def test_racing_uploads_keep_one_and_refuse_the_other_whole(tmp_path: Path, db_url: str) -> None:
    app = make_app(tmp_path, database_url=db_url)
    ctx = app.state.ctx
    with ctx.db.session() as session:
        user_id = create_user(session, "ada", PASSWORD).id
    quota = 1000
    batches = [[accepted(tmp_path, f"{who}{i}.fits", 300) for i in range(2)] for who in ("a", "b")]
    outcomes: list[object] = []
    start = threading.Barrier(2)

    def upload(batch: list[Accepted]) -> None:
        start.wait()
        try:
            outcomes.append(store_rows(ctx, user_id, list(batch), quota))
        except QuotaReachedError as exc:
            outcomes.append(exc)
        except Exception as exc:  # a database that refuses the second writer outright is fine too
            outcomes.append(exc)

    threads = [threading.Thread(target=upload, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kept = [o for o in outcomes if isinstance(o, dict)]
    assert len(kept) == 1, outcomes  # each alone fits (600 <= 1000), both together do not
    with ctx.db.session() as session:
        used = session.scalar(select(func.sum(Upload.size)).where(Upload.owner_id == user_id))
    assert used == 600
    refused = batches[1] if kept[0].keys() == {"a0.fits", "a1.fits"} else batches[0]
    assert not any(a.path.exists() for a in refused)  # nothing of the refused upload stays on disk
    ctx.db.dispose()
