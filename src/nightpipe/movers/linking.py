"""Linking transient detections into tracks of constant apparent velocity (bright movers).

Positions are projected on the tangent plane at the field centre (arcsec). Every pair of
detections on nearby frames whose implied rate is below ``max_rate`` seeds a track; the track
collects, on every other frame, the nearest detection within the tolerance of its predicted
place, is fitted by least squares (position and velocity, weighted), purged of outliers
beyond 3 sigma and kept with at least ``min_detections`` on distinct frames. Tracks sharing
detections are resolved greedily: the best score (detections, then residual) keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nightpipe.movers.transients import Detections

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class LinkOptions:
    """How tracks are searched for."""

    max_rate_arcsec_min: float = 10.0
    min_detections: int = 3
    seed_frames: int = 3  # seeds pair detections at most this many frames apart
    tolerance_arcsec: float = 2.0  # added to 3 sigma of each detection
    min_rate_arcsec_min: float = 0.02
    min_motion_arcsec: float = 0.0  # a track must move this far over its detections (vs. static residues)


@dataclass(frozen=True)
class Track:
    """A moving object: its detections, its fitted motion and how well they agree."""

    members: IntArray  # rows of the transient detections
    t0: float  # JD of the reference epoch (the first detection)
    position: FloatArray  # (xi, eta) arcsec at t0
    velocity: FloatArray  # (dxi, deta) arcsec per day
    rms_arcsec: float

    @property
    def rate_arcsec_min(self) -> float:
        """Apparent rate."""
        return float(np.hypot(*self.velocity) / 1440.0)

    @property
    def position_angle_deg(self) -> float:
        """Direction of motion, east of north."""
        return float(np.degrees(np.arctan2(self.velocity[0], self.velocity[1])) % 360.0)

    def score(self) -> tuple[int, float]:
        """Ordering key: more detections first, then smaller residuals."""
        return (-int(self.members.size), self.rms_arcsec)


def tangent_plane(ra: FloatArray, dec: FloatArray, ra0: float, dec0: float) -> tuple[FloatArray, FloatArray]:
    """Gnomonic projection (arcsec): xi towards east, eta towards north."""
    r, d = np.radians(ra), np.radians(dec)
    r0, d0 = np.radians(ra0), np.radians(dec0)
    cos_c = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(r - r0)
    xi = np.cos(d) * np.sin(r - r0) / cos_c
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(r - r0)) / cos_c
    return np.degrees(xi) * 3600.0, np.degrees(eta) * 3600.0


def fit_motion(
    t: FloatArray, xi: FloatArray, eta: FloatArray, sigma: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Weighted least squares of xi, eta = p + v (t - t[0]); returns (p, v) as (xi, eta) pairs."""
    dt = t - t[0]
    w = 1.0 / np.maximum(sigma, 1e-3) ** 2
    design = np.column_stack([np.ones_like(dt), dt])
    normal = design.T @ (design * w[:, None])
    p_xi = np.linalg.solve(normal, design.T @ (w * xi))
    p_eta = np.linalg.solve(normal, design.T @ (w * eta))
    return np.array([p_xi[0], p_eta[0]]), np.array([p_xi[1], p_eta[1]])


def link(det: Detections, centre: tuple[float, float], options: LinkOptions | None = None) -> list[Track]:
    """Tracks of at least ``min_detections`` transient detections on distinct frames."""
    from scipy.spatial import cKDTree

    opts = options or LinkOptions()
    if len(det) < opts.min_detections:
        return []
    xi, eta = tangent_plane(det.ra, det.dec, *centre)
    frames = np.unique(det.frame)
    rows = {int(f): np.flatnonzero(det.frame == f) for f in frames}
    trees: dict[int, Any] = {f: cKDTree(np.column_stack([xi[r], eta[r]])) for f, r in rows.items()}
    frame_jd = {f: float(np.median(det.jd[r])) for f, r in rows.items()}
    by = _Frames(rows, trees, frame_jd)
    max_rate = opts.max_rate_arcsec_min * 1440.0  # arcsec per day
    seen: set[frozenset[int]] = set()
    found: list[Track] = []
    order = sorted(rows)
    for a_pos, fa in enumerate(order):
        for fb in order[a_pos + 1 : a_pos + 1 + opts.seed_frames]:
            dt = frame_jd[fb] - frame_jd[fa]
            if dt <= 0:
                continue
            for i in rows[fa].tolist():
                for k in trees[fb].query_ball_point([xi[i], eta[i]], max_rate * dt + opts.tolerance_arcsec):
                    j = int(rows[fb][k])
                    track = _grow(i, j, det, xi, eta, by, opts)
                    if track is not None and frozenset(track.members.tolist()) not in seen:
                        seen.add(frozenset(track.members.tolist()))
                        found.append(track)
    return resolve(found, det, xi, eta, opts)


@dataclass(frozen=True)
class _Frames:
    """The transients by frame: their rows, a k-d tree of their places, the frame's time."""

    rows: dict[int, IntArray]
    trees: dict[int, Any]
    jd: dict[int, float]


def _grow(
    i: int, j: int, det: Detections, xi: FloatArray, eta: FloatArray, by: _Frames, opts: LinkOptions
) -> Track | None:
    rows, trees, frame_jd = by.rows, by.trees, by.jd
    dt = det.jd[j] - det.jd[i]
    velocity = np.array([xi[j] - xi[i], eta[j] - eta[i]]) / dt
    rate = float(np.hypot(*velocity)) / 1440.0
    if not opts.min_rate_arcsec_min <= rate <= opts.max_rate_arcsec_min:
        return None
    members = [i, j]
    for frame, frame_rows in rows.items():
        if frame in (det.frame[i], det.frame[j]):
            continue
        predicted = np.array([xi[i], eta[i]]) + velocity * (frame_jd[frame] - det.jd[i])
        dist, k = trees[frame].query(predicted)
        m = int(frame_rows[k])
        if dist <= 3.0 * det.sigma_arcsec[m] + opts.tolerance_arcsec:
            members.append(m)
    if len(members) < opts.min_detections:
        return None
    return _fit(np.array(sorted(members, key=lambda r: det.jd[r]), dtype=np.int64), det, xi, eta, opts)


def _fit(
    members: IntArray, det: Detections, xi: FloatArray, eta: FloatArray, opts: LinkOptions
) -> Track | None:
    """Fit, reject residuals beyond 3 sigma (plus the tolerance), refit; None when too few remain."""
    for _ in range(3):
        if members.size < opts.min_detections or np.unique(det.frame[members]).size < opts.min_detections:
            return None
        t, sigma = det.jd[members], det.sigma_arcsec[members]
        position, velocity = fit_motion(t, xi[members], eta[members], sigma)
        model = position[:, None] + velocity[:, None] * (t - t[0])
        resid = np.hypot(xi[members] - model[0], eta[members] - model[1])
        keep = resid <= 3.0 * sigma + opts.tolerance_arcsec / 2
        if keep.all():
            if float(np.hypot(*velocity)) * float(t[-1] - t[0]) < opts.min_motion_arcsec:
                return None  # it barely moved: a static source detected on only some frames
            rms = float(np.sqrt(np.mean(resid**2)))
            return Track(members, float(t[0]), position, velocity, rms)
        members = members[keep]
    return None


def resolve(
    tracks: list[Track], det: Detections, xi: FloatArray, eta: FloatArray, opts: LinkOptions
) -> list[Track]:
    """Keep the best tracks; a track sharing detections with a better one loses them (and is refitted)."""
    taken: set[int] = set()
    kept: list[Track] = []
    for track in sorted(tracks, key=lambda tr: tr.score()):
        free = np.array([m for m in track.members.tolist() if m not in taken], dtype=np.int64)
        if free.size < track.members.size:
            refit = _fit(free, det, xi, eta, opts)
            if refit is None:
                continue
            track = refit
        kept.append(track)
        taken.update(track.members.tolist())
    return kept
