"""Pictures that let a person check a calibration by eye.

``overlay``: the 1 m floor grid, zones and lines projected into a camera frame. ``birdseye``: the camera frame
warped onto the floor plan. Both take the camera's homography H (image px -> floor m, 3x3).
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np

from spoton.videoset import VideoSet


def floor_to_image(h: np.ndarray, pts_m: np.ndarray, floor_side: float) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) floor metres -> image px, and a mask of points on the camera's side of the horizon.

    ``floor_side`` is the sign of the projective w of floor pixels (that of the image's bottom centre).
    """
    homog = np.concatenate([pts_m, np.ones((len(pts_m), 1))], axis=1) @ np.linalg.inv(h).T
    ok = homog[:, 2] * floor_side > 1e-12
    px = np.full((len(pts_m), 2), np.nan)
    px[ok] = homog[ok, :2] / homog[ok, 2:3]
    return px, ok


def floor_side(h: np.ndarray, frame_shape: tuple[int, ...]) -> float:
    """Sign of w for floor pixels, taken at the bottom centre of the frame (always floor for these cameras)."""
    w = h[2] @ np.array([frame_shape[1] / 2, frame_shape[0] - 1, 1.0])
    return 1.0 if w >= 0 else -1.0


def floor_polylines(h: np.ndarray, pts_m: np.ndarray, shape: tuple[int, ...]) -> list[np.ndarray]:
    """A floor polyline (N, 2) metres as image polylines (each (M, 2) px) in a frame of ``shape`` (H, W, ...).

    Densely sampled so perspective curvature shows; cut where it crosses the horizon or runs far off the frame.
    """
    dense = []
    for a, b in itertools.pairwise(pts_m):
        n = max(2, int(np.linalg.norm(b - a) * 10))
        dense.append(np.linspace(a, b, n))
    px, ok = floor_to_image(h, np.concatenate(dense), floor_side(h, shape))
    hgt, wid = shape[:2]
    ok &= (np.abs(px) < 4 * max(hgt, wid)).all(axis=1)
    runs: list[np.ndarray] = []
    run: list[np.ndarray] = []
    for p, good in zip(px, ok, strict=True):
        if good:
            run.append(p)
        elif run:
            runs.append(np.array(run))
            run = []
    if run:
        runs.append(np.array(run))
    return [r for r in runs if len(r) > 1]


def floor_figure(vs: VideoSet) -> list[tuple[str, np.ndarray]]:
    """What ``overlay`` draws, in floor metres: ("grid" | "grid5" (every 5 m) | "zone" | "line", (N, 2) points)."""
    f = vs.floor
    x0, y0 = f.origin_m
    out: list[tuple[str, np.ndarray]] = []
    for x in np.arange(np.floor(x0), x0 + f.width_m + 1e-9, 1.0):
        out.append(("grid5" if abs(x % 5) < 1e-9 else "grid", np.array([[x, y0], [x, y0 + f.height_m]])))
    for y in np.arange(np.floor(y0), y0 + f.height_m + 1e-9, 1.0):
        out.append(("grid5" if abs(y % 5) < 1e-9 else "grid", np.array([[x0, y], [x0 + f.width_m, y]])))
    out += [("zone", np.array([*z.polygon, z.polygon[0]], np.float64)) for z in vs.zones]
    out += [("line", np.array([ln.a, ln.b], np.float64)) for ln in vs.lines]
    return out


# BGR colour and thickness per kind of ``floor_figure``.
STYLE = {
    "grid": ((150, 150, 150), 1),
    "grid5": ((255, 255, 255), 1),
    "zone": ((80, 220, 80), 2),
    "line": ((0, 150, 255), 3),
}


def overlay(frame: np.ndarray, h: np.ndarray, vs: VideoSet) -> np.ndarray:
    """The floor's 1 m grid (grey; every 5 m white), zones (green) and lines (orange) drawn into the frame."""
    out = frame.copy()
    for kind, pts in floor_figure(vs):
        colour, thickness = STYLE[kind]
        runs = [np.round(r).astype(np.int32) for r in floor_polylines(h, pts, out.shape)]
        if runs:
            cv2.polylines(out, runs, False, colour, thickness, cv2.LINE_AA)
    return out


def birdseye(frame: np.ndarray, h: np.ndarray, vs: VideoSet, px_per_m: float = 20.0, figure: bool = True) -> np.ndarray:
    """The frame warped onto the floor plan (north up), ``px_per_m`` pixels per metre, zones and lines drawn on top
    (unless ``figure`` is false); floor outside the camera's view is (30, 30, 30)."""
    f = vs.floor
    x0, y0 = f.origin_m
    w, hh = round(f.width_m * px_per_m), round(f.height_m * px_per_m)
    # Floor metres -> plan pixels, y up on the floor is up in the picture.
    s = np.array([[px_per_m, 0, -x0 * px_per_m], [0, -px_per_m, (y0 + f.height_m) * px_per_m], [0, 0, 1]])
    plan = cv2.warpPerspective(frame, s @ h, (w, hh), flags=cv2.INTER_LINEAR, borderValue=(30, 30, 30))
    if not figure:
        return plan
    for z in vs.zones:
        pts = (np.concatenate([np.array(z.polygon), np.ones((len(z.polygon), 1))], 1) @ s.T)[:, :2]
        cv2.polylines(plan, [np.round(pts).astype(np.int32)], True, (80, 220, 80), 2, cv2.LINE_AA)
    for ln in vs.lines:
        pts = (np.array([[*ln.a, 1], [*ln.b, 1]]) @ s.T)[:, :2]
        cv2.line(plan, tuple(np.round(pts[0]).astype(int)), tuple(np.round(pts[1]).astype(int)), (0, 150, 255), 3)
    return plan
