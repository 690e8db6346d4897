"""MappingService: proto <-> calibrations and projections."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from mapping_svc.calibrations import Calibration, CalibrationStore, MemoryCalibrationStore, build_calibration
from mapping_svc.config import MappingSettings
from mapping_svc.geometry import CameraGeometry, fit_homography, reprojection_error_m
from spoton.bootstrap.errors import stream_errors, unary_errors
from spoton.bootstrap.server import COMPUTE_SECONDS
from spoton.domain import boxes_from_proto
from spoton.v1 import common_pb2, mapping_pb2, mapping_pb2_grpc


def _pairs(points) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    image = np.array([[p.image.x, p.image.y] for p in points], np.float64).reshape(-1, 2)
    floor = np.array([[p.floor.x_m, p.floor.y_m] for p in points], np.float64).reshape(-1, 2)
    return image, floor


def calibration_to_proto(cal: Calibration) -> mapping_pb2.Calibration:
    msg = mapping_pb2.Calibration(
        video_set=cal.video_set,
        camera_id=cal.camera_id,
        homography=cal.homography.reshape(-1).tolist(),
        foot_offset_px=common_pb2.Point2(x=cal.foot_offset_px[0], y=cal.foot_offset_px[1]),
        version=cal.version,
        reprojection_error_m=cal.reprojection_error_m,
        source=cal.source,
        created_ns=cal.created_ns,
        restored_from=cal.restored_from,
        points=[
            mapping_pb2.PointPair(
                image=common_pb2.Point2(x=float(i[0]), y=float(i[1])),
                floor=common_pb2.FloorPoint(x_m=float(f[0]), y_m=float(f[1])),
            )
            for i, f in zip(cal.points_image, cal.points_floor, strict=True)
        ],
    )
    if cal.camera_matrix is not None:
        msg.distortion.camera_matrix.extend(cal.camera_matrix.reshape(-1).tolist())
        msg.distortion.coefficients.extend(np.asarray(cal.dist_coeffs).reshape(-1).tolist())
    return msg


class MappingServicer(mapping_pb2_grpc.MappingServiceServicer):
    def __init__(self, settings: MappingSettings, store: CalibrationStore | None = None) -> None:
        self.settings = settings
        self.store = store or MemoryCalibrationStore()
        self.cache_ttl_s = 2.0
        self._cache: dict[tuple[str, str], tuple[float, CameraGeometry]] = {}

    async def _get(self, video_set: str, camera_id: str, version: int = 0) -> Calibration:
        if not video_set or not camera_id:
            raise ValueError("video_set and camera_id are required")
        return await asyncio.to_thread(self.store.get, video_set, camera_id, version)

    async def _geometry(self, video_set: str, camera_id: str) -> CameraGeometry:
        """The camera's geometry, cached per calibration version for the hot projection path."""
        key = (video_set, camera_id)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is None or now - hit[0] > self.cache_ttl_s:
            hit = (now, (await self._get(video_set, camera_id)).geometry())
            self._cache[key] = hit
        return hit[1]

    @unary_errors
    async def SetCalibration(self, request, context):
        c = request.calibration
        image, floor = _pairs(c.points)
        dist = c.distortion if c.HasField("distortion") and c.distortion.camera_matrix else None
        if c.homography and len(c.homography) != 9:
            raise ValueError(f"homography needs 9 numbers, got {len(c.homography)}")
        cal = build_calibration(
            c.video_set,
            c.camera_id,
            image,
            floor,
            np.array(c.homography) if c.homography else None,
            np.array(dist.camera_matrix) if dist else None,
            np.array(dist.coefficients) if dist else None,
            (c.foot_offset_px.x, c.foot_offset_px.y),
            "api",
            self.settings.ransac_threshold_m,
        )
        cal = await asyncio.to_thread(self.store.put, cal)
        self._cache.pop((cal.video_set, cal.camera_id), None)
        return mapping_pb2.SetCalibrationResponse(
            calibration=calibration_to_proto(cal), reprojection_error_m=cal.reprojection_error_m
        )

    @unary_errors
    async def GetCalibration(self, request, context):
        return mapping_pb2.GetCalibrationResponse(
            calibration=calibration_to_proto(await self._get(request.video_set, request.camera_id, request.version))
        )

    @unary_errors
    async def ListCalibrationVersions(self, request, context):
        history = await asyncio.to_thread(self.store.versions, request.video_set, request.camera_id)
        return mapping_pb2.ListCalibrationVersionsResponse(calibrations=[calibration_to_proto(c) for c in history])

    @unary_errors
    async def RollbackCalibration(self, request, context):
        cal = await asyncio.to_thread(self.store.rollback, request.video_set, request.camera_id, request.version)
        self._cache.pop((cal.video_set, cal.camera_id), None)
        return mapping_pb2.RollbackCalibrationResponse(calibration=calibration_to_proto(cal))

    @unary_errors
    async def ListCalibrations(self, request, context):
        return mapping_pb2.ListCalibrationsResponse(
            calibrations=[calibration_to_proto(c) for c in await asyncio.to_thread(self.store.list, request.video_set)]
        )

    @unary_errors
    async def FitCalibration(self, request, context):
        image, floor = _pairs(request.points)
        h, err, inliers = fit_homography(image, floor, self.settings.ransac_threshold_m)
        return mapping_pb2.FitCalibrationResponse(
            homography=h.reshape(-1).tolist(),
            reprojection_error_m=err,
            inliers=inliers.tolist(),
            point_errors_m=reprojection_error_m(h, image, floor).tolist(),
        )

    @unary_errors
    async def Project(self, request, context):
        geo = await self._geometry(request.video_set, request.camera_id)
        pts = np.array([[p.x, p.y] for p in request.points], np.float64).reshape(-1, 2)
        return mapping_pb2.ProjectResponse(points=geo.project(pts).to_proto())

    @unary_errors
    async def ProjectBoxes(self, request, context):
        geo = await self._geometry(request.video_set, request.camera_id)
        return mapping_pb2.ProjectBoxesResponse(points=geo.project_boxes(boxes_from_proto(request.boxes)).to_proto())

    @stream_errors
    async def ProjectStream(self, request_iterator, context):
        async for request in request_iterator:
            cameras = []
            with COMPUTE_SECONDS.labels("ProjectStream").time():
                for cam in request.cameras:
                    geo = await self._geometry(request.video_set, cam.camera_id)
                    points = geo.project_boxes(boxes_from_proto(cam.boxes)).to_proto()
                    cameras.append(mapping_pb2.CameraFloorPoints(camera_id=cam.camera_id, points=points))
            yield mapping_pb2.ProjectStreamResponse(step=request.step, cameras=cameras)
