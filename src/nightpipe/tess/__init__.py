"""TESS and Kepler/K2 data through the same analysis as a ground-based night.

* :mod:`~nightpipe.tess.readers`: target pixel files, TESScut cut-outs and light-curve
  files, with quality flags and times converted to BJD_TDB (:mod:`~nightpipe.tess.times`,
  :mod:`~nightpipe.tess.quality`);
* :mod:`~nightpipe.tess.photometry`: aperture photometry of pixel files (pipeline,
  threshold or custom aperture; background from the file or from pixels; optional
  systematics regression);
* :mod:`~nightpipe.tess.lightcurves`: light curves into the shared
  :class:`~nightpipe.timeseries.lightcurve.LightCurve`, phase folding, multi-transit fits
  and per-transit mid-times;
* :mod:`~nightpipe.tess.synthetic`: synthetic pixel and light-curve files with injected
  transits, for tests.
"""
