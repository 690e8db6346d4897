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


def _polyline(image: np.ndarray, h: np.ndarray, pts_m: np.ndarray, colour, thickness: int = 1) -> None:  # type: ignore[no-untyped-def]
    """Draw a floor polyline densely sampled so perspective curvature and clipping behave."""
    dense = []
    for a, b in itertools.pairwise(pts_m):
        n = max(2, int(np.linalg.norm(b - a) * 10))
        dense.append(np.linspace(a, b, n))
    px, ok = floor_to_image(h, np.concatenate(dense), floor_side(h, image.shape))
    hgt, wid = image.shape[:2]
    ok &= (np.abs(px) < 4 * max(hgt, wid)).all(axis=1)
    run: list[np.ndarray] = []
    for p, good in zip(px, ok, strict=True):
        if good:
            run.append(p)
        elif run:
            _draw_run(image, run, colour, thickness)
            run = []
    if run:
        _draw_run(image, run, colour, thickness)


def _draw_run(image, run, colour, thickness) -> None:  # type: ignore[no-untyped-def]
    if len(run) > 1:
        cv2.polylines(image, [np.round(np.array(run)).astype(np.int32)], False, colour, thickness, cv2.LINE_AA)


def overlay(frame: np.ndarray, h: np.ndarray, vs: VideoSet) -> np.ndarray:
    """The floor's 1 m grid (grey; every 5 m white), zones (green) and lines (orange) drawn into the frame."""
    out = frame.copy()
    f = vs.floor
    x0, y0 = f.origin_m
    for x in np.arange(np.floor(x0), x0 + f.width_m + 1e-9, 1.0):
        major = abs(x % 5) < 1e-9
        _polyline(out, h, np.array([[x, y0], [x, y0 + f.height_m]]), (255, 255, 255) if major else (150, 150, 150))
    for y in np.arange(np.floor(y0), y0 + f.height_m + 1e-9, 1.0):
        major = abs(y % 5) < 1e-9
        _polyline(out, h, np.array([[x0, y], [x0 + f.width_m, y]]), (255, 255, 255) if major else (150, 150, 150))
    for z in vs.zones:
        poly = np.array([*z.polygon, z.polygon[0]], np.float64)
        _polyline(out, h, poly, (80, 220, 80), 2)
    for ln in vs.lines:
        _polyline(out, h, np.array([ln.a, ln.b], np.float64), (0, 150, 255), 3)
    return out


def birdseye(frame: np.ndarray, h: np.ndarray, vs: VideoSet, px_per_m: float = 20.0) -> np.ndarray:
    """The frame warped onto the floor plan (north up), ``px_per_m`` pixels per metre, zones drawn on top."""
    f = vs.floor
    x0, y0 = f.origin_m
    w, hh = round(f.width_m * px_per_m), round(f.height_m * px_per_m)
    # Floor metres -> plan pixels, y up on the floor is up in the picture.
    s = np.array([[px_per_m, 0, -x0 * px_per_m], [0, -px_per_m, (y0 + f.height_m) * px_per_m], [0, 0, 1]])
    plan = cv2.warpPerspective(frame, s @ h, (w, hh), flags=cv2.INTER_LINEAR, borderValue=(30, 30, 30))
    for z in vs.zones:
        pts = (np.concatenate([np.array(z.polygon), np.ones((len(z.polygon), 1))], 1) @ s.T)[:, :2]
        cv2.polylines(plan, [np.round(pts).astype(np.int32)], True, (80, 220, 80), 2, cv2.LINE_AA)
    for ln in vs.lines:
        pts = (np.array([[*ln.a, 1], [*ln.b, 1]]) @ s.T)[:, :2]
        cv2.line(plan, tuple(np.round(pts[0]).astype(int)), tuple(np.round(pts[1]).astype(int)), (0, 150, 255), 3)
    return plan
