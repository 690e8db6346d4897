"""A session's latest step, its global persons (with thumbnails), and operator identity corrections."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from gateway.deps import GatewayDep, Operator
from gateway.errors import ApiError
from gateway.render import blur_jpeg
from spoton.v1 import reid_pb2

router = APIRouter(prefix="/api/v1/tracking/{session_id}")


class MergeBody(BaseModel):
    into: int = Field(gt=0)
    from_: int = Field(gt=0, alias="from")


class SplitBody(BaseModel):
    camera_id: str = Field(min_length=1)
    track_id: int = Field(ge=0)


@router.get("")
async def latest_step(session_id: str, gw: GatewayDep) -> dict:
    if session_id in gw.sessions:
        latest = gw.sessions[session_id].latest
    else:
        await gw.summary(session_id)
        latest = await gw.live.latest(session_id)
    if latest is None:
        raise ApiError(404, "not_found", f"session {session_id} has no step yet")
    return latest


@router.get("/persons")
async def persons(session_id: str, gw: GatewayDep) -> dict:
    await gw.summary(session_id)
    base = f"/api/v1/tracking/{session_id}/persons"
    return {
        "persons": [
            {
                "global_id": p.global_id,
                "first_seen": p.first_seen.isoformat(),
                "last_seen": p.last_seen.isoformat(),
                "cameras": p.cameras,
                "thumbnail": f"{base}/{p.global_id}/thumbnail.jpg",
            }
            for p in await gw.store.persons(session_id)
        ]
    }


@router.get("/persons/{global_id}/thumbnail.jpg")
async def person_thumbnail(session_id: str, global_id: int, gw: GatewayDep) -> Response:
    """The person's best crop (largest, sharpest, least occluded), to review a merge or a person-search hit; 404
    when reid has none (unknown, or retired after ``retire_after_s`` unseen and not searchable). Asked of reid
    alone: a searchable session's persons keep their crop in reid's store after the gateway has forgotten the
    session (a restart, Redis's summary expired). In privacy mode it is blurred, or refused (403) with
    ``PRIVACY_THUMBNAILS=refuse``."""
    if not gw.settings.collect_crops:
        raise ApiError(403, "forbidden", "privacy mode: person thumbnails are not kept")
    _, reid = await gw.clients.reid_for(session_id)
    reply = await reid.GetPersonThumbnail(
        reid_pb2.GetPersonThumbnailRequest(session_id=session_id, global_id=global_id),
        timeout=gw.settings.rpc_timeout_s,
        metadata=gw.clients.metadata,
    )
    headers = {"X-Camera-Id": reply.camera_id, "X-Timestamp-Ns": str(reply.timestamp_ns)}
    jpeg = await asyncio.to_thread(blur_jpeg, reply.jpeg) if gw.settings.privacy_mode else reply.jpeg
    return Response(jpeg, media_type="image/jpeg", headers=headers)


@router.post("/persons/merge", dependencies=[Operator])
async def merge_persons(session_id: str, body: MergeBody, gw: GatewayDep) -> dict:
    """Operator correction: person ``from`` is person ``into`` (reid_svc records it; history is not rewritten)."""
    await gw.summary(session_id)
    _, reid = await gw.clients.reid_for(session_id)  # the replica holding the session's gallery
    reply = await reid.MergeIdentities(
        reid_pb2.MergeIdentitiesRequest(session_id=session_id, into_global_id=body.into, from_global_id=body.from_),
        timeout=gw.settings.rpc_timeout_s,
        metadata=gw.clients.metadata,
    )
    return {"global_id": reply.global_id}


@router.post("/persons/split", dependencies=[Operator])
async def split_track(session_id: str, body: SplitBody, gw: GatewayDep) -> dict:
    """Operator correction: this camera's track is a person of its own from now on."""
    await gw.summary(session_id)
    _, reid = await gw.clients.reid_for(session_id)
    reply = await reid.SplitTrack(
        reid_pb2.SplitTrackRequest(session_id=session_id, camera_id=body.camera_id, track_id=body.track_id),
        timeout=gw.settings.rpc_timeout_s,
        metadata=gw.clients.metadata,
    )
    return {"global_id": reply.new_global_id}
