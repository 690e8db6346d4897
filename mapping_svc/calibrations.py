"""Calibrations by (video set, camera), versioned; seeded from video-set YAML. Pure: no gRPC."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
import psycopg

from mapping_svc.geometry import (
    CameraGeometry,
    fit_homography,
    floor_sign,
    reprojection_error_m,
    validate_homography,
)
from spoton.bootstrap.errors import NotFoundError, PreconditionError
from spoton.videoset import CameraSpec, VideoSet


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
    yaml_hash: str | None = None
    created_ns: int = 0
    restored_from: int = 0

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
            error = float(np.median(reprojection_error_m(h, pi, pf)))
    elif len(pi):
        undist = pi
        if camera_matrix is not None:
            undist = cv2.undistortPoints(pi.reshape(-1, 1, 2), camera_matrix, dist_coeffs, P=camera_matrix)
            undist = undist.reshape(-1, 2)
        h, error, _ = fit_homography(undist, pf, ransac_threshold_m)
    else:
        raise ValueError("a calibration needs >= 4 point pairs or a 3x3 homography")
    return Calibration(
        video_set, camera_id, h, pi, pf, camera_matrix, dist_coeffs, tuple(foot_offset_px), error, 1, source
    )


def yaml_fingerprint(cam: CameraSpec) -> str:
    """Hash of a camera's calibration as written in the YAML (a change re-seeds it)."""
    doc = {"h": cam.homography, "p": cam.points, "o": list(cam.foot_offset_px)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def _calibration_from_yaml(vs: VideoSet, cam: CameraSpec) -> Calibration:
    pts = np.array([p[0] for p in cam.points]) if cam.points else None
    flr = np.array([p[1] for p in cam.points]) if cam.points else None
    cal = build_calibration(vs.name, cam.id, pts, flr, cam.homography, foot_offset_px=cam.foot_offset_px, source="yaml")
    return replace(cal, yaml_hash=yaml_fingerprint(cam))


class CalibrationStore:
    """Versioned calibrations per (video set, camera). Subclasses keep them in memory or in PostgreSQL.

    History is append-only: a new calibration, a YAML change or a rollback each add a version; the latest is current.
    """

    def _history(self, video_set: str, camera_id: str) -> list[Calibration]:
        raise NotImplementedError

    def _insert(self, cal: Calibration) -> Calibration:
        raise NotImplementedError

    def list(self, video_set: str = "") -> list[Calibration]:
        raise NotImplementedError

    def put(self, cal: Calibration) -> Calibration:
        return self._insert(cal)

    def versions(self, video_set: str, camera_id: str) -> list[Calibration]:
        """Every stored version of one camera, oldest first (empty when it was never calibrated)."""
        if not video_set or not camera_id:
            raise ValueError("video_set and camera_id are required")
        return self._history(video_set, camera_id)

    def get(self, video_set: str, camera_id: str, version: int = 0) -> Calibration:
        """The current calibration (``version`` 0) or a given stored version."""
        if version < 0:
            raise ValueError(f"version must be >= 0 (0 = current), got {version}")
        history = self.versions(video_set, camera_id)
        if version == 0:
            if not history:
                raise PreconditionError(f"camera {camera_id!r} of video set {video_set!r} has no calibration")
            return history[-1]
        found = next((c for c in history if c.version == version), None)
        if found is None:
            raise NotFoundError(f"camera {camera_id!r} of video set {video_set!r} has no calibration version {version}")
        return found

    def rollback(self, video_set: str, camera_id: str, version: int) -> Calibration:
        """Make ``version`` current again by appending a copy of it (source "rollback"); history stays as it was.

        When the current version already is that version or a copy of it, it is returned and nothing is stored.
        """
        if version < 1:
            raise ValueError(f"version must be >= 1, got {version}")
        old = self.get(video_set, camera_id, version)
        current = self._history(video_set, camera_id)[-1]
        if version in (current.version, current.restored_from):
            return current
        return self._insert(replace(old, source="rollback", restored_from=old.version, yaml_hash=None))

    def seed(self, vs: VideoSet) -> int:
        """Store each camera's YAML calibration unless an API calibration is newer than the last YAML change."""
        count = 0
        for cam in vs.cameras:
            if not (cam.homography or cam.points):
                continue
            history = self._history(vs.name, cam.id)
            fingerprint = yaml_fingerprint(cam)
            last_yaml = next((c for c in reversed(history) if c.source == "yaml"), None)
            if last_yaml is not None and last_yaml.yaml_hash == fingerprint:
                continue  # YAML unchanged: whatever is latest (YAML or a later API calibration) stands
            self._insert(_calibration_from_yaml(vs, cam))
            count += 1
        return count


class MemoryCalibrationStore(CalibrationStore):
    """In-process store (tests, and services run without a database)."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], list[Calibration]] = {}

    def _history(self, video_set: str, camera_id: str) -> list[Calibration]:
        return self._data.get((video_set, camera_id), [])

    def _insert(self, cal: Calibration) -> Calibration:
        history = self._data.setdefault((cal.video_set, cal.camera_id), [])
        cal = replace(cal, version=len(history) + 1, created_ns=time.time_ns())
        history.append(cal)
        return cal

    def list(self, video_set: str = "") -> list[Calibration]:
        return [h[-1] for (vs, _), h in sorted(self._data.items()) if not video_set or vs == video_set]


_COLUMNS = (
    "video_set, camera_id, version, homography, points_image, points_floor, camera_matrix, dist_coeffs, "
    "foot_offset_px, reprojection_error_m, source, yaml_hash, restored_from"
)
# Read back with the time it was stored, Unix ns.
_SELECT = f"{_COLUMNS}, (extract(epoch FROM created_at) * 1e9)::bigint"


class PgCalibrationStore(CalibrationStore):
    """Calibrations in PostgreSQL (table ``calibrations``), so every replica and restart sees the same ones."""

    def __init__(self, url: str) -> None:
        self.url = url

    @staticmethod
    def _row_to_cal(r: tuple) -> Calibration:
        cm = None if r[6] is None else np.array(r[6], np.float64).reshape(3, 3)
        return Calibration(
            video_set=r[0],
            camera_id=r[1],
            version=r[2],
            homography=np.array(r[3], np.float64).reshape(3, 3),
            points_image=np.array(r[4], np.float64).reshape(-1, 2),
            points_floor=np.array(r[5], np.float64).reshape(-1, 2),
            camera_matrix=cm,
            dist_coeffs=None if r[7] is None else np.array(r[7], np.float64),
            foot_offset_px=(float(r[8][0]), float(r[8][1])),
            reprojection_error_m=r[9],
            source=r[10],
            yaml_hash=r[11],
            restored_from=r[12] or 0,
            created_ns=r[13],
        )

    def _history(self, video_set: str, camera_id: str) -> list[Calibration]:
        with psycopg.connect(self.url) as conn:
            rows = conn.execute(
                f"SELECT {_SELECT} FROM calibrations WHERE video_set = %s AND camera_id = %s ORDER BY version",
                (video_set, camera_id),
            ).fetchall()
        return [self._row_to_cal(r) for r in rows]

    def _insert(self, cal: Calibration) -> Calibration:
        with psycopg.connect(self.url) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{cal.video_set}/{cal.camera_id}",))
            version = conn.execute(
                "SELECT coalesce(max(version), 0) + 1 FROM calibrations WHERE video_set = %s AND camera_id = %s",
                (cal.video_set, cal.camera_id),
            ).fetchone()[0]
            cal = replace(cal, version=version)
            created = conn.execute(
                f"INSERT INTO calibrations ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "RETURNING (extract(epoch FROM created_at) * 1e9)::bigint",
                (
                    cal.video_set,
                    cal.camera_id,
                    version,
                    cal.homography.reshape(-1).tolist(),
                    cal.points_image.reshape(-1).tolist(),
                    cal.points_floor.reshape(-1).tolist(),
                    None if cal.camera_matrix is None else cal.camera_matrix.reshape(-1).tolist(),
                    None if cal.dist_coeffs is None else np.asarray(cal.dist_coeffs).reshape(-1).tolist(),
                    list(cal.foot_offset_px),
                    cal.reprojection_error_m,
                    cal.source,
                    cal.yaml_hash,
                    cal.restored_from or None,
                ),
            ).fetchone()[0]
        return replace(cal, created_ns=created)

    def list(self, video_set: str = "") -> list[Calibration]:
        with psycopg.connect(self.url) as conn:
            rows = conn.execute(
                f"SELECT DISTINCT ON (video_set, camera_id) {_SELECT} FROM calibrations "
                "WHERE %s = '' OR video_set = %s ORDER BY video_set, camera_id, version DESC",
                (video_set, video_set),
            ).fetchall()
        return [self._row_to_cal(r) for r in rows]
