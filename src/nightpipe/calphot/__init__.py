"""Photometric calibration: cross-matching, zero points, band transformations, extinction, ensembles."""
