"""Re-record the identification services' answers used by test_identify.py (needs the network).

    python tests/record_identify.py [--colibri-key UID]

Each answer is fetched through the same ``Service.fetch`` the pipeline uses and written, as
the service sent it, into tests/data/identify/. SIMBAD's modern TAP answer replaces the old
script-interface recording only if you rename it; the tests read the file names listed in
tests/data/identify/SOURCES.md.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from astropy.time import Time

from nightpipe.identify.colibri import ColibriService
from nightpipe.identify.service import FieldQuery, Service
from nightpipe.identify.simbad import SimbadService
from nightpipe.identify.skybot import SkybotService
from nightpipe.identify.vizier_services import GaiaService, VsxService

OUT = Path(__file__).parent / "data" / "identify"
CRAB = FieldQuery(83.63308, 22.0145, 0.1)
EY_UMA = FieldQuery(135.5439, 49.8546, 0.32)
SKYBOT = FieldQuery(81.2833, 4.49278, 0.2, epoch_jd=float(Time("2025-01-02 00:00:00", scale="utc").jd))


def record(service: Service, query: FieldQuery, name: str) -> None:
    """Fetch one answer and write it under tests/data/identify."""
    raw = service.fetch(service.payload(query), 60.0)
    table = service.parse(raw)  # a recording must parse
    (OUT / name).write_bytes(raw)
    logging.info("%s: %d rows -> %s", service.name, len(table), name)


def main() -> None:
    """Record SIMBAD (TAP), VSX, Gaia DR3, SkyBoT and, with a key, Astro-Colibri."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--colibri-key", help="an Astro-Colibri uid (astro-colibri.com/account)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    record(SimbadService(), CRAB, "simbad_tap_crab.vot")
    record(VsxService(), EY_UMA, "vsx_ey_uma.vot")
    record(GaiaService(max_mag=16.0), EY_UMA, "gaia_dr3_ey_uma.vot")
    record(SkybotService(), SKYBOT, "skybot_cone_81.28_4.49_2025-01-02_new.vot")
    if args.colibri_key:
        crab_now = FieldQuery(CRAB.ra, CRAB.dec, 1.0, epoch_jd=float(Time.now().jd))
        record(ColibriService(key=args.colibri_key, window_days=365.0), crab_now, "colibri_cone.json")


if __name__ == "__main__":
    main()
