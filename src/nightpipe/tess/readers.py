"""Reading TESS and Kepler/K2 pixel files and light-curve files from disk.

Supported pixel files:

* SPOC target pixel files (TESS, Kepler, K2): a ``PIXELS`` table with one row per cadence
  (``TIME``, ``FLUX``, ``FLUX_ERR``, ``FLUX_BKG``, ``QUALITY``...) and an ``APERTURE`` image
  whose bits mark the pipeline's optimal aperture;
* TESScut cut-outs of full-frame images (same layout, no pipeline aperture, not
  background-subtracted);
* single-cadence images of a pixel file (for example written by ``kepimages``), with the
  time in the header (``MIDTIME`` or ``TSTART``/``TSTOP``).

Supported light-curve files: SPOC light curves (``SAP_FLUX``, ``PDCSAP_FLUX``) and the
common high-level science products (QLP ``KSPSAP_FLUX``, TASOC ``FLUX_CORR``, eleanor
``CORR_FLUX``, K2SFF ``FCOR``, EVEREST ``FLUX``...).

Times are kept as in the file (BTJD or BKJD) together with the :class:`TimeSystem` read
from the header; :attr:`PixelFile.time_bjd` gives BJD_TDB. Files are only read.

The readers are in :mod:`nightpipe.tess.pixel_files` and :mod:`nightpipe.tess.lightcurve_files`,
what they share in :mod:`nightpipe.tess.mission_fits`; this module gathers their public names.
"""

from __future__ import annotations

from nightpipe.tess.lightcurve_files import (
    FLUX_COLUMNS,
    TIME_COLUMNS,
    LightCurveFile,
    is_lightcurve_file,
    read_lightcurve_file,
)
from nightpipe.tess.mission_fits import (
    APERTURE_BACKGROUND,
    APERTURE_COLLECTED,
    APERTURE_OPTIMAL,
    FloatArray,
    IntArray,
    PixelKind,
    detect_mission,
    merged_header,
)
from nightpipe.tess.pixel_files import PixelFile, read_aperture_mask, read_pixel_file

__all__ = [
    "APERTURE_BACKGROUND",
    "APERTURE_COLLECTED",
    "APERTURE_OPTIMAL",
    "FLUX_COLUMNS",
    "TIME_COLUMNS",
    "FloatArray",
    "IntArray",
    "LightCurveFile",
    "PixelFile",
    "PixelKind",
    "detect_mission",
    "is_lightcurve_file",
    "merged_header",
    "read_aperture_mask",
    "read_lightcurve_file",
    "read_pixel_file",
]
