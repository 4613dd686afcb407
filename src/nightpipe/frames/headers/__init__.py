"""Header normalisation: the many FITS header dialects -> one frozen record of values.

The public names are importable from here, as they were from the single module this package
replaces; :mod:`.normalize` holds them.
"""

from nightpipe.frames.headers.camera import binning, exposure_time, filter_name, gain_offset_mode, temperature
from nightpipe.frames.headers.cards import apply_overrides, header_cards, header_comments, parse_cards
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
