"""Video sets (sites: cameras, floor, zones, lines, rules) and their floor plans."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import RootModel

from gateway.deps import Admin, GatewayDep
from gateway.errors import ApiError
from gateway.routes.calibration import pairs_proto
from gateway.state import Gateway
from spoton.bootstrap.errors import NotFoundError
from spoton.sourceurl import restore_credentials
from spoton.v1 import common_pb2, mapping_pb2
from spoton.videoset import VideoSet

router = APIRouter(prefix="/api/v1/video-sets")


class VideoSetDoc(RootModel[dict[str, Any]]):
    """A video set as in the YAML files (DESIGN §4): name, floor, cameras (id, source, fps, homography or points),
    zones, lines, rules."""


@router.get("/")
async def list_video_sets(gw: GatewayDep) -> dict:
    return {"video_sets": [vs.to_dict() for vs in (await gw.video_sets()).values()]}


@router.post("/", status_code=201, dependencies=[Admin])
async def create_video_set(body: VideoSetDoc, gw: GatewayDep) -> dict:
    """Add a site (cameras, floor, zones, lines, rules) without editing YAML; stored in the database."""
    vs = await checked_video_set(gw, body.root)
    if not await gw.store.insert_video_set(vs.name, body.root):
        raise ApiError(409, "already_exists", f"video set {vs.name!r} exists; PUT changes it")
    await push_calibrations(vs, gw)
    return vs.to_dict()


@router.put("/{name}", dependencies=[Admin])
async def replace_video_set(name: str, body: VideoSetDoc, gw: GatewayDep) -> dict:
    """Change a stored video set (cameras, zones, lines, rules); running sessions keep the version they began
    with."""
    if body.root.get("name", name) != name:
        raise ApiError(400, "invalid_argument", "the body's name must match the path")
    doc = {**body.root, "name": name}
    try:
        stored = {cam.id: cam.source for cam in (await gw.video_set(name)).cameras}
    except NotFoundError:
        stored = {}
    # A client sends back what it read: redacted credentials (``***``) mean "keep the stored ones".
    doc["cameras"] = [
        {**cam, "source": restore_credentials(cam["source"], stored[cam["id"]])}
        if isinstance(cam, dict) and isinstance(cam.get("source"), str) and cam.get("id") in stored
        else cam
        for cam in doc.get("cameras") or []
    ]
    vs = await checked_video_set(gw, doc)
    if not await gw.store.update_video_set(vs.name, doc):
        raise ApiError(404, "not_found", f"unknown video set {vs.name!r}")
    await push_calibrations(vs, gw)
    return vs.to_dict()


@router.delete("/{name}", dependencies=[Admin])
async def delete_video_set(name: str, gw: GatewayDep) -> dict:
    await refuse_yaml_name(gw, name)
    if not await gw.store.delete_video_set(name):
        raise ApiError(404, "not_found", f"unknown video set {name!r}")
    return {"deleted": name}


@router.get("/{name}")
async def get_video_set(name: str, gw: GatewayDep) -> dict:
    return (await gw.video_set(name)).to_dict()


@router.get("/{name}/floor")
async def get_floor(name: str, gw: GatewayDep) -> dict:
    vs = (await gw.video_set(name)).to_dict()
    return {"floor": vs["floor"], "zones": vs["zones"], "lines": vs["lines"]}


@router.get("/{name}/floor.png")
async def get_floor_image(name: str, gw: GatewayDep) -> FileResponse:
    vs = await gw.video_set(name)
    if not vs.floor.image:
        raise ApiError(404, "not_found", f"video set {name!r} has no floor image")
    path = (vs.path.parent / vs.floor.image).resolve()
    if not path.is_file() or vs.path.parent.resolve() not in path.parents:
        raise ApiError(404, "not_found", f"floor image {vs.floor.image!r} not found")
    return FileResponse(path)


async def refuse_yaml_name(gw: Gateway, name: str) -> None:
    """409 for a set defined by a YAML file: those change by editing the file."""
    if name in await asyncio.to_thread(gw.catalog.all):
        raise ApiError(409, "failed_precondition", f"video set {name!r} is defined by a YAML file")


async def checked_video_set(gw: Gateway, doc: dict) -> VideoSet:
    """The document as a video set, its sources checked, its name not one of a YAML file."""
    vs = await asyncio.to_thread(gw.parse_and_check, doc)  # resolves source hosts (DNS): off the event loop
    await refuse_yaml_name(gw, vs.name)
    return vs


async def push_calibrations(vs: VideoSet, gw: Gateway) -> None:
    """Send mapping_svc the calibration of every camera that has a homography or point pairs."""
    for cam in vs.cameras:
        if not (cam.homography or cam.points):
            continue
        cal = mapping_pb2.Calibration(
            video_set=vs.name,
            camera_id=cam.id,
            points=pairs_proto(cam.points),
            foot_offset_px=common_pb2.Point2(x=cam.foot_offset_px[0], y=cam.foot_offset_px[1]),
        )
        if cam.homography:
            cal.homography.extend(v for row in cam.homography for v in row)
        await gw.clients.mapping.SetCalibration(
            mapping_pb2.SetCalibrationRequest(calibration=cal),
            timeout=gw.settings.rpc_timeout_s,
            metadata=gw.clients.metadata,
        )
