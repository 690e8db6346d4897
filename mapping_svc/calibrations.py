"""Calibrations by (video set, camera), versioned; seeded from video-set YAML. Pure: no gRPC."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from mapping_svc.geometry import CameraGeometry, fit_homography, floor_sign, validate_homography
from spoton.bootstrap.errors import PreconditionError
from spoton.videoset import VideoSet


@dataclass(frozen=True)
class Calibration:
    video_set: str
    camera_id: str
    homography: np.ndarray
    points_image: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    points_floor: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    camera_matrix: np.ndarray | None = None
    dist_coeffs: np.ndarray | None = None
    foot_offset_px: tuple[float, float] = (0.0, 0.0)
    reprojection_error_m: float = 0.0
    version: int = 1
    source: str = "api"

    def geometry(self) -> CameraGeometry:
        ref = self.points_image if len(self.points_image) else np.array([[0.0, 1e4]])
        return CameraGeometry(
            self.homography,
            floor_sign(self.homography, ref),
            self.foot_offset_px,
            self.camera_matrix,
            self.dist_coeffs,
        )


def build_calibration(
    video_set: str,
    camera_id: str,
    points_image: np.ndarray | None = None,
    points_floor: np.ndarray | None = None,
    homography: np.ndarray | None = None,
    camera_matrix: np.ndarray | None = None,
    dist_coeffs: np.ndarray | None = None,
    foot_offset_px: tuple[float, float] = (0.0, 0.0),
    source: str = "api",
    ransac_threshold_m: float = 0.5,
) -> Calibration:
    """Fit from point pairs or validate a given matrix; ValueError with the reason otherwise."""
    if not video_set or not camera_id:
        raise ValueError("video_set and camera_id are required")
    pi = np.zeros((0, 2)) if points_image is None else np.asarray(points_image, np.float64).reshape(-1, 2)
    pf = np.zeros((0, 2)) if points_floor is None else np.asarray(points_floor, np.float64).reshape(-1, 2)
    if camera_matrix is not None:
        camera_matrix = np.asarray(camera_matrix, np.float64).reshape(3, 3)
        dist_coeffs = np.asarray(dist_coeffs if dist_coeffs is not None else [], np.float64).reshape(-1)
        if not (np.isfinite(camera_matrix).all() and np.isfinite(dist_coeffs).all()):
            raise ValueError("lens distortion parameters must be finite")
        if dist_coeffs.size not in (0, 4, 5, 8, 12, 14):
            raise ValueError("distortion needs 4, 5, 8, 12 or 14 coefficients")
    error = 0.0
    if homography is not None and np.asarray(homography).size:
        h = validate_homography(np.asarray(homography, np.float64).reshape(3, 3))
        if len(pi):
            from mapping_svc.geometry import reprojection_error_m

            error = float(np.median(reprojection_error_m(h, pi, pf)))
    elif len(pi):
        undist = pi
        if camera_matrix is not None:
            import cv2

            undist = cv2.undistortPoints(pi.reshape(-1, 1, 2), camera_matrix, dist_coeffs, P=camera_matrix)
            undist = undist.reshape(-1, 2)
        h, error, _ = fit_homography(undist, pf, ransac_threshold_m)
    else:
        raise ValueError("a calibration needs >= 4 point pairs or a 3x3 homography")
    return Calibration(
        video_set, camera_id, h, pi, pf, camera_matrix, dist_coeffs, tuple(foot_offset_px), error, 1, source
    )


class CalibrationStore:
    """In-process calibrations with version history per (video set, camera)."""

    def __init__(self) -> None:
        self._history: dict[tuple[str, str], list[Calibration]] = {}

    def put(self, cal: Calibration) -> Calibration:
        history = self._history.setdefault((cal.video_set, cal.camera_id), [])
        cal = replace(cal, version=len(history) + 1)
        history.append(cal)
        return cal

    def get(self, video_set: str, camera_id: str) -> Calibration:
        history = self._history.get((video_set, camera_id))
        if not history:
            raise PreconditionError(f"camera {camera_id!r} of video set {video_set!r} has no calibration")
        return history[-1]

    def list(self, video_set: str = "") -> list[Calibration]:
        return [h[-1] for (vs, _), h in sorted(self._history.items()) if not video_set or vs == video_set]

    def seed(self, vs: VideoSet) -> int:
        """Store each camera's YAML calibration unless the latest one came from the API."""
        count = 0
        for cam in vs.cameras:
            if not (cam.homography or cam.points):
                continue
            latest = self._history.get((vs.name, cam.id))
            if latest and latest[-1].source == "api":
                continue
            pts = np.array([p[0] for p in cam.points]) if cam.points else None
            flr = np.array([p[1] for p in cam.points]) if cam.points else None
            self.put(
                build_calibration(
                    vs.name, cam.id, pts, flr, cam.homography, foot_offset_px=cam.foot_offset_px, source="yaml"
                )
            )
            count += 1
        return count
