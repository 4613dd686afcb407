"""Moving objects: what moves across a night's frames, linked into tracks, measured and reported."""
