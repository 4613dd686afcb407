"""``nightpipe lc``: a star's light curve across nights from the database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from nightpipe.config import load_settings
from nightpipe.starlc import StarNotFoundError, StarQuery, export_csv, plot, resolve_star, star_lightcurve
from nightpipe.store import open_database
from nightpipe.store.models import Frame
from nightpipe.store.models_calphot import CalibratedMag


def test_star_across_nights(tmp_path: Path, db_url: str) -> None:
    settings = load_settings(
        None, environ={}, overrides=["timeseries.targets=[{name='HAT-P-32', ra=31.0429, dec=46.6878}]"]
    )
    db = open_database(db_url)
    with db.session() as s:
        for k, night in enumerate(["2020-01-01", "2020-01-05", "2020-02-01"]):
            for i in range(5):
                jd = 2458850.0 + k * 4 + i * 0.01
                f = Frame(
                    path=f"/raw/{night}-{i}.fits",
                    size=1,
                    mtime=0,
                    kind="light",
                    night=night,
                    jd_utc=jd,
                    bjd_tdb=jd + 0.001,
                    mid_utc=datetime(2020, 1, 1, tzinfo=UTC),
                )
                s.add(f)
                s.flush()
                # the star (0.5" off), a neighbour 20" away, and a noisy point on the last frame
                s.add(
                    CalibratedMag(
                        frame_id=f.id,
                        source_id=1,
                        ra=31.0429 + 0.5 / 3600,
                        dec=46.6878,
                        mag=11.0 + 0.01 * i,
                        mag_err=0.5 if i == 4 else 0.01,
                        band="V",
                        catalog_id="tyc-1",
                    )
                )
                s.add(
                    CalibratedMag(
                        frame_id=f.id,
                        source_id=2,
                        ra=31.0429,
                        dec=46.6878 + 20 / 3600,
                        mag=13.0,
                        mag_err=0.02,
                        band="V",
                        catalog_id="tyc-2",
                    )
                )
    ra, dec, label = resolve_star("HAT-P-32", settings, db)
    curve = star_lightcurve(db, StarQuery(ra=ra, dec=dec, label=label))
    assert len(curve) == 15 and set(curve.night) == {"2020-01-01", "2020-01-05", "2020-02-01"}
    np.testing.assert_allclose(curve.mag[:4], [11.0, 11.01, 11.02, 11.03])
    assert np.all(np.diff(curve.jd_utc) > 0)
    filtered = star_lightcurve(
        db, StarQuery(ra=ra, dec=dec, label=label, since=date(2020, 1, 2), max_err=0.1)
    )
    assert len(filtered) == 8
    assert resolve_star("tyc-2", settings, db)[1] == pytest.approx(46.6878 + 20 / 3600)
    assert resolve_star("02:04:10.3 +46:41:16", settings, db)[0] == pytest.approx(31.04292, abs=1e-4)
    csv_path = export_csv(curve, tmp_path / "lc.csv")
    assert csv_path.read_text().splitlines()[0].startswith("JD_UTC,BJD_TDB,mag")
    assert plot(curve, tmp_path / "lc.png").stat().st_size > 1000
    with pytest.raises(StarNotFoundError, match="no measurement"):
        star_lightcurve(db, StarQuery(ra=100.0, dec=10.0, label="nowhere"))
    with pytest.raises(StarNotFoundError, match="cannot resolve"):
        resolve_star("not a star", settings, db)
    db.dispose()
