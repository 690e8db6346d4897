"""Camera calibration (image px -> floor m) through mapping_svc: read (any version), set, fit, preview, list
versions, roll back, and pictures to check it."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import numpy as np
from fastapi import APIRouter, Path, Query, Response
from google.protobuf import json_format
from pydantic import BaseModel, Field

from gateway.deps import GatewayDep, Operator
from gateway.errors import ApiError
from gateway.render import encode_jpeg, encode_png
from gateway.sources import read_frame
from gateway.state import Gateway
from spoton.floorplan import birdseye, floor_figure, floor_polylines, overlay
from spoton.v1 import common_pb2, mapping_pb2
from spoton.videoset import VideoSet

router = APIRouter(prefix="/api/v1/video-sets/{name}/cameras/{camera_id}/calibration")

Pair = tuple[tuple[float, float], tuple[float, float]]


class PointPairBody(BaseModel):
    image: tuple[float, float]
    floor: tuple[float, float]


class DistortionBody(BaseModel):
    camera_matrix: list[list[float]] = Field(min_length=3, max_length=3)
    coefficients: list[float]


class CalibrationBody(BaseModel):
    """Either >= 4 point pairs or a 3x3 homography (image px -> floor m)."""

    points: list[PointPairBody] = Field(default_factory=list)
    homography: list[list[float]] | None = None
    distortion: DistortionBody | None = None
    foot_offset_px: tuple[float, float] = (0.0, 0.0)


class FitBody(BaseModel):
    points: list[PointPairBody] = Field(min_length=1)


class PreviewBody(FitBody):
    """Unsaved point pairs and the size of the frame they were clicked on (width, height px)."""

    image_size: tuple[int, int] = Field(description="(width, height) of the camera frame, pixels")


def pairs_proto(pairs: Iterable[Pair]) -> list[mapping_pb2.PointPair]:
    """(image px, floor m) pairs as ``PointPair`` messages."""
    return [
        mapping_pb2.PointPair(
            image=common_pb2.Point2(x=image[0], y=image[1]), floor=common_pb2.FloorPoint(x_m=floor[0], y_m=floor[1])
        )
        for image, floor in pairs
    ]


def body_pairs(points: list[PointPairBody]) -> list[Pair]:
    return [(p.image, p.floor) for p in points]


def calibration_json(cal: mapping_pb2.Calibration) -> dict:
    out = json_format.MessageToDict(cal, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    out["homography"] = [list(cal.homography[i : i + 3]) for i in (0, 3, 6)]
    out["created_ns"] = cal.created_ns
    out["created_at"] = (
        datetime.fromtimestamp(cal.created_ns / 1e9, UTC).isoformat().replace("+00:00", "Z") if cal.created_ns else None
    )
    return out


async def calibration_proto(gw: Gateway, name: str, camera_id: str, version: int = 0) -> mapping_pb2.Calibration:
    """The camera's current calibration (``version`` 0) or a stored version; 404 for an unknown camera."""
    (await gw.video_set(name)).camera(camera_id)
    reply = await gw.clients.mapping.GetCalibration(
        mapping_pb2.GetCalibrationRequest(video_set=name, camera_id=camera_id, version=version),
        timeout=gw.settings.rpc_timeout_s,
        metadata=gw.clients.metadata,
    )
    return reply.calibration


Version = Query(0, ge=0, le=2**31 - 1, description="a stored version; 0 = the current one")


@router.get("")
async def get_calibration(name: str, camera_id: str, gw: GatewayDep, version: int = Version) -> dict:
    return calibration_json(await calibration_proto(gw, name, camera_id, version))


@router.get("/versions")
async def list_calibration_versions(name: str, camera_id: str, gw: GatewayDep) -> dict:
    """Every stored version, oldest first; ``current`` is the one in use (the latest)."""
    (await gw.video_set(name)).camera(camera_id)
    reply = await gw.clients.mapping.ListCalibrationVersions(
        mapping_pb2.ListCalibrationVersionsRequest(video_set=name, camera_id=camera_id),
        timeout=gw.settings.rpc_timeout_s,
        metadata=gw.clients.metadata,
    )
    versions = [calibration_json(c) for c in reply.calibrations]
    return {"versions": versions, "current": versions[-1]["version"] if versions else None}


@router.post("/versions/{version}/rollback", dependencies=[Operator])
async def rollback_calibration(
    name: str, camera_id: str, gw: GatewayDep, version: int = Path(ge=1, le=2**31 - 1)
) -> dict:
    """Make an old version current again: stored as a new version copying it (history is never rewritten)."""
    (await gw.video_set(name)).camera(camera_id)
    reply = await gw.clients.mapping.RollbackCalibration(
        mapping_pb2.RollbackCalibrationRequest(video_set=name, camera_id=camera_id, version=version),
        timeout=gw.settings.rpc_timeout_s,
        metadata=gw.clients.metadata,
    )
    return {"calibration": calibration_json(reply.calibration)}


@router.put("", dependencies=[Operator])
async def put_calibration(name: str, camera_id: str, body: CalibrationBody, gw: GatewayDep) -> dict:
    (await gw.video_set(name)).camera(camera_id)
    cal = mapping_pb2.Calibration(
        video_set=name,
        camera_id=camera_id,
        points=pairs_proto(body_pairs(body.points)),
        foot_offset_px=common_pb2.Point2(x=body.foot_offset_px[0], y=body.foot_offset_px[1]),
    )
    if body.homography is not None:
        cal.homography.extend(v for row in body.homography for v in row)
    if body.distortion is not None:
        cal.distortion.camera_matrix.extend(v for row in body.distortion.camera_matrix for v in row)
        cal.distortion.coefficients.extend(body.distortion.coefficients)
    reply = await gw.clients.mapping.SetCalibration(
        mapping_pb2.SetCalibrationRequest(calibration=cal),
        timeout=gw.settings.rpc_timeout_s,
        metadata=gw.clients.metadata,
    )
    return {"calibration": calibration_json(reply.calibration), "reprojection_error_m": reply.reprojection_error_m}


async def fit(gw: Gateway, name: str, camera_id: str, body: FitBody) -> mapping_pb2.FitCalibrationResponse:
    (await gw.video_set(name)).camera(camera_id)
    return await gw.clients.mapping.FitCalibration(
        mapping_pb2.FitCalibrationRequest(points=pairs_proto(body_pairs(body.points))),
        timeout=gw.settings.rpc_timeout_s,
        metadata=gw.clients.metadata,
    )


def fit_json(reply: mapping_pb2.FitCalibrationResponse) -> dict:
    h = list(reply.homography)
    return {
        "homography": [h[0:3], h[3:6], h[6:9]],
        "reprojection_error_m": reply.reprojection_error_m,
        "inliers": list(reply.inliers),
        "errors_m": list(reply.point_errors_m),
    }


@router.post("/fit", dependencies=[Operator])
async def fit_calibration(name: str, camera_id: str, body: FitBody, gw: GatewayDep) -> dict:
    """Fit without storing: the homography, median error over inliers, and each pair's error (metres)."""
    return fit_json(await fit(gw, name, camera_id, body))


@router.post("/preview", dependencies=[Operator])
async def preview_calibration(name: str, camera_id: str, body: PreviewBody, gw: GatewayDep) -> dict:
    """What ``/fit`` says, plus the 1 m grid, zones and lines the fit puts into the frame, as image polylines
    (``figure``: [{"kind": "grid" | "grid5" | "zone" | "line", "points": [[x, y] px, ...]}]), so a page can show
    an unsaved calibration over the frame. Nothing is stored."""
    if min(body.image_size) < 1 or max(body.image_size) > 20_000:
        raise ApiError(400, "invalid_argument", "image_size must be (width, height) in 1..20000 px")
    vs = await gw.video_set(name)
    reply = await fit(gw, name, camera_id, body)
    h = np.array(reply.homography, np.float64).reshape(3, 3)
    shape = (body.image_size[1], body.image_size[0])
    figure = [
        {"kind": kind, "points": np.round(run, 1).tolist()}
        for kind, pts in floor_figure(vs)
        for run in floor_polylines(h, pts, shape)
    ]
    return {**fit_json(reply), "figure": figure}


Draw = Callable[[np.ndarray, np.ndarray, VideoSet], np.ndarray]


async def calibration_picture(
    gw: Gateway, name: str, camera_id: str, frame: int, draw: Draw, version: int = 0
) -> Response:
    """``draw(image, homography 3x3, video set)`` over the camera's 1-based source ``frame``, as PNG."""
    if frame < 1:
        raise ApiError(400, "invalid_argument", "frame is 1-based")
    vs = await gw.video_set(name)
    cal = await calibration_proto(gw, name, camera_id, version)
    image = await asyncio.to_thread(read_frame, vs.source_uri(vs.camera(camera_id)), frame)
    h = np.array(cal.homography, np.float64).reshape(3, 3)
    png = await asyncio.to_thread(lambda: encode_png(draw(image, h, vs)))
    return Response(png, media_type="image/png")


@router.get("/frame.jpg")
async def camera_frame(name: str, camera_id: str, gw: GatewayDep, frame: int = 1) -> Response:
    """The camera's 1-based source ``frame`` as it is, JPEG: what a person clicks image points on."""
    if frame < 1:
        raise ApiError(400, "invalid_argument", "frame is 1-based")
    vs = await gw.video_set(name)
    image = await asyncio.to_thread(read_frame, vs.source_uri(vs.camera(camera_id)), frame)
    return Response(await asyncio.to_thread(encode_jpeg, image), media_type="image/jpeg")


@router.get("/overlay.png")
async def calibration_overlay(
    name: str, camera_id: str, gw: GatewayDep, frame: int = 1, version: int = Version
) -> Response:
    return await calibration_picture(gw, name, camera_id, frame, overlay, version)


@router.get("/birdseye.png")
async def calibration_birdseye(
    name: str,
    camera_id: str,
    gw: GatewayDep,
    frame: int = 1,
    px_per_m: float = Query(20.0, gt=0, le=200),
    version: int = Version,
    figure: bool = Query(True, description="draw zones and lines (the console's plan draws its own)"),
) -> Response:
    """The camera's frame warped onto the whole floor rectangle (north up, ``px_per_m``; outside the view
    (30, 30, 30)): the console composites every camera's into a bird's-eye mosaic when the floor has no image."""
    draw = functools.partial(birdseye, px_per_m=px_per_m, figure=figure)
    return await calibration_picture(gw, name, camera_id, frame, draw, version)
