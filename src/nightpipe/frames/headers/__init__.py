"""Header normalisation: the many FITS header dialects -> one frozen record of values.

Observatory software writes the same facts under many keywords (``IMAGETYP`` /
``OBSTYPE``, ``EXPTIME`` / ``EXPOSURE``, ``XBINNING`` / ``CCDSUM``...) and many
spellings (``'Bias Frame'``, ``'ZERO'``, ``'SKY_FLAT'``...). This package turns a plain
mapping of header cards into a :class:`FrameHeader`; it does no I/O, so every rule is
tested on dictionaries. :func:`infer_kind_from_pixels` classifies a frame from a small
pixel sample when neither the header nor the file name says what it is.

The dialects handled are those of MaxIm DL (several versions), SBIG, Apogee, ACP,
MicroObservatory, ESO/MIDAS (DFOSC with its non-standard keywords), NOT/ALFOSC,
Gemini/GMOS, SAAO, DSS/SkyView, Kepler/TESS, N.I.N.A./SharpCap and other CMOS programs (``GAIN``
setting + ``EGAIN`` e-/ADU).

Modules: :mod:`.keywords` (the dialects' keyword tables and value readers), :mod:`.cards`
(header -> card dict, comments, per-camera overrides), :mod:`.kind` (bias, dark, flat or light),
:mod:`.camera` (exposure, binning, filter, temperatures), :mod:`.detector` (gain by dialect, CMOS
gain and offset settings, read noise, saturation), :mod:`.pointing` (coordinates and
site) and :mod:`.normalize` (:class:`FrameHeader`). The public names are importable from here, as
they were from the single module this package replaces.
"""

from nightpipe.frames.headers.camera import binning, exposure_time, filter_name, gain_offset_mode, temperature
from nightpipe.frames.headers.cards import (
    apply_overrides,
    ascii_name,
    ascii_text,
    header_cards,
    header_comments,
    parse_cards,
)
from nightpipe.frames.headers.keywords import (
    CCD_TEMP_KEYS,
    ELEV_KEYS,
    EXPTIME_KEYS,
    FILTER_KEYS,
    GAIN_E_KEYS,
    INSTRUMENT_KEYS,
    KINDS,
    LAT_KEYS,
    LON_KEYS,
    OBJECT_KEYS,
    OBSERVER_KEYS,
    OFFSET_KEYS,
    READOUT_KEYS,
    SET_TEMP_KEYS,
    SITE_KEYS,
    TELESCOPE_KEYS,
    TYPE_KEYS,
    to_float,
)
from nightpipe.frames.headers.kind import (
    infer_kind_from_pixels,
    kind_from_header,
    kind_from_name,
    normalize_kind,
)
from nightpipe.frames.headers.normalize import FrameHeader, normalize_header
from nightpipe.frames.headers.pointing import coordinates, sexagesimal, site_position

__all__ = [
    "CCD_TEMP_KEYS",
    "ELEV_KEYS",
    "EXPTIME_KEYS",
    "FILTER_KEYS",
    "GAIN_E_KEYS",
    "INSTRUMENT_KEYS",
    "KINDS",
    "LAT_KEYS",
    "LON_KEYS",
    "OBJECT_KEYS",
    "OBSERVER_KEYS",
    "OFFSET_KEYS",
    "READOUT_KEYS",
    "SET_TEMP_KEYS",
    "SITE_KEYS",
    "TELESCOPE_KEYS",
    "TYPE_KEYS",
    "FrameHeader",
    "apply_overrides",
    "ascii_name",
    "ascii_text",
    "binning",
    "coordinates",
    "exposure_time",
    "filter_name",
    "gain_offset_mode",
    "header_cards",
    "header_comments",
    "infer_kind_from_pixels",
    "kind_from_header",
    "kind_from_name",
    "normalize_header",
    "normalize_kind",
    "parse_cards",
    "sexagesimal",
    "site_position",
    "temperature",
    "to_float",
]
