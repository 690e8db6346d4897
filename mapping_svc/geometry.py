"""Homography geometry: fitting, validation, projection and the foot-point rule. Pure numpy/OpenCV.

Coordinate frames: image points in pixels (x right, y down); floor points in metres on the floor plan.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from spoton.domain import FloorPoints

MAX_CONDITION = 1e12


@dataclass(frozen=True)
class CameraGeometry:
    """A validated image->floor mapping.

    Attributes:
        homography: float64 (3, 3), image px -> floor m.
        floor_sign: sign of the projective scale w on the floor side of the horizon.
        foot_offset_px: (dx, dy) added to the box's bottom centre.
        camera_matrix / dist_coeffs: optional lens model; points are undistorted first.
    """

    homography: np.ndarray
    floor_sign: float = 1.0
    foot_offset_px: tuple[float, float] = (0.0, 0.0)
    camera_matrix: np.ndarray | None = None
    dist_coeffs: np.ndarray | None = None

    def project(self, points_px: np.ndarray) -> FloorPoints:
        """(N, 2) image pixels -> floor metres; points at or above the horizon are flagged invalid."""
        pts = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
        if not np.isfinite(pts).all():
            raise ValueError("image points must be finite")
        if self.camera_matrix is not None and len(pts):
            pts = cv2.undistortPoints(
                pts.reshape(-1, 1, 2), self.camera_matrix, self.dist_coeffs, P=self.camera_matrix
            ).reshape(-1, 2)
        homog = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ self.homography.T
        w = homog[:, 2] * self.floor_sign
        valid = w > 1e-9
        xy = np.zeros((len(pts), 2))
        xy[valid] = homog[valid, :2] / homog[valid, 2:3]
        valid &= np.isfinite(xy).all(axis=1) & (np.abs(xy) < 1e5).all(axis=1)
        xy[~valid] = 0.0
        return FloorPoints(xy, valid)

    def project_boxes(self, xyxy: np.ndarray) -> FloorPoints:
        """Foot-point rule: bottom centre of each (N, 4) box plus the camera's offset, projected."""
        return self.project(foot_points(xyxy, self.foot_offset_px))


def foot_points(xyxy: np.ndarray, offset_px: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2 + offset_px[0], boxes[:, 3] + offset_px[1]], axis=1)


def validate_pairs(image_pts: np.ndarray, floor_pts: np.ndarray) -> None:
    if image_pts.shape != floor_pts.shape or image_pts.ndim != 2 or image_pts.shape[1] != 2:
        raise ValueError("image and floor points must be matching (N, 2) arrays")
    if len(image_pts) < 4:
        raise ValueError(f"a homography needs at least 4 point pairs, got {len(image_pts)}")
    if not (np.isfinite(image_pts).all() and np.isfinite(floor_pts).all()):
        raise ValueError("point coordinates must be finite (no NaN or inf)")
    for name, pts in (("image", image_pts), ("floor", floor_pts)):
        if len(np.unique(np.round(pts, 6), axis=0)) < len(pts):
            raise ValueError(f"duplicate {name} points")
        centred = pts - pts.mean(axis=0)
        sv = np.linalg.svd(centred, compute_uv=False)
        if sv[1] < 1e-6 * max(sv[0], 1e-12):
            raise ValueError(f"the {name} points are collinear: a homography needs points spread over an area")


def reprojection_error_m(h: np.ndarray, image_pts: np.ndarray, floor_pts: np.ndarray) -> np.ndarray:
    """Per-pair floor distance (metres) between projected image points and their floor points."""
    proj = cv2.perspectiveTransform(image_pts.reshape(-1, 1, 2).astype(np.float64), h).reshape(-1, 2)
    return np.linalg.norm(proj - floor_pts, axis=1)


def fit_homography(
    image_pts: np.ndarray, floor_pts: np.ndarray, ransac_threshold_m: float = 0.5
) -> tuple[np.ndarray, float, np.ndarray]:
    """RANSAC homography image px -> floor m.

    Returns:
        (H (3, 3), median reprojection error in metres over inliers, inlier mask (N,)).
    """
    image_pts = np.asarray(image_pts, dtype=np.float64).reshape(-1, 2)
    floor_pts = np.asarray(floor_pts, dtype=np.float64).reshape(-1, 2)
    validate_pairs(image_pts, floor_pts)
    method = cv2.RANSAC if len(image_pts) > 4 else 0
    h, mask = cv2.findHomography(image_pts, floor_pts, method, ransac_threshold_m)
    if h is None:
        raise ValueError("no homography fits these points (degenerate configuration)")
    inliers = mask.reshape(-1).astype(bool) if mask is not None else np.ones(len(image_pts), bool)
    validate_homography(h)
    err = reprojection_error_m(h, image_pts[inliers], floor_pts[inliers])
    return h, float(np.median(err)), inliers


def validate_homography(h: np.ndarray) -> np.ndarray:
    h = np.asarray(h, dtype=np.float64)
    if h.shape != (3, 3):
        raise ValueError(f"a homography is 3x3, got shape {h.shape}")
    if not np.isfinite(h).all():
        raise ValueError("homography entries must be finite")
    if np.linalg.cond(h) > MAX_CONDITION:
        raise ValueError("homography is singular or ill-conditioned")
    return h


def floor_sign(h: np.ndarray, reference_px: np.ndarray) -> float:
    """Sign of w at points known to be on the floor (calibration points, or the image's bottom centre)."""
    ref = np.asarray(reference_px, dtype=np.float64).reshape(-1, 2)
    w = np.concatenate([ref, np.ones((len(ref), 1))], axis=1) @ h[2]
    return 1.0 if np.median(w) >= 0 else -1.0
